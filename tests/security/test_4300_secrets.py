"""4300: secrets. janebot runs with agent keys, a Slack token and other secrets in its
environment and in both .env files (cwd and state dir), each with a unique marker value;
no marker may be found anywhere inside a sandbox (environment, /proc, files)."""
import secrets
import unittest

from sectest import SecCase, needs_bwrap

ALLOWED_ENV = {"HOME", "USER", "LOGNAME", "LANG", "TMPDIR", "TERM", "PATH", "http_proxy",
               "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "no_proxy",
               "JANEBOT_THREAD_KEY", "JANEBOT_USER",
               # set by the shell or by janebot on a continued conversation
               "PWD", "SHLVL", "_", "OLDPWD", "JANEBOT_RESUME_ID",
               # the channel's policy, for the command agent
               "JANEBOT_MCP_CONFIG", "JANEBOT_TOOL_PROFILE", "JANEBOT_INSTRUCTIONS",
               # the LLM proxy: base URLs and a scoped per-exec token in the key variables
               "AMP_API_KEY", "AMP_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
               "OPENAI_API_KEY", "OPENAI_BASE_URL",
               # the approval endpoint on the same listener, with the same scoped token
               "JANEBOT_APPROVE_URL", "JANEBOT_APPROVE_TOKEN"}
TOKEN_VARS = ("AMP_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "JANEBOT_APPROVE_TOKEN")
PROXY_ENV = {"http_proxy": "http://127.0.0.1:3128", "https_proxy": "http://127.0.0.1:3128",
             "HTTP_PROXY": "http://127.0.0.1:3128", "HTTPS_PROXY": "http://127.0.0.1:3128",
             "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1"}
SECRET_NAMES = ("AMP_API_KEY", "ANTHROPIC_API_KEY", "SLACK_BOT_TOKEN", "SPRITES_TOKEN",
                "FOO_SECRET")

SCAN = r'''
markers = [m for m in sys.stdin.read().split() if m]
me = str(os.getpid())
hits = []
def check(path, data):
    for m in markers:
        if m.encode() in data:
            hits.append([path, m])
for p in os.listdir("/proc"):
    if not p.isdigit() or p == me:
        continue
    for f in ("environ", "cmdline"):
        try:
            check("/proc/%s/%s" % (p, f), open("/proc/%s/%s" % (p, f), "rb").read())
        except OSError:
            pass
t0 = time.monotonic()
skip_top = {"proc", "sys", "dev"}
n = 0
for d, dirs, files in os.walk("/"):
    if d == "/":
        dirs[:] = [x for x in dirs if x not in skip_top]
    if d == "/usr":  # the host's read-only /usr: only what could have been added to it
        dirs[:] = [x for x in dirs if x in ("local", "etc")]
    for f in files:
        p = os.path.join(d, f)
        try:
            if os.path.islink(p) or os.path.getsize(p) > (8 << 20):
                continue
            with open(p, "rb") as fh:
                check(p, fh.read())
            n += 1
        except OSError:
            pass
    if time.monotonic() - t0 > 20:
        out("scan_timeout", True)
        break
out("files", n)
out("hits", hits)
'''


@needs_bwrap
class Secrets(SecCase):
    def setUp(self):
        super().setUp()
        self.markers = []

        def mk(name, where):
            m = "%s-%s-%s" % (where, name.lower().replace("_", ""), secrets.token_hex(6))
            if name == "SLACK_BOT_TOKEN":
                m = "xoxb-" + m
            self.markers.append(m)
            return m
        for name in SECRET_NAMES:
            self.env[name] = mk(name, "envmark")
        for path, where in ((self.cwd / ".env", "cwdmark"), (self.state / ".env", "statemark")):
            extra = "EXTRA_%s_SECRET" % where.upper()
            lines = ["%s=%s" % (n, mk(n, where)) for n in SECRET_NAMES + (extra,)]
            path.write_text("\n".join(lines) + "\n")

    def assertNoMarker(self, res, what):
        for m in self.markers:
            self.assertNotIn(m, res.out + res.err, "secret %r visible via %s%s" % (m, what, res))

    def test_4301_env_and_proc_environ_hold_no_secret_in_exec_or_in_a_turn(self):
        x = self.sbx("chat:env", "sh", "-c",
                     "env; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do "
                     "cat $f 2>/dev/null | tr '\\0' '\\n'; done")
        self.assertEqual(x.rc, 0, x)
        self.assertNoMarker(x, "sandbox exec env / /proc/*/environ")
        t = self.chat_ok(["run: env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
                          "env", "getenv AMP_API_KEY", "getenv ANTHROPIC_API_KEY"],
                         thread="env")
        self.assertNoMarker(t, "an agent turn")
        # The key variables hold this exec's scoped token for janebot's LLM proxy.
        for line in t.out.splitlines():
            for var in TOKEN_VARS:
                if line.startswith(var + "="):
                    self.assertRegex(line, "^%s=jbt_[0-9a-f]{64}$" % var, t)
        self.normal_turn_still_works()

    def test_4302_the_environment_inside_is_exactly_the_allowlist_with_the_proxy_settings(self):
        x = self.sbx("chat:allow", "env")
        self.assertEqual(x.rc, 0, x)
        got = dict(l.split("=", 1) for l in x.out.splitlines() if "=" in l)
        self.assertEqual(set(got) - ALLOWED_ENV, set(), "variables beyond the allowlist%s" % x)
        for k, v in PROXY_ENV.items():
            with self.subTest(var=k):
                self.assertEqual(got.get(k), v, x)
        self.assertEqual(got.get("HOME"), "/home/agent", x)
        t = self.chat_ok(["env"], thread="allow")
        names = set(t.out.split())
        self.assertIn("HOME", names, t)
        self.assertEqual(names - ALLOWED_ENV, set(), "agent variables beyond the allowlist%s" % t)
        self.assertTrue(set(PROXY_ENV) <= names, "proxy variables missing in the turn%s" % t)
        self.normal_turn_still_works()

    def test_4303_no_file_or_process_inside_contains_a_secret(self):
        self.chat_ok(["hello"], thread="scan")
        for how, key in (("sandbox exec", "chat:scan"),):
            r = self.probe(key, SCAN, input="\n".join(self.markers) + "\n", timeout=60)
            with self.subTest(how=how):
                self.assertEqual(r.rc, 0, r)
                self.assertGreater(r.vals.get("files", 0), 0, "the scan read no file%s" % r)
                self.assertEqual(r.vals.get("hits"), [], "secret found inside%s" % r)
                self.assertNotIn("scan_timeout", r.vals, r)
        g = self.sbx("chat:scan", "sh", "-c",
                     "timeout 20 grep -rlsF -f /dev/stdin / --exclude-dir=proc "
                     "--exclude-dir=sys --exclude-dir=usr --exclude-dir=dev; echo grep-done",
                     input="\n".join(self.markers) + "\n", timeout=60)
        self.assertIn("grep-done", g.out, g)
        self.assertEqual(g.out.strip(), "grep-done", "grep found secrets in files%s" % g)
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

"""8300: the LLM proxy for sprites (issue 7): with JANEBOT_PROXY_LISTEN and
JANEBOT_PUBLIC_URL a sprite holds only a scoped token and reaches janebot's proxy at the
public URL, by its own name; without them, janebot says plainly that the real key goes in.
The fake Sprites runs commands as local processes, so the public URL is a loopback one."""
import socket
import sys
import time

from jbtest import FAKES, sandbox_name
from test_7000_llm_proxy import TOKEN_RE, ProxyCase, anth, oai

sys.path.insert(0, str(FAKES))
from llm_upstream import header  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SpritesLLM(ProxyCase):
    def setUp(self):
        super().setUp()
        self.sprites = self.use_fake_sprites()
        self.port = free_port()
        self.public = "http://127.0.0.1:%d" % self.port
        self.env.update({"JANEBOT_PROXY_LISTEN": "127.0.0.1:%d" % self.port,
                         "JANEBOT_PUBLIC_URL": self.public})

    def test_8301_a_sprite_gets_base_urls_by_its_name_and_a_scoped_token(self):
        name = sandbox_name("chat:s1")
        res, env, x = self.boxed("chat:s1", {
            "print_env": ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL",
                          "AMP_URL", "OPENAI_API_KEY", "AMP_API_KEY"],
            "reqs": [anth(), oai()]})
        self.assertEqual(env["ANTHROPIC_BASE_URL"], "%s/s/%s/anthropic" % (self.public, name))
        self.assertEqual(env["OPENAI_BASE_URL"], "%s/s/%s/openai/v1" % (self.public, name))
        self.assertEqual(env["AMP_URL"], "%s/s/%s/amp" % (self.public, name))
        for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AMP_API_KEY"):
            self.assertRegex(env[var] or "", TOKEN_RE, var)
        self.assertEqual([r["status"] for r in res], [200, 200], res)
        got = self.fake.requests()
        self.assertEqual(len(got), 2, got)
        self.assertEqual(header(got[0], "x-api-key"), [self.real["ANTHROPIC_API_KEY"]])
        self.assertEqual(header(got[1], "authorization"),
                         ["Bearer " + self.real["OPENAI_API_KEY"]])
        self.upstream_has_no(env["ANTHROPIC_API_KEY"], "the scoped token")
        self.upstream_has_no("jbt_", "a scoped token")
        # The sprite's network policy lets it reach the public URL's host.
        rules = self.sprites.sprites[name]["policy"]["rules"]
        self.assertIn({"action": "allow", "domain": "127.0.0.1"}, rules)
        self.assertEqual(rules[-1], {"action": "deny", "domain": "*"})
        # The proxy's answer never holds the key; the run's token is revoked at its end.
        tok = env["ANTHROPIC_API_KEY"]
        again = self.results("chat:s1", [anth(token=tok)])
        self.assertEqual(again[0]["status"], 401, again)

    def test_8302_a_token_is_refused_for_another_sprite_and_when_forged(self):
        other = sandbox_name("chat:other")
        self.assertEqual(self.sbx("chat:other", "true").rc, 0)
        forged = "jbt_" + "0" * 64
        spec = {"print_env": ["ANTHROPIC_BASE_URL"],
                "reqs": [anth(token=forged), anth(token="none"),
                         anth(path="/../../s/%s/anthropic/v1/messages" % other)]}
        res, env, x = self.boxed("chat:mine", spec)
        self.assertEqual([r["status"] for r in res[:2]], [401, 401], res)
        self.assertIn(res[2]["status"], (401, 403, 404), res)
        # Its own token, presented with another sprite's path: refused.
        mine = env["ANTHROPIC_BASE_URL"]
        cross = mine.replace(sandbox_name("chat:mine"), other)
        script = ("import os,json,urllib.request as u\n"
                  "r=u.Request(%r+'/v1/messages',data=b'{}',method='POST',headers={"
                  "'x-api-key':os.environ['ANTHROPIC_API_KEY'],'content-type':'application/json'})\n"
                  "try:\n print(u.urlopen(r,timeout=10).status)\n"
                  "except Exception as e:\n print(getattr(e,'code',e))\n" % cross)
        y = self.sbx("chat:mine", "/usr/bin/python3", "-c", script)
        self.assertEqual(y.out.strip(), "401", y)
        self.assertEqual(self.fake.requests(), [], "a refused request reached the upstream")

    def test_8303_a_revoked_token_stops_the_run_promptly(self):
        name = sandbox_name("chat:rv")
        self.assertEqual(self.sbx("chat:rv", "true").rc, 0)
        go = self.tmp / "sprites" / name / "go"
        p, q = self.start_bg("chat:rv", {"print_env": ["ANTHROPIC_API_KEY"],
                                         "reqs": [anth(), anth(wait_file=str(go))],
                                         "sleep_end": 30})
        self.next_json(p, q, what="the token")
        first = self.next_json(p, q, what="the first request")
        self.assertEqual(first["status"], 200, first)
        u = self.run_jb(["usage"])
        self.assertIn("chat:rv", u.out, u)
        rv = self.run_jb(["tokens", "revoke", "chat:rv"])
        self.assertEqual(rv.rc, 0, rv)
        go.write_text("")
        t0 = time.monotonic()
        p.wait(15)
        self.assertLess(time.monotonic() - t0, 10, "the run went on after its token was refused")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(self.fake.requests()), 1, "the revoked request went upstream")

    def test_8305_a_turn_runs_through_the_public_url(self):
        r = self.chat_ok(["getenv ANTHROPIC_BASE_URL", "getenv ANTHROPIC_API_KEY"],
                         thread="t3")
        self.assertIn("%s/s/%s/anthropic" % (self.public, sandbox_name("chat:t3")), r.out, r)
        self.assertRegex(r.out, r"ANTHROPIC_API_KEY=jbt_[0-9a-f]{64}\b", r)
        self.assertIn("sprites reach janebot's LLM proxy", r.err, r)

    def test_8304_without_a_public_url_the_real_key_goes_in_and_janebot_says_so(self):
        env = {"JANEBOT_PUBLIC_URL": None, "JANEBOT_PROXY_LISTEN": None}
        d = self.run_jb(["doctor"], env=env)
        self.assertIn("passes the agent's real API key into each sprite", d.out + d.err, d)
        bad = self.run_jb(["config", "check"], env={"JANEBOT_PUBLIC_URL": "http://jane.example.com"})
        self.assertNotEqual(bad.rc, 0, bad)
        self.assertIn("JANEBOT_PUBLIC_URL", bad.err)
        self.assertIn("https", bad.err)

"""0450: the deployment files in deploy/ stay true to the code: the systemd unit passes
`systemd-analyze verify` (with the built binary as ExecStart) and keeps the settings a
graceful stop and bubblewrap need; the Dockerfile's runtime stage installs the Debian
package of every shared library janebot links and of the tools it runs; the Slack app
manifest asks for exactly the scopes of the Web API methods janebot calls and subscribes
to the events it handles."""
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from jbtest import BIN, REPO

DEPLOY = REPO / "deploy"
SRC = REPO / "src"

# Bot scopes each Web API method needs (Slack's method reference). A method janebot calls
# that is missing here fails the test: add its scope here and to the manifest.
METHOD_SCOPES = {
    "auth.test": set(),
    "apps.connections.open": set(),  # the app-level token's connections:write
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "reactions.add": {"reactions:write"},
    "reactions.remove": {"reactions:write"},
    # a thread's history in every kind of conversation janebot answers in
    "conversations.replies": {"channels:history", "groups:history", "im:history",
                              "mpim:history"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
}
# Event types janebot interprets -> the bot events (and their scopes) that deliver them.
EVENT_SUBSCRIPTIONS = {
    "app_mention": {"app_mention": "app_mentions:read"},
    "message": {"message.channels": "channels:history", "message.groups": "groups:history",
                "message.im": "im:history", "message.mpim": "mpim:history"},
    "reaction_added": {"reaction_added": "reactions:read"},
}
METHOD_RE = re.compile(r'"((?:auth|apps|chat|reactions|conversations|files|users|views|pins|'
                       r'bookmarks|team|usergroups|emoji|dnd|search|reminders|bots)'
                       r'\.[A-Za-z]+)"')


def c_sources(*dirs):
    for d in dirs:
        for p in sorted((SRC / d).glob("*.c")):
            yield p, p.read_text(errors="replace")


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


class SystemdUnit(unittest.TestCase):
    def setUp(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (Debian: systemd)")
        self.tmp = Path(tempfile.mkdtemp(prefix="jb-unit-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.unit = (DEPLOY / "janebot.service").read_text()

    def verify(self, text):
        """systemd-analyze verify on text, with ExecStart on the built binary."""
        self.assertRegex(text, r"(?m)^ExecStart=/usr/local/bin/janebot serve$")
        p = self.tmp / "janebot.service"
        p.write_text(re.sub(r"(?m)^ExecStart=\S+", "ExecStart=%s" % BIN, text))
        r = subprocess.run(["systemd-analyze", "verify", str(p)], capture_output=True,
                           text=True, timeout=60)
        mine = [ln for ln in (r.stdout + r.stderr).splitlines() if "janebot.service" in ln]
        return r.returncode, mine

    def test_0451_the_unit_verifies_and_keeps_what_a_graceful_stop_and_bwrap_need(self):
        rc, problems = self.verify(self.unit)
        self.assertEqual((rc, problems), (0, []), "systemd-analyze verify complains")
        settings = {}
        for line in self.unit.splitlines():
            m = re.match(r"^([A-Za-z]+)=(.*)$", line)
            if m:
                settings.setdefault(m.group(1), []).append(m.group(2))
        one = {k: v[-1] for k, v in settings.items()}
        self.assertEqual(one.get("ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(one.get("KillSignal"), "SIGTERM")
        # control-group would SIGTERM the agents too and fail every running turn
        self.assertEqual(one.get("KillMode"), "mixed")
        grace = int(re.match(r"^(\d+)s?$", one.get("TimeoutStopSec", "")).group(1))
        self.assertGreater(grace, 60, "longer than JANEBOT_STOP_GRACE's default")
        self.assertEqual(one.get("Restart"), "on-failure")
        self.assertEqual(one.get("StateDirectory"), "janebot")
        self.assertIn("User", one)
        self.assertNotIn(one["User"], ("root", "0"))
        self.assertIn("EnvironmentFile", one)
        ns = set(one.get("RestrictNamespaces", "user mnt pid net ipc uts cgroup").split())
        self.assertLessEqual({"user", "mnt", "pid", "net", "ipc", "uts"}, ns,
                             "bwrap creates these namespaces")
        for key in ("SystemCallFilter", "MemoryDenyWriteExecute", "ProtectKernelTunables",
                    "ProtectKernelLogs", "ProtectProc", "ProcSubset", "PrivateUsers",
                    "ProtectHostname", "ProtectControlGroups"):
            self.assertNotIn(key, one, "%s breaks the sandboxes (see the unit's comments)"
                             % key)

    def test_0452_verify_catches_a_broken_unit(self):
        """The check above can fail: a bad value is reported."""
        rc, problems = self.verify(self.unit.replace("KillMode=mixed", "KillMode=sometimes"))
        self.assertTrue(rc != 0 or problems, "a bad KillMode must be reported")


class Dockerfile(unittest.TestCase):
    @staticmethod
    def needed(binary):
        out = subprocess.run(["objdump", "-p", str(binary)], capture_output=True, text=True,
                             check=True).stdout
        return re.findall(r"NEEDED\s+(\S+)", out)

    def test_0453_the_runtime_stage_installs_every_library_and_tool_janebot_uses(self):
        for tool in ("dpkg", "dpkg-query", "ldd", "objdump"):
            if not shutil.which(tool):
                self.skipTest("%s is not installed (not a Debian system?)" % tool)
        text = (DEPLOY / "Dockerfile").read_text()
        stages = re.split(r"(?m)^FROM\s", text)
        self.assertEqual(len(stages), 3, "two stages: build and runtime")
        self.assertRegex(stages[1], r"^debian:12\b")
        self.assertRegex(stages[2], r"^debian:12")
        runtime = stages[2]
        installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+",
                                   " ".join(re.findall(r"apt-get install([^&]*)", runtime))))
        self.assertNotIn("gcc", installed, "no compiler in the runtime image")
        self.assertFalse([p for p in installed if p.endswith("-dev")], "no -dev packages")
        self.assertRegex(runtime, r"(?m)^USER\s+(?!root\b|0\b)\S+", "a non-root user")
        binary = BIN
        sonames = self.needed(binary)
        if [s for s in sonames if re.match(r"lib(a|ub|t)san\.", s)]:
            # The image has the plain build (a sanitizer build links more): check that one.
            binary = REPO / "build" / "janebot"
            if not binary.exists():
                self.skipTest("%s is a sanitizer build and %s is not built" % (BIN, binary))
            sonames = self.needed(binary)
        self.assertIn("libsqlite3.so.0", sonames)
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=True).stdout, re.M))
        files = [paths[s] for s in sonames]
        files += [shutil.which("bwrap") or "/usr/bin/bwrap",
                  shutil.which("mkfs.ext4", path="/usr/sbin:/sbin") or "/sbin/mkfs.ext4",
                  "/usr/sbin/update-ca-certificates"]  # the CA bundle's package
        # dpkg knows a file under one name: /sbin or /usr/sbin (merged /usr), or a link's.
        variants = {}
        for f in files:
            real = str(Path(f).resolve())
            vs = []
            for v in (f, real):
                vs += [v, re.sub(r"^/usr/", "/", v), re.sub(r"^/(s?bin|lib)/", r"/usr/\1/", v)]
            variants[f] = list(dict.fromkeys(vs))
        every = sorted({v for vs in variants.values() for v in vs})
        out = subprocess.run(["dpkg", "-S"] + every, capture_output=True, text=True).stdout
        owner = {}
        for line in out.splitlines():
            pkgs, _, path = line.partition(": ")
            owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
        pkgs = {}
        for f, vs in variants.items():
            pkg = next((owner[v] for v in vs if v in owner), None)
            self.assertIsNotNone(pkg, "no package owns %s" % f)
            pkgs[f] = pkg
        q = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Priority} ${Essential}\n"]
                           + sorted(set(pkgs.values())), capture_output=True, text=True).stdout
        base = {"libc6"} | {ln.split()[0] for ln in q.splitlines()  # the C library, and
                            if ln.split()[1:2] == ["required"] or "yes" in ln.split()[1:]}
        missing = ["%s (%s)" % (pkg, f) for f, pkg in sorted(pkgs.items())
                   if pkg not in base and pkg not in installed]  # base: every image has it
        self.assertEqual(missing, [], "the Dockerfile's runtime stage must install these")


def load_manifest(text):
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml:
        return yaml.safe_load(text)
    # Without PyYAML: the few keys checked below, read line by line.
    out = {"scopes": [], "events": [], "commands": [], "flags": {}}
    current = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        if re.match(r"^\s+bot:$", line):
            current = "scopes"
        elif re.match(r"^\s+bot_events:$", line):
            current = "events"
        elif re.match(r"^\s+- command:", line):
            out["commands"].append(line.split(":", 1)[1].strip())
        elif re.match(r"^\s+- \S+$", line) and current:
            out[current].append(line.split("- ", 1)[1])
        else:
            current = None
            m = re.match(r"^\s+(socket_mode_enabled|is_enabled):\s*(\w+)$", line)
            if m:
                out["flags"][m.group(1)] = m.group(2) == "true"
    return {"oauth_config": {"scopes": {"bot": out["scopes"]}},
            "settings": {"event_subscriptions": {"bot_events": out["events"]},
                         "socket_mode_enabled": out["flags"].get("socket_mode_enabled"),
                         "interactivity": {"is_enabled": out["flags"].get("is_enabled")}},
            "features": {"slash_commands": [{"command": c} for c in out["commands"]]}}


class SlackManifest(unittest.TestCase):
    def test_0454_the_manifest_has_exactly_the_scopes_and_events_janebot_uses(self):
        m = load_manifest((DEPLOY / "slack-manifest.yaml").read_text())
        scopes = set(m["oauth_config"]["scopes"]["bot"])
        events = set(m["settings"]["event_subscriptions"]["bot_events"])
        self.assertIs(m["settings"].get("socket_mode_enabled"), True, "Socket Mode")
        code = {p.name: strip_comments(t) for p, t in c_sources("slack", "frontend")}
        methods = set()
        for text in code.values():
            methods |= set(METHOD_RE.findall(text))
        self.assertIn("chat.postMessage", methods, "methods are found in the code")
        unknown = sorted(methods - set(METHOD_SCOPES))
        self.assertEqual(unknown, [], "janebot calls methods this test does not know: add "
                         "their scopes to METHOD_SCOPES and the manifest")
        need = set()
        for meth in methods:
            need |= METHOD_SCOPES[meth]
        if any("url_private" in t or "files.slack.com" in t for t in code.values()):
            need.add("files:read")  # downloads of files users share
        types = set(re.findall(r'strcmp\(type, "([a-z_]+)"\)', code["events.c"]))
        self.assertIn("app_mention", types, "event types are found in the code")
        want_events = set()
        for t in types:
            self.assertIn(t, EVENT_SUBSCRIPTIONS, "an event type this test does not know")
            for ev, scope in EVENT_SUBSCRIPTIONS[t].items():
                want_events.add(ev)
                need.add(scope)
        serve = code["serve.c"]
        slash = [c["command"] for c in m["features"].get("slash_commands") or []]
        if "SLACK_ENV_SLASH_COMMANDS" in serve:
            need.add("commands")
            self.assertIn("/janebot", slash, "the slash command janebot answers")
        else:
            self.assertEqual(slash, [], "no slash command is handled")
        interactive = "SLACK_ENV_INTERACTIVE" in serve
        self.assertEqual(bool((m["settings"].get("interactivity") or {}).get("is_enabled")),
                         interactive, "interactivity exactly when janebot handles it")
        self.assertEqual(sorted(scopes - need), [], "scopes janebot does not use")
        self.assertEqual(sorted(need - scopes), [], "scopes janebot needs")
        self.assertEqual(events, want_events, "the events janebot handles, no more")

"""0400: JANEBOT_LOG_FORMAT: `janebot serve` with json writes one JSON object per line
(time, level, event, msg; inside a turn thread, user and turn; turn.end with
duration_ms); secrets (the Slack tokens, a provider key, token-shaped text) never reach
the log in either format, whichever field carries them; a bad value is refused."""
import json
import re
import signal
import subprocess

from test_5000_serve_startup import APP_TOKEN, BOT_TOKEN, HUMAN, ServeCase

AMP_KEY = "zq0400AmpKeyNotTokenShaped"         # registered only (no known token shape)
SHAPED = "xoxp-0400-1111-unregisteredUserTok"  # registered nowhere, shaped like a token
SECRETS = (BOT_TOKEN, APP_TOKEN, AMP_KEY, SHAPED[5:])


class Logs(ServeCase):
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true",
                 "AMP_API_KEY": AMP_KEY, "JANEBOT_LOG_LEVEL": "debug"}

    def run_and_stop(self, env, users):
        """Serve with env; a DM from each user; stop; return (serve's output, the DMs)."""
        self.start_serve(env=env)
        dms = [self.dm("zq-0400 from %s" % u[:8], user=u) for u in users]
        return dms

    def stop_and_read(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.assertEqual(self.proc.wait(20), 0, self.summary())
        except subprocess.TimeoutExpired:
            self.fail("serve did not stop%s" % self.summary())
        return self.serve_log.read_bytes().decode(errors="replace")

    def assertNoSecrets(self, out):
        for s in SECRETS:
            self.assertNotIn(s, out, "a secret reached the log:\n%s" % out)

    def test_0401_json_lines_carry_the_turn_and_hide_secrets(self):
        leaky = "U0400" + AMP_KEY + " " + SHAPED  # a user id that carries both
        dms = self.run_and_stop({"JANEBOT_LOG_FORMAT": "json"}, [HUMAN, leaky])
        for d in dms:
            self.wait_answer(d, "zq-0400 from")
        out = self.stop_and_read()
        self.assertNoSecrets(out)
        objs = []
        for line in out.splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                self.fail("not a JSON line: %r\n%s" % (line, out))
            self.assertIsInstance(o, dict, line)
            for k in ("time", "level", "event", "msg"):
                self.assertIsInstance(o.get(k), str, "%s missing in %s" % (k, line))
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line)
            self.assertIn(o["level"], ("debug", "info", "warn", "error"), line)
            self.assertRegex(o["event"], r"^[a-z_-]+(\.[a-z_-]+)*$", line)
            objs.append(o)
        key = "%s:%s" % (dms[0]["channel"], dms[0]["thread_ts"])
        mine = [o for o in objs if o.get("thread") == key]
        events = [o["event"] for o in mine]
        self.assertIn("turn.start", events, out)
        self.assertIn("turn.end", events, out)
        for o in mine:
            self.assertEqual(o.get("user"), HUMAN, o)
        end = next(o for o in mine if o["event"] == "turn.end")
        self.assertIsInstance(end.get("turn"), int, end)
        self.assertGreater(end["turn"], 0, end)
        self.assertIsInstance(end.get("duration_ms"), int, end)
        self.assertGreaterEqual(end["duration_ms"], 0, end)
        self.assertEqual(end["turn"], next(o for o in mine if o["event"] == "turn.start")["turn"])
        theirs = [o for o in objs if o["event"] == "turn.end" and o.get("thread") != key]
        self.assertEqual(len(theirs), 1, out)
        self.assertEqual(theirs[0]["user"], "U0400[redacted] [redacted]", theirs[0])
        for ev in ("slack.connected", "serve.stopping", "serve.stopped"):
            self.assertIn(ev, [o["event"] for o in objs], out)

    def test_0402_text_lines_stay_text_and_hide_secrets(self):
        leaky = "U0400" + AMP_KEY + " " + SHAPED
        d, refused = self.run_and_stop({"ALLOWED_USER_IDS": HUMAN}, [HUMAN, leaky])
        self.wait_answer(d, "zq-0400 from")
        self.wait_answer(refused, "not available to you")
        out = self.stop_and_read()
        self.assertNoSecrets(out)
        self.assertIn("not on the allowlist", out, "the refusal names the user (redacted)")
        for line in out.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d janebot "
                             r"(debug|info|warn|error): ", line)

    def test_0403_a_bad_format_is_refused_naming_the_variable(self):
        r = self.run_jb(["serve"], env={"JANEBOT_LOG_FORMAT": "xml"}, timeout=10)
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn('JANEBOT_LOG_FORMAT="xml" is not valid: expected text or json', r.both)
        self.assertFalse(re.search(r"\{\"time\"", r.both), str(r))

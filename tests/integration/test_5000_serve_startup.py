"""5000: `janebot serve` against the fake Slack (tests/fakes/slack.py): the harness for
every test_5xxx file (ServeCase), and startup: tokens, auth.test, the socket.

Each test starts its own fake Slack (HTTP Web API + Socket Mode WebSocket on 127.0.0.1)
and `janebot serve` with SLACK_BOT_TOKEN / SLACK_APP_TOKEN / SLACK_API_URL pointing at it,
drives it by injecting Slack events, and reads back what janebot sent (posts, updates,
reactions, uploads, acks). Every wait has a timeout (≤ 20 s); both processes are killed at
the end of the test.
"""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

from jbtest import (BIN, FAKES, SANITIZER_RE, JanebotCase, default_signals, needs_bwrap,
                    with_descendants)

sys.path.insert(0, str(FAKES))
from slack import BOT_USER, CHANNEL, DM, HUMAN, FakeSlack, FakeSlackError  # noqa: E402

BOT_TOKEN = "xoxb-test-1111-2222-b0tT0kenS3cretValue"
APP_TOKEN = "xapp-test-1-A0JANEBOT1-3333-appT0kenS3cretValue"
WAIT = 15.0          # default wait for something janebot should do
MAX_WAIT = 20.0      # no wait is longer than this
ACK_DEADLINE = 3.0   # Slack's 3-second rule
ELAPSED_RE = re.compile(r"\b\d+(\.\d+)?\s*(s|sec|secs|seconds?|m|min|mins|minutes?)\b|"
                        r"\b\d+:\d\d\b|elapsed", re.I)


def short(s, n=300):
    s = s or ""
    return s if len(s) <= n else s[:n] + "…[%d chars]" % len(s)


class ServeCase(JanebotCase):
    """A fake Slack and (on demand) `janebot serve`, per test."""

    serve_env = {}     # class-level extra environment for serve
    fake_args = ()     # extra command line arguments for the fake

    def setUp(self):
        super().setUp()
        try:
            self.slack = FakeSlack.start(self.tmp / "fake", args=self.fake_args)
        except FakeSlackError as e:
            self.fail("fake Slack did not start: %s" % e)
        self.addCleanup(self._stop_fake)
        self.env.update({
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": self.slack.api_url,
            "DEBOUNCE_MS": "0",
        })
        self.env.update(self.serve_env)
        self.proc = None
        self.serve_runs = 0
        self.serve_log = None
        self.addCleanup(self.stop_serve)  # runs before the fake stops (LIFO)

    def _stop_fake(self):
        self.slack.stop()
        log = self.slack.log()
        if "Traceback" in log:
            self.fail("the fake Slack itself crashed (a bug in tests/fakes/slack.py):\n" + log)

    # ---- janebot serve --------------------------------------------------------------

    def start_serve(self, env=None, wait_connected=True):
        """Start `janebot serve` (env entries override; None unsets). With wait_connected,
        wait until it holds a socket that got hello; fail clearly if it exits first."""
        e = self.merged_env(env)
        self.serve_runs += 1
        self.serve_log = self.tmp / ("serve-%d.log" % self.serve_runs)
        before = len(self.slack.state()["connections"])
        with open(self.serve_log, "wb") as log:
            self.proc = subprocess.Popen([str(BIN), "serve"], cwd=str(self.cwd), env=e,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=default_signals)
        if wait_connected:
            self.wait_for(lambda s: len([c for c in s["connections"][before:]
                                         if c["hello_at"]]) > 0,
                          "janebot serve to open a Socket Mode connection")
        return self.proc

    def serve_output(self):
        out = []
        for i in range(1, self.serve_runs + 1):
            p = self.tmp / ("serve-%d.log" % i)
            try:
                out.append("--- janebot serve run %d ---\n%s" % (
                    i, p.read_bytes().decode(errors="replace")))
            except OSError:
                pass
        text = "\n".join(out)
        return text if len(text) < 8000 else text[:2000] + "\n…\n" + text[-6000:]

    def kill_serve(self, sig=signal.SIGKILL, tree=False):
        """Send sig to serve (tree: and to every process below it); wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = with_descendants([self.proc.pid]) if tree else [self.proc.pid]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop_serve(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # A graceful stop waits for running turns; a second SIGTERM ends the wait.
            for wait in (1, 3):
                try:
                    self.proc.send_signal(signal.SIGTERM)
                    self.proc.wait(wait)
                    break
                except (subprocess.TimeoutExpired, OSError):
                    pass
        if self.proc.poll() is None:
            self.kill_serve(signal.SIGKILL, tree=True)
        for pid in with_descendants([self.proc.pid])[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        out = self.serve_output()
        self.proc = None
        if SANITIZER_RE.search(out):
            self.fail("sanitizer report in janebot serve output:\n" + out)

    # ---- waiting ----------------------------------------------------------------------

    def summary(self, s=None):
        try:
            s = s or self.slack.state()
        except FakeSlackError as e:
            return "\n(fake Slack state unavailable: %s)\n%s" % (e, self.serve_output())
        lines = ["", "--- fake Slack ---"]
        calls = {}
        for c in s["calls"]:
            calls[c["method"]] = calls.get(c["method"], 0) + 1
        lines.append("web api calls: %s" % calls)
        lines.append("connections: %s" % [(c["id"], "open" if c["open"] else "closed",
                                            c["close_reason"]) for c in s["connections"]])
        lines.append("envelopes: %s" % [(e["event_id"], e["retry_attempt"],
                                          None if e["latency"] is None
                                          else round(e["latency"], 2)) for e in s["envelopes"]])
        for p in s["posts"]:
            lines.append("post %s thread=%s ts=%s: %s" % (p["channel"], p["thread_ts"], p["ts"],
                                                         short(p["text"])))
        for u in s["updates"]:
            lines.append("update %s ts=%s: %s" % (u["channel"], u["ts"], short(u["text"])))
        for d in s["deletes"]:
            lines.append("delete %s ts=%s" % (d["channel"], d["ts"]))
        for e in s["ephemerals"]:
            lines.append("ephemeral %s to %s: %s" % (e["channel"], e["user"], short(e["text"])))
        for r in s["reaction_log"]:
            lines.append("reaction %s %s on %s: %s" % (r["op"], r["name"], r["ts"], r["result"]))
        for u in s["uploads"]:
            lines.append("upload %s (%d bytes) to %s thread %s" % (u["name"], u["size"],
                                                                  u["channel"], u["thread_ts"]))
        if s["early_retries"]:
            lines.append("early retries (ignored Retry-After): %s" % s["early_retries"])
        lines.append(self.serve_output())
        return "\n".join(lines)

    def wait_for(self, pred, what, timeout=WAIT, allow_exit=False):
        """Poll the fake's state until pred(state) is truthy; return that value. Fails
        when `janebot serve` exits first (unless allow_exit) or at the timeout."""
        timeout = min(timeout, MAX_WAIT)
        end = time.monotonic() + timeout
        while True:
            s = self.slack.state()
            r = pred(s)
            if r:
                return r
            if not allow_exit and self.proc is not None and self.proc.poll() is not None:
                self.fail("janebot serve exited (rc %s) while waiting for %s%s"
                          % (self.proc.returncode, what, self.summary(s)))
            if time.monotonic() > end:
                self.fail("timed out after %.0fs waiting for %s%s" % (timeout, what,
                                                                      self.summary(s)))
            time.sleep(0.1)

    def wait_post(self, pred, what="a matching post", timeout=WAIT):
        """Wait for a recorded chat.postMessage whose record p satisfies pred(p)
        (p: channel, ts, thread_ts, text, blocks, t); return p."""
        def find(s):
            for p in s["posts"]:
                if pred(p):
                    return p
            return None
        return self.wait_for(find, what, timeout)

    def wait_answer(self, info, needle, timeout=WAIT):
        """Wait until a bot message in info's thread (posted, or finalised by chat.update)
        contains needle; return its text."""
        def find(s):
            for t in self.thread_texts(s, info):
                if needle in t:
                    return t
            return None
        return self.wait_for(find, "an answer containing %r in thread %s:%s"
                             % (needle, info["channel"], info["thread_ts"]), timeout)

    def wait_reaction(self, info, name, timeout=WAIT, ts=None):
        ts = ts or info["ts"]
        return self.wait_for(
            lambda s: next((r for r in s["reaction_log"] if r["op"] == "add"
                            and r["name"] == name and r["ts"] == ts
                            and r["channel"] == info["channel"]
                            and r["result"] in ("ok", "already_reacted")), None),
            "reaction %s on %s" % (name, ts), timeout)

    def wait_all_acked(self, timeout=8.0):
        def done(s):
            sent = [e for e in s["envelopes"] if e["sent_at"]]
            return s if sent and all(e["acked_at"] for e in sent) and not s["pending"] \
                else None
        return self.wait_for(done, "every envelope to be acked", timeout)

    def quiet(self, secs):
        """Let janebot run for secs more (to catch duplicates); fail if it exits."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                self.fail("janebot serve exited (rc %s)%s" % (self.proc.returncode,
                                                              self.summary()))
            time.sleep(0.1)

    # ---- reading the fake's records -------------------------------------------------

    @staticmethod
    def in_thread(x, info):
        return x.get("channel") == info["channel"] and x.get("thread_ts") == info["thread_ts"]

    def bot_messages(self, s, info):
        """Bot messages now in info's thread (after updates/deletes), oldest first,
        file shares excluded."""
        msgs = s["messages"].get(info["channel"], [])
        return [m for m in msgs if m.get("user") == BOT_USER and m.get("subtype") is None
                and m.get("thread_ts") == info["thread_ts"] and m["ts"] != info["thread_ts"]]

    def thread_texts(self, s, info):
        """Every text janebot showed in info's thread: current bot messages, posts,
        updates and ephemerals."""
        out = [m.get("text") or "" for m in self.bot_messages(s, info)]
        out += [p["text"] or "" for p in s["posts"] if self.in_thread(p, info)]
        out += [u["text"] or "" for u in s["updates"] if self.in_thread(u, info)]
        out += [e["text"] or "" for e in s["ephemerals"]
                if e["channel"] == info["channel"]
                and e.get("thread_ts") in (info["thread_ts"], None)]
        return out

    def count_final(self, s, info, needle):
        """How many bot messages now in the thread contain needle."""
        return sum(1 for m in self.bot_messages(s, info) if needle in (m.get("text") or ""))

    def all_bot_text(self, s):
        """Everything janebot wrote anywhere (posts, updates, ephemerals, upload notes)."""
        parts = [p["text"] or "" for p in s["posts"]] + [u["text"] or "" for u in s["updates"]]
        parts += [e["text"] or "" for e in s["ephemerals"]]
        parts += [u.get("initial_comment") or "" for u in s["uploads"]]
        return "\n".join(parts)

    def agent_calls(self):
        """Prompts the fake agent received, from every sandbox's calls.jsonl."""
        import json
        out = []
        for p in self.state.glob("**/.fake-agent/calls.jsonl"):
            for line in p.read_text(errors="replace").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    # ---- injecting --------------------------------------------------------------------

    def dm(self, text, thread_ts=None, user=HUMAN, channel=DM, **kw):
        return self.slack.inject("dm", text=text, thread_ts=thread_ts, user=user,
                                 channel=channel, **kw)

    def mention(self, text, thread_ts=None, user=HUMAN, channel=CHANNEL, **kw):
        return self.slack.inject("mention", text=text, thread_ts=thread_ts, user=user,
                                 channel=channel, **kw)


class Startup(ServeCase):
    def _run_bad(self, env, var, secret=None):
        r = self.run_jb(["serve"], env=env, timeout=10)
        self.assertNotEqual(r.rc, 0, "serve must refuse to start%s" % r)
        self.assertLess(r.secs, 5.0, "serve must exit at once%s" % r)
        self.assertIn(var, r.both, "the message must name %s%s" % (var, r))
        if secret:
            self.assertNotIn(secret, r.both, "the token must never be printed%s" % r)
        s = self.slack.state()
        self.assertFalse([c for c in s["connections"]], "no socket may be opened%s" % r)
        return r

    def test_5001_serve_without_a_bot_token_exits_at_once_naming_SLACK_BOT_TOKEN(self):
        self._run_bad({"SLACK_BOT_TOKEN": None}, "SLACK_BOT_TOKEN")

    def test_5002_serve_without_an_app_token_exits_at_once_naming_SLACK_APP_TOKEN(self):
        self._run_bad({"SLACK_APP_TOKEN": None}, "SLACK_APP_TOKEN")

    def test_5003_a_bot_token_that_is_not_xoxb_is_refused_without_being_printed(self):
        self._run_bad({"SLACK_BOT_TOKEN": "xoxp-9999-userT0kenS3cretValue"},
                      "SLACK_BOT_TOKEN", "userT0kenS3cretValue")

    def test_5004_an_app_token_that_is_not_xapp_is_refused_without_being_printed(self):
        # the bot token given as app token: a classic mix-up
        self._run_bad({"SLACK_APP_TOKEN": BOT_TOKEN}, "SLACK_APP_TOKEN", "b0tT0kenS3cretValue")

    def test_5005_serve_calls_auth_test_then_opens_the_socket_with_the_app_token(self):
        self.start_serve()
        s = self.slack.state()
        methods = [c["method"] for c in s["calls"]]
        self.assertIn("auth.test", methods, self.summary(s))
        self.assertIn("apps.connections.open", methods, self.summary(s))
        self.assertLess(methods.index("auth.test"), methods.index("apps.connections.open"),
                        "auth.test comes first%s" % self.summary(s))
        for c in s["calls"]:
            want = "xapp" if c["method"] == "apps.connections.open" else "xoxb"
            self.assertEqual(c["token_kind"], want,
                             "%s must use the %s token in the Authorization header%s"
                             % (c["method"], want, self.summary(s)))
            self.assertFalse(c["token_in_body"], "%s: token sent in the body" % c["method"])
            self.assertEqual(c.get("ok"), True, "call failed: %r%s" % (c, self.summary(s)))
        self.assertEqual(len([c for c in s["connections"] if c["open"]]), 1, self.summary(s))
        self.quiet(1.0)
        out = self.serve_output()
        for secret in ("b0tT0kenS3cretValue", "appT0kenS3cretValue", "ticket="):
            self.assertNotIn(secret, out, "serve's output must not show %r" % secret)

    def test_5006_sigterm_stops_serve_promptly(self):
        p = self.start_serve()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(8)
        except subprocess.TimeoutExpired:
            self.fail("serve did not stop within 8 s of SIGTERM%s" % self.summary())
        self.assertIn(rc, (0, -signal.SIGTERM, 128 + signal.SIGTERM),
                      "exit status after SIGTERM%s" % self.summary())


if __name__ == "__main__":
    unittest.main()

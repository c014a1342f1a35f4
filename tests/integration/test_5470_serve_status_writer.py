"""5470: status messages never hold up a turn. Progress is only recorded by the turn; one
status writer per Slack frontend sends it. With chat.update rate limited (HTTP 429,
Retry-After: 30) or hanging (a stuck Slack), answers still arrive as soon as the agent
ends, deadlines still stop agents on time, and the writer honours Retry-After.

The agent here is a small scripted stream-json CLI (STEPS_AGENT, written to the test's
directory and used as JANEBOT_AGENT_CMD): its prompt "steps TAG N GAP HOLD" makes it report
N tool uses (Bash, command "TAG-step-K") GAP seconds apart, wait HOLD seconds and answer
"TAG done at <epoch seconds>", the wall-clock time it ended."""
import re
import time

from jbtest import needs_bwrap
from test_5000_serve_startup import ServeCase

STEPS_AGENT = r'''#!/usr/bin/python3
import json, secrets, sys, time, uuid
prompt = sys.stdin.read()
cmd = [l.split() for l in prompt.splitlines() if l.strip().startswith("steps ")][-1]
tag, n, gap, hold = cmd[1], int(cmd[2]), float(cmd[3]), float(cmd[4])
sid = "S-" + secrets.token_hex(8)
def emit(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()
emit({"type": "system", "subtype": "init", "session_id": sid, "tools": ["Bash"],
      "model": "fake-model-1", "uuid": str(uuid.uuid4())})
for k in range(1, n + 1):
    tid = "toolu_" + secrets.token_hex(6)
    emit({"type": "assistant", "session_id": sid, "uuid": str(uuid.uuid4()),
          "message": {"id": "msg_" + secrets.token_hex(6), "type": "message",
                      "role": "assistant", "model": "fake-model-1",
                      "content": [{"type": "tool_use", "id": tid, "name": "Bash",
                                   "input": {"command": "%s-step-%d" % (tag, k)}}]}})
    emit({"type": "user", "session_id": sid, "uuid": str(uuid.uuid4()),
          "message": {"role": "user", "content": [{"tool_use_id": tid, "type": "tool_result",
                                                   "content": "ok", "is_error": False}]}})
    time.sleep(gap)
time.sleep(hold)
emit({"type": "result", "subtype": "success", "is_error": False, "session_id": sid,
      "num_turns": 1, "result": "%s done at %.3f" % (tag, time.time())})
'''
DONE_RE = re.compile(r"(\S+) done at (\d+\.\d+)")


def use_steps_agent(case):
    """Write STEPS_AGENT next to the test and make it the agent; returns its path."""
    path = case.tmp / "steps-agent.py"
    path.write_text(STEPS_AGENT)
    path.chmod(0o755)
    case.env["JANEBOT_AGENT_CMD"] = str(path)
    return path


class StatusCase(ServeCase):
    serve_env = {"JANEBOT_MAX_TURNS_PER_USER": "0"}  # the four turns run at once

    def setUp(self):
        super().setUp()
        use_steps_agent(self)

    def wait_long(self, pred, what, timeout):
        """wait_for without its 20 s cap (for the tests that outlast a Retry-After)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                return self.wait_for(pred, what, timeout=max(0.5, min(left, 15.0)))
            except AssertionError:
                if time.monotonic() + 0.5 >= end:
                    raise

    def answers(self, s, msgs):
        """{tag: (answer post, the agent's end time)} for the threads answered so far."""
        out = {}
        for tag, d in msgs.items():
            for p in s["posts"]:
                m = DONE_RE.search(p["text"] or "")
                if self.in_thread(p, d) and m and m.group(1) == tag:
                    out[tag] = (p, float(m.group(2)))
        return out

    def status_post(self, s, d):
        """The thread's status message: the first bot post in it that is no answer."""
        return next((p for p in s["posts"] if self.in_thread(p, d)
                     and not DONE_RE.search(p["text"] or "")), None)

    def assert_answered_in_time(self, s, msgs, slack, within):
        got = self.answers(s, msgs)
        for tag, (p, ended) in sorted(got.items()):
            self.assertLessEqual(p["t"] - ended, within,
                                 "%s: the answer came %.1f s after its agent ended (%s)%s"
                                 % (tag, p["t"] - ended, slack, self.summary(s)))


@needs_bwrap
class StatusWriter(StatusCase):
    def test_5471_answers_arrive_at_once_while_every_chat_update_is_rate_limited(self):
        self.start_serve()
        self.slack.fail("chat.update", count=100000, mode=429, retry_after=30)
        tags = ["zq5471a", "zq5471b", "zq5471c", "zq5471d"]
        msgs = {t: self.dm("steps %s 6 0.5 1" % t) for t in tags}
        s = self.wait_for(lambda s: len(self.answers(s, msgs)) == 4 and s,
                          "the four answers", timeout=20)
        self.assert_answered_in_time(s, msgs, "chat.update answers 429, Retry-After: 30", 2.0)
        updates = [c for c in s["calls"] if c["method"] == "chat.update"]
        early = [e for e in s["early_retries"] if e["method"] == "chat.update"]
        self.assertEqual(early, [], "chat.update was called inside its Retry-After window%s"
                         % self.summary(s))
        self.assertLessEqual(len(updates), 1, "one 429 pauses every status update%s"
                             % self.summary(s))
        # The status messages go once the turns end, though updates are refused, and
        # none comes after its answer.
        got = self.answers(s, msgs)
        for tag, d in msgs.items():
            st = self.status_post(s, d)
            if st is None:
                continue  # the turn ended before its status message was posted
            self.assertLess(st["t"], got[tag][0]["t"], "%s: a status message after the "
                            "answer%s" % (tag, self.summary(s)))
            self.wait_for(lambda s: any(x["ts"] == st["ts"] for x in s["deletes"]),
                          "%s: its status message to be removed" % tag, timeout=5)

    def test_5472_after_the_retry_after_window_each_status_shows_its_newest_tool(self):
        self.start_serve()
        self.slack.fail("chat.update", count=1, mode=429, retry_after=30)
        tags = ["zq5472a", "zq5472b", "zq5472c", "zq5472d"]
        msgs = {t: self.dm("steps %s 6 0.5 36" % t) for t in tags}
        first = self.wait_for(lambda s: next((c for c in s["calls"]
                                              if c["method"] == "chat.update"), None),
                              "the first status update (answered 429)")
        window_end = first["t"] + 30
        s = self.wait_long(lambda s: len(self.answers(s, msgs)) == 4 and s, "the four answers",
                           timeout=60)
        self.assert_answered_in_time(s, msgs, "after a chat.update 429", 2.0)
        early = [e for e in s["early_retries"] if e["method"] == "chat.update"]
        self.assertEqual(early, [], "chat.update was called inside its Retry-After window%s"
                         % self.summary(s))
        got = self.answers(s, msgs)
        for tag, d in msgs.items():
            st = self.status_post(s, d)
            self.assertIsNotNone(st, "%s: no status message%s" % (tag, self.summary(s)))
            answered = got[tag][0]["t"]
            ups = [u for u in s["updates"] if u["ts"] == st["ts"]]
            self.assertTrue(ups, "%s: its status was never updated after the window%s"
                            % (tag, self.summary(s)))
            last = max(ups, key=lambda u: u["t"])
            self.assertIn("%s-step-6" % tag, last["text"],
                          "%s: the status must show the newest tool%s" % (tag, self.summary(s)))
            self.assertLess(last["t"], window_end + 5,
                            "%s: the status was updated late%s" % (tag, self.summary(s)))
            self.assertLess(last["t"], answered, "%s: a status update after the answer%s"
                            % (tag, self.summary(s)))

    def test_5473_a_turn_is_stopped_at_its_deadline_while_chat_update_hangs(self):
        self.start_serve(env={"JANEBOT_TURN_TIMEOUT": "6"})
        self.slack.fail("chat.update", count=1000, mode="hang", seconds=60)
        t0 = time.time()
        d = self.dm("steps zq5473 40 0.25 300")

        def stopped(s):
            return next((p for p in s["posts"] if self.in_thread(p, d)
                         and "JANEBOT_TURN_TIMEOUT" in (p["text"] or "")), None)
        p = self.wait_for(stopped, "the note that the turn was stopped at its deadline",
                          timeout=16)
        self.assertLess(p["t"] - t0, 6 + 4, "the deadline (6 s) was missed: stopped after "
                        "%.1f s while Slack hung%s" % (p["t"] - t0, self.summary()))
        s = self.slack.state()
        self.assertTrue([c for c in s["calls"] if c["method"] == "chat.update"
                         and c.get("held")], "chat.update was never held: the test did not "
                        "test a stuck Slack%s" % self.summary(s))
        # Stopping does not wait for the stuck request either.
        t1 = time.monotonic()
        self.proc.terminate()
        rc = self.proc.wait(10)
        self.assertLess(time.monotonic() - t1, 5.0, "serve took %.1f s to stop while "
                        "chat.update hung%s" % (time.monotonic() - t1, self.summary()))
        self.assertEqual(rc, 0, self.summary())


if __name__ == "__main__":
    import unittest
    unittest.main()

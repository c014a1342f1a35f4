"""5500: `janebot serve`: `abort` ends a turn within a second (the processes of a turn
get SIGTERM with the default disposition, not serve's blocked mask), an agent that
ignores SIGTERM is still killed, and a reply in a thread whose first message still waits
in its lane reaches the agent."""
import os
import time
import unittest

from jbtest import needs_bwrap, procs_matching
from test_5000_serve_startup import CHANNEL, HUMAN, ServeCase

STOPPED = "the turn was stopped"


class AbortCase(ServeCase):
    def abort_hanging(self, prompt, needle):
        """Start a turn whose agent runs until killed (its processes' command lines hold
        needle), send `abort` in its thread; return (the thread, seconds from the abort
        to the turn's "stopped" message in Slack)."""
        d = self.dm(prompt)
        self.wait_for(lambda s: procs_matching(needle), "the agent to start")
        t0 = time.time()
        self.dm("abort", thread_ts=d["ts"])

        def stopped(s):
            return next((p for p in s["posts"] + s["updates"]
                         if self.in_thread(p, d) and STOPPED in (p["text"] or "")), None)
        p = self.wait_for(stopped, "the turn's end after abort", timeout=15)
        left = self.wait_gone(needle, timeout=5.0)
        self.assertEqual(left, [], "every process of the turn must be gone%s" % self.summary())
        return d, p["t"] - t0


@needs_bwrap
class AbortLocal(AbortCase):
    def test_5501_abort_ends_a_sandboxed_turn_within_a_second(self):
        self.start_serve()
        tag = self.tag("hang")
        d, secs = self.abort_hanging("hang %s" % tag, "hang-" + tag)
        self.assertLess(secs, 1.5, "abort must end the turn within 1 s; it took %.2f s (the "
                        "sandbox ignored SIGTERM and waited for SIGKILL)%s"
                        % (secs, self.summary()))
        self.dm("zq-5501 after", thread_ts=d["ts"])
        self.wait_answer(d, "zq-5501 after")


class AbortHost(AbortCase):
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true"}

    def test_5502_abort_ends_an_unsandboxed_agent_within_a_second(self):
        self.start_serve()
        tag = self.tag("hang")
        _, secs = self.abort_hanging("hang %s" % tag, "hang-" + tag)
        self.assertLess(secs, 1.5, "abort must end the turn within 1 s; it took %.2f s (the "
                        "agent inherited a mask blocking SIGTERM)%s" % (secs, self.summary()))

    def test_5503_an_agent_that_ignores_SIGTERM_is_still_killed(self):
        tag = self.tag("nosigterm")
        script = self.tmp / ("agent-%s.sh" % tag)
        script.write_text(
            "#!/bin/sh\n"
            "trap '' TERM\n"
            "echo '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s5503\"}'\n"
            "sleep 86400\n")
        os.chmod(script, 0o755)
        self.start_serve(env={"JANEBOT_AGENT_CMD": str(script)})
        _, secs = self.abort_hanging("zq-5503", tag)
        self.assertLess(secs, 10, "the agent must be killed after a grace%s" % self.summary())


@needs_bwrap
class ReplyWhileQueued(ServeCase):
    def test_5504_a_reply_while_the_first_message_is_debounced_reaches_the_agent(self):
        self.start_serve(env={"DEBOUNCE_MS": "3000"})
        m = self.mention("zq-5504 first")
        # A reply in the thread without a mention (a file shared there), while the first
        # message still waits out its debounce: no session and no running turn yet.
        self.slack.inject("file_share", text="zq-5504 reply", channel=CHANNEL, user=HUMAN,
                          thread_ts=m["ts"],
                          files=[{"name": "zq-5504.txt", "content": "hello\n"}])
        self.wait_answer(m, "zq-5504 first")
        def prompts():
            return "\n".join(c.get("prompt") or "" for c in self.agent_calls())
        end = time.monotonic() + 15
        while "zq-5504 reply" not in prompts() and time.monotonic() < end:
            self.quiet(0.2)
        self.assertIn("zq-5504 reply", prompts(),
                      "the reply must reach the agent (in the same turn or the next)%s"
                      % self.summary())


if __name__ == "__main__":
    unittest.main()

"""5900: `kill -9` of `janebot serve` at random moments under load, restarted each time
(a few rounds of tests/soak/crash.py, which `make crash` runs for 50): no acked event
lost, none answered twice, the database intact, no sandbox process, mount or cgroup of a
dead serve left behind; and an answer Slack took just before the kill is not posted again
after the restart."""
import os
import signal
import subprocess
import sys
import unittest

from jbtest import BIN, REPO, needs_bwrap
from test_5000_serve_startup import ServeCase

CRASH = REPO / "tests" / "soak" / "crash.py"
ROUNDS = 5


@needs_bwrap
class Crash(unittest.TestCase):
    def test_5901_kill_9_under_load_loses_nothing_and_answers_once(self):
        env = dict(os.environ, ROUNDS=str(ROUNDS), CRASH_RATE="15", CRASH_THREADS="20",
                   CRASH_DRAIN_SECONDS="90")
        r = subprocess.run([sys.executable, str(CRASH), str(BIN)], env=env,
                           capture_output=True, text=True, timeout=240)
        out = r.stdout + "\n--- stderr ---\n" + r.stderr[-4000:]
        self.assertEqual(r.returncode, 0, "the crash run failed:\n" + out)
        self.assertIn("lost (acked, not answered)", r.stdout)
        self.assertRegex(r.stdout, r"answered exactly once\s+[1-9]\d*",
                         "the run answered nothing at all:\n" + out)


if __name__ == "__main__":
    unittest.main()


@needs_bwrap
class AnsweredBeforeTheCrash(ServeCase):
    def test_5902_an_answer_posted_just_before_a_kill_is_not_posted_again(self):
        self.start_serve()
        d = self.dm("sleep 1.5")
        self.wait_post(lambda p: self.in_thread(p, d) and "Working on it" in p["text"],
                       "the status message of the turn")
        # Slack takes the answer but holds its reply: serve dies before it hears back.
        self.slack.fail("chat.postMessage", count=1, mode="hang", seconds=3)
        self.wait_for(lambda s: any(c["method"] == "chat.postMessage" and c.get("held")
                                    for c in s["calls"]), "the answer's post to be held",
                      timeout=10)
        self.kill_serve(signal.SIGKILL)
        self.proc = None
        self.wait_post(lambda p: self.in_thread(p, d) and p["text"].startswith("slept"),
                       "the held answer to land in Slack", timeout=8)
        self.start_serve()
        self.quiet(6.0)
        s = self.slack.state()
        answers = [m for m in self.bot_texts(s, d) if m.startswith("slept")]
        self.assertEqual(len(answers), 1, "the answer Slack has is not posted again after the "
                         "restart%s" % self.summary(s))

    def bot_texts(self, s, info):
        return [m.get("text") or "" for m in self.bot_messages(s, info)]

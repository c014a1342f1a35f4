"""5490: the daily gc of `janebot serve` (JANEBOT_SANDBOX_IDLE_DAYS) runs in the core, on
its own sandbox context, and never removes the sandbox of a thread whose turn is running or
whose message waits (debounced, or for a worker)."""
import os
import re
import time
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import ServeCase

DAY = 86400


@needs_bwrap
class ServeGc(ServeCase):
    def sandbox_dir(self, info):
        """The sandbox directory of the thread info started (its thread_key names its ts)."""
        root = self.state / "sandboxes"
        for d in root.iterdir() if root.is_dir() else []:
            key = d / "thread_key"
            if key.is_file() and info["ts"] in key.read_text():
                return d
        return None

    def age(self, d, days):
        t = time.time() - days * DAY
        os.utime(d / "last_used", (t, t))

    def two_idle_threads_one_waiting(self):
        """Two threads, each with a sandbox from a finished first turn, both idle for a
        month; then serve runs with a reply in the second thread waiting (a long debounce).
        Returns the sandbox dirs (idle, busy) and the busy thread's info."""
        self.start_serve(env={"JANEBOT_SANDBOX_IDLE_DAYS": "0"})
        idle = self.dm("zq-548x idle thread")
        busy = self.dm("zq-548x busy thread")
        self.wait_answer(idle, "zq-548x idle thread (turn 1)")
        self.wait_answer(busy, "zq-548x busy thread (turn 1)")
        self.wait_reaction(idle, "white_check_mark")  # both turns over: nothing pending
        self.wait_reaction(busy, "white_check_mark")
        self.stop_serve()
        idle_dir, busy_dir = self.sandbox_dir(idle), self.sandbox_dir(busy)
        self.assertIsNotNone(idle_dir, "a sandbox for the idle thread")
        self.assertIsNotNone(busy_dir, "a sandbox for the busy thread")
        self.age(idle_dir, 30)
        self.age(busy_dir, 30)
        self.start_serve(env={"JANEBOT_SANDBOX_IDLE_DAYS": "0", "DEBOUNCE_MS": "600000"})
        self.dm("zq-548x a reply that waits", thread_ts=busy["ts"])
        self.wait_all_acked()
        return idle_dir, busy_dir, busy

    def test_5491_a_thread_with_a_waiting_message_keeps_its_idle_sandbox_through_gc(self):
        idle_dir, busy_dir, busy = self.two_idle_threads_one_waiting()
        # serve starts again with the gc on: the reply is queued again (debounced) while
        # the gc at start runs.
        self.stop_serve()
        self.start_serve(env={"JANEBOT_SANDBOX_IDLE_DAYS": "7", "DEBOUNCE_MS": "600000"})
        self.wait_for(lambda s: re.search(r"gc: removed \d+ sandbox", self.serve_output()),
                      "the gc at start to remove the idle thread's sandbox", timeout=20)
        self.assertFalse(idle_dir.exists(), "the idle thread's sandbox is removed%s"
                         % self.serve_output())
        self.assertTrue((busy_dir / "home").is_dir(),
                        "the sandbox of a thread with a waiting message is kept%s"
                        % self.serve_output())
        self.assertRegex(self.serve_output(), r"gc: sandbox jane-\w+ of \S+ has a turn running "
                         r"or waiting: kept")
        s = self.slack.state()
        self.assertEqual(self.count_final(s, busy, "a reply that waits"), 0,
                         "the reply is still waiting (debounced)%s" % self.summary(s))

    def test_5492_sandbox_gc_keeps_the_sandbox_of_a_thread_whose_message_waits_in_serve(self):
        idle_dir, busy_dir, busy = self.two_idle_threads_one_waiting()
        g = self.run_jb(["sandbox", "gc", "--idle", "7"], timeout=60)
        self.assertEqual(g.rc, 0, g)
        self.assertIn("removed 1 sandbox", g.out, g)
        self.assertFalse(idle_dir.exists(), "the idle thread's sandbox is removed%s" % g)
        self.assertTrue((busy_dir / "home").is_dir(),
                        "the sandbox of a thread whose message waits in serve is kept%s" % g)


if __name__ == "__main__":
    unittest.main()

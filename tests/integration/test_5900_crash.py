"""5900: `kill -9` of `janebot serve` at random moments under load, restarted each time
(a few rounds of tests/soak/crash.py, which `make crash` runs for 50): no acked event
lost, none answered twice, the database intact, no sandbox process, mount or cgroup of a
dead serve left behind."""
import os
import subprocess
import sys
import unittest

from jbtest import BIN, REPO, needs_bwrap

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

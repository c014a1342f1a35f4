"""4250: what /proc/self/mountinfo tells a sandbox about the host. A bind mount shows its
source path: sockets named after the state dir and janebot's pid, or janebot's binary
shown from its install folder (beside a .env, perhaps), told the agent where things are."""
import os
import subprocess
import unittest

from sectest import BIN, SecCase, needs_bwrap


@needs_bwrap
class MountInfo(SecCase):
    def mount_sources(self, key):
        """(source path in its filesystem, mount point) of every mount the sandbox sees, and
        the pid of the janebot that ran it."""
        p = subprocess.Popen([str(BIN), "sandbox", "exec", key, "--", "cat",
                              "/proc/self/mountinfo"], env=self.merged_env(), cwd=str(self.cwd),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        rows = [(f[3], f[4]) for f in (line.split() for line in out.splitlines()) if len(f) > 4]
        self.assertTrue(rows, out)
        return rows, p.pid

    def test_4251_mount_sources_name_neither_the_state_dir_nor_the_binary_nor_the_pid(self):
        rows, pid = self.mount_sources("chat:mi")
        bin_dir = os.path.dirname(os.path.realpath(str(BIN)))
        state = os.path.realpath(str(self.state))
        for src, dst in rows:
            with self.subTest(mount=dst):
                self.assertNotIn(bin_dir, src, "janebot's install folder shows at %s" % dst)
                self.assertNotIn(".%d." % pid, src, "janebot's pid shows at %s" % dst)
                if dst == "/home/agent" and os.geteuid() != 0:
                    continue  # a normal user's home is bound from its own path (no image)
                self.assertNotIn(state, src, "the state dir shows at %s: %s" % (dst, src))
        dsts = [d for _, d in rows]
        for want in ("/run/janebot/janebot", "/run/janebot/egress.sock"):
            self.assertIn(want, dsts, rows)
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

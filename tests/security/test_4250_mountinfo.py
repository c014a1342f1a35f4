"""4250: what /proc/self/mountinfo tells a sandbox about the host. A bind mount shows its
source path: sockets named after the state dir and janebot's pid, or janebot's binary
shown from its install folder (beside a .env, perhaps), told the agent where things are.
The init and the proxies' sockets now come in as open files the init closes before the
command runs: nothing of them is mounted, nor reachable by the agent."""
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
        for gone in ("/run/janebot/janebot", "/run/janebot/egress.sock", "/run/janebot/llm.sock"):
            self.assertNotIn(gone, dsts, rows)
        self.normal_turn_still_works()

    def test_4252_no_proxy_socket_inside_yet_the_proxy_answers(self):
        """No Unix socket anywhere in the sandbox's tree, no fd of the init to borrow, and
        the egress proxy still answers on 127.0.0.1:3128 (a name off the allowlist: 403)."""
        probe = (
            "import os, socket\n"
            "socks = []\n"
            "for root, dirs, files in os.walk('/'):\n"
            "    if root == '/': dirs[:] = [d for d in dirs if d not in ('proc', 'sys')]\n"
            "    for f in files:\n"
            "        p = os.path.join(root, f)\n"
            "        try:\n"
            "            if __import__('stat').S_ISSOCK(os.lstat(p).st_mode): socks.append(p)\n"
            "        except OSError: pass\n"
            "print('sockets:', socks)\n"
            "try: print('init fds:', os.listdir('/proc/1/fd'))\n"
            "except OSError as e: print('init fds: denied', e.errno)\n"
            "s = socket.create_connection(('127.0.0.1', 3128), timeout=20)\n"
            "s.sendall(b'GET http://blocked.example.com/ HTTP/1.1\\r\\nHost: blocked.example.com\\r\\n\\r\\n')\n"
            "print('proxy:', s.recv(64).split(b'\\r\\n')[0].decode())\n")
        p = subprocess.run([str(BIN), "sandbox", "exec", "chat:mi2", "--", "python3", "-c", probe],
                           env=self.merged_env(), cwd=str(self.cwd), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("sockets: []", p.stdout)
        self.assertIn("init fds: denied", p.stdout)
        self.assertIn("proxy: HTTP/1.1 403", p.stdout)


if __name__ == "__main__":
    unittest.main()

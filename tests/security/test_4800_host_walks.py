"""4800: janebot's own walks of a home the sandbox writes (remove, reset, gc, size) never
act outside it, and the agent CLI's folder shows no deployment secrets.

The race: a process swaps each directory of a home for a symlink to a host directory
(or file) that has the same names in it, while janebot removes the home. A sandbox's own
processes cannot be alive then any more (removal waits for the sandbox's lock, and they
all die with their exec), so the attacker here is a host process running as the home's
owner, inside the home: one that outlived the lock, as in the original attack. The
canaries belong to the test, in its temp dir."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from sectest import BIN, PY, SecCase, needs_bwrap, sandbox_name
from jbtest import FAKE_BIN  # noqa: E402 (sectest puts it on the path)

ROUNDS = 20
DIRS = 6
FILES = 100
BUSY = "a turn is running in this thread's sandbox: wait for it or cancel it"

# Run as the home's owner with the home as cwd: make DIRS directories <argv[4]>0.. with
# argv[3] files each (in modes the owner lacks), then swap them all for symlinks (the
# last to argv[2], a file; the others to argv[1], a directory with the same file names)
# and back, until the test stops it (or dies: then it ends by itself; 5 minutes at most).
SWAPPER = r'''
import os, sys, time
parent, end = os.getppid(), time.monotonic() + 300
names = ["%s%d" % (sys.argv[4], i) for i in range(int(sys.argv[5]))]
for d in names:
    os.makedirs(d, exist_ok=True)
    for f in range(int(sys.argv[3])):
        open("%s/f%03d" % (d, f), "w").close()
    os.chmod(d, 0o077)
print("ready", flush=True)
while os.getppid() == parent and time.monotonic() < end:
    for d in names:  # the symlinks stand as long as the dirs do
        try:
            os.rename(d, d + ".real")
            os.symlink(sys.argv[2] if d == names[-1] else sys.argv[1], d)
        except OSError:
            pass
    time.sleep(0.0003)
    for d in names:
        try:
            os.unlink(d)
            os.rename(d + ".real", d)
        except OSError:
            pass
    time.sleep(0.0003)
'''


@needs_bwrap
class Walks(SecCase):
    def setUp(self):
        super().setUp()
        self.canary = self.tmp / "canary"
        self.canary.mkdir()
        for f in range(FILES):
            p = self.canary / ("f%03d" % f)
            p.write_text("keep")
            p.chmod(0o600)
        self.canary.chmod(0o750)
        self.secret = self.tmp / "secret"
        self.secret.write_text("root only")
        self.secret.chmod(0o600)

    def assert_canaries(self, what, rnd):
        self.assertEqual(self.secret.stat().st_mode & 0o7777, 0o600,
                         "%s round %d: the host file's mode changed" % (what, rnd))
        self.assertEqual(self.canary.stat().st_mode & 0o7777, 0o750,
                         "%s round %d: the host dir's mode changed" % (what, rnd))
        gone = [f for f in range(FILES) if not (self.canary / ("f%03d" % f)).exists()]
        self.assertEqual(gone, [], "%s round %d: %d host files removed through a symlink"
                         % (what, rnd, len(gone)))
        for f in range(FILES):
            m = (self.canary / ("f%03d" % f)).stat().st_mode & 0o7777
            self.assertEqual(m, 0o600, "%s round %d: a host file's mode changed" % (what, rnd))

    def start_swapper(self, key, rnd):
        home = self.home_of(key)
        st = home.stat()
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=st.st_uid, group=st.st_gid, extra_groups=[])
        p = subprocess.Popen([PY, "-c", SWAPPER, str(self.canary),
                              str(self.secret), str(FILES), "r%dd" % rnd, str(DIRS),
                              self.tag("swap")],
                             cwd=str(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, **kw)
        self.addCleanup(self.stop, p)
        if p.stdout.readline().decode().strip() != "ready":
            self.fail("the swapper did not start: %s" % p.stderr.read().decode()[:2000])
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                f.close()

    def fresh(self, key):
        r = self.sbx(key, "true", timeout=30)
        self.assertEqual(r.rc, 0, r)

    def leftovers(self):
        root = self.state / "sandboxes"
        return sorted(n for n in os.listdir(root)) if root.exists() else []

    def race(self, key, what, run):
        for rnd in range(ROUNDS):
            self.fresh(key)
            p = self.start_swapper(key, rnd)
            run(rnd)  # it may fail while the tree keeps moving: what counts is outside
            self.stop(p)
            self.assert_canaries(what, rnd)
        # Once nothing moves any more, everything goes.
        g = self.run_jb(["sandbox", "gc", "--idle", "0"], timeout=60)
        self.assertEqual(g.rc, 0, g)
        if self.home_of(key).exists():
            r = self.run_jb(["sandbox", "rm", key], timeout=60)
            self.assertEqual(r.rc, 0, r)
            g = self.run_jb(["sandbox", "gc", "--idle", "0"], timeout=60)
        self.assertEqual(self.leftovers(), [], "left behind%s" % g)

    def test_4801_sandbox_rm_never_follows_a_dir_swapped_for_a_symlink(self):
        self.race("chat:rm", "rm", lambda rnd: self.run_jb(["sandbox", "rm", "chat:rm"],
                                                            timeout=60))
        self.normal_turn_still_works()

    def test_4802_sandbox_reset_never_follows_a_dir_swapped_for_a_symlink(self):
        self.race("chat:reset", "reset",
                  lambda rnd: self.run_jb(["sandbox", "reset", "chat:reset"], timeout=60))
        self.normal_turn_still_works()

    def test_4803_sandbox_gc_never_follows_a_dir_swapped_for_a_symlink(self):
        def gc(rnd):
            lu = self.state / "sandboxes" / sandbox_name("chat:gc") / "last_used"
            old = time.time() - 30 * 86400
            os.utime(lu, (old, old))
            return self.run_jb(["sandbox", "gc", "--idle", "1"], timeout=60)
        self.race("chat:gc", "gc", gc)
        self.normal_turn_still_works()

    # ---- the lock: nothing is removed while a turn runs ----

    def start_exec(self, key, seconds):
        argv = [str(BIN), "sandbox", "exec", key, "--", "sh", "-c",
                "echo started; sleep %d; echo %s" % (seconds, self.tag("busy"))]
        p = subprocess.Popen(argv, cwd=str(self.cwd), env=self.merged_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.addCleanup(self.stop, p)
        if p.stdout.readline().decode().strip() != "started":
            self.fail("sandbox exec did not start: %s" % p.stderr.read().decode()[:2000])
        return p

    def test_4804_rm_reset_and_gc_wait_for_a_running_turn(self):
        key = "chat:busy"
        self.fresh(key)
        (self.home_of(key) / "work.txt").write_text("in progress")
        p = self.start_exec(key, 8)
        for args in (["sandbox", "rm", key], ["sandbox", "reset", key]):
            r = self.run_jb(args, timeout=30)
            self.assertEqual(r.rc, 1, "%s while a turn runs%s" % (args[1], r))
            self.assertIn(BUSY, r.err, r)
        lu = self.state / "sandboxes" / sandbox_name(key) / "last_used"
        os.utime(lu, (time.time() - 30 * 86400,) * 2)
        g = self.run_jb(["sandbox", "gc", "--idle", "1"], timeout=30)
        self.assertEqual(g.rc, 0, g)
        self.assertEqual((self.home_of(key) / "work.txt").read_text(), "in progress",
                         "the home of a running turn was touched%s" % g)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err.decode()[:2000])
        r = self.run_jb(["sandbox", "rm", key], timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(self.home_of(key).exists(), r)
        self.normal_turn_still_works()

    def test_4805_a_chat_turn_holds_its_sandbox_until_it_ends(self):
        self.chat_ok(["hello"], thread="turn")
        argv = [str(BIN), "chat", "--thread", "turn"]
        p = subprocess.Popen(argv, cwd=str(self.cwd), env=self.merged_env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(self.stop, p)
        p.stdin.write(b"run: touch started; sleep 6\n")
        p.stdin.flush()  # end of input comes with communicate(), after the checks
        home = self.home_of("chat:turn")
        deadline = time.monotonic() + 30
        while not (home / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue((home / "started").exists(), "the turn did not start")
        r = self.run_jb(["sandbox", "rm", "chat:turn"], timeout=30)
        self.assertEqual(r.rc, 1, r)
        self.assertIn(BUSY, r.err, r)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err.decode()[:2000])
        r = self.run_jb(["sandbox", "rm", "chat:turn"], timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.normal_turn_still_works()

    # ---- modes the sandbox set ----

    def test_4806_dirs_made_unreadable_or_read_only_are_measured_and_removed(self):
        key = "chat:modes"
        r = self.sbx(key, "sh", "-c",
                     "mkdir -p locked/in ro/sub && head -c 3145728 /dev/zero > locked/in/big "
                     "&& touch ro/sub/f && chmod 000 locked/in locked && chmod 0500 ro "
                     "&& echo made", timeout=30)
        self.assertIn("made", r.out, r)
        ls = self.run_jb(["sandbox", "list"], timeout=30)
        line = self.line_with(ls, sandbox_name(key))
        self.assertRegex(line, r"\b[3-9]\.\d MiB|\d+\.\d GiB",
                         "the size must count what a chmod 000 folder holds%s" % ls)
        self.assertEqual(self.run_jb(["sandbox", "reset", key], timeout=30).rc, 0)
        self.assertEqual(list(self.home_of(key).iterdir()), [], "reset left files")
        self.sbx(key, "sh", "-c", "mkdir -p a/b && chmod 000 a/b a && mkdir c && chmod 500 c",
                 timeout=30)
        r = self.run_jb(["sandbox", "rm", key], timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.assertFalse((self.state / "sandboxes" / sandbox_name(key)).exists(), r)
        self.normal_turn_still_works()


@needs_bwrap
class AgentFolder(SecCase):
    """DEPLOY/{.env, bin/amp}: the agent CLI's folder holds the deployment's secrets."""
    TOKEN = "xoxb-11111111-22222222-CANARYslacktoken"

    def deploy(self, package=False, where=None):
        d = where or (self.tmp / "deploy")
        (d / "bin").mkdir(parents=True, exist_ok=True)
        (d / ".env").write_text("SLACK_BOT_TOKEN=%s\nAMP_API_KEY=amp-real-key-000\n"
                                % self.TOKEN)
        amp = d / "bin" / "amp"
        shutil.copy(FAKE_BIN / "amp", amp)
        amp.chmod(0o755)
        if package:
            (d / "package.json").write_text('{"name": "deploy", "bin": {"amp": "bin/amp"}}')
        self.env.pop("JANEBOT_AGENT_CMD", None)
        self.env.update({"JANEBOT_AGENT": "amp", "JANEBOT_AGENT_BIN": str(amp),
                         "AMP_API_KEY": "amp-test-key-123456"})
        return d

    def test_4810_the_env_beside_the_agent_binary_is_not_shown(self):
        d = self.deploy()
        r = self.sbx("chat:deploy", "sh", "-c", "cat %s/.env; ls -a %s; ls -a %s/bin"
                     % (d, d, d), timeout=30)
        self.assertNotIn(self.TOKEN, r.both, "the deployment's .env is readable inside%s" % r)
        self.assertNotIn(".env", r.out, r)
        self.assertIn("amp", r.out, "the agent binary itself is shown%s" % r)
        c = self.chat_ok(["hello"], thread="deploy")
        self.assertIn_("argv ok: echo: hello (turn 1)", c)

    def test_4811_an_agent_package_that_holds_a_env_is_refused(self):
        d = self.deploy(package=True)
        r = self.sbx("chat:pkg", "cat", str(d / ".env"), timeout=30)
        self.assertNotIn(self.TOKEN, r.both, "the deployment's .env is readable inside%s" % r)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("refusing to show %s in the sandbox" % d, r.err, r)
        self.assertIn("%s/.env may hold secrets; move it out of %s" % (d, d), r.err, r)
        c = self.chat(["hello"], thread="pkg", timeout=60)
        self.assertNotIn(self.TOKEN, c.both, c)
        self.assertIn("refusing to show %s in the sandbox" % d, c.both, c)
        self.assertNotIn("echo: hello", c.out, "the turn ran anyway%s" % c)

    def test_4812_an_agent_package_that_holds_the_working_directory_is_refused(self):
        self.deploy(package=True, where=self.cwd)
        (self.cwd / ".env").unlink()  # no .env at all: the working directory alone
        r = self.sbx("chat:cwd", "true", timeout=30)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("holds janebot's working directory %s" % self.cwd, r.err, r)


if __name__ == "__main__":
    unittest.main()

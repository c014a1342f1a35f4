"""4100: resource limits: processes, files, memory, CPU, disk; orphans and the turn
deadline. Limits are set small through the JANEBOT_SANDBOX_* variables so every test is
quick; every process a test starts carries a unique marker in its command line so the
host process table can be checked for leftovers."""
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
import unittest

from sectest import (BIN, PRELUDE, PY, SecCase, host_memory_cgroup, needs_bwrap,
                     parse_vals, sandbox_name)

MiB = 1 << 20
INF = -1  # resource.RLIM_INFINITY

LIMITS = r'''
import resource
for n in ("NPROC", "NOFILE", "FSIZE", "AS", "CPU"):
    out(n, resource.getrlimit(getattr(resource, "RLIMIT_" + n))[0])
'''

BOUNDED_BOMB = r'''
import resource
soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
out("nproc", soft)
n, err = 0, None
while n < CAP:
    try:
        pid = os.fork()
    except OSError as e:
        err = ename(e.errno)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
out("forked", n)
out("fork_error", err)
out("full", True)
if HOLD:
    sys.stdin.read()
'''


def host_fork_works():
    pid = os.fork()
    if pid == 0:
        os._exit(42)
    _, st = os.waitpid(pid, 0)
    return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 42


@needs_bwrap
class Limits(SecCase):
    def test_4101_the_sandbox_has_finite_rlimits_with_the_documented_defaults(self):
        r = self.probe("chat:lim", LIMITS)
        self.assertEqual(r.rc, 0, r)
        v = r.vals
        self.assertNotIn(v.get("NPROC"), (None, INF), "ulimit -u unlimited%s" % r)
        self.assertEqual(v.get("NPROC"), 512, "default JANEBOT_SANDBOX_MAX_PROCS%s" % r)
        self.assertNotIn(v.get("NOFILE"), (None, INF), r)
        self.assertLessEqual(v["NOFILE"], 4096, "ulimit -n%s" % r)
        self.assertEqual(v.get("FSIZE"), 2048 * MiB, "default JANEBOT_SANDBOX_MAX_FILE_MB%s" % r)
        # No address-space limit by default: the memory cgroup bounds what is used (4160).
        self.assertEqual(v.get("AS"), INF, "default JANEBOT_SANDBOX_ADDRESS_SPACE_MB%s" % r)
        self.assertEqual(v.get("CPU"), 60, "default CPU seconds = JANEBOT_TURN_TIMEOUT%s" % r)
        sh = self.sbx("chat:lim", "sh", "-c", "ulimit -p; ulimit -t")
        self.assertNotIn("unlimited", sh.out, sh)
        # Configured values reach both `sandbox exec` and an agent turn.
        self.env.update({"JANEBOT_SANDBOX_MAX_PROCS": "100", "JANEBOT_SANDBOX_MAX_FILE_MB": "5",
                         "JANEBOT_SANDBOX_ADDRESS_SPACE_MB": "256",
                         "JANEBOT_SANDBOX_CPU_SECONDS": "7"})
        want = {"NPROC": 100, "FSIZE": 5 * MiB, "AS": 256 * MiB, "CPU": 7}
        for how, r in (("sandbox exec", self.probe("chat:lim", LIMITS)),
                       ("agent turn", self.turn_probe("lim", LIMITS))):
            for k, w in want.items():
                with self.subTest(how=how, limit=k):
                    self.assertEqual(r.vals.get(k), w, "%s RLIMIT_%s%s" % (how, k, r))
        self.normal_turn_still_works()

    def test_4102_a_bounded_fork_bomb_hits_the_process_limit_while_the_host_stays_responsive(self):
        self.env.update({"JANEBOT_SANDBOX_MAX_PROCS": "64", "JANEBOT_TURN_TIMEOUT": "30"})
        tag = self.tag("bomb")
        code = "CAP, HOLD = 300, True  # %s\n" % tag + BOUNDED_BOMB
        p = subprocess.Popen([str(BIN), "sandbox", "exec", "chat:bomb", "--", PY, "-c",
                              PRELUDE + code], cwd=str(self.cwd), env=self.env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)

        def kill():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        self.addCleanup(kill)
        lines = queue.Queue()

        def pump():
            for line in p.stdout:
                lines.put(line.decode(errors="replace"))
            lines.put(None)
        threading.Thread(target=pump, daemon=True).start()
        got, end = [], time.monotonic() + 40
        while time.monotonic() < end:
            try:
                line = lines.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            got.append(line)
            if line.startswith("@@ full"):
                break
        vals = parse_vals("".join(got))
        self.assertIn("full", vals, "the bomb never reported; output so far: %r" % got)
        # While the sandbox is full: the host can fork and another thread is answered.
        self.assertTrue(host_fork_works(), "os.fork() on the host failed during the bomb")
        t0 = time.monotonic()
        other = self.chat_ok(["ping-other"], thread="other", timeout=30)
        self.assertIn_("echo: ping-other (turn 1)", other)
        self.assertLess(time.monotonic() - t0, 20, "another thread was slow during the bomb")
        p.stdin.close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("sandbox exec did not end after the bomb released it")
        self.assertNotEqual(vals.get("nproc"), INF, "no process limit inside: %r" % vals)
        self.assertEqual(vals.get("fork_error"), "EAGAIN",
                         "fork should fail with EAGAIN at the limit: %r" % vals)
        self.assertLessEqual(vals.get("forked"), 64, "more children than MAX_PROCS: %r" % vals)
        self.assertEqual(self.wait_gone(tag, 10), [],
                         "children of the bomb survived the exec")
        self.normal_turn_still_works()

    def test_4103_the_classic_shell_fork_bomb_is_contained_and_cleaned_up(self):
        self.env.update({"JANEBOT_SANDBOX_MAX_PROCS": "64", "JANEBOT_TURN_TIMEOUT": "15"})
        # Safety first: run the unbounded bomb only where the bounded one showed a limit.
        pre = self.probe("chat:bomb2", "CAP, HOLD = 200, False\n" + BOUNDED_BOMB, timeout=40)
        self.assertEqual(pre.vals.get("fork_error"), "EAGAIN",
                         "no working process limit inside: refusing to run `:(){ :|:& };:`%s"
                         % pre)
        tag = self.tag("classic")
        t0 = time.monotonic()
        x = self.sbx("chat:bomb2", "sh", "-c",
                     "timeout -s KILL 3 bash -c ':(){ :|:& };: # %s' 2>/dev/null; "
                     "echo bomb-over" % tag, timeout=60)
        self.assertLess(time.monotonic() - t0, 40, x)
        self.assertIn("bomb-over", x.out, "the shell inside should get control back%s" % x)
        self.assertTrue(host_fork_works(), "os.fork() on the host failed after the bomb")
        self.assertEqual(self.wait_gone(tag, 10), [], "bomb processes left on the host")
        self.normal_turn_still_works()

    def test_4104_a_file_larger_than_max_file_mb_cannot_be_written(self):
        self.env["JANEBOT_SANDBOX_MAX_FILE_MB"] = "5"
        r = self.probe("chat:fsz", r'''
f = open("big.bin", "wb")
written, err = 0, None
try:
    for i in range(7):
        f.write(b"\0" * (1 << 20))
        f.flush()
        written += 1 << 20
except OSError as e:
    err = ename(e.errno)
finally:
    try:
        f.close()
    except OSError:
        pass
out("err", err)
out("size", os.path.getsize("big.bin"))
''')
        self.assertEqual(r.vals.get("err"), "EFBIG", r)
        self.assertLessEqual(r.vals.get("size"), 5 * MiB, r)
        d = self.sbx("chat:fsz", "sh", "-c",
                     "dd if=/dev/zero of=big2 bs=1M count=7 2>/dev/null; echo dd-exit=$?")
        self.assertNotIn("dd-exit=0", d.out, "dd wrote 7 MB under a 5 MB limit%s" % d)
        t = self.chat_ok(["run: head -c 7000000 /dev/zero > big3; echo head-exit=$?"],
                         thread="fsz")
        self.assertNotIn("head-exit=0", t.out, t)
        for name in ("big.bin", "big2", "big3"):
            p = self.home_of("chat:fsz") / name
            if p.exists():
                self.assertLessEqual(p.stat().st_size, 5 * MiB, name)
        self.normal_turn_still_works()

    def test_4105_allocating_more_than_memory_mb_fails_inside_only(self):
        if host_memory_cgroup():
            self.skipTest(host_memory_cgroup())
        self.env["JANEBOT_SANDBOX_MEMORY_MB"] = "256"
        code = r'''
small = bytearray(32 << 20)
out("small", len(small))
try:
    big = bytearray(512 << 20)
    out("big", "allocated")
except MemoryError:
    out("big", "MemoryError")
except OSError as e:
    out("big", ename(e.errno))
'''
        for how, r in (("sandbox exec", self.probe("chat:mem", code)),
                       ("agent turn", self.turn_probe("mem", code))):
            with self.subTest(how=how):
                self.assertEqual(r.vals.get("small"), 32 << 20, "%s: 32 MB must work%s" % (how, r))
                # Killed by the sandbox's own OOM killer, or refused: never allocated.
                self.assertNotEqual(r.vals.get("big"), "allocated", "%s%s" % (how, r))
        host = bytearray(300 << 20)  # the host is not limited by the sandbox's setting
        self.assertEqual(len(host), 300 << 20)
        del host
        self.normal_turn_still_works()

    def test_4106_a_busy_loop_is_stopped_at_the_cpu_limit(self):
        self.env.update({"JANEBOT_SANDBOX_CPU_SECONDS": "1", "JANEBOT_TURN_TIMEOUT": "8"})
        tag = self.tag("spin")
        r = self.probe("chat:cpu", "# %s\nwhile True:\n    pass\n" % tag, timeout=40)
        self.assertIn(r.rc, (128 + signal.SIGXCPU, 128 + signal.SIGKILL),
                      "busy loop should die by SIGXCPU/SIGKILL%s" % r)
        self.assertLess(r.secs, 10, r)
        self.assertEqual(self.wait_gone(tag, 5), [])
        self.normal_turn_still_works()

    def test_4113_everything_inside_runs_below_janebot_and_cannot_raise_its_priority(self):
        # An agent's build on a small machine must not delay janebot's own threads (the
        # Slack acks, other threads' answers): a sandbox runs at JANEBOT_SANDBOX_NICE, and
        # nothing inside can lower its niceness again, in a turn or in an exec.
        code = r'''
import subprocess
out("nice", os.getpriority(os.PRIO_PROCESS, 0))
out("child", int(subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"],
                                capture_output=True, text=True).stdout.strip()))
out("lower", trycall(lambda: os.setpriority(os.PRIO_PROCESS, 0, 0)))
out("lower_one", trycall(lambda: os.nice(-1)))
out("raise", trycall(lambda: os.setpriority(os.PRIO_PROCESS, 0, 15)))
'''
        r = self.probe("chat:nice", code)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.vals.get("nice"), 10, "the default niceness inside%s" % r)
        self.assertEqual(r.vals.get("child"), 10, "a child inherits it%s" % r)
        self.assertIn(r.vals.get("lower"), ("EACCES", "EPERM"), r)
        self.assertIn(r.vals.get("lower_one"), ("EACCES", "EPERM"), r)
        self.assertEqual(r.vals.get("raise"), "ok", "going further down is allowed%s" % r)
        t = self.turn_probe("nice-turn", code)
        self.assertEqual(t.vals.get("nice"), 10, "a turn's agent runs niced too%s" % t)
        self.assertIn(t.vals.get("lower"), ("EACCES", "EPERM"), t)
        z = self.probe("chat:nice0", code, env={"JANEBOT_SANDBOX_NICE": "0"})
        self.assertEqual(z.vals.get("nice"), 0, "JANEBOT_SANDBOX_NICE=0 leaves it alone%s" % z)
        bad = self.sbx("chat:nice", "true", env={"JANEBOT_SANDBOX_NICE": "20"})
        self.assertNotEqual(bad.rc, 0, bad)
        self.assertIn("JANEBOT_SANDBOX_NICE", bad.both, "the error names the variable%s" % bad)
        self.normal_turn_still_works()

    def test_4107_a_home_over_the_disk_quota_refuses_the_next_turn_and_exec(self):
        self.env.update({"JANEBOT_SANDBOX_DISK_MB": "10", "JANEBOT_TURN_TIMEOUT": "20"})
        # 20 MB written over ~4 s, as an agent writing files would, not in one burst
        r = self.chat_ok(["run: for i in $(seq 20); do dd if=/dev/zero bs=1M count=1 "
                          "2>/dev/null || exit 9; sleep 0.2; done > big; echo dd-exit=$?"],
                         thread="quota", timeout=60)
        self.assertNotIn("dd-exit=0", r.out,
                         "the 20 MB dd should be stopped or fail under a 10 MB quota%s" % r)
        if (self.state / "sandboxes" / sandbox_name("chat:quota") / "home.img").exists():
            # As root the home is a file system of its own (test_4150): the kernel refused
            # the writes past the quota (ENOSPC), so nothing is over it and the next turn
            # and exec run, so the agent can delete files; the user is told it is full.
            self.assertIn("sandbox is full", r.out, "the user is told%s" % r)
            n = self.chat_ok(["next-after-dd"], thread="quota", timeout=60)
            self.assertIn("echo: next-after-dd", n.out, n)
            self.assertIn("disk quota", n.out.lower(), n)
            x = self.sbx("chat:quota", "true")
            self.assertEqual(x.rc, 0, x)
            self.assertIn("disk quota", x.err.lower(), x)
            self.normal_turn_still_works(thread="under-quota")
            return
        n = self.chat_ok(["next-after-dd"], thread="quota", timeout=60)
        self.assertIn("disk quota", n.out.lower(),
                      "the turn after filling the home should be refused with 'disk quota'%s" % n)
        self.assertNotIn("echo: next-after-dd", n.out, "the agent ran over quota%s" % n)
        x = self.sbx("chat:quota", "true")
        self.assertEqual(x.rc, 1, "sandbox exec over quota should exit 1%s" % x)
        self.assertIn("disk quota", x.both.lower(), x)
        self.normal_turn_still_works(thread="under-quota")


@needs_bwrap
class Processes(SecCase):
    def test_4108_a_setsid_nohup_daemon_does_not_outlive_the_exec_or_the_turn(self):
        m1 = "1000.%d" % secrets.randbelow(10 ** 9)
        m2 = "1000.%d" % secrets.randbelow(10 ** 9)
        x = self.sbx("chat:dae", "sh", "-c",
                     "setsid nohup sleep %s >/dev/null 2>&1 & echo started" % m1, timeout=30)
        self.assertEqual((x.rc, x.out.strip()), (0, "started"), x)
        self.assertEqual(self.wait_gone("sleep " + m1, 5), [], "daemon survived exec")
        t = self.chat_ok(["run: setsid nohup sleep %s >/dev/null 2>&1 & echo started" % m2],
                         thread="dae", timeout=30)
        self.assertIn_("started", t)
        self.assertEqual(self.wait_gone("sleep " + m2, 5), [], "daemon survived the turn")
        ps = self.sbx("chat:dae", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        self.assertNotIn(m1, ps.out, ps)
        self.assertNotIn(m2, ps.out, ps)
        self.normal_turn_still_works()

    def test_4109_the_whole_process_tree_dies_at_the_turn_deadline(self):
        self.env["JANEBOT_TURN_TIMEOUT"] = "2"
        m1 = "100.%d" % secrets.randbelow(10 ** 9)
        m2 = "100.%d" % secrets.randbelow(10 ** 9)
        r = self.chat_ok(["run: sleep %s & sleep %s" % (m1, m2)], thread="dl", timeout=40)
        self.assertLess(r.secs, 15, "the turn should end soon after its deadline%s" % r)
        self.assertRegex(r.both.lower(), r"timed out|timeout", r)
        self.assertEqual(self.wait_gone("sleep " + m1, 5), [], "background sleep survived")
        self.assertEqual(self.wait_gone("sleep " + m2, 5), [], "foreground sleep survived")
        self.normal_turn_still_works(env={"JANEBOT_TURN_TIMEOUT": "60"})


if __name__ == "__main__":
    unittest.main()

"""4160: memory actually used per sandbox (its memory cgroup), sized and read-only tmpfs,
TCP and UDP as the only IP sockets.

The attack these answer: shared memory, memfds and many processes held 448 MiB under a
64 MiB address-space setting; the root, /dev and /dev/shm took 96 MiB each under
JANEBOT_SANDBOX_TMP_MB=16; files could be created in /etc; MPTCP and UDP-Lite sockets
could be made. And an address-space limit broke V8/WebAssembly (Node's fetch)."""
import os
import signal
import subprocess
import time
import unittest

from sectest import BIN, SecCase, host_memory_cgroup, memory_cgroup_base, needs_bwrap

MiB = 1 << 20


# Holds memory the ways an address-space limit does not see: memfds mapped and touched in
# four children and in the parent, then /dev/shm. After each step the parent reports what
# the processes still alive hold at that moment ("live", MiB): the OOM killer may end a
# child at any time, and memory a dead process held is no longer held.
HOARD = r'''
import mmap
out("start", True)
def grab_memfd(mb):
    fd = os.memfd_create("hoard")
    os.ftruncate(fd, mb << 20)
    m = mmap.mmap(fd, mb << 20)
    for i in range(0, mb << 20, 4096):
        m[i] = 1
    return m
kids = set()
def holding(pid):
    # A child the OOM killer has picked may not be reapable yet, but its memory is being
    # given back: it holds only while it is not exiting and still has its mappings.
    try:
        with open("/proc/%d/status" % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = [l for l in st.splitlines() if l.startswith("State:")]
    return "VmRSS:" in st and bool(state) and state[0].split()[1] not in ("Z", "X")
def live(held):
    for pid in list(kids):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                kids.discard(pid)
        except ChildProcessError:
            kids.discard(pid)
    out("live", held + 24 * sum(1 for pid in kids if holding(pid)))
held = 0
keep = []
try:
    for i in range(4):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            m = grab_memfd(24)
            os.write(w, b"x")
            time.sleep(30)
            os._exit(0)
        os.close(w)
        if os.read(r, 1) == b"x":
            kids.add(pid)
        os.close(r)
        live(held)
    for i in range(12):
        keep.append(grab_memfd(8))
        held += 8
        live(held)
    with open("/dev/shm/fill", "wb") as f:
        for i in range(24):
            f.write(b"x" * (1 << 20))
            f.flush()
            held += 1
            live(held)
except OSError as e:
    out("error", ename(e.errno))
out("done", held)
'''


@needs_bwrap
class Memory(SecCase):
    def cgroup_or_skip(self):
        if host_memory_cgroup():
            self.skipTest(host_memory_cgroup())
        base = memory_cgroup_base(self.merged_env())
        self.assertTrue(base, "the host has a memory cgroup, but doctor reports no memory limit")
        return base

    def test_4161_memory_held_in_memfds_shm_and_children_is_bounded_by_memory_mb(self):
        self.cgroup_or_skip()
        self.env["JANEBOT_SANDBOX_MEMORY_MB"] = "64"
        self.env["JANEBOT_SANDBOX_TMP_MB"] = "512"
        r = self.probe("chat:hoard", HOARD, timeout=60)
        self.assertTrue(r.vals.get("start"), r)
        peak = max((int(l.split()[2]) for l in r.out.splitlines() if l.startswith("@@ live ")),
                   default=0)
        self.assertGreater(peak, 0, "the hoard reported nothing%s" % r)
        # 4 x 24 + 96 + 24 = 216 MiB were asked for; the sandbox may hold at most its 64.
        self.assertLess(peak, 64, "the sandbox held %d MiB at once under a 64 MiB limit%s"
                        % (peak, r))
        self.assertNotIn("done", r.vals, "the hoard finished under the limit%s" % r)
        self.assertIn("ran out of memory", r.err, "sandbox exec says why it stopped%s" % r)
        self.normal_turn_still_works()

    def test_4162_no_address_space_limit_by_default_so_v8_style_reservations_work(self):
        code = r'''
import mmap, resource
out("AS", resource.getrlimit(resource.RLIMIT_AS)[0])
# V8 and WebAssembly reserve large ranges up front (Node's fetch instantiates wasm).
try:
    m = mmap.mmap(-1, 16 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000,
                  prot=0)
    out("reserve", "ok")
    m.close()
except OSError as e:
    out("reserve", ename(e.errno))
'''
        for how, r in (("sandbox exec", self.probe("chat:v8", code)),
                       ("agent turn", self.turn_probe("v8", code))):
            with self.subTest(how=how):
                self.assertEqual(r.vals.get("AS"), -1, "RLIMIT_AS is set (%s)%s" % (how, r))
                self.assertEqual(r.vals.get("reserve"), "ok", "16 GiB reservation (%s)%s" % (how, r))
        # An admin who wants one still gets it.
        self.env["JANEBOT_SANDBOX_ADDRESS_SPACE_MB"] = "2048"
        r = self.probe("chat:v8", code)
        self.assertEqual(r.vals.get("AS"), 2048 * MiB, r)
        self.assertEqual(r.vals.get("reserve"), "ENOMEM", r)
        self.normal_turn_still_works()

    def test_4163_an_agent_killed_for_memory_is_told_to_the_user(self):
        self.cgroup_or_skip()
        self.env["JANEBOT_SANDBOX_MEMORY_MB"] = "48"
        code = "x = bytearray(200 << 20)\nout('survived', True)\n"
        w = self.sbx("chat:oom", "sh", "-c", "cat > hog.py", input="import os\n" + code)
        self.assertEqual(w.rc, 0, w)
        # The fake agent's run: tool execs the hog as the agent itself (exec replaces it).
        r = self.chat(["run: exec /usr/bin/python3 hog.py"], thread="oom", timeout=60)
        self.assertIn("ran out of memory", r.both, r)
        self.assertIn("48 MiB", r.both, r)
        self.assertNotIn("survived", r.out, r)
        self.normal_turn_still_works()

    def test_4164_cgroups_are_removed_after_each_run_and_after_a_crash(self):
        base = self.cgroup_or_skip()
        mine = lambda pid: [d for d in os.listdir(base) if d.startswith("janebot-%d-" % pid)]
        tag = self.tag("cg")
        p = subprocess.Popen([str(BIN), "sandbox", "exec", "chat:cg", "--", "sh", "-c",
                              "sleep 30 # " + tag], env=self.merged_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=self.cwd, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        def members():
            for d in mine(p.pid):
                try:
                    with open(os.path.join(base, d, "cgroup.procs")) as f:
                        return f.read().split()
                except OSError:
                    pass
            return []
        deadline = time.monotonic() + 20
        while len(members()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # bwrap, its pid 1 (janebot's init) and the command at least
        self.assertGreaterEqual(len(members()), 3,
                                "the running sandbox's processes are in a cgroup of its own "
                                "under %s: %s" % (base, mine(p.pid)))
        # Every controller janebot uses holds the sandbox (v1: memory, pids, cpu apart).
        with open("/proc/%s/cgroup" % members()[-1]) as f:
            lines = f.read().splitlines()
        for ctl in ("memory", "pids", "cpu"):
            line = [x for x in lines if ctl in x.split(":")[1].split(",")]
            if line and os.access("/sys/fs/cgroup/%s/cgroup.procs" % ctl, os.W_OK):
                self.assertIn("/janebot-%d-" % p.pid, line[0], "%s: %s" % (ctl, lines))
        os.kill(p.pid, signal.SIGKILL)  # janebot dies; bwrap dies with it
        p.wait()
        self.wait_gone(tag, timeout=10)
        # A crash leaves the cgroup behind (any later janebot start may sweep it, and tests
        # run in parallel); this one's next start certainly does.
        r = self.sbx("chat:cg", "true")  # the next start sweeps what the dead one left
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(mine(p.pid), [], "the dead janebot's cgroup was not swept")
        # A normal run leaves nothing behind.
        before = set(os.listdir(base))
        self.assertEqual(self.sbx("chat:cg", "true").rc, 0)
        def dead(d):  # janebot-<pid>-<seq> of a process that is gone
            try:
                os.kill(int(d.split("-")[1]), 0)
                return False
            except ProcessLookupError:
                return True
            except (OSError, ValueError, IndexError):
                return False
        ours = [d for d in set(os.listdir(base)) - before if d.startswith("janebot-") and dead(d)]
        self.assertEqual(ours, [], "cgroups left by a finished run")


@needs_bwrap
class Tmpfs(SecCase):
    def test_4165_every_tmpfs_is_sized_and_the_root_and_dev_are_read_only(self):
        self.env["JANEBOT_SANDBOX_TMP_MB"] = "16"
        code = r'''
def fill(path, mb):
    n = 0
    try:
        with open(path, "wb") as f:
            for i in range(mb):
                f.write(b"x" * (1 << 20))
                f.flush()
                n += 1
    except OSError as e:
        return [n, ename(e.errno)]
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return [n, "ok"]
for k, p in (("root", "/janebot-fill"), ("etc", "/etc/anything"), ("run", "/run/fill"),
             ("dev", "/dev/fill"), ("shm", "/dev/shm/fill"), ("tmp", "/tmp/fill")):
    out(k, fill(p, 40))
st = os.statvfs("/dev/shm")
out("shm_size", st.f_blocks * st.f_frsize)
'''
        for how, r in (("sandbox exec", self.probe("chat:tmpfs", code)),
                       ("agent turn", self.turn_probe("tmpfs", code))):
            for k in ("root", "etc", "run", "dev"):
                with self.subTest(how=how, where=k):
                    self.assertEqual(r.vals.get(k), [0, "EROFS"], "(%s)%s" % (how, r))
            for k in ("shm", "tmp"):
                with self.subTest(how=how, where=k):
                    n, e = r.vals.get(k) or [None, None]
                    self.assertEqual(e, "ENOSPC", "(%s)%s" % (how, r))
                    self.assertLessEqual(n, 16, "(%s) %s took %s MiB%s" % (how, k, n, r))
            self.assertLessEqual(r.vals.get("shm_size", 1 << 40), 16 * MiB, r)
        # Writable places still work, devices too.
        s = self.sbx("chat:tmpfs", "sh", "-c",
                     "echo a > /tmp/a && echo b > /dev/shm/b && echo c > ~/c && "
                     "echo d > /dev/null && cat /tmp/a /dev/shm/b ~/c")
        self.assertEqual(s.rc, 0, s)
        self.assertEqual(s.out.split(), ["a", "b", "c"], s)
        self.normal_turn_still_works()


@needs_bwrap
class InetSockets(SecCase):
    def test_4166_only_tcp_and_udp_sockets_no_mptcp_udplite_sctp_or_icmp(self):
        code = r'''
def mk(fam, typ, proto=0):
    try:
        s = socket.socket(fam, typ, proto)
    except OSError as e:
        return ename(e.errno)
    s.close()
    return "ok"
for fam, fn in ((socket.AF_INET, "4"), (socket.AF_INET6, "6")):
    out("tcp" + fn, mk(fam, socket.SOCK_STREAM))
    out("tcp_explicit" + fn, mk(fam, socket.SOCK_STREAM, 6))
    out("tcp_flags" + fn, mk(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC))
    out("udp" + fn, mk(fam, socket.SOCK_DGRAM))
    out("udp_explicit" + fn, mk(fam, socket.SOCK_DGRAM, 17))
    out("mptcp" + fn, mk(fam, socket.SOCK_STREAM, 262))
    out("udplite" + fn, mk(fam, socket.SOCK_DGRAM, 136))
    out("sctp_stream" + fn, mk(fam, socket.SOCK_STREAM, 132))
    out("sctp_seqpacket" + fn, mk(fam, socket.SOCK_SEQPACKET, 0))
    out("icmp" + fn, mk(fam, socket.SOCK_DGRAM, 1 if fn == "4" else 58))
    out("raw" + fn, mk(fam, socket.SOCK_RAW, 6))
# The protocol is an int: high bits must not smuggle MPTCP past the filter.
out("mptcp_high", sc("socket", 2, 1, 262 | (1 << 32)))
'''
        for how, r in (("sandbox exec", self.probe("chat:inet", code)),
                       ("agent turn", self.turn_probe("inet", code))):
            for fn in ("4", "6"):
                for k in ("tcp", "tcp_explicit", "tcp_flags", "udp", "udp_explicit"):
                    with self.subTest(how=how, sock=k + fn):
                        self.assertEqual(r.vals.get(k + fn), "ok", "(%s)%s" % (how, r))
                for k in ("mptcp", "udplite", "sctp_stream", "sctp_seqpacket", "icmp", "raw"):
                    with self.subTest(how=how, sock=k + fn):
                        self.assertErrno(r.vals, k + fn,
                                         ["EPROTONOSUPPORT", "EPERM", "ESOCKTNOSUPPORT"],
                                         " (%s)%s" % (how, r))
            self.assertErrno(r.vals, "mptcp_high", ["EPROTONOSUPPORT", "EPERM"], str(r))
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

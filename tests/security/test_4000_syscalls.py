"""4000: the seccomp filter, no-new-privs and capabilities, probed with raw syscalls from
inside a real sandbox (`sandbox exec` and an agent turn). Every probe picks arguments for
which the unfiltered kernel would answer differently (success, ENOTTY, EINVAL, ENOSPC...),
so a pass means the filter, not an accident of the arguments, refused the call."""
import unittest

from sectest import SecCase, needs_bwrap

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x08000000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWTIME, SIGCHLD = 0x40000000, 0x00000080, 17

STATUS = r'''
def status(pid):
    try:
        st = open("/proc/%s/status" % pid).read()
    except OSError as e:
        return ename(e.errno)
    f = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
    return {k: f.get(k, "").strip() for k in ("Name", "PPid", "Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "Uid")}
# the agent stage: this process, a child of it, and its ancestors below the sandbox's pid 1
chain = {"self": status(os.getpid())}
rd, wr = os.pipe()
kid = os.fork()
if kid == 0:
    os.write(wr, json.dumps(status("self")).encode())
    os._exit(0)
os.close(wr)
os.waitpid(kid, 0)
chain["child"] = json.loads(os.read(rd, 4096))
p = os.getppid()
while p > 1:
    st = status(p)
    if not isinstance(st, dict):
        break
    chain["ancestor-%d" % p] = st
    p = int(st["PPid"])
out("chain", chain)
out("all", {d: status(d) for d in os.listdir("/proc") if d.isdigit()})
out("uid", os.getuid())
'''


@needs_bwrap
class Filter(SecCase):
    def test_4001_every_sandboxed_process_has_seccomp_no_new_privs_and_no_capabilities(self):
        for how, r in (("sandbox exec", self.probe("chat:st", STATUS)),
                       ("agent turn", self.turn_probe("st", STATUS))):
            chain = r.vals.get("chain", {})
            self.assertIn("child", chain, "%s: probe output%s" % (how, r))
            if how == "agent turn":
                self.assertGreaterEqual(len(chain), 3, "the agent's shell expected%s" % r)
            for k, st in chain.items():
                with self.subTest(how=how, proc=k):
                    self.assertIsInstance(st, dict, r)
                    self.assertEqual(st["Seccomp"], "2", "%s %s: Seccomp mode%s" % (how, k, r))
            for pid, st in r.vals.get("all", {}).items():
                if not isinstance(st, dict):
                    continue
                with self.subTest(how=how, pid=pid, name=st["Name"]):
                    self.assertEqual(st["NoNewPrivs"], "1", "%s pid %s%s" % (how, pid, r))
                    self.assertEqual(int(st["CapEff"], 16), 0, "%s pid %s%s" % (how, pid, r))
                    self.assertEqual(int(st["CapPrm"], 16), 0, "%s pid %s%s" % (how, pid, r))
                    self.assertNotEqual(st["Uid"].split()[0], "0", r)
            self.assertEqual(r.vals.get("uid"), 1000, "%s: uid inside%s" % (how, r))
        sh = self.sbx("chat:st", "sh", "-c", "grep -E '^(Seccomp|NoNewPrivs|CapEff):' "
                      "/proc/self/status")
        self.assertIn("Seccomp:\t2", sh.out, sh)
        self.assertIn("NoNewPrivs:\t1", sh.out, sh)
        self.assertRegex(sh.out, r"CapEff:\t0+\n", sh)
        self.normal_turn_still_works()

    def test_4002_ptrace_and_process_vm_readv_are_denied(self):
        r = self.probe("chat:pt", r'''
buf = ctypes.create_string_buffer(b"readme", 64)
dst = ctypes.create_string_buffer(64)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
liov = iovec(ctypes.cast(dst, ctypes.c_void_p), 6)
riov = iovec(ctypes.cast(buf, ctypes.c_void_p), 6)
out("process_vm_readv", sc("process_vm_readv", os.getpid(), ctypes.byref(liov), 1, ctypes.byref(riov), 1, 0))
kid = os.fork()
if kid == 0:
    time.sleep(20)
    os._exit(0)
out("ptrace_attach_child", sc("ptrace", 16, kid, 0, 0))
os.kill(kid, 9)
os.waitpid(kid, 0)
rd, wr = os.pipe()
kid = os.fork()
if kid == 0:
    os.write(wr, json.dumps(sc("ptrace", 0, 0, 0, 0)).encode())
    os._exit(0)
os.close(wr)
os.waitpid(kid, 0)
out("ptrace_traceme", json.loads(os.read(rd, 100) or b'"no answer"'))
''')
        self.assertEqual(r.rc, 0, r)
        for name in ("process_vm_readv", "ptrace_attach_child",
                     "ptrace_traceme"):
            with self.subTest(call=name):
                self.assertErrno(r.vals, name, ["EPERM"], str(r))
        self.normal_turn_still_works()

    def test_4003_mount_umount_and_the_new_mount_api_are_denied(self):
        r = self.probe("chat:mnt", r'''
os.makedirs("/tmp/mnt-x", exist_ok=True)
out("mount", sc("mount", b"x", b"/tmp/mnt-x", b"tmpfs", 0, 0))
out("umount2", sc("umount2", b"/tmp", 0))
out("fsopen", sc("fsopen", b"tmpfs", 0))
out("open_tree", sc("open_tree", -100, b"/tmp", 1))
''')
        self.assertErrno(r.vals, "mount", ["EPERM"], str(r))
        self.assertErrno(r.vals, "umount2", ["EPERM"], str(r))
        self.assertErrno(r.vals, "fsopen", ["EPERM", "ENOSYS"], str(r))
        self.assertErrno(r.vals, "open_tree", ["EPERM", "ENOSYS"], str(r))
        m = self.sbx("chat:mnt", "sh", "-c", "mkdir -p /tmp/x && mount -t tmpfs x /tmp/x")
        self.assertNotEqual(m.rc, 0, m)
        self.normal_turn_still_works()

    def test_4004_new_namespaces_cannot_be_made_or_joined(self):
        flags = {"NEWUSER": CLONE_NEWUSER, "NEWNS": CLONE_NEWNS, "NEWNET": CLONE_NEWNET,
                 "NEWPID": CLONE_NEWPID, "NEWIPC": CLONE_NEWIPC, "NEWUTS": CLONE_NEWUTS,
                 "NEWCGROUP": CLONE_NEWCGROUP, "NEWTIME": CLONE_NEWTIME}
        code = "FLAGS = %r\n" % flags + r'''
for n, f in FLAGS.items():
    out("unshare_" + n, sc("unshare", f))
for n in ("NEWUSER", "NEWNS", "NEWNET", "NEWPID"):
    out("clone_" + n, sc("clone", FLAGS[n] | 17, 0, 0, 0, 0))
for ns in ("user", "mnt", "net", "pid"):
    try:
        fd = os.open("/proc/self/ns/" + ns, os.O_RDONLY)
    except OSError as e:
        out("setns_" + ns, "open:" + ename(e.errno))
        continue
    out("setns_" + ns, sc("setns", fd, 0))
    os.close(fd)
'''
        for how, r in (("sandbox exec", self.probe("chat:ns", code)),
                       ("agent turn", self.turn_probe("ns", code))):
            for k in ["unshare_" + n for n in flags] + ["clone_NEWUSER", "clone_NEWNS",
                                                         "clone_NEWNET", "clone_NEWPID"]:
                with self.subTest(how=how, call=k):
                    self.assertErrno(r.vals, k, ["EPERM"], " (%s)%s" % (how, r))
            for ns in ("user", "mnt", "net", "pid"):
                with self.subTest(how=how, call="setns " + ns):
                    v = r.vals.get("setns_" + ns)
                    self.assertTrue(v == "EPERM" or str(v).startswith("open:"),
                                    "setns(%s) returned %r, expected EPERM (%s)%s"
                                    % (ns, v, how, r))
        u = self.sbx("chat:ns", "sh", "-c", "unshare -Ur true")
        self.assertNotEqual(u.rc, 0, "`unshare -Ur true` worked inside%s" % u)
        u2 = self.sbx("chat:ns", "sh", "-c", "unshare -U id -u")
        self.assertNotEqual(u2.rc, 0, u2)
        self.normal_turn_still_works()

    def test_4005_clone3_answers_enosys_so_libc_falls_back_to_the_filtered_clone(self):
        r = self.probe("chat:c3", r'''
args = (ctypes.c_uint64 * 11)()
args[4] = 17  # exit_signal = SIGCHLD, no flags: an ordinary fork if clone3 were allowed
out("clone3_plain", sc("clone3", ctypes.byref(args), 88))
args[0] = 0x10000000  # CLONE_NEWUSER
out("clone3_newuser", sc("clone3", ctypes.byref(args), 88))
pid = os.fork()
if pid == 0:
    os._exit(7)
out("fork_status", os.waitpid(pid, 0)[1] >> 8)
''')
        self.assertErrno(r.vals, "clone3_plain", ["ENOSYS"], str(r))
        self.assertErrno(r.vals, "clone3_newuser", ["ENOSYS"], str(r))
        self.assertEqual(r.vals.get("fork_status"), 7, "plain fork must still work%s" % r)
        self.normal_turn_still_works()

    def test_4006_kernel_attack_surface_syscalls_are_denied(self):
        r = self.probe("chat:ks", r'''
attr = ctypes.create_string_buffer(128)
out("bpf", sc("bpf", 0, ctypes.byref(attr), 72))
out("keyctl", sc("keyctl", 0, -3, 0))
out("add_key", sc("add_key", b"user", b"jb-test", b"payload", 7, -2))
out("request_key", sc("request_key", b"user", b"jb-test", 0, 0))
pe = ctypes.create_string_buffer(128)
struct.pack_into("IIQQ", pe, 0, 1, 128, 0, 0)  # PERF_TYPE_SOFTWARE, cpu-clock
out("perf_event_open", sc("perf_event_open", ctypes.byref(pe), 0, -1, -1, 0))
out("userfaultfd", sc("userfaultfd", 1))  # UFFD_USER_MODE_ONLY
out("kexec_load", sc("kexec_load", 0, 0, 0, 0))
out("init_module", sc("init_module", 0, 0, b""))
out("finit_module", sc("finit_module", 0, b"", 0))
out("delete_module", sc("delete_module", b"ext4", 0))
params = ctypes.create_string_buffer(120)
out("io_uring_setup", sc("io_uring_setup", 4, ctypes.byref(params)))
fh = ctypes.create_string_buffer(64)
struct.pack_into("Ii", fh, 0, 8, 1)
out("open_by_handle_at", sc("open_by_handle_at", -100, ctypes.byref(fh), 0))
''')
        self.assertEqual(r.rc, 0, r)
        for name in ("bpf", "keyctl", "add_key", "request_key", "perf_event_open",
                     "userfaultfd", "kexec_load", "init_module", "finit_module",
                     "delete_module", "io_uring_setup", "open_by_handle_at"):
            with self.subTest(call=name):
                self.assertErrno(r.vals, name, ["EPERM"], str(r))
        self.normal_turn_still_works()

    def test_4007_tiocsti_and_tioclinux_are_denied_even_with_high_bits_set(self):
        r = self.probe("chat:tty", r'''
c = ctypes.create_string_buffer(b"x")
fds = {"devnull": os.open("/dev/null", os.O_RDWR)}
try:
    fds["ptmx"] = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
except OSError:
    pass
try:
    fds["tty"] = os.open("/dev/tty", os.O_RDWR)
    out("has_ctty", True)
except OSError as e:
    out("has_ctty", ename(e.errno))
for fname, fd in fds.items():
    for cname, cmd in (("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541C)):
        for hi in (0, 1 << 32):
            out("%s_%s_%s" % (cname, fname, "hi" if hi else "lo"), sc("ioctl", fd, cmd | hi, ctypes.byref(c)))
out("fionread_ok", sc("ioctl", fds["devnull"], 0x541B, ctypes.byref(ctypes.create_string_buffer(8))))
''')
        self.assertEqual(r.rc, 0, r)
        names = [k for k in r.vals if k.startswith(("TIOCSTI_", "TIOCLINUX_"))]
        self.assertGreaterEqual(len(names), 4, r)
        for k in names:
            with self.subTest(call=k):
                self.assertErrno(r.vals, k, ["EPERM"], str(r))
        self.assertNotEqual(r.vals.get("has_ctty"), True,
                            "the sandbox has a controlling terminal%s" % r)
        self.normal_turn_still_works()

    def test_4008_personality_changes_are_denied(self):
        r = self.probe("chat:pers", r'''
out("PER_LINUX32", sc("personality", 0x0008))
out("ADDR_NO_RANDOMIZE", sc("personality", 0x0040000))
out("READ_IMPLIES_EXEC", sc("personality", 0x0400000))
''')
        for k in ("PER_LINUX32", "ADDR_NO_RANDOMIZE", "READ_IMPLIES_EXEC"):
            with self.subTest(persona=k):
                self.assertErrno(r.vals, k, ["EPERM"], str(r))
        s = self.sbx("chat:pers", "sh", "-c", "setarch -R true || setarch linux32 true")
        self.assertNotEqual(s.rc, 0, "setarch changed the personality%s" % s)
        self.normal_turn_still_works()

    def test_4009_only_inet_sockets_can_be_made_no_unix_netlink_packet_vsock_or_alg(self):
        code = r'''
def mk(fam, typ, proto=0):
    try:
        s = socket.socket(fam, typ, proto)
    except OSError as e:
        return ename(e.errno)
    s.close()
    return "ok"
out("AF_UNIX_stream", mk(1, socket.SOCK_STREAM))
out("AF_UNIX_dgram", mk(1, socket.SOCK_DGRAM))
out("AF_NETLINK_route", mk(16, socket.SOCK_RAW, 0))
out("AF_NETLINK_audit", mk(16, socket.SOCK_RAW, 9))
out("AF_PACKET", mk(17, socket.SOCK_RAW, 0))
out("AF_VSOCK", mk(40, socket.SOCK_STREAM))
out("AF_ALG", mk(38, socket.SOCK_SEQPACKET))
out("AF_INET", mk(2, socket.SOCK_STREAM))
out("AF_INET6", mk(10, socket.SOCK_STREAM))
'''
        for how, r in (("sandbox exec", self.probe("chat:sock", code)),
                       ("agent turn", self.turn_probe("sock", code))):
            for k in ("AF_UNIX_stream", "AF_UNIX_dgram"):
                with self.subTest(how=how, family=k):
                    self.assertErrno(r.vals, k, ["EPERM"], " (%s)%s" % (how, r))
            for k in ("AF_NETLINK_route", "AF_NETLINK_audit", "AF_PACKET", "AF_VSOCK",
                      "AF_ALG"):
                with self.subTest(how=how, family=k):
                    self.assertErrno(r.vals, k, ["EAFNOSUPPORT", "EPERM"], " (%s)%s" % (how, r))
            for k in ("AF_INET", "AF_INET6"):
                with self.subTest(how=how, family=k):
                    self.assertEqual(r.vals.get(k), "ok", "%s must work (%s)%s" % (k, how, r))
        self.normal_turn_still_works()

    def test_4010_less_confined_processes_memory_cannot_be_opened_for_writing(self):
        # Writing /proc/PID/mem of a less confined process in the sandbox (janebot's init,
        # which may still make AF_UNIX sockets, or bwrap's pid 1) would get around the agent
        # filter without ptrace(): code injected there runs under fewer seccomp filters.
        code = r"""
def filters(pid):
    for l in open("/proc/%s/status" % pid).read().splitlines():
        if l.startswith("Seccomp_filters:"):
            return int(l.split()[1])
    return 0
mine = filters("self")
res = {}
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) == os.getpid():
        continue
    try:
        name = open("/proc/%s/comm" % d).read().strip()
        if filters(d) >= mine:
            continue  # as confined as this process: nothing to gain
    except OSError:
        continue
    res[d + ":" + name] = trycall(lambda: os.close(os.open("/proc/%s/mem" % d, os.O_RDWR)))
out("mem", res)
"""
        for how, r in (("sandbox exec", self.probe("chat:mem", code)),
                       ("agent turn", self.turn_probe("mem", code))):
            mem = r.vals.get("mem", {})
            self.assertIn("mem", r.vals, "%s: probe output%s" % (how, r))
            for proc, res in mem.items():
                with self.subTest(how=how, proc=proc):
                    self.assertIn(res, ("EACCES", "EPERM", "ENOENT", "ESRCH"),
                                  "/proc/%s/mem opened read-write (%s)%s" % (proc, how, r))
        self.normal_turn_still_works()

    def test_4011_32_bit_and_x32_system_calls_do_not_run(self):
        import platform
        if platform.machine() != "x86_64":
            self.skipTest("int 0x80 / x32 exist on x86_64 only")
        r = self.probe("chat:i386", r"""
import signal
def in_child(f):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            v = f()
        except Exception as e:
            v = type(e).__name__
        os.write(wr, json.dumps(v).encode())
        os._exit(0)
    os.close(wr)
    _, st = os.waitpid(pid, 0)
    data = os.read(rd, 200)
    if os.WIFSIGNALED(st):
        return "signal %d" % os.WTERMSIG(st)
    return json.loads(data) if data else "no answer"
def int80():
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    m = libc.mmap(None, 4096, 7, 0x22, -1, 0)
    if m in (None, ctypes.c_void_p(-1).value):
        return "mmap " + ename(ctypes.get_errno())
    code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (getpid); int 0x80; ret
    ctypes.memmove(m, code, len(code))
    return ctypes.CFUNCTYPE(ctypes.c_int)(m)()
out("int80", in_child(int80))
out("x32", in_child(lambda: sc_raw(0x40000000 | 39)))
""".replace("sc_raw(", "(lambda n: libc.syscall(ctypes.c_long(n)))("))
        self.assertEqual(r.rc, 0, r)
        for k in ("int80", "x32"):
            with self.subTest(kind=k):
                v = r.vals.get(k)
                self.assertFalse(isinstance(v, int) and v > 0,
                                 "%s getpid ran and returned %r%s" % (k, v, r))
                self.assertIsNotNone(v, r)
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

"""tests/integration/jbtest.py -- shared harness: runs the real janebot binary.

Every test gets a fresh temporary directory holding the state dir, a HOME and a cwd, and
a clean environment: PATH (system dirs only), HOME, JANEBOT_STATE_DIR,
JANEBOT_AGENT=command, JANEBOT_AGENT_CMD=<tests/fakes/agent.py>, JANEBOT_SANDBOX=local.
Nothing else of the caller's environment leaks in except the sanitizer options.
Every run has a timeout; a run that exceeds it is killed and the test fails. A run that
dies by a signal or prints a sanitizer report fails the test.

Binary: $JANEBOT_BIN, default build/janebot under the repository root.
"""
import hashlib
import os
import pty
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
SPRITES_TOKEN = "org-slug/1ef8/SPRITESSECRET4242"  # what the fake Sprites API accepts
AGENT = FAKES / "agent.py"
FAKE_BIN = FAKES / "bin"
BIN = Path(os.path.abspath(os.environ.get("JANEBOT_BIN") or (REPO / "build" / "janebot")))
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSTHROUGH = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
SECRET_TOKEN = "sk-ant-api03-SECRETSECRETSECRET"
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |"
                          r"SUMMARY: (Address|Undefined|Leak)")

_bwrap_reason = "unchecked"


def bwrap_problem():
    """None when bubblewrap can make user namespaces here, else why not."""
    global _bwrap_reason
    if _bwrap_reason != "unchecked":
        return _bwrap_reason
    bw = shutil.which("bwrap", path=SYS_PATH)
    if not bw:
        _bwrap_reason = "bubblewrap (bwrap) is not installed"
        return _bwrap_reason
    base = [bw, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    tries = [base + ["true"],
             # merged-/usr systems: the loader is reached through /lib64 -> usr/lib64
             base + ["--symlink", "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib",
                     "--symlink", "usr/bin", "/bin", "/usr/bin/true"]]
    err = ""
    for argv in tries:
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=20)
        except (OSError, subprocess.TimeoutExpired) as e:
            err = str(e)
            continue
        if p.returncode == 0:
            _bwrap_reason = None
            return None
        err = p.stderr.decode(errors="replace").strip()
    _bwrap_reason = "bubblewrap cannot create user namespaces here: " + err
    return _bwrap_reason


def needs_bwrap(f):
    """Skip (not fail) the test when this machine cannot run bubblewrap sandboxes."""
    reason = bwrap_problem()
    return unittest.skipIf(reason is not None, reason or "")(f)


def sandbox_name(thread_key):
    return "jane-" + hashlib.sha256(thread_key.encode()).hexdigest()[:12]


def procs_matching(needle):
    """Host pids whose command line contains needle (this process excluded)."""
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            found.append((int(d), cmd.strip()))
    return found


def default_signals():
    """preexec_fn: a signal ignored by whoever started the suite (a backgrounded shell
    ignores SIGINT) stays ignored across exec; give janebot the default dispositions."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def with_descendants(pids):
    """pids plus every process below them (by parent pid)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class Result:
    def __init__(self, argv, rc, out, err, secs):
        self.argv, self.rc, self.out, self.err, self.secs = argv, rc, out, err, secs

    @property
    def both(self):
        return self.out + "\n" + self.err

    def __str__(self):
        def cut(s, n=3000):
            return s if len(s) <= n else s[:n // 2] + "\n...[%d bytes cut]...\n" % (
                len(s) - n) + s[-n // 2:]
        return "\n$ janebot %s\n-> exit %s after %.1fs\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.argv), self.rc, self.secs, cut(self.out), cut(self.err))


def mounts_under(top):
    """Mount points below top in this mount namespace, deepest first (homes that are disk
    images, left mounted by a janebot a test killed)."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                               line.split()[4])
                if point.startswith(str(top) + "/"):
                    found.append(point)
    except OSError:
        pass
    return sorted(found, key=len, reverse=True)


def unmount_under(top):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for point in mounts_under(top):
        libc.umount2(point.encode(), 2)  # MNT_DETACH


class JanebotCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        if not BIN.exists():
            self.fail("janebot binary not found at %s (build it with make, or set "
                      "JANEBOT_BIN)" % BIN)
        self.tmp = Path(tempfile.mkdtemp(prefix="jb-it-"))
        self.state = self.tmp / "state"
        self.home = self.tmp / "home"
        self.cwd = self.tmp / "cwd"
        for d in (self.state, self.home, self.cwd):
            d.mkdir(mode=0o700)
        self.env = {
            "PATH": SYS_PATH,
            "HOME": str(self.home),
            "JANEBOT_STATE_DIR": str(self.state),
            "JANEBOT_AGENT": "command",
            "JANEBOT_AGENT_CMD": str(AGENT),
            "JANEBOT_SANDBOX": "local",
        }
        for k in PASSTHROUGH:
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.tags = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        # Kill what our runs left behind (found by the unique tags the test used), by pid.
        pids = [pid for tag in self.tags + [str(self.tmp)] for pid, _ in procs_matching(tag)]
        for pid in with_descendants(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        unmount_under(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------

    def tag(self, prefix="t"):
        t = "%s%s" % (prefix, secrets.token_hex(5))
        self.tags.append(t)
        return t

    def merged_env(self, env=None):
        """self.env with env's entries on top (a None value unsets that variable)."""
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run_jb(self, args, input=None, env=None, timeout=60, cwd=None, stderr_tty=False,
               check_sanitizer=True):
        """Run janebot ARGS; env entries override self.env (None unsets)."""
        e = self.merged_env(env)
        argv = [str(BIN)] + list(args)
        t0 = time.monotonic()
        master = slave = None
        tty_chunks = []
        if stderr_tty:
            master, slave = pty.openpty()
        p = subprocess.Popen(argv, cwd=str(cwd or self.cwd), env=e,
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=slave if stderr_tty else subprocess.PIPE,
                             start_new_session=True, preexec_fn=default_signals)
        reader = None
        if stderr_tty:
            os.close(slave)

            def pump():
                while True:
                    try:
                        b = os.read(master, 65536)
                    except OSError:
                        break
                    if not b:
                        break
                    tty_chunks.append(b)
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
        try:
            out, err = p.communicate(input.encode() if input is not None else None,
                                     timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            out, err = p.communicate()
            if reader:
                reader.join(2)
                os.close(master)
                err = b"".join(tty_chunks)
            r = Result(args, "timeout", out.decode(errors="replace"),
                       (err or b"").decode(errors="replace"), time.monotonic() - t0)
            self.fail("janebot did not finish within %ss (killed)%s" % (timeout, r))
        if reader:
            reader.join(5)
            os.close(master)
            err = b"".join(tty_chunks)
        r = Result(args, p.returncode, out.decode(errors="replace"),
                   (err or b"").decode(errors="replace"), time.monotonic() - t0)
        if check_sanitizer:
            self.assertIsNone(SANITIZER_RE.search(r.err), "sanitizer report%s" % r)
            self.assertGreaterEqual(r.rc, 0, "janebot died by signal %s%s" % (-r.rc, r))
        return r

    def use_fake_sprites(self):
        """Start tests/fakes/sprites.py for this test and point janebot at it
        (JANEBOT_SANDBOX=sprites). Returns the fake."""
        import sys
        if str(FAKES) not in sys.path:
            sys.path.insert(0, str(FAKES))
        from sprites import FakeSprites
        # A sprite's home belongs to its non-root user (uid 1000 in the fake when it runs as
        # root): the way down to it must be open to that user, as /home is on a real sprite.
        os.chmod(self.tmp, 0o711)
        # The agent runs as that user too: a copy it can read wherever the repo lives.
        agent = self.tmp / "agent.py"
        shutil.copy(AGENT, agent)
        agent.chmod(0o755)
        self.env["JANEBOT_AGENT_CMD"] = str(agent)
        fake = FakeSprites(self.tmp / "sprites", SPRITES_TOKEN).start()
        self.addCleanup(fake.stop)
        self.env.update({"JANEBOT_SANDBOX": "sprites", "SPRITES_TOKEN": SPRITES_TOKEN,
                         "SPRITES_API_URL": fake.url})
        return fake

    def chat(self, lines, thread=None, user=None, **kw):
        args = ["chat"]
        if thread is not None:
            args += ["--thread", thread]
        if user is not None:
            args += ["--user", user]
        return self.run_jb(args, input="".join(l + "\n" for l in lines), **kw)

    def chat_ok(self, lines, thread=None, **kw):
        r = self.chat(lines, thread=thread, **kw)
        self.assertEqual(r.rc, 0, "chat should exit 0 at end of input%s" % r)
        return r

    def sbx(self, key, *cmd, **kw):
        return self.run_jb(["sandbox", "exec", key, "--"] + list(cmd), **kw)

    def home_of(self, key):
        return self.state / "sandboxes" / sandbox_name(key) / "home"

    def assertIn_(self, needle, res, where="out"):
        hay = getattr(res, where)
        self.assertIn(needle, hay, "expected %r in %s%s" % (needle, where, res))

    def assertNotIn_(self, needle, res, where="both"):
        hay = getattr(res, where)
        self.assertNotIn(needle, hay, "did not expect %r in %s%s" % (needle, where, res))

    def assertInOrder(self, res, needles, where="out"):
        hay = getattr(res, where)
        pos = -1
        for n in needles:
            i = hay.find(n, pos + 1)
            self.assertGreater(i, pos, "expected %r after position %d in %s (order %r)%s"
                               % (n, pos, where, needles, res))
            pos = i

    def wait_gone(self, needle, timeout=5.0):
        """Wait until no host process has needle in its command line; return leftovers."""
        end = time.monotonic() + timeout
        while True:
            left = procs_matching(needle)
            if not left or time.monotonic() > end:
                return left
            time.sleep(0.1)

    def session_ids(self, key, agent_dir=".fake-agent"):
        d = self.home_of(key) / agent_dir
        if not d.is_dir():
            return []
        return sorted(p.stem for p in d.glob("*.json"))

    def line_with(self, res, needle):
        for line in res.out.splitlines():
            if needle in line:
                return line
        self.fail("no line with %r in stdout%s" % (needle, res))

"""tests/security/sectest.py -- helpers for the sandbox escape suite.

Builds on the integration harness (tests/integration/jbtest.py, imported, not copied):
every test gets its own state dir, HOME and cwd and a clean environment, and runs the
real janebot binary. On top of that:

  SecCase.probe(key, code)   runs `/usr/bin/python3 -c PRELUDE+code` in the thread's
                             sandbox with `janebot sandbox exec`; the probe reports with
                             out(name, value) and the values come back as r.vals
  SecCase.turn_probe(thread, code)  the same probe, run by the fake agent in a real chat
                             turn ("run: /usr/bin/python3 .probe-X.py")
  SecCase.normal_turn_still_works()  the post-condition of every test: a plain chat
                             message in the same state dir is answered
  HostServer                 a small HTTP server on the host's 127.0.0.1 that records the
                             requests it gets

Nothing here talks to anything but 127.0.0.1.
"""
import http.server
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

# the integration harness: temp dirs, clean env, run_jb/chat/sbx, leftover cleanup
from jbtest import (AGENT, BIN, JanebotCase, needs_bwrap,  # noqa: E402,F401
                    sandbox_name)

PY = "/usr/bin/python3"

# Syscall numbers of the architectures the sandbox supports.
SYSCALLS = {
    "x86_64": dict(ioctl=16, clone=56, ptrace=101, personality=135, mount=165, umount2=166,
                   init_module=175, delete_module=176, kexec_load=246, add_key=248,
                   request_key=249, keyctl=250, unshare=272, perf_event_open=298,
                   open_by_handle_at=304, setns=308, process_vm_readv=310,
                   finit_module=313, bpf=321, userfaultfd=323, io_uring_setup=425,
                   open_tree=428, fsopen=430, clone3=435, socket=41),
    "aarch64": dict(ioctl=29, clone=220, ptrace=117, personality=92, mount=40, umount2=39,
                    init_module=105, delete_module=106, kexec_load=104, add_key=217,
                    request_key=218, keyctl=219, unshare=97, perf_event_open=241,
                    open_by_handle_at=265, setns=268, process_vm_readv=270,
                    finit_module=273, bpf=280, userfaultfd=282, io_uring_setup=425,
                    open_tree=428, fsopen=430, clone3=435, socket=198),
}

# Runs inside the sandbox before every probe.
PRELUDE = r'''
import ctypes, errno, json, os, platform, select, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = %s[platform.machine()]
def _arg(x):
    if isinstance(x, int):
        return ctypes.c_long(x)
    if isinstance(x, bytes):
        return ctypes.c_char_p(x)
    return x
def ename(e):
    return errno.errorcode.get(e, str(e))
def sc(name, *args):
    """Raw syscall: its return value, or the errno name."""
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *[_arg(a) for a in args])
    if r == -1:
        return ename(ctypes.get_errno())
    if name in ("clone", "clone3") and r == 0:
        os._exit(0)  # the child of a clone that should not have worked
    if name in ("clone", "clone3") and r > 0:
        try:
            os.waitpid(r, 0)
        except OSError:
            pass
    return r
def out(k, v):
    sys.stdout.write("@@ %%s %%s\n" %% (k, json.dumps(v)))
    sys.stdout.flush()
def trycall(f, *a, **kw):
    try:
        r = f(*a, **kw)
    except OSError as e:
        return ename(e.errno) if e.errno else type(e).__name__ + ": " + str(e)
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
    return "ok" if r is None else r
PROXY = ("127.0.0.1", 3128)
def _read_head(s, deadline):
    data = b""
    while b"\r\n\r\n" not in data:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        if not c:
            break
        data += c
    head, sep, rest = data.partition(b"\r\n\r\n")
    status = None
    if head.startswith(b"HTTP/"):
        try:
            status = int(head.split()[1])
        except (IndexError, ValueError):
            pass
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode(errors="replace")] = v.strip().decode(errors="replace")
    return status, hdrs, rest, bool(sep)
def _read_body(s, hdrs, rest, deadline, limit=65536):
    body = rest
    n = int(hdrs.get("content-length", "-1") or -1)
    while (n < 0 or len(body) < n) and len(body) < limit:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            c = s.recv(65536)
        except (socket.timeout, OSError):
            break
        if not c:
            break
        body += c
    return body.decode(errors="replace")
def http_via(sock_addr, raw, timeout=5.0):
    """Send raw bytes to sock_addr, return {status, body} of the HTTP answer."""
    deadline = time.monotonic() + timeout
    try:
        s = socket.create_connection(sock_addr, timeout=timeout)
    except OSError as e:
        return {"status": None, "error": ename(e.errno) if e.errno else str(e)}
    try:
        s.sendall(raw)
        st, hdrs, rest, _ = _read_head(s, deadline)
        return {"status": st, "body": _read_body(s, hdrs, rest, deadline)}
    except OSError as e:
        return {"status": None, "error": ename(e.errno) if e.errno else str(e)}
    finally:
        s.close()
def forward(url, host, timeout=5.0):
    """Absolute-URI GET through the proxy."""
    raw = ("GET %%s HTTP/1.1\r\nHost: %%s\r\nConnection: close\r\n\r\n" %% (url, host)).encode()
    return http_via(PROXY, raw, timeout)
def connect(authority, then=None, timeout=5.0):
    """CONNECT through the proxy; with then: send it through the tunnel, read the answer."""
    deadline = time.monotonic() + timeout
    try:
        s = socket.create_connection(PROXY, timeout=timeout)
    except OSError as e:
        return {"status": None, "error": ename(e.errno) if e.errno else str(e)}
    try:
        s.sendall(("CONNECT %%s HTTP/1.1\r\nHost: %%s\r\n\r\n" %% (authority, authority)).encode())
        st, hdrs, rest, _ = _read_head(s, deadline)
        res = {"status": st}
        if st == 200:
            if then is not None:
                s.sendall(then)
                st2, h2, rest2, _ = _read_head(s, deadline)
                res["tunnel_status"] = st2
                res["tunnel_body"] = _read_body(s, h2, rest2, deadline)
        else:
            res["body"] = _read_body(s, hdrs, rest, deadline)
        return res
    except OSError as e:
        return {"status": None, "error": ename(e.errno) if e.errno else str(e)}
    finally:
        s.close()
''' % repr(SYSCALLS)


def parse_vals(text):
    vals = {}
    for line in text.splitlines():
        if line.startswith("@@ "):
            _, k, v = line.split(" ", 2)
            try:
                vals[k] = json.loads(v)
            except ValueError:
                vals[k] = v
    return vals


def self_signed_cert(directory, name):
    """A throwaway certificate for name, made with the openssl CLI (which ca-certificates
    brings): (cert path, key path, PEM text of the cert, for a client's cadata)."""
    cert, key = Path(directory) / (name + ".crt"), Path(directory) / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key), cert.read_text()


class HostServer:
    """HTTP/1.1 server on the host's 127.0.0.1:<free port>; records (method, path, host).
    With tls=(cert, key) it speaks HTTPS (handshake in the request's own thread)."""

    def __init__(self, body="hello from the host", tls=None):
        self.body = body.encode()
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 15

            def do_GET(self):
                outer.requests.append(("GET", self.path, self.headers.get("Host", "")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = 128

        self.httpd = S(("127.0.0.1", 0), H)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.httpd.handle_error = lambda *a: None  # failed handshakes are expected
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def paths(self):
        return [p for _, p, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SecCase(JanebotCase):
    """JanebotCase plus probes and the normal-turn post-condition."""

    def setUp(self):
        super().setUp()
        self.env["JANEBOT_TURN_TIMEOUT"] = "60"

    def probe(self, key, code, timeout=40, env=None, input=None):
        r = self.sbx(key, PY, "-c", PRELUDE + code, timeout=timeout, env=env, input=input)
        r.vals = parse_vals(r.out)
        r.argv = r.argv[:-1] + ["'<PRELUDE>%s'" % code.strip()]  # shorter failure reports
        return r

    def turn_probe(self, thread, code, timeout=60, env=None):
        """Run the probe as an agent turn: the fake agent's `run:` tool call."""
        name = ".probe-%s.py" % secrets.token_hex(4)
        w = self.sbx("chat:" + thread, "sh", "-c", "cat > " + name, input=PRELUDE + code,
                     env=env, timeout=30)
        self.assertEqual(w.rc, 0, "could not put the probe into the home%s" % w)
        r = self.chat_ok(["run: %s %s; rm -f %s" % (PY, name, name)], thread=thread,
                         env=env, timeout=timeout)
        r.vals = parse_vals(r.out)
        return r

    def normal_turn_still_works(self, thread="afterwards", env=None):
        """Post-condition: a plain message in the same state dir is still answered."""
        word = "hello-" + secrets.token_hex(4)
        r = self.chat([word], thread=thread, env=env, timeout=60)
        self.assertEqual(r.rc, 0, "post-condition: chat should exit 0%s" % r)
        self.assertIn("echo: %s (turn" % word, r.out,
                      "post-condition: a normal turn should still be answered%s" % r)
        return r

    def host_server(self, body=None, tls_name=None):
        """A HostServer for this test; with tls_name an HTTPS one whose certificate names
        tls_name (its PEM in s.cert_pem, for the probe's cadata)."""
        tls = None
        if tls_name:
            cert, key, pem = self_signed_cert(self.tmp, tls_name)
            tls = (cert, key)
        s = HostServer(body or "host-body-" + secrets.token_hex(6), tls=tls)
        s.cert_pem = pem if tls_name else None
        self.addCleanup(s.close)
        return s

    def assertErrno(self, vals, name, allowed, msg=""):
        self.assertIn(name, vals, "probe did not report %s%s" % (name, msg))
        self.assertIn(vals[name], allowed, "%s returned %r, expected one of %s%s"
                      % (name, vals[name], allowed, msg))


def host_memory_cgroup():
    """Why this host has no memory controller janebot could use, or None when it has one:
    root with the v1 memory hierarchy, or root with memory in the v2 root's controllers."""
    if os.geteuid() != 0:
        return "not root: no writable memory cgroup without delegation"
    if os.access("/sys/fs/cgroup/memory/cgroup.procs", os.W_OK):
        return None
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return None if "memory" in f.read().split() else "no memory controller in cgroup v2"
    except OSError:
        return "no cgroup hierarchy with a memory controller"


def memory_cgroup_base(env):
    """The cgroup directory janebot makes sandbox cgroups in, per `janebot doctor`; None
    when doctor says no memory limit is in force."""
    r = subprocess.run([str(BIN), "doctor"], env=env, capture_output=True, text=True, timeout=60)
    m = re.search(r"^ok\s+memory limit\s+.* under (\S+)$", r.stdout, re.M)
    return m.group(1) if m else None


def host_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

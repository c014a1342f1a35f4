#!/usr/bin/python3
"""bench/proxy-throughput.py -- a download through the host's egress proxy from inside a sandbox, against the same download straight over the host's loopback.

  bench/proxy-throughput.py JANEBOT_BINARY [--runs N] [--mib N]

Prints time to first byte and throughput (min / median / max over RUNS) for:
  direct    a client on the host -> 127.0.0.1 origin
  sandboxed a client inside `janebot sandbox exec` -> the sandbox's 127.0.0.1:3128,
            a listener handed to the host -> egress proxy (allowlist, resolution)
            -> 127.0.0.1 origin
and the goal row "egress throughput" (sandboxed / direct median >= 0.8).

The anchor must not be the bottleneck, or the ratio says nothing about the proxy: the
origin answers with sendfile(2) from a file in the page cache (no copy through Python),
and the client reads into one reused 4 MiB buffer (one copy, as any real client makes).
The same client program runs on both paths."""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

CLIENT = r"""
import json, socket, sys, time
host, port, proxy = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
t0 = time.monotonic()
if proxy:
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(("GET http://%s/x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (host, host)).encode())
else:
    s = socket.create_connection((host, port))
    s.sendall(("GET /x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
first = None; total = 0
buf = bytearray(4 << 20)
recv_into = s.recv_into
while True:
    n = recv_into(buf)
    if not n: break
    if first is None: first = time.monotonic()
    total += n
t1 = time.monotonic()
print(json.dumps({"ttfb_ms": (first - t0) * 1e3, "secs": t1 - t0, "bytes": total}))
"""


class Origin:
    """HTTP/1.1 origin: reads a request head, answers 200 with the file's bytes by sendfile."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            got = b""
            while b"\r\n\r\n" not in got:
                k = c.recv(65536)
                if not k:
                    return
                got += k
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % self.size)
            with open(self.path, "rb") as f:
                off = 0
                while off < self.size:
                    n = os.sendfile(c.fileno(), f.fileno(), off, self.size - off)
                    if n <= 0:
                        break
                    off += n
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()


def spread_of(samples, key):
    return benchlib.spread([key(s) for s in samples])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("janebot")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--mib", type=int, default=200)
    a = ap.parse_args()
    if a.runs < 5:
        sys.exit("proxy-throughput: at least 5 runs")
    jb = os.path.abspath(a.janebot)
    state = tempfile.mkdtemp(prefix="janebot-bench-")
    blob = os.path.join(state, "blob")
    with open(blob, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(a.mib):
            f.write(chunk)
    with open(blob, "rb") as f:  # into the page cache before the first run
        while f.read(8 << 20):
            pass
    origin = Origin(blob)
    env = dict(os.environ, JANEBOT_STATE_DIR=os.path.join(state, "state"), JANEBOT_AGENT="command",
               JANEBOT_AGENT_CMD="/bin/true", JANEBOT_SANDBOX="local", JANEBOT_LOG_LEVEL="error",
               JANEBOT_EGRESS_ALLOW="origin.bench.example.com",
               JANEBOT_EGRESS_TEST_HOSTS="origin.bench.example.com=127.0.0.1:%d" % origin.port)
    try:
        direct, boxed = [], []
        for _ in range(a.runs):  # interleaved: a slow moment of the machine hits both
            out = subprocess.run([sys.executable, "-c", CLIENT, "127.0.0.1", str(origin.port), "0"],
                                 capture_output=True, text=True, check=True).stdout
            direct.append(json.loads(out))
            out = subprocess.run([jb, "sandbox", "exec", "bench:proxy", "--", "/usr/bin/python3",
                                  "-c", CLIENT, "origin.bench.example.com", "80", "1"],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                sys.exit("sandboxed run failed: %s" % out.stderr)
            boxed.append(json.loads(out.stdout))
        for s in direct + boxed:
            assert s["bytes"] >= a.mib << 20, s
        print("%d MiB download, %d runs each; %d CPUs\n" % (a.mib, a.runs, os.cpu_count() or 0))
        print("| path | TTFB ms min | median | max | MiB/s min | median | max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        rates = {}
        for name, samples in (("direct", direct), ("sandboxed", boxed)):
            t = spread_of(samples, lambda s: s["ttfb_ms"])
            r = rates[name] = spread_of(samples, lambda s: s["bytes"] / (1 << 20) / s["secs"])
            print("| %s | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f |" % ((name,) + t + r))
        benchlib.report("Egress proxy goal", [benchlib.Goal(
            "egress throughput", "MiB/s", rates["sandboxed"], "direct loopback", rates["direct"],
            "ratio_min", 0.8,
            "%d MiB: a sandbox's client through the egress proxy (splice) vs the same client and sendfile "
            "origin over the host's loopback" % a.mib)])
    finally:
        origin.sock.close()
        # The sandbox (its home image is mounted) goes before its state dir does.
        subprocess.run([jb, "sandbox", "rm", "bench:proxy"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


main()

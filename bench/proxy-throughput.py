#!/usr/bin/python3
"""bench/proxy-throughput.py -- a 100 MiB download through the sandbox's relay and the
host's egress proxy, against the same download straight over the host's loopback.

Prints time to first byte and throughput (min / median / max over RUNS) for:
  direct    a client on the host -> 127.0.0.1 origin
  sandboxed a client inside `janebot sandbox exec` -> relay 127.0.0.1:3128 -> Unix
            socket -> egress proxy (allowlist, resolution) -> 127.0.0.1 origin
usage: proxy-throughput.py JANEBOT_BINARY [RUNS] [MIB]"""
import http.server, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

CLIENT = r"""
import json, os, socket, sys, time
host, port, path, proxy = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
t0 = time.monotonic()
if proxy:
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(("GET http://%s/%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (host, path, host)).encode())
else:
    s = socket.create_connection((host, port))
    s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
first = None; total = 0
buf = bytearray(1 << 20)
while True:
    n = s.recv_into(buf)
    if not n: break
    if first is None: first = time.monotonic()
    total += n
t1 = time.monotonic()
print(json.dumps({"ttfb_ms": (first - t0) * 1e3, "secs": t1 - t0, "bytes": total}))
"""

class Origin(http.server.BaseHTTPRequestHandler):
    size = 0
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        chunk = b"\0" * (1 << 20)
        left = self.size
        while left:
            n = min(left, len(chunk))
            self.wfile.write(chunk[:n])
            left -= n
    def log_message(self, *a):
        pass

def row(name, samples):
    ttfb = [s["ttfb_ms"] for s in samples]
    mibs = [s["bytes"] / (1 << 20) / s["secs"] for s in samples]
    f = lambda v: "%8.2f | %8.2f | %8.2f" % (min(v), statistics.median(v), max(v))
    print("| %-9s | %s | %s |" % (name, f(ttfb), f(mibs)))

def main():
    jb = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    Origin.size = mib << 20
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state = tempfile.mkdtemp(prefix="janebot-bench-")
    client = os.path.join(state, "client.py")
    with open(client, "w") as f:
        f.write(CLIENT)
    os.chmod(client, 0o755)
    env = dict(os.environ, JANEBOT_STATE_DIR=os.path.join(state, "state"), JANEBOT_AGENT="command",
               JANEBOT_AGENT_CMD="/bin/true", JANEBOT_SANDBOX="local", JANEBOT_LOG_LEVEL="error",
               JANEBOT_EGRESS_ALLOW="origin.bench.example.com",
               JANEBOT_EGRESS_TEST_HOSTS="origin.bench.example.com=127.0.0.1:%d" % port)
    try:
        direct, boxed = [], []
        for _ in range(runs):
            out = subprocess.run(["/usr/bin/python3", "-c", CLIENT, "127.0.0.1", str(port), "x", "0"],
                                 capture_output=True, text=True, check=True).stdout
            direct.append(json.loads(out))
            out = subprocess.run([jb, "sandbox", "exec", "bench:proxy", "--", "/usr/bin/python3", "-c",
                                  CLIENT, "origin.bench.example.com", "80", "x", "1"],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                sys.exit("sandboxed run failed: %s" % out.stderr)
            boxed.append(json.loads(out.stdout))
        for s in direct + boxed:
            assert s["bytes"] >= mib << 20, s
        print("%d MiB download, %d runs each\n" % (mib, runs))
        print("| path      | TTFB ms min | median |      max | MiB/s min | median |      max |")
        print("|-----------|----------|----------|----------|----------|----------|----------|")
        row("direct", direct)
        row("sandboxed", boxed)
    finally:
        srv.shutdown()
        shutil.rmtree(state, ignore_errors=True)

main()

#!/usr/bin/python3
"""bench/llm-proxy.py -- janebot's LLM proxy against a direct connection to the upstream.

  bench/llm-proxy.py JANEBOT_BINARY [--runs N] [--mib N] [--streams N] [--stream-kib N]

Starts tests/fakes/llm_upstream.py (fake Anthropic Messages API) on 127.0.0.1 and measures:
  1. one streamed /v1/messages response of MIB MiB of text deltas (SSE), RUNS times:
     direct   a client on the host -> the fake
     proxied  a client inside `janebot sandbox exec` -> ANTHROPIC_BASE_URL
              (127.0.0.1:4000, a listener handed to the host LLM proxy -> the fake)
     time to first body byte and throughput (min / median / max);
  2. STREAMS concurrent streamed requests (each about STREAM_KIB KiB in 20 events),
     direct, proxied from one sandbox, and proxied spread over SANDBOXES sandboxes (their
     execs started together; wall = the slowest): how many completed, p50 / p99 / max total
     time. One sandbox's LLM proxy serves 64 requests at once; past that a request waits
     in the socket's backlog until one ends, so every row should complete all STREAMS. A
     clean refusal (a 503 answer) is counted apart from a failure (a reset, a close
     without an answer, a timeout).
Prints markdown tables and the goal row "LLM proxy TTFB" (proxied median - direct median
<= 0.5 ms; bench/benchlib.py).
Prints markdown tables. The in-sandbox client takes the base URL and the scoped token from
its environment, so the proxied rows fail (with the reason) until janebot gives the
sandbox ANTHROPIC_BASE_URL.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROUNDS = 3  # direct and proxied take turns this many times

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(REPO, "tests", "fakes", "llm_upstream.py")

CLIENT = r'''
import json, os, socket, sys, threading, time
mode, n, size_kib = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
base = os.environ.get("ANTHROPIC_BASE_URL")
tok = os.environ.get("ANTHROPIC_API_KEY")
if not base or not tok:
    print(json.dumps({"fatal": "ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY not set in this environment"}))
    sys.exit(0)
hostport, _, bpath = base.split("://", 1)[1].partition("/")
host, _, port = hostport.partition(":")
path = ("/" + bpath if bpath else "").rstrip("/") + "/v1/messages?beta=true"

def one(fake):
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                       "messages": [{"role": "user", "content": "bench"}], "fake": fake}).encode()
    head = ("POST %s HTTP/1.1\r\nhost: %s\r\nx-api-key: %s\r\nanthropic-version: 2023-06-01\r\n"
            "content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (path, hostport, tok, len(body))).encode()
    r = {"status": None, "error": None}
    try:
        s = socket.create_connection((host, int(port or 80)), timeout=60)
        t0 = time.monotonic()
        s.sendall(head + body)
        buf = bytearray(1 << 20)
        got = b""
        hdr = -1
        first = None
        total = 0
        while True:
            k = s.recv_into(buf)
            if not k:
                break
            if hdr < 0:
                got += bytes(buf[:k])
                hdr = got.find(b"\r\n\r\n")
                if hdr >= 0:
                    r["status"] = int(got.split(b" ", 2)[1])
                    extra = len(got) - hdr - 4
                    total += extra
                    if extra:
                        first = time.monotonic()
            else:
                if first is None:
                    first = time.monotonic()
                total += k
        t1 = time.monotonic()
        s.close()
        r.update({"ttfb_ms": ((first or t1) - t0) * 1e3, "secs": t1 - t0, "bytes": total})
    except Exception as e:
        r["error"] = "%s: %s" % (type(e).__name__, e)
    return r

if mode == "one":
    one({"deltas": 1})  # warm-up, not counted: the first connection of a process
    print(json.dumps([one({"mib": size_kib / 1024.0}) for _ in range(n)]))
else:
    # about size_kib KiB in 20 text deltas
    text_len = max(1, int(size_kib * 1024 / 20))
    res = [None] * n
    go = threading.Event()
    def worker(i):
        go.wait()
        res[i] = one({"deltas": 20, "text": "y" * text_len})
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    t0 = time.monotonic()
    go.set()
    for t in ts: t.join()
    print(json.dumps({"wall": time.monotonic() - t0, "results": res}))
'''


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def run_client(argv_tail, boxed, jb, env, timeout):
    if boxed:
        argv = [jb, "sandbox", "exec", "bench:llm", "--", "/usr/bin/python3", "-"] + argv_tail
    else:
        argv = [sys.executable, "-"] + argv_tail
    p = subprocess.run(argv, input=CLIENT.encode(), capture_output=True, env=env,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace").strip().splitlines()
    if p.returncode != 0 or not out:
        raise RuntimeError("client failed (exit %s): %s" % (p.returncode,
                                                            p.stderr.decode(errors="replace")[-1500:]))
    res = json.loads(out[-1])
    if isinstance(res, dict) and res.get("fatal"):
        raise RuntimeError(res["fatal"])
    return res


def run_many(streams, kib, boxed, jb, env, nbox):
    """streams concurrent requests split over nbox concurrent clients (one sandbox each)."""
    if nbox == 1:
        return run_client(["many", str(streams), str(kib)], boxed, jb, env, 300)
    import threading
    outs, errs = [None] * nbox, []

    def one(i):
        n = streams // nbox + (1 if i < streams % nbox else 0)
        try:
            argv = ["many", str(n), str(kib)]
            p = subprocess.run([jb, "sandbox", "exec", "bench:llm%d" % i, "--",
                                "/usr/bin/python3", "-"] + argv, input=CLIENT.encode(),
                               capture_output=True, env=env, timeout=300)
            outs[i] = json.loads(p.stdout.decode().strip().splitlines()[-1])
            if outs[i].get("fatal"):
                errs.append(outs[i]["fatal"])
        except Exception as e:
            errs.append("%s: %s" % (type(e).__name__, e))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(nbox)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise RuntimeError(errs[0])
    return {"wall": max(o["wall"] for o in outs), "results": [r for o in outs for r in o["results"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("janebot")
    ap.add_argument("--runs", type=int, default=30,
                    help="requests per side, in 3 rounds; a median of fewer moves with single slow ones")
    ap.add_argument("--mib", type=float, default=10)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--stream-kib", type=float, default=8)
    ap.add_argument("--sandboxes", type=int, default=4,
                    help="also spread the concurrent streams over this many sandboxes")
    a = ap.parse_args()
    if a.runs < 5:
        sys.exit("llm-proxy: at least 5 runs")
    jb = os.path.abspath(a.janebot)
    tmp = tempfile.mkdtemp(prefix="janebot-bench-llm-")
    port_file = os.path.join(tmp, "port")
    fake = subprocess.Popen([sys.executable, FAKE, "--port-file", port_file],
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        port = int(open(port_file).read())
        url = "http://127.0.0.1:%d" % port
        real = "sk-ant-api03-BENCHKEY-0123456789abcdef"
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.path.join(tmp, "home")}
        os.makedirs(base["HOME"])
        direct_env = dict(base, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=real)
        jb_env = dict(base, JANEBOT_STATE_DIR=os.path.join(tmp, "state"),
                      JANEBOT_AGENT="command", JANEBOT_AGENT_CMD="/bin/true",
                      JANEBOT_SANDBOX="local", JANEBOT_LOG_LEVEL="error",
                      ANTHROPIC_API_KEY=real, JANEBOT_UPSTREAM_ANTHROPIC=url)
        kib = a.mib * 1024
        print("LLM proxy benchmark: %g MiB SSE stream x %d, %d concurrent streams of ~%g KiB; "
              "%d CPUs; %s\n" % (a.mib, a.runs, a.streams, a.stream_kib, os.cpu_count() or 0, jb))

        single = {"direct": [], "proxied": []}
        errors = {}
        # Rounds of both, interleaved: a busy moment of the machine hits both sides.
        per = max(1, (a.runs + ROUNDS - 1) // ROUNDS)
        for _ in range(ROUNDS):
            for name, boxed, env in (("direct", False, direct_env), ("proxied", True, jb_env)):
                if name in errors:
                    continue
                try:
                    rs = run_client(["one", str(per), str(kib)], boxed, jb, env, 300)
                    bad = [r for r in rs if r.get("error") or r.get("status") != 200]
                    if bad:
                        raise RuntimeError("request failed: %s" % bad[0])
                    single[name] += rs
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    errors[name] = str(e)
        print("| %g MiB SSE stream | TTFB ms min | median | max | MiB/s min | median | max |"
              % a.mib)
        print("|---|---:|---:|---:|---:|---:|---:|")
        ttfb = {}
        for name in ("direct", "proxied"):
            if name in errors:
                print("| %s | failed: %s | | | | | |" % (name, errors[name].replace("|", "/")[:200]))
                continue
            t = ttfb[name] = benchlib.spread([r["ttfb_ms"] for r in single[name]])
            m = benchlib.spread([r["bytes"] / (1 << 20) / r["secs"] for r in single[name]])
            print("| %s (%d runs) | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f |" % (
                (name, len(single[name])) + t + m))
        print()

        print("| %d concurrent streams | completed | refused (503) | failed | p50 ms | p99 ms | "
              "max ms | wall s |" % a.streams)
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        k = max(1, a.sandboxes)
        rows = [("direct", False, direct_env, 1), ("proxied, 1 sandbox", True, jb_env, 1)]
        if k > 1:
            rows.append(("proxied, %d sandboxes" % k, True, jb_env, k))
        for name, boxed, env, nbox in rows:
            try:
                res = run_many(a.streams, a.stream_kib, boxed, jb, env, nbox)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print("| %s | failed: %s | | | | | | |" % (name, str(e).replace("|", "/")[:200]))
                continue
            ok = [r for r in res["results"] if r and r.get("status") == 200 and not r.get("error")]
            # A clean refusal: the answer a cap gives (none is expected: past a sandbox's
            # cap of 64 requests at once, requests wait for one to end).
            refused = [r for r in res["results"] if r and r.get("status") == 503
                       and not r.get("error")]
            bad = [r for r in res["results"] if r not in ok and r not in refused]
            ms = [r["secs"] * 1e3 for r in ok]
            print("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.2f |" % (
                name, len(ok), len(refused), len(bad), pct(ms, 50), pct(ms, 99),
                max(ms) if ms else float("nan"), res["wall"]))
            if bad:
                kinds = {}
                for r in bad:
                    k = r.get("error") or "status %s" % r.get("status")
                    kinds[k] = kinds.get(k, 0) + 1
                print("| (%s failures: %s) | | | | | | | |" % (name, "; ".join(
                    "%dx %s" % (v, k[:80]) for k, v in kinds.items()).replace("|", "/")))
        benchlib.report("LLM proxy goal", [benchlib.Goal(
            "LLM proxy TTFB", "ms", ttfb.get("proxied"), "direct to the upstream",
            ttfb.get("direct"), "margin_max", 0.5,
            "first body byte of a %g MiB SSE stream, from the request's send; proxied: a "
            "client in a sandbox, LLM proxy on the sandbox's listener (token check, key swap)"
            % a.mib)])
    finally:
        fake.terminate()
        fake.wait(5)
        # The sandboxes (their home images are mounted) go before their state dir does.
        rm_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "JANEBOT_SANDBOX": "local",
                  "JANEBOT_AGENT": "command", "JANEBOT_AGENT_CMD": "/bin/true",
                  "JANEBOT_LOG_LEVEL": "error", "JANEBOT_STATE_DIR": os.path.join(tmp, "state")}
        for key in ["bench:llm"] + ["bench:llm%d" % i for i in range(max(1, a.sandboxes))]:
            subprocess.run([jb, "sandbox", "rm", key], env=rm_env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""bench/slack-ack.py -- Socket Mode ack latency and memory of `janebot serve`, side by side
with a minimal Node bot on @slack/socket-mode (bench/node-socket-mode/bot.js: ack at once,
push the event onto an in-memory queue, nothing else), both against the same fake Slack
(tests/fakes/slack.py) in the same run.

For each bot: reset the fake (/_control/reset), start the bot, wait for its hello,
read RSS at idle (VmRSS of the bot's own process), inject events at 50/s for 10 s and at
200/s for 10 s (paced by a few threads driving the fake's control API), then top the total
up to 10,000 events, wait until everything is acked and read RSS again. Ack latency is the
fake's own record per envelope: the time the fake read the ack frame minus the time it
queued the envelope for sending (first delivery attempts only). Every event is a message
with subtype bot_message: janebot acks it and ignores it by design (no agent turn, no
sandbox), so the comparison is about intake and ack, like the Node bot that does no work.

usage: bench/slack-ack.py [JANEBOT_BINARY]      (default build/janebot)
Everything listens on 127.0.0.1; every wait is bounded; the fake, the bots and the temp
dir are cleaned up on every exit path. `npm install` runs in bench/node-socket-mode when
its node_modules lack the pinned @slack/socket-mode; if that fails, the Node rows are
skipped with the reason and the janebot rows are still printed.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FAKE = os.path.join(REPO, "tests", "fakes", "slack.py")
AGENT = os.path.join(REPO, "tests", "fakes", "agent.py")
NODE_DIR = os.path.join(HERE, "node-socket-mode")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

BOT_TOKEN = "xoxb-bench-1111-2222-b0tT0kenBenchValue"
APP_TOKEN = "xapp-bench-1-A0JANEBOT1-3333-appT0kenBenchValue"

PHASES = [(50, 10.0), (200, 10.0)]   # (envelopes/s, seconds): the measured phases
TOTAL = 10000                        # events per bot before the second RSS reading
FILL_RATE = 1000                     # pace of the top-up to TOTAL (not measured)
WORKERS = 8                          # threads driving /_control/inject
IDLE_SECS = 2.0                      # settle time before the idle RSS reading
CONNECT_TIMEOUT = 20.0
DRAIN_TIMEOUT = 20.0                 # wait for the last acks (retries are 3 s apart)
NPM_TIMEOUT = 90


class BenchError(Exception):
    pass


# ---- the fake's control API ----------------------------------------------------------

class Control:
    """Control API client on one persistent HTTP/1.1 connection (one per thread)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, op, body=None, timeout=30.0):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                           timeout=timeout)
                    self.conn.connect()
                    self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # The fake writes headers and body in two send()s; without a quick ACK
                # from us, Nagle (its side) + delayed ACK (ours) cost ~40 ms per call.
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                if body is None:
                    self.conn.request("GET", "/_control/" + op)
                else:
                    self.conn.request("POST", "/_control/" + op, json.dumps(body),
                                      {"Content-Type": "application/json"})
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                r = self.conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise BenchError("control %s: HTTP %s %s" % (op, r.status, data[:300]))
                out = json.loads(data.decode())
                if not out.get("ok", True):
                    raise BenchError("control %s: %s" % (op, out))
                return out
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise BenchError("unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


# ---- processes -----------------------------------------------------------------------

PROCS = []


def spawn(argv, log_path, env=None, cwd=None):
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                             cwd=cwd, start_new_session=True)
    finally:
        log.close()
    PROCS.append(p)
    return p


def stop(p, grace=3.0):
    """SIGTERM the process group we started, then SIGKILL it."""
    if p is None:
        return
    try:
        pgid = os.getpgid(p.pid) if p.poll() is None else p.pid
    except OSError:
        pgid = p.pid
    if p.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)  # stragglers of the group, if any
    except OSError:
        pass
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        pass
    if p in PROCS:
        PROCS.remove(p)


def tail(path, n=1500):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


T0 = time.monotonic()


def progress(msg):
    print("slack-ack: [%5.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


def children(pid):
    """Number of live descendants of pid (janebot runs agents in child processes; with
    ignored events there should be none)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = 0, [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                found += 1
                todo.append(c)
    return found


def mib(kib):
    return "%.1f" % (kib / 1024.0)


# ---- fake Slack ----------------------------------------------------------------------

def start_fake(tmp):
    port_file = os.path.join(tmp, "fake.port")
    log = os.path.join(tmp, "fake.log")
    p = spawn([PYTHON, FAKE, "--port-file", port_file], log)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if p.poll() is not None:
            raise BenchError("fake Slack exited (%s):\n%s" % (p.returncode, tail(log)))
        try:
            with open(port_file) as f:
                parts = f.read().split()
            if len(parts) == 2:
                return p, int(parts[0]), log
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise BenchError("fake Slack did not start within 10 s:\n%s" % tail(log))


# ---- injection -----------------------------------------------------------------------

def paced(port, rate, count, request):
    """Call request(ctl, i) for i in 0..count-1 from WORKERS threads (one control
    connection each); call i is due at t0 + i/rate (made at once when the workers are
    behind). request returns a list of ids. Returns (ids, seconds, errors)."""
    lock = threading.Lock()
    nxt = [0]
    ids = []
    errors = []
    t0 = time.monotonic() + 0.05

    def worker():
        ctl = Control(port)
        try:
            while True:
                with lock:
                    i = nxt[0]
                    if i >= count or len(errors) > 20:
                        return
                    nxt[0] += 1
                delay = t0 + i / float(rate) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    got = request(ctl, i)
                    with lock:
                        ids.extend(got)
                except (BenchError, OSError, http.client.HTTPException, ValueError,
                        KeyError) as e:
                    with lock:
                        errors.append(str(e))
        finally:
            ctl.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + count / float(rate) * 3 + 30
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        errors.append("injection did not finish in time")
    return ids, time.monotonic() - t0, errors


def inject_paced(port, rate, count, first_index):
    """count bot_message events through /_control/inject: the fake registers each one and
    records its envelope's send and ack times. Returns (event_ids, seconds, errors)."""
    def req(ctl, i):
        return ctl.call("inject", {"kind": "bot_message",
                                   "text": "bench event %d" % (first_index + i)})["event_ids"]
    return paced(port, rate, count, req)


def frames_paced(port, rate, count, template, first_index):
    """count events as raw envelope frames (/_control/frame): a copy of template (a frame
    the fake built for an injected event) with fresh envelope_id, event_id and ts. The fake
    does not track these; their acks land in its stray_acks (why "unknown"), which is how
    we count them. Used for the unmeasured top-up to TOTAL only: /_control/inject scans
    every envelope recorded so far on each call, so injecting thousands more that way
    slows down quadratically. Returns (envelope_ids, seconds, errors)."""
    def req(ctl, i):
        n = first_index + i
        env_id = "bench-fill-%08d-%s" % (n, os.urandom(6).hex())
        ts = "1717190000.%06d" % n
        payload = dict(template["payload"], event_id="EvBENCHFILL%07d" % n)
        payload["event"] = dict(template["payload"]["event"], ts=ts, event_ts=ts,
                                text="bench event %d" % n)
        frame = dict(template, envelope_id=env_id, payload=payload)
        out = ctl.call("frame", {"text": json.dumps(frame)})
        if out.get("sent_to") != 1:
            raise BenchError("frame went to %s sockets, expected 1" % out.get("sent_to"))
        return [env_id]
    return paced(port, rate, count, req)


def wait_drained(ctl, proc, what, raw_ids=()):
    """Poll the fake until nothing is pending, every envelope sent was acked or timed out,
    and every raw frame in raw_ids was acked. Returns the last state."""
    end = time.monotonic() + DRAIN_TIMEOUT
    while True:
        s = ctl.call("state", timeout=60)
        sent = [e for e in s["envelopes"] if e["sent_at"]]
        open_ = [e for e in sent if not e["acked_at"] and not e["timed_out"]]
        raw_acked = sum(1 for a in s["stray_acks"] if a["envelope_id"] in raw_ids)
        if not s["pending"] and not open_ and raw_acked >= len(raw_ids):
            return s
        if proc.poll() is not None:
            raise BenchError("%s exited (rc %s) while draining" % (what, proc.returncode))
        if time.monotonic() > end:
            return s
        time.sleep(0.5)


def pct(sorted_vals, q):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 1)) - 1))
    return sorted_vals[k]


def phase_stats(state, event_ids):
    want = set(event_ids)
    first = [e for e in state["envelopes"] if e["event_id"] in want and e["retry_attempt"] == 0]
    lat = sorted(e["latency"] * 1000.0 for e in first
                 if e["latency"] is not None and not e["late"])
    sent = sorted(e["sent_at"] for e in first if e["sent_at"])
    achieved = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] \
        else float("nan")
    retries = sum(1 for e in state["envelopes"] if e["event_id"] in want and e["retry_attempt"])
    late = sum(1 for e in first if e["late"])
    return {"events": len(want), "acks": len(lat), "p50": pct(lat, 0.50),
            "p99": pct(lat, 0.99), "max": lat[-1] if lat else float("nan"),
            "achieved": achieved, "retries": retries, "late": late}


# ---- one bot -------------------------------------------------------------------------

def run_bot(name, argv, env, cwd, port, tmp):
    ctl = Control(port)
    ctl.call("reset", {})
    log = os.path.join(tmp, "%s.log" % name)
    proc = spawn(argv, log, env=env, cwd=cwd)
    try:
        end = time.monotonic() + CONNECT_TIMEOUT
        while True:
            s = ctl.call("state")
            if any(c["hello_at"] and c["open"] for c in s["connections"]):
                break
            if proc.poll() is not None:
                raise BenchError("%s exited (rc %s) before connecting:\n%s"
                                 % (name, proc.returncode, tail(log)))
            if time.monotonic() > end:
                raise BenchError("%s did not connect within %.0f s:\n%s"
                                 % (name, CONNECT_TIMEOUT, tail(log)))
            time.sleep(0.1)
        progress("%s: connected" % name)
        time.sleep(IDLE_SECS)
        rss_idle = rss_kib(proc.pid)

        done = 0
        phases = []
        for rate, secs in PHASES:
            n = int(rate * secs)
            progress("%s: %d events at %d/s" % (name, n, rate))
            ids, took, errs = inject_paced(port, rate, n, done)
            if errs:
                raise BenchError("%s: injection at %d/s failed: %s" % (name, rate, errs[:3]))
            done += n
            phases.append((rate, ids, took))
            time.sleep(1.0)  # let the last acks of this phase in before the next one
        state = wait_drained(ctl, proc, name)
        fill_ids = []
        if TOTAL > done:
            template = next(e["frame"] for e in state["envelopes"]
                            if e["event_id"] == phases[0][1][0])
            progress("%s: %d more events as raw frames at %d/s (top-up, not measured)"
                     % (name, TOTAL - done, FILL_RATE))
            fill_ids, _, errs = frames_paced(port, FILL_RATE, TOTAL - done, template, done)
            if errs:
                raise BenchError("%s: top-up failed: %s" % (name, errs[:3]))
            state = wait_drained(ctl, proc, name, set(fill_ids))
        progress("%s: %d events sent, all acked" % (name, TOTAL))
        if proc.poll() is not None:
            raise BenchError("%s exited (rc %s):\n%s" % (name, proc.returncode, tail(log)))
        time.sleep(1.0)
        rss_after = rss_kib(proc.pid)
        kids = children(proc.pid)
        progress("%s: done" % name)
        rows = []
        for rate, ids, took in phases:
            st = phase_stats(state, ids)
            st.update(rate=rate, inject_secs=took)
            rows.append(st)
        total = phase_stats(state, [i for _, ids, _ in phases for i in ids])
        fill = set(fill_ids)
        fill_acks = {}
        for a in state["stray_acks"]:
            if a["envelope_id"] in fill:
                fill_acks[a["envelope_id"]] = fill_acks.get(a["envelope_id"], 0) + 1
        other_stray = sum(1 for a in state["stray_acks"] if a["envelope_id"] not in fill)
        conns = len(state["connections"])
        calls = {}
        for c in state["calls"]:
            calls[c["method"]] = calls.get(c["method"], 0) + 1
        return {"rows": rows, "rss_idle": rss_idle, "rss_after": rss_after, "total": total,
                "calls": calls, "children": kids, "fill": len(fill), "fill_acked": len(fill_acks),
                "fill_dup": sum(v - 1 for v in fill_acks.values()),
                "connections": conns, "stray_acks": other_stray}
    finally:
        stop(proc)
        ctl.close()


# ---- node ----------------------------------------------------------------------------

def pinned_version():
    with open(os.path.join(NODE_DIR, "package.json")) as f:
        return json.load(f)["dependencies"]["@slack/socket-mode"]


def node_ready():
    """Make sure bench/node-socket-mode has its dependencies. Returns (ok, why)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node:
        return False, "node is not installed"
    want = pinned_version()
    have_pkg = os.path.join(NODE_DIR, "node_modules", "@slack", "socket-mode", "package.json")
    try:
        with open(have_pkg) as f:
            if json.load(f).get("version") == want:
                return True, "@slack/socket-mode %s (already installed)" % want
    except (OSError, ValueError):
        pass
    if not npm:
        return False, "npm is not installed"
    try:
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock",
                            "--loglevel=error", "--fetch-retries=2",
                            "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000"],
                           cwd=NODE_DIR, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, "npm install timed out after %d s" % NPM_TIMEOUT
    if r.returncode != 0:
        lines = [ln.replace("npm error", "", 1).replace("npm ERR!", "", 1).strip()
                 for ln in (r.stderr or r.stdout or "").splitlines()]
        code = next((ln for ln in lines if ln.startswith("code ")), "")
        msg = next((ln for ln in lines if ln and not ln.startswith(("at ", "code ", "syscall ",
                                                                    "errno ", "A complete"))),
                   "")
        return False, "npm install failed (rc %d): %s" % (
            r.returncode, "; ".join(x for x in (code, msg) if x)[:300] or "no output")
    return True, "@slack/socket-mode %s (npm install)" % want


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# ---- main ----------------------------------------------------------------------------

def fmt_row(bot, res, r):
    rate = "%d/s (sent %.0f/s)" % (r["rate"], r["achieved"])
    return "| %s | %s | %d/%d | %.2f | %.2f | %.2f | %s | %s |" % (
        bot, rate, r["acks"], r["events"], r["p50"], r["p99"], r["max"],
        mib(res["rss_idle"]), mib(res["rss_after"]))


def main():
    jb = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build",
                                                                             "janebot"))
    if not os.access(jb, os.X_OK):
        print("slack-ack: %s is not executable (run make first)" % jb, file=sys.stderr)
        return 2

    def on_signal(sig, _frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)

    tmp = tempfile.mkdtemp(prefix="janebot-bench-ack-")
    fake = fake_log = None
    results = []
    notes = []
    t_start = time.monotonic()
    try:
        fake, port, fake_log = start_fake(tmp)
        progress("fake Slack on 127.0.0.1:%d" % port)
        api_url = "http://127.0.0.1:%d/api/" % port
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

        # janebot serve
        home, state, cwd = (os.path.join(tmp, d) for d in ("home", "state", "cwd"))
        for d in (home, state, cwd):
            os.mkdir(d, 0o700)
        env = dict(base_env, HOME=home, JANEBOT_STATE_DIR=state, JANEBOT_AGENT="command",
                   JANEBOT_AGENT_CMD=AGENT, JANEBOT_SANDBOX="local", DEBOUNCE_MS="0",
                   SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=api_url)
        progress("janebot serve: %s" % jb)
        results.append(("janebot serve",
                        run_bot("janebot", [jb, "serve"], env, cwd, port, tmp)))

        # node baseline
        ok, why = node_ready()
        if ok:
            env = dict(base_env, HOME=home, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=api_url,
                       NODE_ENV="production")
            progress("node bot: %s" % why)
            try:
                results.append(("node @slack/socket-mode",
                                run_bot("node", ["node", os.path.join(NODE_DIR, "bot.js")],
                                        env, NODE_DIR, port, tmp)))
                notes.append("Node: %s, node %s, bot.js acks and queues only."
                             % (why, node_version()))
            except BenchError as e:
                notes.append("Node row skipped: the node bot failed: %s" % str(e)[:500])
        else:
            notes.append("Node row skipped: %s" % why)
    except KeyboardInterrupt as e:
        print("slack-ack: interrupted (%s)" % e, file=sys.stderr)
        return 130
    except BenchError as e:
        print("slack-ack: %s" % e, file=sys.stderr)
        return 1
    finally:
        for p in list(PROCS):
            stop(p)
        if fake is not None and "Traceback" in tail(fake_log, 200000):
            print("slack-ack: the fake Slack logged a traceback:\n" + tail(fake_log),
                  file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("Socket Mode ack latency (fake's record: ack frame read - envelope queued), "
          "first attempts only; %d events per bot in total" % TOTAL)
    print()
    print("| bot | rate | acks | p50 ms | p99 ms | max ms | RSS idle MiB | RSS after 10k MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for bot, res in results:
        for r in res["rows"]:
            print(fmt_row(bot, res, r))
    print()
    for bot, res in results:
        t = res["total"]
        print("%s: measured phases %d/%d acked in time, %d late acks, %d redeliveries, "
              "%d stray acks; top-up %d/%d raw frames acked (%d duplicate acks); %d socket(s); "
              "%d child process(es) at the end; Web API calls: %s"
              % (bot, t["acks"], t["events"], t["late"], t["retries"], res["stray_acks"],
                 res["fill_acked"], res["fill"], res["fill_dup"], res["connections"],
                 res["children"],
                 ", ".join("%s %d" % kv for kv in sorted(res["calls"].items())) or "none"))
    print("Events are message/bot_message: janebot acks and ignores them by design (no agent, "
          "no sandbox), the Node bot acks and queues them; RSS is VmRSS of the bot process.")
    print("'sent' is the rate the fake actually put envelopes on the socket "
          "(driven through its control API, one HTTP call per event). The top-up to %d "
          "events goes as raw envelope frames at up to %d/s (not in the latency columns)."
          % (TOTAL, FILL_RATE))
    for n in notes:
        print(n)
    print("(%.0f s)" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())

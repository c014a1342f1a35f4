#!/usr/bin/python3
"""bench/slack-ack.py -- Socket Mode ack latency of `janebot serve` while it runs agent
turns, against two anchors measured in the same run: a minimal Node bot on
@slack/socket-mode (bench/node-socket-mode/bot.js: ack at once, queue the event, nothing
else) and the harness floor, an instant-ack client (bench/node-socket-mode/floor.js: Node's
own WebSocket, no SDK, acks each envelope from the message handler).

Each bot gets a fake Slack of its own (tests/fakes/slack.py). After it connects: RSS at idle
(VmRSS), then TURN_THREADS DM threads are opened (janebot answers each with a turn of the
scripted agent tests/fakes/agent.py on the local sandbox). Then RUNS measured phases per
bot, run in turn (floor, janebot, node, floor, ...) so a change in the machine's load hits
all alike: RATE bot_message envelopes/s for PHASE_SECS (janebot acks and ignores them by
design) plus TURN_RATE DMs/s into those threads (a turn each for janebot: sandbox, agent,
store writes and Web API posts compete with its event loop; the others only ack them).
Ack latency, first delivery attempts only, is measured twice:
  * on the wire (bench/wiretap.py, as root): the kernel's timestamp of the TCP segment that
    ended the ack's WebSocket frame minus that of the segment that ended the envelope's, as
    a packet socket on lo sees them; the fake's own delays are not in it;
  * in the fake's record: the time it read the ack frame minus the time it wrote the
    envelope, which adds the fake's event loop and its GIL (about 1 ms at p99 here).
The goal rows (bench/benchlib.py) use the wire figures when the tap timed every ack, else
the fake's; p99 is taken per phase and compared as min/median/max over the phases. Peak
RSS is VmHWM of the bot process after each phase.

usage: bench/slack-ack.py [JANEBOT_BINARY]      (default build/janebot)
Everything listens on 127.0.0.1; every wait is bounded; the fakes, the bots and the temp
dir are cleaned up on every exit path. `npm install` runs in bench/node-socket-mode when
its node_modules lack the pinned @slack/socket-mode; if that fails, the Node rows are
skipped with the reason.
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

import benchlib
from benchlib import Goal, fmt_spread, spread
from wiretap import WireTap

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "soak"))
from harness import paced  # noqa: E402 -- the paced injector the soak uses
FAKE = os.path.join(REPO, "tests", "fakes", "slack.py")
AGENT = os.path.join(REPO, "tests", "fakes", "agent.py")
NODE_DIR = os.path.join(HERE, "node-socket-mode")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

BOT_TOKEN = "xoxb-bench-1111-2222-b0tT0kenBenchValue"
APP_TOKEN = "xapp-bench-1-A0JANEBOT1-3333-appT0kenBenchValue"

RATE = 200                           # envelopes/s in each measured phase
PHASE_SECS = 6.0                     # length of one measured phase
RUNS = 5                             # measured phases per bot (min/median/max over them)
TURN_THREADS = 3                     # DM threads the turns run in
TURN_RATE = 1.0                      # DMs/s on top of the envelope load (one turn each)
WORKERS = 8                          # threads driving /_control/inject
IDLE_SECS = 2.0                      # settle time before the idle RSS reading
CONNECT_TIMEOUT = 20.0
THREAD_TIMEOUT = 60.0                # first answer in each DM thread (sandbox start-up)
SETTLE_TIMEOUT = 15.0                # janebot's answers to a phase's DMs, before the next
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


def mib(kib):
    return "%.1f" % (kib / 1024.0)


# ---- fake Slack ----------------------------------------------------------------------

def start_fake(tmp, name):
    port_file = os.path.join(tmp, "fake-%s.port" % name)
    log = os.path.join(tmp, "fake-%s.log" % name)
    p = spawn([PYTHON, FAKE, "--port-file", port_file, "--switch-interval", "0.0005"], log)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if p.poll() is not None:
            raise BenchError("fake Slack exited (%s):\n%s" % (p.returncode, tail(log)))
        try:
            with open(port_file) as f:
                parts = f.read().split()
            if len(parts) == 2:
                return p, int(parts[0]), int(parts[1]), log
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise BenchError("fake Slack did not start within 10 s:\n%s" % tail(log))


# ---- injection -----------------------------------------------------------------------

def inject_paced(port, rate, count, first_index):
    """count bot_message events through /_control/inject: the fake registers each one and
    records its envelope's send and ack times. Returns (event_ids, seconds, errors)."""
    def req(ctl, i):
        return ctl.call("inject", {"kind": "bot_message",
                                   "text": "bench event %d" % (first_index + i)})["event_ids"]
    return paced(port, rate, count, req, WORKERS, deadline=count / float(rate) * 3 + 30,
                 control=Control)


def wait_drained(ctl, proc, what):
    """Poll the fake until nothing is pending and every envelope sent was acked or timed
    out. Returns the last state."""
    end = time.monotonic() + DRAIN_TIMEOUT
    while True:
        s = ctl.call("state", {"brief": True}, timeout=60)
        sent = [e for e in s["envelopes"] if e["sent_at"]]
        open_ = [e for e in sent if not e["acked_at"] and not e["timed_out"]]
        if not s["pending"] and not open_:
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


def phase_stats(state, event_ids, tap, dm_ids=()):
    """Figures of the first deliveries of event_ids; the wire_dm ones are of dm_ids only
    (the events janebot stores before it acks them)."""
    want = set(event_ids)
    dms = set(dm_ids)
    first = [e for e in state["envelopes"] if e["event_id"] in want and e["retry_attempt"] == 0]
    lat = sorted(e["latency"] * 1000.0 for e in first
                 if e["latency"] is not None and not e["late"])
    wire, wire_dm = [], []
    for e in first if tap else ():
        w = tap.latency(e["envelope_id"]) if e["latency"] is not None and not e["late"] else None
        if w is not None:
            wire.append(w * 1000.0)
            if e["event_id"] in dms:
                wire_dm.append(w * 1000.0)
    wire.sort()
    wire_dm.sort()
    sent = sorted(e["sent_at"] for e in first if e["sent_at"])
    achieved = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] \
        else float("nan")
    retries = sum(1 for e in state["envelopes"] if e["event_id"] in want and e["retry_attempt"])
    late = sum(1 for e in first if e["late"])
    return {"events": len(want), "acks": len(lat), "p50": pct(lat, 0.50),
            "p99": pct(lat, 0.99), "max": lat[-1] if lat else float("nan"),
            "wire_acks": len(wire), "wire_p50": pct(wire, 0.50), "wire_p99": pct(wire, 0.99),
            "wire_max": wire[-1] if wire else float("nan"),
            "wire_dm_p50": pct(wire_dm, 0.50), "wire_dm_max": wire_dm[-1] if wire_dm else float("nan"),
            "achieved": achieved, "retries": retries, "late": late}


# ---- one bot -------------------------------------------------------------------------

def hwm_kib(pid):
    """VmHWM: the peak resident set of the process so far."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise BenchError("no VmHWM for pid %d" % pid)


def answers(ctl):
    """Replies the bot posted so far (chat.postMessage calls seen by the fake)."""
    s = ctl.call("state", {"brief": True}, timeout=60)
    return sum(1 for c in s["calls"] if c["method"] == "chat.postMessage")


def start_threads(ctl, wait_answers, proc, name):
    """Open TURN_THREADS DM threads (one DM each, answered by a turn when the bot runs
    them) and return their thread_ts. With wait_answers, wait until each got its reply,
    so the measured turns continue warm threads like a conversation does."""
    tss = []
    for k in range(TURN_THREADS):
        out = ctl.call("inject", {"kind": "dm", "text": "bench thread %d" % k})
        tss.append(out["thread_ts"])
    if wait_answers:
        end = time.monotonic() + THREAD_TIMEOUT
        while answers(ctl) < TURN_THREADS:
            if proc.poll() is not None:
                raise BenchError("%s exited (rc %s) while opening threads" % (name, proc.returncode))
            if time.monotonic() > end:
                raise BenchError("%s did not answer %d DMs within %.0f s"
                                 % (name, TURN_THREADS, THREAD_TIMEOUT))
            time.sleep(0.2)
    return tss


def trickle(port, thread_tss, stop_evt, ids, first_index):
    """While the envelope load runs: one DM every 1/TURN_RATE s, round robin over the
    threads (each one is a turn for janebot). Appends the event ids to ids."""
    ctl = Control(port)
    try:
        i = 0
        t0 = time.monotonic()
        while not stop_evt.is_set():
            delay = t0 + i / TURN_RATE - time.monotonic()
            if delay > 0 and stop_evt.wait(delay):
                break
            ts = thread_tss[i % len(thread_tss)]
            out = ctl.call("inject", {"kind": "dm", "thread_ts": ts,
                                      "text": "bench turn %d" % (first_index + i)})
            ids.extend(out["event_ids"])
            i += 1
    finally:
        ctl.close()


class Bot:
    """One bot on a fake Slack of its own. start(): connect, idle RSS, open the DM threads;
    phase(): one measured phase of RATE envelopes/s for PHASE_SECS with the DM trickle on
    top; finish(): the figures. turns: wait for the bot's answers (only janebot runs
    turns; the others get the same envelopes). main() runs the phases of the bots in turn
    (floor, janebot, node, floor, ...), so a change in the machine's load hits all alike."""

    def __init__(self, name, label, argv, env, cwd, tmp, turns, tap):
        self.name, self.label, self.argv, self.env, self.cwd = name, label, argv, env, cwd
        self.tmp, self.turns, self.tap = tmp, turns, tap
        self.fake = self.proc = self.ctl = None
        self.phases = []
        self.done = 0

    def start(self):
        self.fake, self.port, ws_port, self.fake_log = start_fake(self.tmp, self.name)
        if self.tap:
            self.tap.watch(ws_port)
        api_url = "http://127.0.0.1:%d/api/" % self.port
        self.ctl = Control(self.port)
        self.log = os.path.join(self.tmp, "%s.log" % self.name)
        self.proc = spawn(self.argv, self.log, env=dict(self.env, SLACK_API_URL=api_url),
                          cwd=self.cwd)
        end = time.monotonic() + CONNECT_TIMEOUT
        while True:
            s = self.ctl.call("state", {"brief": True})
            if any(c["hello_at"] and c["open"] for c in s["connections"]):
                break
            self.check("before connecting")
            if time.monotonic() > end:
                raise BenchError("%s did not connect within %.0f s:\n%s"
                                 % (self.name, CONNECT_TIMEOUT, tail(self.log)))
            time.sleep(0.1)
        progress("%s: connected" % self.name)
        time.sleep(IDLE_SECS)
        self.rss_idle = rss_kib(self.proc.pid)
        self.tss = start_threads(self.ctl, self.turns, self.proc, self.name)
        self.answered_before = answers(self.ctl)

    def check(self, when):
        if self.proc.poll() is not None:
            raise BenchError("%s exited (rc %s) %s:\n%s"
                             % (self.name, self.proc.returncode, when, tail(self.log)))

    def phase(self, run):
        progress("%s: phase %d/%d: %d events/s for %.0f s, %.1f DMs/s"
                 % (self.name, run + 1, RUNS, RATE, PHASE_SECS, TURN_RATE))
        dm_ids = []
        stop_evt = threading.Event()
        tr = threading.Thread(target=trickle, args=(self.port, self.tss, stop_evt, dm_ids,
                                                    self.done), daemon=True)
        tr.start()
        n = int(RATE * PHASE_SECS)
        ids, took, errs = inject_paced(self.port, RATE, n, self.done)
        stop_evt.set()
        tr.join(30)
        if errs:
            raise BenchError("%s: injection at %d/s failed: %s" % (self.name, RATE, errs[:3]))
        self.done += n
        time.sleep(1.0)  # the last acks of this phase
        self.check("during a phase")
        self.phases.append({"ids": ids + dm_ids, "dms": len(dm_ids), "took": took,
                            "hwm": hwm_kib(self.proc.pid)})
        if self.turns:  # its turns must not spill into the next bot's phase
            end = time.monotonic() + SETTLE_TIMEOUT
            want = self.answered_before + sum(ph["dms"] for ph in self.phases)
            while answers(self.ctl) < want and time.monotonic() < end:
                time.sleep(0.2)

    def finish(self):
        answered = answers(self.ctl) - self.answered_before
        state = wait_drained(self.ctl, self.proc, self.name)
        self.check("at the end")
        rows = []
        for ph in self.phases:
            st = phase_stats(state, ph["ids"], self.tap, ph["ids"][len(ph["ids"]) - ph["dms"]:])
            st.update(dms=ph["dms"], inject_secs=ph["took"], hwm=ph["hwm"])
            rows.append(st)
        total = phase_stats(state, [i for ph in self.phases for i in ph["ids"]], self.tap)
        calls = {}
        for c in state["calls"]:
            calls[c["method"]] = calls.get(c["method"], 0) + 1
        return {"rows": rows, "rss_idle": self.rss_idle, "total": total, "calls": calls,
                "answered": answered, "connections": len(state["connections"]),
                "stray_acks": len(state["stray_acks"])}

    def close(self):
        stop(self.proc)
        stop(self.fake)
        if self.ctl:
            self.ctl.close()
        if self.fake is not None and "Traceback" in tail(self.fake_log, 200000):
            print("slack-ack: the fake Slack of %s logged a traceback:\n%s"
                  % (self.name, tail(self.fake_log)), file=sys.stderr)


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

def fmt_row(bot, res, i, r):
    return "| %s | %d | %.0f/s + %d DMs | %d/%d | %.2f | %.2f | %.2f | %s | %s |" % (
        bot, i + 1, r["achieved"], r["dms"], r["acks"], r["events"], r["p50"], r["p99"],
        r["max"], mib(res["rss_idle"]), mib(r["hwm"]))


def print_table(columns, results, fmt):
    """A markdown table: one row per phase of each bot, fmt(bot, res, i, row) each."""
    print("| %s |" % " | ".join(columns))
    print("|%s" % ("---|" * len(columns)))
    for _, bot, res in results:
        for i, r in enumerate(res["rows"]):
            print(fmt(bot, res, i, r))


def fmt_wire_row(bot, _res, i, r):
    return "| %s | %d | %d/%d | %.3f | %.3f | %.3f | %.3f / %.3f | %.2f |" % (
        bot, i + 1, r["wire_acks"], r["acks"], r["wire_p50"], r["wire_p99"], r["wire_max"],
        r["wire_dm_p50"], r["wire_dm_max"], r["p99"])


def series(res, key):
    return spread([r[key] for r in res["rows"]]) if res else None


def wire_complete(by_bot):
    """Did the tap time every ack the fake counted, in every phase of every bot?"""
    return all(r["wire_acks"] == r["acks"] > 0 for res in by_bot.values() for r in res["rows"])


def goals(by_bot, wire):
    jb, node, floor = (by_bot.get(k) for k in ("janebot", "node", "floor"))
    p99 = "ack p99 at %d/s while turns run" % RATE
    key = "wire_p99" if wire else "p99"
    note = ("p99 of the ack latency %s per %.0f s phase (%d envelopes/s + %.0f DM/s), "
            "%d phases per bot" % ("on the wire (kernel timestamps of the envelope's and the "
                                   "ack's segments on lo)" if wire else "in the fake's record",
                                   PHASE_SECS, RATE, TURN_RATE, RUNS))
    hwm = [r["hwm"] / 1024.0 for r in jb["rows"]] if jb else None
    node_hwm = [r["hwm"] / 1024.0 for r in node["rows"]] if node else None
    return [
        Goal(p99, "ms", series(jb, key), "Node @slack/socket-mode bot", series(node, key),
             "ratio_max", 0.5, note),
        Goal(p99 + " (vs floor)", "ms", series(jb, key), "instant-ack client (floor)",
             series(floor, key), "margin_max", 1.0,
             "floor: bench/node-socket-mode/floor.js, Node's own WebSocket, acks on read"),
        Goal("peak RSS of serve at %d/s" % RATE, "MiB", spread(hwm) if hwm else None,
             "Node bot peak RSS", spread(node_hwm) if node_hwm else None, "max", 12,
             "VmHWM of the serve process after each phase (its children not counted)"),
    ]


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
    env = None
    try:
        tap = WireTap()
        tap_why = ""
    except OSError as e:  # PermissionError without CAP_NET_RAW
        tap, tap_why = None, "no packet socket (%s): the fake's own record only" % e.strerror
    bots = []
    results = []
    notes = []
    t_start = time.monotonic()
    try:
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        home, state, cwd = (os.path.join(tmp, d) for d in ("home", "state", "cwd"))
        for d in (home, state, cwd):
            os.mkdir(d, 0o700)
        node_env = dict(base_env, HOME=home, SLACK_APP_TOKEN=APP_TOKEN, NODE_ENV="production")
        # the harness floor: Node alone, no SDK
        if shutil.which("node"):
            bots.append(Bot("floor", "instant-ack client",
                            ["node", "--experimental-websocket", "--no-warnings",
                             os.path.join(NODE_DIR, "floor.js")], node_env, NODE_DIR, tmp,
                            False, tap))
            notes.append("Floor: bench/node-socket-mode/floor.js on node %s (its built-in "
                         "WebSocket), acks each envelope from the message handler."
                         % node_version())
        else:
            notes.append("Floor row skipped: node is not installed")
        # janebot serve, running turns with the scripted agent on the local sandbox
        env = dict(base_env, HOME=home, JANEBOT_STATE_DIR=state, JANEBOT_AGENT="command",
                   JANEBOT_AGENT_CMD=AGENT, JANEBOT_SANDBOX="local", DEBOUNCE_MS="0",
                   SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
        progress("janebot serve: %s" % jb)
        bots.append(Bot("janebot", "janebot serve", [jb, "serve"], env, cwd, tmp, True, tap))
        ok, why = node_ready()
        if ok:
            progress("node bot: %s" % why)
            bots.append(Bot("node", "node @slack/socket-mode",
                            ["node", os.path.join(NODE_DIR, "bot.js")], node_env, NODE_DIR,
                            tmp, False, tap))
            notes.append("Node: %s, node %s, bot.js acks and queues only."
                         % (why, node_version()))
        else:
            notes.append("Node row skipped: %s" % why)
        for b in bots:
            b.start()
        for run in range(RUNS):
            for b in bots:
                b.phase(run)
        for b in bots:
            results.append((b.name, b.label, b.finish()))
            progress("%s: done" % b.name)
    except KeyboardInterrupt as e:
        print("slack-ack: interrupted (%s)" % e, file=sys.stderr)
        return 130
    except BenchError as e:
        print("slack-ack: %s" % e, file=sys.stderr)
        return 1
    finally:
        for b in bots:
            b.close()
        if tap:
            lost, dropped = tap.lost, tap.dropped()
            tap.close()
        for p in list(PROCS):
            stop(p)
        if env:
            benchlib.remove_sandboxes(jb, env, cwd)
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("Socket Mode ack latency (fake's record: ack frame read - envelope written), first "
          "attempts only; %d phases of %.0f s per bot: %d bot_message events/s plus %.0f DM/s "
          "in %d threads (janebot runs a turn for each DM)" % (RUNS, PHASE_SECS, RATE,
                                                              TURN_RATE, TURN_THREADS))
    print()
    print_table(["bot", "phase", "sent", "acks", "p50 ms", "p99 ms", "max ms", "RSS idle MiB",
                 "peak RSS MiB"], results, fmt_row)
    print()
    for _, bot, res in results:
        t = res["total"]
        print("%s: p99 min/median/max %s ms; %d/%d acked in time, %d late acks, "
              "%d redeliveries, %d stray acks; %d socket(s); %d replies posted during the "
              "phases; Web API calls: %s"
              % (bot, fmt_spread(series(res, "p99")), t["acks"], t["events"], t["late"],
                 t["retries"], res["stray_acks"], res["connections"], res["answered"],
                 ", ".join("%s %d" % kv for kv in sorted(res["calls"].items())) or "none"))
    print("Each DM is a turn for janebot (scripted agent %s on the local sandbox, answered "
          "with chat.postMessage); the Node bot and the floor only ack it. bot_message events "
          "are acked and ignored by janebot by design. 'sent' is the rate the fake actually "
          "put envelopes on the socket. Peak RSS is VmHWM of the bot process."
          % os.path.relpath(AGENT, REPO))
    for n in notes:
        print(n)
    by_bot = {k: res for k, _, res in results}
    wire = bool(tap) and wire_complete(by_bot) and not lost
    if tap:
        print()
        print("The same acks on the wire: the kernel's timestamps of the segment that ended "
              "the envelope's frame and of the one that ended the ack's (a packet socket on "
              "lo), so the fake's own delays are not in them")
        print()
        print_table(["bot", "phase", "acks timed", "p50 ms", "p99 ms", "max ms",
                     "DMs: p50 / max ms", "fake's p99 ms"], results, fmt_wire_row)
        print()
        print("Streams that lost sync: %d; packets the tap dropped: %d.%s"
              % (lost, dropped, "" if wire else " Incomplete: the goals use the fake's record."))
    else:
        print(tap_why)
    benchlib.report("slack-ack goals", goals(by_bot, wire))
    print("(%.0f s)" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())

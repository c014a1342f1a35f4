"""tests/soak/harness.py -- what the soak and crash runs share: the fake Slack and
`janebot serve` as processes, a paced injector on the fake's control API, the check that
every event was answered exactly once, and readings of a process (RSS, open fds).

Everything listens on 127.0.0.1; every wait is bounded; processes started here are
stopped by pid (their own process groups) on every exit path."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKES = os.path.join(REPO, "tests", "fakes")
sys.path.insert(0, FAKES)
from slack import BOT_USER, FakeSlack  # noqa: E402

AGENT = os.path.join(FAKES, "agent.py")
BOT_TOKEN = "xoxb-soak-1111-2222-b0tT0kenSoakValue"
APP_TOKEN = "xapp-soak-1-A0JANEBOT1-3333-appT0kenSoakValue"
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOKEN_RE = re.compile(r"\[ev(\d+)\]")
# A turn of a thread with no agent session (its first, or the first after a crash lost
# the session) starts with the thread's history, one "<@USER>: text" line per message;
# the echoing fake agent repeats it. Those lines are context, not answers.
SOAK_DM_PREFIX = "D0SOAK"
HISTORY_HEAD = "Earlier messages in this Slack thread"
HISTORY_LINE_RE = re.compile(r"^<@[A-Z0-9]+>: .*$", re.M)


SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |"
                          r"SUMMARY: (Address|Undefined|Leak)|WARNING: ThreadSanitizer")


class SoakError(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Control:
    """The fake's control API on one persistent HTTP/1.1 connection (one per thread)."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def call(self, op, body=None, timeout=60.0):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                           timeout=timeout)
                    self.conn.connect()
                    self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if body is None:
                    self.conn.request("GET", "/_control/" + op)
                else:
                    self.conn.request("POST", "/_control/" + op, json.dumps(body),
                                      {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise SoakError("control %s: HTTP %s %s" % (op, r.status, data[:300]))
                return json.loads(data.decode())
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise SoakError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def proc_stats(pid):
    """(RSS in KiB, open fds, threads) of pid."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def descendants(pid):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                out.append(c)
                todo.append(c)
    return out


def procs_mentioning(needle):
    """pids whose command line mentions needle (the run's unique temp dir)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if needle.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def mounts_under(top):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == top or point.startswith(top.rstrip("/") + "/"):
                out.append(point)
    return out


def remove_run_dir(top):
    """Remove a run's temp dir: local sandbox homes (disk images) stay mounted after serve
    exits, so they are unmounted (detached) first."""
    import ctypes
    import shutil
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(mounts_under(top), key=len, reverse=True):
        libc.umount2(point.encode(), 2)  # MNT_DETACH
    shutil.rmtree(top, ignore_errors=True)


class Serve:
    """`janebot serve` (one run after another) on one state dir."""

    def __init__(self, binary, tmp, slack, extra_env=None):
        self.binary, self.tmp, self.slack = binary, tmp, slack
        self.state = os.path.join(tmp, "state")
        for d in ("state", "home", "cwd"):
            os.makedirs(os.path.join(tmp, d), mode=0o700, exist_ok=True)
        self.env = {"PATH": SYS_PATH, "HOME": os.path.join(tmp, "home"),
                    "JANEBOT_STATE_DIR": self.state, "JANEBOT_AGENT": "command",
                    "JANEBOT_AGENT_CMD": AGENT, "JANEBOT_SANDBOX": "local",
                    "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                    "SLACK_API_URL": slack.api_url, "DEBOUNCE_MS": "0",
                    "RATE_LIMIT_PER_MINUTE": "1000000", "JANEBOT_MAX_TURNS_PER_USER": "1000",
                    "JANEBOT_LOG_FORMAT": "text"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.env.update(extra_env or {})
        self.proc, self.runs = None, 0

    def start(self, timeout=20.0):
        """Start serve; return once its log says it is connected (reading the fake's
        whole state for that gets slow when it has recorded thousands of events)."""
        self.runs += 1
        path = os.path.join(self.tmp, "serve-%d.log" % self.runs)
        with open(path, "wb") as out:
            self.proc = subprocess.Popen([self.binary, "serve"], cwd=os.path.join(self.tmp, "cwd"),
                                         env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SoakError("janebot serve exited (rc %s):\n%s"
                                % (self.proc.returncode, self.log_tail()))
            with open(path, "rb") as f:
                if b"connected (Socket Mode)" in f.read():
                    return self.proc
            time.sleep(0.05)
        raise SoakError("janebot serve did not connect within %ss:\n%s"
                        % (timeout, self.log_tail()))

    def log_tail(self, n=3000):
        try:
            with open(os.path.join(self.tmp, "serve-%d.log" % self.runs), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def logs(self):
        out = []
        for i in range(1, self.runs + 1):
            with open(os.path.join(self.tmp, "serve-%d.log" % i), "rb") as f:
                out.append(f.read().decode(errors="replace"))
        return "\n".join(out)

    def sanitizer_reports(self):
        """Lines of sanitizer reports in every run's output."""
        return [ln for ln in self.logs().splitlines() if SANITIZER_RE.search(ln)]

    def kill9(self):
        """SIGKILL serve alone (its sandboxes are left as a crash leaves them)."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace=10.0):
        if not self.proc:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                kids = descendants(self.proc.pid)
                for pid in [self.proc.pid] + kids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(5)
                rc = "killed after %ss" % grace
        return rc


class Injector:
    """Inject DMs at a steady rate from a few threads: event i goes to thread
    i % threads (the first message of a thread starts it). Every text carries a unique
    token [evN], so an answer is matched to its event by thread and text."""

    def __init__(self, port, threads, users=25, workers=6):
        self.port, self.nthreads, self.users, self.workers = port, threads, users, workers
        self.lock = threading.Lock()
        self.parents = {}         # thread index -> parent ts
        self.events = {}          # event number -> (thread_ts, event_ids)
        self.inject_times = []    # seconds each control call took
        self.errors = []
        self.next = 0
        self.stop_flag = threading.Event()

    def _one(self, ctl, i):
        t = i % self.nthreads
        user = "U0SOAK%04d" % (t % self.users)
        channel = "D0SOAK%04d" % (t % self.users)  # each user's own DM with the bot
        with self.lock:
            parent = self.parents.get(t)
        if parent is None and i >= self.nthreads:
            # its thread's first message is still being injected: wait for it briefly
            for _ in range(200):
                time.sleep(0.01)
                with self.lock:
                    parent = self.parents.get(t)
                if parent:
                    break
        body = {"kind": "dm", "text": "soak [ev%d] thread %d" % (i, t), "user": user,
                "channel": channel}
        if parent:
            body["thread_ts"] = parent
        t0 = time.monotonic()
        r = ctl.call("inject", body)
        took = time.monotonic() - t0
        with self.lock:
            if parent is None:
                self.parents[t] = r["ts"]
            self.events[i] = ("%s:%s" % (channel, r["thread_ts"] or r["ts"]), r["event_ids"])
            self.inject_times.append(took)

    def run(self, rate, seconds):
        """Inject rate*seconds events, paced; returns when done or stopped."""
        count, first = int(rate * seconds), self.next
        _, took, errors = paced(self.port, rate, count, lambda ctl, i: self._one(ctl, first + i),
                                self.workers, stop=self.stop_flag)
        with self.lock:
            self.next = first + count
            self.errors.extend(errors)
        return took


def paced(port, rate, count, request, workers, stop=None, deadline=None, control=None):
    """Call request(ctl, i) for i in 0..count-1 from `workers` threads, each with its own
    control connection (control(port), Control by default); call i is due at t0 + i/rate
    (made at once when the workers are behind). Stops handing out calls after 20 errors
    or once stop (a threading.Event) is set; deadline (seconds) bounds the wait for the
    workers. Returns (results, seconds, errors): what the calls returned (a list is
    extended into results), and "call I: ERROR" for each call that raised."""
    lock = threading.Lock()
    nxt, results, errors = [0], [], []
    t0 = time.monotonic() + 0.05

    def worker():
        ctl = (control or Control)(port)
        try:
            while not (stop and stop.is_set()):
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
                    if got:
                        with lock:
                            results.extend(got)
                except Exception as e:  # noqa: BLE001 -- reported; the caller fails the run
                    with lock:
                        errors.append("call %d: %s" % (i, e))
        finally:
            ctl.close()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in ts:
        t.start()
    end = None if deadline is None else time.monotonic() + deadline
    for t in ts:
        t.join(None if end is None else max(0.1, end - time.monotonic()))
    if any(t.is_alive() for t in ts):
        errors.append("injection did not finish in time")
    return results, time.monotonic() - t0, errors


ANSWER_PARTS = ("envelopes", "messages", "pending", "connections")


def answer_state(slack):
    """The parts of the fake's record check_answers() reads, with time to serialise a long
    run's record (its full dump grows with every Web API call)."""
    return slack.state(brief=True, only=ANSWER_PARTS, timeout=120.0)


def answers_by_event(state):
    """event number -> the bot answers now in Slack (after updates and deletes) whose
    text carries its token, outside the thread history janebot quotes to the agent:
    {n: [("CHANNEL:THREAD_TS", ts of its first message)]}. An answer longer than one
    message is split into several: consecutive bot messages are one answer until the
    next that starts with the fake agent's "echo: "."""
    out = {}
    for ch, msgs in state["messages"].items():
        if ch.startswith(SOAK_DM_PREFIX):
            answers_in_channel(ch, msgs, out)
    return out


def answers_in_channel(ch, msgs, out):
    msgs = sorted(msgs, key=lambda m: m["ts"])
    answers = []  # (thread_ts, first ts, [messages])
    last = {}
    for m in msgs:
        if m.get("user") != BOT_USER or m.get("subtype") is not None:
            continue
        th = m.get("thread_ts")
        text = m.get("text") or ""
        if text.startswith("echo: ") or th not in last:
            last[th] = (th, m["ts"], [])
            answers.append(last[th])
        last[th][2].append(m)
    for th, first, parts in answers:
        text = "".join(p.get("text") or "" for p in parts)  # chunks split with no separator
        if HISTORY_HEAD in text:
            # the quoted history: "<@USER>: TEXT" per earlier message of the thread
            earlier = [e for e in msgs if e.get("thread_ts", e["ts"]) == th
                       and e["ts"] < first]
            quoted = ["<@%s>: %s\n" % (e.get("user") or "someone", e.get("text") or "")
                      for e in earlier]
            for q in sorted(quoted, key=len, reverse=True):
                text = text.replace(q, "")
        for tok in set(TOKEN_RE.findall(HISTORY_LINE_RE.sub("", text))):
            out.setdefault(int(tok), []).append(("%s:%s" % (ch, th), first))


def check_answers(events, state, acked_only=False):
    """Compare the injected events with what Slack shows. Returns a dict of counts and
    lists: answered (exactly once), lost, duplicated, misplaced (in another thread)."""
    acked_ids = {e["event_id"] for e in state["envelopes"] if e["acked_at"]}
    ans = answers_by_event(state)
    r = {"answer_msgs": len({ts for got in ans.values() for _, ts in got}),
         "sent": len(events), "acked": 0, "answered": 0, "lost": [], "dup": [],
         "misplaced": [], "unacked_answered": 0, "unacked_unanswered": 0}
    for n, (thread_ts, ids) in sorted(events.items()):
        acked = any(i in acked_ids for i in ids)
        r["acked"] += acked
        got = ans.get(n, [])
        here = [g for g in got if g[0] == thread_ts]
        if len(got) != len(here):
            r["misplaced"].append(n)
        if len(here) == 1:
            r["answered"] += 1
            if not acked:
                r["unacked_answered"] += 1
        elif len(here) > 1:
            r["dup"].append(n)
        elif acked or not acked_only:
            r["lost"].append(n)
        else:
            r["unacked_unanswered"] += 1
    return r


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def db_bytes(state_dir):
    return sum(os.path.getsize(os.path.join(state_dir, f)) for f in os.listdir(state_dir)
               if f.startswith("janebot.db"))


def integrity(state_dir):
    import sqlite3
    db = sqlite3.connect(os.path.join(state_dir, "janebot.db"), timeout=30)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def start_fake(tmp, args=()):
    return FakeSlack.start(os.path.join(tmp, "fake"), args=args)

#!/usr/bin/python3
"""bench/serve-memory.py -- resident memory of `janebot serve`: its peak under 200
envelopes/s with turns running, and what each stored Slack thread costs.

Both parts run janebot against the fake Slack (tests/fakes/slack.py) with the scripted
fake agent (tests/fakes/agent.py) in the local sandbox backend, as tests/soak does.

(a) Peak RSS at 200/s, RUNS times, each on a fresh `serve` (VmHWM is per process): connect,
    then for LOAD_SECS inject 200 envelopes/s -- message/bot_message events (acked and
    ignored by design) with a trickle of TRICKLE real DMs among them, each answered by the
    fake agent in its own sandbox -- wait until every DM is answered, and read VmHWM, the
    high-water mark of the resident set over the process's whole life, start-up included.

(b) RSS per stored thread, once: a fresh `serve` with JANEBOT_MAX_CONCURRENT_TURNS=1
    whose only turn is a DM the fake agent never finishes ("hang"). Then THREADS DMs,
    each the first message of its own thread (a new top-level DM), come through the
    intake: the envelope is parsed, deduplicated (slack_events), stored durably in the
    inbox and queued in the core's lane of that thread, behind the running turn. That is
    a "stored thread" here: a thread janebot has taken responsibility for, kept on disk
    and in memory until its turn runs -- the most memory a thread holds. RSS is read
    before and after (settled), and the database size; the store is then checked to
    hold THREADS distinct threads in its inbox. The messages are seeded in the fake
    (/_control/seed) and their envelopes sent as raw frames (/_control/frame) built from
    a frame the fake made for a real DM: /_control/inject scans every envelope it
    recorded on each call and slows down quadratically over thousands.

Printed with the table: where the last peak run's resident memory is at its end, per mapped
file (libraries, binary) and anonymous kind (heap, thread stacks, other), from its smaps.

usage: bench/serve-memory.py [JANEBOT_BINARY]     (default build/janebot)
environment: SERVE_MEMORY_RUNS (5)
Everything listens on 127.0.0.1; every wait is bounded; processes started here are
stopped (their own process groups) on every exit path."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "soak"))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
from harness import (Serve, SoakError, answers_by_event, db_bytes,  # noqa: E402
                     descendants, paced, remove_run_dir, start_fake)

RUNS = int(os.environ.get("SERVE_MEMORY_RUNS", "5"))
RATE = 200            # envelopes/s in (a)
LOAD_SECS = 10.0
TRICKLE = 20          # real DMs among them (2/s), each answered by a turn
WORKERS = 8           # threads driving the fake's control API
ANSWER_TIMEOUT = 120.0
THREADS = 10000       # stored threads in (b)
FILL_RATE = 1000      # raw frames/s in (b)
SEED_CHUNK = 1000
SETTLE_SECS = 3.0
STORE_TIMEOUT = 120.0

PEAK_LIMIT_MIB = 12.0
PER_THREAD_LIMIT_KIB = 20.0
AFTER_LIMIT_MIB = 12.0
NODE_NOTE = ("the Node @slack/socket-mode bot that acks and queues only measured "
             "72.7 MiB idle, 84.0 MiB after 10,000 events in bench/slack-ack.py on the "
             "same machine (not this run; its own rows are in that table)")

T0 = time.monotonic()


def progress(msg):
    print("serve-memory: [%5.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SoakError("no %s for pid %d" % (field, pid))


def smaps_split(pid):
    """Where a process's resident memory is, from /proc/PID/smaps: {part: KiB}, a part being
    each mapped file (shared libraries, the binary, the database's -shm), "heap" (malloc's
    main arena), "thread stacks" (the 8 MiB anonymous mappings pthreads gives each thread,
    their TLS included) and "other anonymous" (malloc's other arenas, its mmap'd blocks)."""
    split, part = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if not head[0].endswith(":"):  # a mapping: "lo-hi perms offset dev inode [path]"
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                path = head[5] if len(head) > 5 else ""
                if path == "[heap]":
                    part = "heap"
                elif path.startswith("/"):
                    part = os.path.basename(path)
                elif path == "" and hi - lo == 8 << 20:
                    part = "thread stacks"
                elif path in ("", "[stack]"):
                    part = "other anonymous" if path == "" else "main thread stack"
                else:
                    part = path
            elif head[0] == "Rss:":
                split[part] = split.get(part, 0) + int(head[1])
    return split


def paced_calls(port, rate, count, request):
    """harness.paced() with this bench's workers and time bound; returns the errors."""
    return paced(port, rate, count, request, WORKERS, deadline=count / float(rate) * 3 + 60)[2]


def fresh_serve(tmp, slack, tag, extra_env):
    run = os.path.join(tmp, tag)
    os.makedirs(run)
    slack.reset()
    serve = Serve(BINARY, run, slack, extra_env)
    serve.start()
    return serve


# ---- (a) peak RSS at 200/s -----------------------------------------------------------

def peak_run(tmp, slack, n):
    serve = fresh_serve(tmp, slack, "peak-%d" % n, {})
    try:
        pid = serve.proc.pid
        time.sleep(1.0)
        idle = status_kib(pid, "VmRSS")
        every = int(RATE * LOAD_SECS) // TRICKLE
        dms = {}

        def req(ctl, i):
            if i % every == every // 2:
                k = i // every
                r = ctl.call("inject", {"kind": "dm", "text": "bench [ev%d] hello" % k,
                                        "user": "U0BENCH%04d" % k,
                                        "channel": "D0SOAK%04d" % k})
                dms[k] = "%s:%s" % (r["channel"], r["thread_ts"])
            else:
                ctl.call("inject", {"kind": "bot_message", "text": "bench event %d" % i})

        errs = paced_calls(slack.port, RATE, int(RATE * LOAD_SECS), req)
        if errs:
            raise SoakError("injection at %d/s failed: %s" % (RATE, errs[:3]))
        end = time.monotonic() + ANSWER_TIMEOUT
        while True:
            got = answers_by_event(slack.state(brief=True))
            answered = sum(1 for k, th in dms.items() if any(g[0] == th for g in got.get(k, [])))
            if answered == len(dms) or time.monotonic() > end:
                break
            if serve.proc.poll() is not None:
                raise SoakError("serve exited (rc %s):\n%s" % (serve.proc.returncode,
                                                              serve.log_tail()))
            time.sleep(1.0)
        if answered != len(dms):
            raise SoakError("only %d of %d DMs answered within %.0f s"
                            % (answered, len(dms), ANSWER_TIMEOUT))
        time.sleep(1.0)
        hwm, rss = status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")
        anon, files = status_kib(pid, "RssAnon"), status_kib(pid, "RssFile")
        progress("run %d: idle %.1f MiB, peak (VmHWM) %.1f MiB, after %.1f MiB, %d DMs "
                 "answered" % (n, idle / 1024.0, hwm / 1024.0, rss / 1024.0, answered))
        return idle, hwm, rss, anon, files, smaps_split(pid)
    finally:
        serve.stop()


# ---- (b) stored threads --------------------------------------------------------------

def store_threads(tmp, slack):
    serve = fresh_serve(tmp, slack, "threads", {"JANEBOT_MAX_CONCURRENT_TURNS": "1",
                                                "JANEBOT_STOP_GRACE": "1"})
    try:
        pid = serve.proc.pid
        hang = slack.inject("dm", text="hang bench-memory")
        end = time.monotonic() + 30
        while not descendants(pid):  # the turn's sandbox runs the hanging agent
            if time.monotonic() > end:
                raise SoakError("the first turn did not start:\n%s" % serve.log_tail())
            time.sleep(0.2)
        template = next(e["frame"] for e in slack.state(brief=True)["envelopes"]
                        if e["event_id"] == hang["event_ids"][0])
        time.sleep(SETTLE_SECS)
        before = status_kib(pid, "VmRSS")
        db_before = db_bytes(serve.state)

        stamps = []
        for first in range(0, THREADS, SEED_CHUNK):
            n = min(SEED_CHUNK, THREADS - first)
            r = slack.call("seed", {"channel": hang["channel"], "top_level": True,
                                    "messages": [{"text": "bench thread %d" % (first + i)}
                                                 for i in range(n)]})
            stamps.extend(r["ts"])
        ctl_frames = []

        def req(ctl, i):
            ts = stamps[i]
            env_id = "bench-mem-%06d-%s" % (i, os.urandom(4).hex())
            payload = dict(template["payload"], event_id="EvBENCHMEM%07d" % i)
            ev = dict(template["payload"]["event"], ts=ts, event_ts=ts,
                      text="bench thread %d" % i, client_msg_id="bench-mem-%07d" % i)
            ev.pop("thread_ts", None)
            ev.pop("blocks", None)
            payload["event"] = ev
            out = ctl.call("frame", {"text": json.dumps(dict(template, envelope_id=env_id,
                                                               payload=payload))})
            if out.get("sent_to") != 1:
                raise SoakError("frame went to %s sockets" % out.get("sent_to"))
            ctl_frames.append(env_id)

        progress("threads: %d DMs, each a new thread, at %d/s" % (THREADS, FILL_RATE))
        t_fill = time.monotonic()
        errs = paced_calls(slack.port, FILL_RATE, THREADS, req)
        if errs:
            raise SoakError("raw frames failed: %s" % errs[:3])
        db = os.path.join(serve.state, "janebot.db")
        end = time.monotonic() + STORE_TIMEOUT
        while True:
            stored = count_threads(db)
            if stored >= THREADS or time.monotonic() > end:
                break
            time.sleep(1.0)
        took = time.monotonic() - t_fill
        if stored < THREADS:
            raise SoakError("only %d of %d threads stored within %.0f s:\n%s"
                            % (stored, THREADS, STORE_TIMEOUT, serve.log_tail()))
        time.sleep(SETTLE_SECS)
        after = status_kib(pid, "VmRSS")
        hwm = status_kib(pid, "VmHWM")
        db_after = db_bytes(serve.state)
        progress("threads: %d stored in %.1f s; RSS %.1f -> %.1f MiB (peak %.1f), db %.1f -> "
                 "%.1f MiB" % (stored, took, before / 1024.0, after / 1024.0, hwm / 1024.0,
                               db_before / 1048576.0, db_after / 1048576.0))
        return before, after, hwm, db_before, db_after, stored
    finally:
        serve.stop()


def count_threads(db):
    """Distinct threads with one of this bench's messages in the inbox."""
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            return c.execute("SELECT COUNT(DISTINCT thread_key) FROM inbox "
                             "WHERE text LIKE 'bench thread %'").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def floor_kib():
    """Peak RSS of `janebot --version`: the same binary and shared libraries mapped and
    relocated, nothing run -- what any janebot process costs before it does anything.
    Read by /usr/bin/time (its child's ru_maxrss; a child of this Python would count
    Python's own pages from before its exec). None when /usr/bin/time is missing."""
    if not os.access("/usr/bin/time", os.X_OK):
        return None
    out = []
    for _ in range(RUNS):
        r = subprocess.run(["/usr/bin/time", "-f", "%M", BINARY, "--version"],
                           capture_output=True, text=True, timeout=30)
        out.append(int(r.stderr.strip().splitlines()[-1]))
    return out


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                             else os.path.join(REPO, "build", "janebot"))
    if not os.access(BINARY, os.X_OK):
        print("serve-memory: %s is not executable (run make first)" % BINARY, file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="jb-bench-mem-")
    slack = None
    t_start = time.monotonic()
    try:
        floor = floor_kib()
        slack = start_fake(tmp)
        peaks = [peak_run(tmp, slack, n + 1) for n in range(RUNS)]
        before, after, hwm_b, db_before, db_after, stored = store_threads(tmp, slack)
    except (SoakError, OSError) as e:
        print("serve-memory: %s" % e, file=sys.stderr)
        return 1
    finally:
        if slack is not None:
            slack.stop()
        remove_run_dir(tmp)

    mib = lambda k: k / 1024.0  # noqa: E731
    print()
    print("janebot serve resident memory (VmRSS/VmHWM of the serve process; its sandboxes "
          "are other processes)")
    print()
    print("| run | idle MiB | peak (VmHWM) MiB | after load MiB | of which anonymous | "
          "of which files (libraries, mapped db) |")
    print("|---|---|---|---|---|---|")
    for n, (idle, hwm, rss, anon, files, _) in enumerate(peaks, 1):
        print("| %d | %.1f | %.1f | %.1f | %.1f | %.1f |" % (n, mib(idle), mib(hwm), mib(rss),
                                                       mib(anon), mib(files)))
    if peaks:
        top = sorted(peaks[-1][5].items(), key=lambda kv: -kv[1])
        print()
        print("where the last run's resident memory is at its end (/proc/PID/smaps Rss, KiB; "
              "shared library pages count in full): " + ", ".join(
                  "%s %d" % kv for kv in top[:SPLIT_TOP]) + ", %d other mappings %d"
              % (max(len(top) - SPLIT_TOP, 0), sum(v for _, v in top[SPLIT_TOP:])))
    if floor:
        print()
        print("janebot --version (binary and libraries loaded, nothing run), peak RSS MiB: %s"
              % benchlib.fmt_spread(benchlib.spread([mib(k) for k in floor]), 1))
    per = (after - before) / float(stored)
    print()
    print("%d stored threads: RSS %.1f -> %.1f MiB (%.2f KiB per thread), peak %.1f MiB; "
          "database %.2f -> %.2f MiB (%.2f KiB per thread)"
          % (stored, mib(before), mib(after), per, mib(hwm_b), db_before / 1048576.0,
             db_after / 1048576.0, (db_after - db_before) / 1024.0 / stored))
    goals = [
        benchlib.Goal("peak RSS at 200/s (%d runs)" % len(peaks), "MiB",
                      benchlib.spread([mib(p[1]) for p in peaks]),
                      "janebot --version" if floor else None,
                      benchlib.spread([mib(k) for k in floor]) if floor else None, "max",
                      PEAK_LIMIT_MIB, "VmHWM over the whole life of serve, start-up "
                      "included; 200 envelopes/s for %.0f s with %d DMs answered by turns; the "
                      "anchor is the floor any janebot process pays for its shared libraries; "
                      "%s" % (LOAD_SECS, TRICKLE, NODE_NOTE)),
        benchlib.Goal("RSS per stored thread", "KiB", (per, per, per), None, None, "max",
                      PER_THREAD_LIMIT_KIB, "(RSS after - before) / %d threads, one run; a "
                      "stored thread is a new DM thread parsed, deduplicated, in the inbox and "
                      "queued in memory behind a running turn" % stored),
        benchlib.Goal("RSS after 10,000 threads", "MiB", (mib(after),) * 3, None, None, "max",
                      AFTER_LIMIT_MIB, "one run; database %.2f MiB" % (db_after / 1048576.0)),
    ]
    benchlib.report("Memory of janebot serve", goals)
    print("(%.0f s)" % (time.monotonic() - t_start))
    return 0


BINARY = None
SPLIT_TOP = 16

if __name__ == "__main__":
    sys.exit(main())

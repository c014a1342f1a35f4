#!/usr/bin/python3
"""tests/soak/soak.py -- `janebot serve` under steady load for a while (make soak).

The fake Slack (tests/fakes/slack.py) gets DMs injected at RATE envelopes/s spread over
THREADS threads (event i goes to thread i % THREADS) for SOAK_SECONDS; janebot runs each
turn with the scripted fake agent (tests/fakes/agent.py) in the local sandbox backend.
Then it waits until every event is answered (DRAIN_SECONDS at most) and checks:

  * every event answered exactly once, in its own thread (its token [evN] appears in
    exactly one bot message of that thread; none lost, none twice, none elsewhere);
  * every envelope acked; ack latency p50/p99 as the fake measured it (first attempts);
  * serve's RSS and open fds at start (connected, idle), middle and end (load drained):
    end fds <= start fds + FD_SLACK, end RSS <= start RSS + RSS_SLACK_MIB;
  * no process left below serve once the load drained (every sandbox's processes ended);
  * the database's size at the end (reported), PRAGMA integrity_check = ok.

Prints a table; exits 1 when a check fails, 2 when the run itself could not be made.

usage: tests/soak/soak.py [JANEBOT_BINARY]    (default build/janebot)
environment: SOAK_SECONDS (60), SOAK_RATE (50), SOAK_THREADS (500),
             JANEBOT_MAX_CONCURRENT_TURNS (passed to serve; default 4 as serve's own)"""
import os
import sys
import tempfile
import threading
import time

from harness import (remove_run_dir, REPO, Injector, answer_state, Serve, SoakError, check_answers, db_bytes, descendants,
                     integrity, log, percentile, proc_stats, start_fake)

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
RATE = float(os.environ.get("SOAK_RATE", "50"))
THREADS = int(os.environ.get("SOAK_THREADS", "500"))
INJECT_WORKERS = 16  # control connections driving the fake (see main)
# The answers may trail the load: on 2 cores the local backend runs ~6 turns/s (messages
# waiting in a thread merge into one turn), so the drain gets several times the load.
DRAIN_SECONDS = float(os.environ.get("SOAK_DRAIN_SECONDS", str(max(300.0, 4 * SECONDS))))
FD_SLACK = 16        # open fds may end at most this many above the idle start
RSS_SLACK_MIB = 48   # resident memory may end at most this much above the idle start


def sampler(pid, out, stop):
    """Read serve's RSS/fds/threads and its child count every second."""
    t0 = time.monotonic()
    while not stop.is_set():
        try:
            rss, fds, thr = proc_stats(pid)
            out.append((time.monotonic() - t0, rss, fds, thr, len(descendants(pid))))
        except OSError:
            return
        stop.wait(1.0)


def wait_answered(slack, inj, deadline):
    """Poll the fake until every injected event is answered (or the deadline)."""
    while True:
        s = answer_state(slack)
        r = check_answers(inj.events, s)
        if not r["lost"] or time.monotonic() > deadline:
            return s, r
        log("draining: %d of %d answered" % (r["answered"], r["sent"]))
        time.sleep(15.0)  # each look serialises the whole record


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                             else os.path.join(REPO, "build", "janebot"))
    tmp = tempfile.mkdtemp(prefix="jb-soak-")
    slack = serve = None
    failures = []
    try:
        slack = start_fake(tmp)
        env = {}
        if "JANEBOT_MAX_CONCURRENT_TURNS" in os.environ:
            env["JANEBOT_MAX_CONCURRENT_TURNS"] = os.environ["JANEBOT_MAX_CONCURRENT_TURNS"]
        serve = Serve(binary, tmp, slack, env)
        pid = serve.start().pid
        time.sleep(2.0)
        start = proc_stats(pid)
        samples, stop = [], threading.Event()
        th = threading.Thread(target=sampler, args=(pid, samples, stop), daemon=True)
        th.start()
        # Enough control connections that the fake's per-call time under load (a Python
        # server sharing two cores with serve and its sandboxes) cannot cap the rate.
        inj = Injector(slack.port, THREADS, workers=INJECT_WORKERS)
        log("soak: %g envelopes/s over %d threads for %gs" % (RATE, THREADS, SECONDS))
        half = threading.Timer(SECONDS / 2, lambda: middle.append(proc_stats(pid)))
        middle = []
        half.start()
        took = inj.run(RATE, SECONDS)
        injected_at = time.monotonic()
        half.join()
        log("soak: injected %d events in %.1fs; waiting for the answers" % (len(inj.events), took))
        s, r = wait_answered(slack, inj, time.monotonic() + DRAIN_SECONDS)
        drained_at = time.monotonic()
        time.sleep(5.0)  # let the last turns' cleanup finish
        end = proc_stats(pid)
        left = descendants(pid)
        stop.set()
        s = answer_state(slack)
        r = check_answers(inj.events, s)
        first = [e for e in s["envelopes"] if e["retry_attempt"] == 0 and e["type"] == "events_api"]
        lat = [e["latency"] for e in first if e["latency"] is not None]
        unacked = [e for e in first if not e["acked_at"]]
        retries = [e for e in s["envelopes"] if e["retry_attempt"] > 0]
        rc = serve.stop()
        integ = integrity(serve.state)
        size = db_bytes(serve.state)
        peak = max(samples, key=lambda x: x[1]) if samples else None

        def mib(k):
            return "%.1f MiB" % (k / 1024.0)
        rows = [
            ("duration / rate / threads", "%gs / %g per s / %d" % (SECONDS, RATE, THREADS)),
            ("events injected (inject errors)", "%d (%d)" % (len(inj.events), len(inj.errors))),
            ("achieved injection rate", "%.1f per s" % (len(inj.events) / max(took, 1e-9))),
            ("inject call p50 / p99 (the fake's own time)", "%.1f / %.1f ms" % (
                percentile(inj.inject_times, 50) * 1e3, percentile(inj.inject_times, 99) * 1e3)),
            ("envelopes (first attempts / redelivered)", "%d / %d" % (len(first), len(retries))),
            ("acked first attempts (unacked: lost with a dropped link, redelivered)",
             "%d (%d)" % (len(lat), len(unacked))),
            ("Socket Mode connections opened", "%d" % len(s.get("connections") or [])),
            ("ack latency p50 / p99 / max", "%.1f / %.1f / %.1f ms" % (
                percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3,
                (max(lat) if lat else float("nan")) * 1e3)),
            ("answered exactly once", "%d of %d" % (r["answered"], r["sent"])),
            ("answer messages (turns; messages merge per thread)", "%d" % r["answer_msgs"]),
            ("lost / answered twice / wrong thread", "%d / %d / %d" % (
                len(r["lost"]), len(r["dup"]), len(r["misplaced"]))),
            ("all answered, after the last injection", "%.1fs" % (drained_at - injected_at)),
            ("RSS start / middle / end (peak)", "%s / %s / %s (%s)" % (
                mib(start[0]), mib(middle[0][0]) if middle else "-", mib(end[0]),
                mib(peak[1]) if peak else "-")),
            ("open fds start / middle / end (peak)", "%d / %s / %d (%d)" % (
                start[1], middle[0][1] if middle else "-", end[1],
                max(x[2] for x in samples) if samples else -1)),
            ("threads start / end", "%d / %d" % (start[2], end[2])),
            ("processes below serve at the end", "%d" % len(left)),
            ("database size at the end", "%.1f MiB" % (size / 1048576.0)),
            ("PRAGMA integrity_check", integ),
            ("serve exit on SIGTERM", str(rc)),
        ]
        w = max(len(a) for a, _ in rows)
        print("\njanebot serve soak (%s)" % binary)
        for a, b in rows:
            print("  %-*s  %s" % (w, a, b))
        if inj.errors:
            failures.append("injection errors: %s" % inj.errors[:3])
        if r["lost"] or r["dup"] or r["misplaced"]:
            failures.append("not answered exactly once: lost %s, twice %s, wrong thread %s"
                            % (r["lost"][:10], r["dup"][:10], r["misplaced"][:10]))
        # A first attempt sent on a link that dropped is redelivered, as Slack does; what
        # must not happen is an event acked on no attempt at all.
        acked_events = {e["event_id"] for e in s["envelopes"] if e["acked_at"]}
        never = sorted({e["event_id"] for e in first} - acked_events)
        if never:
            failures.append("%d events acked on no attempt: %s" % (len(never), never[:5]))
        if end[1] > start[1] + FD_SLACK:
            failures.append("open fds grew from %d to %d (bound: +%d)"
                            % (start[1], end[1], FD_SLACK))
        if end[0] > start[0] + RSS_SLACK_MIB * 1024:
            failures.append("RSS grew from %s to %s (bound: +%d MiB)"
                            % (mib(start[0]), mib(end[0]), RSS_SLACK_MIB))
        if left:
            failures.append("%d processes left below serve after the load drained" % len(left))
        if integ != "ok":
            failures.append("integrity_check: %s" % integ)
        san = serve.sanitizer_reports()
        if san:
            failures.append("sanitizer reports in serve's output: %s" % san[:5])
        print("  bounds: end fds <= start + %d; end RSS <= start + %d MiB" % (FD_SLACK,
                                                                            RSS_SLACK_MIB))
        if samples:
            step = max(1, len(samples) // 12)
            print("  samples (s, RSS MiB, fds, threads, children):")
            for x in samples[::step]:
                print("    %6.0f %7.1f %5d %4d %5d" % (x[0], x[1] / 1024.0, x[2], x[3], x[4]))
    except (SoakError, OSError) as e:
        print("soak: could not run: %s" % e, file=sys.stderr)
        if serve:
            print(serve.log_tail(), file=sys.stderr)
        return 2
    finally:
        if serve:
            serve.stop()
        if slack:
            slack.stop()
        if failures or os.environ.get("SOAK_KEEP"):
            print("  logs kept in %s" % tmp)
        else:
            remove_run_dir(tmp)
    for f in failures:
        print("FAIL: " + f)
    print("soak: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

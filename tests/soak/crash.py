#!/usr/bin/python3
"""tests/soak/crash.py -- `kill -9` of `janebot serve` at random moments under load,
restarted each time (make crash).

DMs are injected into the fake Slack at CRASH_RATE per second over CRASH_THREADS threads
for the whole run, across the kills (Slack keeps events for the next connection and
redelivers what was not acked). Each of ROUNDS rounds starts serve, lets it run a random
0.3-3 s and kills it with SIGKILL (serve alone, as the kernel's OOM killer or a crash
would). Then serve is started once more, the load stops, and every acked event must be
answered. Checks:

  * no accepted event lost: every event whose envelope serve acked is answered;
  * none answered twice (an unacked one that Slack redelivers is answered once too);
  * PRAGMA integrity_check = ok on the state database;
  * nothing leaked: no process of a killed serve's sandboxes still alive once the next
    serve has started; after the final stop, no process of the run left, no mount under
    the run's dir, no cgroup named after a dead serve (janebot-<pid>-...), and no sandbox
    directory but those of the run's threads.

Prints a table; exits 1 when a check fails, 2 when the run could not be made.

usage: tests/soak/crash.py [JANEBOT_BINARY]    (default build/janebot)
environment: ROUNDS (50), CRASH_RATE (20), CRASH_THREADS (40), CRASH_SEED (random)"""
import os
import random
import sys
import tempfile
import threading
import time

from harness import (remove_run_dir, REPO, Injector, answer_state, Serve, SoakError, check_answers, descendants, integrity,
                     log, mounts_under, procs_mentioning, start_fake)

ROUNDS = int(os.environ.get("ROUNDS", "50"))
RATE = float(os.environ.get("CRASH_RATE", "20"))
THREADS = int(os.environ.get("CRASH_THREADS", "40"))
DRAIN_SECONDS = float(os.environ.get("CRASH_DRAIN_SECONDS", "120"))


def alive(pid, start_time):
    """pid still runs and is the same process (its start time in /proc/PID/stat)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0] != "Z" and fields[19] == start_time
    except (OSError, IndexError):
        return False


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def cgroups_of(pids):
    """cgroup directories named janebot-<pid>-<seq> for any of pids, anywhere below
    /sys/fs/cgroup (v1 hierarchies or v2)."""
    names = tuple("janebot-%d-" % p for p in pids)
    out = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith(names):
                out.append(os.path.join(root, d))
        if root.count("/") > 8:
            dirs[:] = []
    return out


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                             else os.path.join(REPO, "build", "janebot"))
    seed = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
    rnd = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="jb-crash-")
    slack = serve = None
    failures = []
    try:
        slack = start_fake(tmp)
        slack.call("config", {"max_retries": 1000})  # Slack would give up; we count on it not
        serve = Serve(binary, tmp, slack)
        inj = Injector(slack.port, THREADS, workers=3)
        load = threading.Thread(target=inj.run, args=(RATE, 10 ** 6), daemon=True)
        pids, orphans = [], []
        serve.start()
        load.start()
        log("crash: %d rounds, %g events/s over %d threads (seed %d)"
            % (ROUNDS, RATE, THREADS, seed))
        for rnd_no in range(ROUNDS):
            time.sleep(rnd.uniform(0.3, 3.0))
            pid = serve.proc.pid
            kids = [(k, start_time(k)) for k in descendants(pid)]
            pids.append(pid)
            serve.kill9()
            serve.start(timeout=30)
            time.sleep(0.5)
            left = [k for k, st in kids if st and alive(k, st)]
            if left:
                orphans.append((rnd_no, left))
            if rnd_no % 10 == 9:
                log("crash: %d rounds done, %d events injected" % (rnd_no + 1, len(inj.events)))
        inj.stop_flag.set()
        load.join(30)
        log("crash: load stopped after %d events; waiting for the answers" % len(inj.events))
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            s = answer_state(slack)
            r = check_answers(inj.events, s, acked_only=True)
            if (not r["lost"] and not s["pending"]) or time.monotonic() > deadline:
                break
            time.sleep(3.0)
        time.sleep(5.0)  # duplicates show up late, if at all
        s = answer_state(slack)
        r = check_answers(inj.events, s, acked_only=True)
        pids.append(serve.proc.pid)
        rc = serve.stop(grace=30)
        time.sleep(1.0)
        integ = integrity(serve.state)
        fake_pid = slack.proc.pid
        left_procs = [p for p in procs_mentioning(tmp) if p != fake_pid]
        mounts = mounts_under(tmp)
        cgs = cgroups_of(pids)
        sbx_dir = os.path.join(serve.state, "sandboxes")
        sandboxes = os.listdir(sbx_dir) if os.path.isdir(sbx_dir) else []
        envs = [e for e in s["envelopes"] if e["type"] == "events_api"]
        rows = [
            ("rounds (kill -9) / seed", "%d / %d" % (ROUNDS, seed)),
            ("events injected / threads", "%d / %d" % (r["sent"], THREADS)),
            ("envelopes sent (incl. redeliveries)", "%d" % len(envs)),
            ("events acked", "%d" % r["acked"]),
            ("answered exactly once", "%d" % r["answered"]),
            ("  of them never acked (answered anyway)", "%d" % r["unacked_answered"]),
            ("never acked, not answered (Slack kept them)", "%d" % r["unacked_unanswered"]),
            ("lost (acked, not answered)", "%d" % len(r["lost"])),
            ("answered twice", "%d" % len(r["dup"])),
            ("answer in another thread", "%d" % len(r["misplaced"])),
            ("PRAGMA integrity_check", integ),
            ("sandbox processes alive after their serve died", "%d" % sum(
                len(x[1]) for x in orphans)),
            ("processes of the run left after the final stop", "%d" % len(left_procs)),
            ("mounts under the run dir (one per sandbox home)", "%d (%d distinct)" % (
                len(mounts), len(set(mounts)))),
            ("cgroups of dead serves left", "%d" % len(cgs)),
            ("sandbox dirs (threads: %d)" % THREADS, "%d" % len(sandboxes)),
            ("final serve exit on SIGTERM", str(rc)),
        ]
        w = max(len(a) for a, _ in rows)
        print("\njanebot serve crash test (%s)" % binary)
        for a, b in rows:
            print("  %-*s  %s" % (w, a, b))
        if inj.errors:
            failures.append("injection errors: %s" % inj.errors[:3])
        if r["lost"]:
            failures.append("acked events not answered: %s" % r["lost"][:20])
        if r["dup"]:
            failures.append("events answered twice: %s" % r["dup"][:20])
        if r["misplaced"]:
            failures.append("answers in another thread: %s" % r["misplaced"][:20])
        if integ != "ok":
            failures.append("integrity_check: %s" % integ)
        san = serve.sanitizer_reports()
        if san:
            failures.append("sanitizer reports in serve's output: %s" % san[:5])
        if orphans:
            failures.append("processes of killed serves still alive: %s" % orphans[:5])
        if left_procs:
            failures.append("processes left after the final stop: %s" % left_procs[:10])
        # A local sandbox's home (its disk image) stays mounted while its thread lives;
        # a crash must not stack a second mount on it nor leave one of no sandbox.
        homes = {os.path.join(sbx_dir, d, "home") for d in sandboxes}
        if len(set(mounts)) != len(mounts) or not set(mounts) <= homes:
            failures.append("mounts left that are not one per live sandbox home: %s"
                            % sorted(m for m in mounts if m not in homes or
                                     mounts.count(m) > 1)[:5])
        if cgs:
            failures.append("cgroups left: %s" % cgs[:5])
        if len(sandboxes) > THREADS:
            failures.append("%d sandbox dirs for %d threads" % (len(sandboxes), THREADS))
        if rc != 0:
            failures.append("the final serve did not exit 0 on SIGTERM: %s" % rc)
    except (SoakError, OSError) as e:
        print("crash: could not run: %s" % e, file=sys.stderr)
        if serve:
            print(serve.log_tail(), file=sys.stderr)
        failures.append("run: %s" % e)
        return 2
    finally:
        if failures and slack and serve:
            try:
                import json
                with open(os.path.join(tmp, "fake-state.json"), "w") as f:
                    json.dump(slack.state(brief=True), f)
            except Exception:  # noqa: BLE001 -- best effort, for the post-mortem only
                pass
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
    print("crash: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tests/fuzz/run.py -- run libFuzzer targets for a while each, JOBS at a time (default 2).

    run.py [--seconds S] [--jobs N] [--scratch DIR] BINDIR TARGET...

Each target starts from its seeds in tests/fuzz/corpus/<target>/ (plus the shared
conformance payloads that fit it, when ../shared/conformance exists) and its dictionary
tests/fuzz/dict/<target>.dict when there is one. New corpus entries and crash files go to
the scratch directory, never into the repository. Prints a table (target, executions,
exec/s, crashes) and exits 1 when any target crashed, leaked, hung or had a sanitizer
report."""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFORMANCE = os.path.join(os.path.dirname(ROOT), "shared", "conformance")

# Conformance subdirectories (matched by name) whose files are payloads a target reads.
SHARED_SEEDS = {
    "web": ["web_api"],
    "envelope": ["socket_mode", "events", "envelopes"],
    "mrkdwn": ["mrkdwn"],
    "stream": ["stream_json", "agent"],
    "sprites": ["sprites"],
}


def shared_seed_dirs(target):
    names = SHARED_SEEDS.get(target, [])
    found = []
    if not os.path.isdir(CONFORMANCE):
        return found
    for dirpath, dirnames, _ in os.walk(CONFORMANCE):
        for d in dirnames:
            if any(n in d for n in names):
                found.append(os.path.join(dirpath, d))
    return found


def run_one(bindir, target, seconds, scratch):
    binary = os.path.abspath(os.path.join(bindir, target))
    work = os.path.join(scratch, target)
    new_corpus = os.path.join(work, "corpus")
    os.makedirs(new_corpus, exist_ok=True)
    cmd = [binary, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
           "-max_len=65536", "-print_final_stats=1", "-close_fd_mask=1",
           f"-artifact_prefix={work}/", new_corpus]
    dict_path = os.path.join(HERE, "dict", target + ".dict")
    if os.path.exists(dict_path):
        cmd.insert(1, f"-dict={dict_path}")
    seeds = os.path.join(HERE, "corpus", target)
    if os.path.isdir(seeds):
        cmd.append(seeds)
    cmd += shared_seed_dirs(target)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    crash_re = re.compile(r"(crash|leak|timeout|oom)-")
    before = {f for f in os.listdir(work) if crash_re.match(f)}  # a reused scratch dir's
    t0 = time.monotonic()
    log_path = os.path.join(work, "log.txt")
    with open(log_path, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    wall = time.monotonic() - t0
    text = open(log_path, errors="replace").read()
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    speed = re.search(r"stat::average_exec_per_sec:\s*(\d+)", text)
    crashes = [f for f in os.listdir(work) if crash_re.match(f) and f not in before]
    return {
        "target": target, "rc": rc, "wall": wall, "log": log_path,
        "execs": int(execs.group(1)) if execs else 0,
        "speed": int(speed.group(1)) if speed else 0,
        "crashes": [os.path.join(work, c) for c in crashes],
        "tail": text[-3000:],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "2")))
    ap.add_argument("--scratch", default=None)
    ap.add_argument("bindir")
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    scratch = a.scratch or tempfile.mkdtemp(prefix="janebot-fuzz-")
    print(f"fuzz: {len(a.targets)} targets, {a.seconds} s each, {a.jobs} at a time; "
          f"scratch {scratch}", flush=True)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda t: run_one(a.bindir, t, a.seconds, scratch), a.targets))
    failed = [r for r in results if r["rc"] != 0 or r["crashes"]]
    print(f"\n{'target':<10} {'executions':>12} {'exec/s':>8} {'crashes':>8}")
    for r in results:
        n = len(r["crashes"]) or (1 if r["rc"] != 0 else 0)
        print(f"{r['target']:<10} {r['execs']:>12} {r['speed']:>8} {n:>8}")
    print(f"total {sum(r['execs'] for r in results)} executions in "
          f"{time.monotonic() - t0:.0f} s")
    for r in failed:
        print(f"\nfuzz: {r['target']} FAILED (exit {r['rc']}); log {r['log']}", file=sys.stderr)
        for c in r["crashes"]:
            print(f"  input: {c}\n  reproduce: {os.path.join(a.bindir, r['target'])} {c}",
                  file=sys.stderr)
        print(r["tail"], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

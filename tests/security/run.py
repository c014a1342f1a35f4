#!/usr/bin/python3
"""tests/security/run.py -- run the sandbox escape suite in parallel, one process per test.

  tests/security/run.py [-j N] [PATTERN...]

Runs every test_*.py test here (or those whose id contains a PATTERN) as its own
`python3 -m unittest` process, JOBS at a time, against $JANEBOT_BIN (default
build/janebot). Prints one line per test as it finishes, the output of each failure,
and last a line "security: N passed, N failed, N skipped in Ts". Exit 1 if any failed.
When bubblewrap cannot create user namespaces on this machine every test is skipped,
with the reason (the same check as the integration suite).
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
PER_TEST_TIMEOUT = 180


def test_ids(patterns):
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    ids = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            else:
                ids.append(t.id())
    walk(suite)
    ids = [i.rsplit(".", 1)[1] if i.startswith("unittest.loader.") else i for i in ids]
    if patterns:
        ids = [i for i in ids if any(p in i for p in patterns)]
    # Slow tests first so the pool drains evenly.
    slow = ("test_41", "test_4413")
    ids.sort(key=lambda i: (not any(s in i for s in slow), i))
    return ids


def run_one(tid):
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "unittest", "-v", tid], cwd=HERE,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=PER_TEST_TIMEOUT)
        out = p.stdout.decode(errors="replace")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n[killed after %ss]" % PER_TEST_TIMEOUT
        rc = -1
    secs = time.monotonic() - t0
    if rc == 0:
        m = re.search(r"skipped '(.*)'", out)
        if m or "skipped=" in out:
            return tid, "skip", secs, m.group(1) if m else ""
        return tid, "ok", secs, ""
    return tid, "FAIL", secs, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-j", "--jobs", type=int,
                    default=int(os.environ.get("JOBS", "0")) or min(6, 2 * (os.cpu_count() or 1)))
    ap.add_argument("patterns", nargs="*")
    a = ap.parse_args()
    ids = test_ids(a.patterns)
    binary = os.environ.get("JANEBOT_BIN") or os.path.join(HERE, "..", "..", "build", "janebot")
    print("security: %d tests, %d at a time, binary %s" % (len(ids), a.jobs,
                                                         os.path.abspath(binary)), flush=True)
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import jbtest
    reason = jbtest.bwrap_problem()
    if reason:
        print("security: every test is skipped: %s" % reason, flush=True)
    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    failures = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for tid, status, secs, detail in ex.map(run_one, ids):
            counts[status] += 1
            extra = "  (%s)" % detail if status == "skip" and detail else ""
            print("%-4s %-100s %5.1fs%s" % (status, tid, secs, extra), flush=True)
            if status == "FAIL":
                failures.append((tid, detail))
    for tid, out in failures:
        print("\n======== FAIL: %s ========\n%s" % (tid, out.rstrip()), flush=True)
    print("security: %d passed, %d failed, %d skipped in %.0fs"
          % (counts["ok"], counts["FAIL"], counts["skip"], time.monotonic() - t0), flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())

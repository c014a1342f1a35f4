#!/usr/bin/python3
"""tests/integration/run.py -- run the integration tests in parallel, one process each.

  tests/integration/run.py [-j N] [-v] [PATTERN...]

Runs every test_*.py test (or those whose id contains a PATTERN) as its own
`python3 -m unittest` process, JOBS at a time, against $JANEBOT_BIN (default
build/janebot). Prints one line per test as it finishes, the output of each failure,
and last a line "integration: N passed, N failed, N skipped". Exit 1 if any failed.
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


def test_ids(here, patterns):
    sys.path.insert(0, here)
    suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
    ids = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            else:
                ids.append(t.id())
    walk(suite)
    # A module that fails to import shows up as unittest.loader._FailedTest.<module>:
    # run the module itself so its traceback is printed and counted as a failure.
    ids = [i.rsplit(".", 1)[1] if i.startswith("unittest.loader.") else i for i in ids]
    if patterns:
        ids = [i for i in ids if any(p in i for p in patterns)]
    return ids


def run_one(here, timeout, tid):
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "unittest", "-v", tid], cwd=here,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out = p.stdout.decode(errors="replace")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n[killed after %ss]" % timeout
        rc = -1
    secs = time.monotonic() - t0
    if rc == 0:
        m = re.search(r"skipped '(.*)'", out)
        if m or "skipped=" in out:
            return tid, "skip", secs, m.group(1) if m else ""
        return tid, "ok", secs, ""
    return tid, "FAIL", secs, out


def main(suite="integration", here=HERE, timeout=240, slow_first=(), skip_reason=None,
         doc=__doc__):
    """Run a suite's tests in parallel; the last line is "SUITE: N passed, N failed, N
    skipped in Ts". skip_reason() may return why nothing can run here (all skipped)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[1])
    ap.add_argument("-j", "--jobs", type=int,
                    default=int(os.environ.get("JOBS", "0")) or min(6, 2 * (os.cpu_count() or 1)))
    ap.add_argument("patterns", nargs="*")
    a = ap.parse_args()
    ids = test_ids(here, a.patterns)
    ids.sort(key=lambda i: (not any(s in i for s in slow_first), i))  # slow ones first
    binary = os.environ.get("JANEBOT_BIN") or os.path.join(HERE, "..", "..", "build", "janebot")
    print("%s: %d tests, %d at a time, binary %s" % (suite, len(ids), a.jobs,
                                                   os.path.abspath(binary)), flush=True)
    reason = skip_reason() if skip_reason else None
    if reason:
        print("%s: every test is skipped: %s" % (suite, reason), flush=True)
    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    failures = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for tid, status, secs, detail in ex.map(lambda t: run_one(here, timeout, t), ids):
            counts[status] += 1
            extra = "  (%s)" % detail if status == "skip" and detail else ""
            print("%-4s %-100s %5.1fs%s" % (status, tid, secs, extra), flush=True)
            if status == "FAIL":
                failures.append((tid, detail))
    for tid, out in failures:
        print("\n======== FAIL: %s ========\n%s" % (tid, out.rstrip()), flush=True)
    print("%s: %d passed, %d failed, %d skipped in %.0fs"
          % (suite, counts["ok"], counts["FAIL"], counts["skip"], time.monotonic() - t0),
          flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())

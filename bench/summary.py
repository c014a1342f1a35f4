#!/usr/bin/python3
"""bench/summary.py RESULTS -- the goal rows every bench script appended to RESULTS
(bench/benchlib.py), as one table: the last thing `make bench` prints. Exits 0 whether
or not the goals are met: benchmarks report, tests check behaviour."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def main():
    if len(sys.argv) != 2:
        print("usage: summary.py RESULTS", file=sys.stderr)
        return 2
    if not os.path.exists(sys.argv[1]):
        print("summary: no results in %s (did every bench script fail?)" % sys.argv[1],
              file=sys.stderr)
        return 1
    goals = benchlib.load(sys.argv[1])
    met = sum(1 for g in goals if g.met())
    benchlib.report("All goals of this run (%d of %d met)" % (met, len(goals)), goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())

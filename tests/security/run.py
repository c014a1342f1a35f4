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
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import jbtest  # noqa: E402  (the same bubblewrap check as the integration suite)
import run as runner  # noqa: E402  (tests/integration/run.py: one runner for both suites)

if __name__ == "__main__":
    sys.exit(runner.main(suite="security", here=HERE, timeout=180,
                         slow_first=("test_41", "test_4413"), skip_reason=jbtest.bwrap_problem,
                         doc=__doc__))

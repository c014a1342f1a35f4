#!/usr/bin/python3
"""bench/sprites-latency.py -- latency of the Sprites backend against the fake Sprites API
(tests/fakes/sprites.py, in-process, every create taking 2 s like a slow real one).

Prints a markdown table (min / median / max wall milliseconds over RUNS; no thresholds):
  a) first message in a new thread, empty pool: `janebot chat` is started (fresh state dir,
     fresh fake, new --thread), settles (its start-up probe of the API is seen, +0.2 s),
     then one message is written to its stdin; the time runs until the agent's answer
     appears on its stdout (sprite create + policy + file placement + the agent's exec).
  b) the same with a warm pool (JANEBOT_SPRITES_POOL=2): after start, wait (up to 30 s)
     until the fake holds 2 ready pool sprites -- named jane-pool-<12 hex>, each with a
     checkpoint whose comment starts with "janebot-golden" -- then send and time. When the
     pool never gets ready the row says so ("n/a (pool not ready after 30 s)").
  c) `janebot sandbox exec KEY -- true` in an existing sprite: one warm-up call (which
     creates the sprite), then EXEC_RUNS timed calls (whole process: start-up probe,
     sprite lookup, policy, WebSocket exec).

usage: bench/sprites-latency.py [JANEBOT_BINARY] [RUNS] [EXEC_RUNS]
       (default build/janebot, 5, 20)
Everything listens on 127.0.0.1; every wait is bounded; janebot processes (each in its
own process group) and the temp dir are cleaned up on every exit path.
"""
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from sprites import FakeSprites  # noqa: E402

AGENT = os.path.join(REPO, "tests", "fakes", "agent.py")
TOKEN = "bench-org/1ef8/benchSpritesToken"
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSTHROUGH = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
CREATE_DELAY = 2.0
POOL_SIZE = 2
POOL_WAIT = 30.0
POOL_RE = re.compile(r"^jane-pool-[0-9a-f]{12}$")
SETTLE_TIMEOUT = 5.0
ANSWER_TIMEOUT = 60.0
EXEC_TIMEOUT = 60.0

T0 = time.monotonic()
PROCS = []


class BenchError(Exception):
    pass


def progress(msg):
    print("sprites-latency: [%5.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


def stop(p, grace=5.0):
    """Close stdin, SIGTERM the process group we started, then SIGKILL it."""
    if p is None:
        return
    try:
        if p.stdin:
            p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group, if any
    except OSError:
        pass
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        pass
    if p in PROCS:
        PROCS.remove(p)


def tail(path, n=1500):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


class Run:
    """One fresh fake Sprites API and one fresh janebot state dir."""

    def __init__(self, jb, tmp, label):
        self.jb = jb
        self.dir = tempfile.mkdtemp(prefix=label + "-", dir=tmp)
        # A janebot running as root drops to uid 1000 inside the sprite: let it reach the
        # sprite homes under our temp dir.
        os.chmod(self.dir, 0o755)
        self.fake = FakeSprites(os.path.join(self.dir, "sprites"), TOKEN).start()
        self.fake.create_delay = CREATE_DELAY
        os.chmod(self.fake.root, 0o755)
        # The agent runs as that user too: a copy it can read wherever the repo lives.
        self.agent = os.path.join(self.dir, "agent.py")
        shutil.copy(AGENT, self.agent)
        os.chmod(self.agent, 0o755)
        self.state = os.path.join(self.dir, "state")
        self.home = os.path.join(self.dir, "home")
        for d in (self.state, self.home):
            os.makedirs(d, mode=0o700)
        self.env = {"PATH": SYS_PATH, "HOME": self.home, "JANEBOT_STATE_DIR": self.state,
                    "JANEBOT_AGENT": "command", "JANEBOT_AGENT_CMD": self.agent,
                    "JANEBOT_SANDBOX": "sprites", "SPRITES_TOKEN": TOKEN,
                    "SPRITES_API_URL": self.fake.url}
        for k in PASSTHROUGH:
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.log = os.path.join(self.dir, "janebot.log")

    def close(self):
        self.fake.stop()

    def probed_since(self, n):
        with self.fake.lock:
            calls = self.fake.calls[n:]
        return any(c["method"] == "GET" and c["path"] == "/v1/sprites" and
                   "max_results=1" in c["query"] for c in calls)

    def pool_ready(self):
        f = self.fake
        with f.lock:
            names = [n for n in f.sprites if POOL_RE.match(n)]
        return [n for n in names
                if any(c["comment"].startswith("janebot-golden") for c in f.checkpoints(n))]

    def first_message(self, thread, pool):
        """ms from writing one message to a new thread to its answer on stdout, or None
        with a reason when the pool never got ready."""
        env = dict(self.env)
        if pool:
            env["JANEBOT_SPRITES_POOL"] = str(pool)
        n0 = len(self.fake.calls)
        log = open(self.log, "ab")
        try:
            p = subprocess.Popen([self.jb, "chat", "--thread", thread], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.dir,
                                 start_new_session=True)
        finally:
            log.close()
        PROCS.append(p)
        try:
            end = time.monotonic() + SETTLE_TIMEOUT
            while not self.probed_since(n0) and time.monotonic() < end and p.poll() is None:
                time.sleep(0.02)
            time.sleep(0.2)
            if p.poll() is not None:
                raise BenchError("janebot chat exited (%s) before the message:\n%s"
                                 % (p.returncode, tail(self.log)))
            if pool:
                end = time.monotonic() + POOL_WAIT
                while len(self.pool_ready()) < pool:
                    if time.monotonic() > end or p.poll() is not None:
                        return None, "n/a (pool not ready after %d s)" % POOL_WAIT
                    time.sleep(0.1)
            msg = "bench message %s" % thread
            want = ("echo: " + msg).encode()
            out = b""
            t0 = time.monotonic()
            p.stdin.write((msg + "\n").encode())
            p.stdin.flush()
            while want not in out:
                left = t0 + ANSWER_TIMEOUT - time.monotonic()
                r, _, _ = select.select([p.stdout], [], [], max(0, left))
                if not r:
                    raise BenchError("no answer within %d s; stdout %r\n%s"
                                     % (ANSWER_TIMEOUT, out[-500:], tail(self.log)))
                d = os.read(p.stdout.fileno(), 65536)
                if not d:
                    raise BenchError("janebot chat closed stdout without the answer; "
                                     "stdout %r\n%s" % (out[-500:], tail(self.log)))
                out += d
            return (time.monotonic() - t0) * 1e3, None
        finally:
            stop(p)

    def exec_true(self, key):
        t0 = time.monotonic()
        try:
            r = subprocess.run([self.jb, "sandbox", "exec", key, "--", "true"],
                               stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                               cwd=self.dir, timeout=EXEC_TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise BenchError("sandbox exec did not finish within %d s" % EXEC_TIMEOUT)
        ms = (time.monotonic() - t0) * 1e3
        if r.returncode != 0:
            raise BenchError("sandbox exec failed (%d): %s" % (r.returncode,
                                                              r.stderr.decode()[-1500:]))
        return ms


def first_message_case(jb, tmp, label, runs, pool):
    samples, why = [], None
    for i in range(runs):
        run = Run(jb, tmp, "%s%d" % (label, i))
        try:
            ms, why = run.first_message("bench-%s-%d" % (label, i), pool)
        finally:
            run.close()
        if ms is None:
            progress("%s run %d: %s" % (label, i + 1, why))
            break  # the pool will not get ready in the next run either
        progress("%s run %d: %.0f ms" % (label, i + 1, ms))
        samples.append(ms)
    return samples, why


def exec_case(jb, tmp, runs):
    run = Run(jb, tmp, "c")
    try:
        warm = run.exec_true("bench:exec")
        progress("c warm-up (creates the sprite): %.0f ms" % warm)
        samples = [run.exec_true("bench:exec") for _ in range(runs)]
        progress("c %d runs done" % runs)
        return samples
    finally:
        run.close()


def row(name, samples, why=None):
    if not samples:
        print("| %-45s | %s |  |  |  |" % (name, why or "n/a"))
        return
    print("| %-45s | %4d | %8.0f | %9.0f | %8.0f |" % (
        name, len(samples), min(samples), statistics.median(samples), max(samples)))


def main():
    jb = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                         os.path.join(REPO, "build", "janebot"))
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    exec_runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    if not os.access(jb, os.X_OK):
        sys.exit("sprites-latency: no janebot binary at %s (run make)" % jb)
    tmp = tempfile.mkdtemp(prefix="janebot-bench-sprites-")
    os.chmod(tmp, 0o755)
    rows = []
    try:
        for label, name, pool in (("a", "a) first message, new thread, empty pool", 0),
                                  ("b", "b) first message, new thread, warm pool of %d"
                                   % POOL_SIZE, POOL_SIZE)):
            try:
                s, why = first_message_case(jb, tmp, label, runs, pool)
            except BenchError as e:
                progress("%s failed: %s" % (label, e))
                s, why = [], "n/a (%s)" % str(e).split("\n")[0][:80]
            rows.append((name, s, why))
        try:
            rows.append(("c) sandbox exec `true`, existing sprite", exec_case(jb, tmp, exec_runs),
                         None))
        except BenchError as e:
            progress("c failed: %s" % e)
            rows.append(("c) sandbox exec `true`, existing sprite", [],
                         "n/a (%s)" % str(e).split("\n")[0][:80]))
        print("Sprites backend against the fake API (create takes %.1f s), wall ms\n"
              % CREATE_DELAY)
        print("| %-45s | runs |   min ms | median ms |   max ms |" % "case")
        print("|%s|------|----------|-----------|----------|" % ("-" * 47))
        for name, s, why in rows:
            row(name, s, why)
    finally:
        for p in list(PROCS):
            stop(p, grace=1.0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

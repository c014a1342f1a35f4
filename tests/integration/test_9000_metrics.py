"""9000: JANEBOT_METRICS_LISTEN: `janebot serve` answers Prometheus on /metrics (text format
0.0.4) and health checks on /healthz and /readyz, against the fake Slack. The numbers are
read the way an on-call engineer reads them: a conversation moves the counters by what
happened in it, and the real Prometheus tools (Debian's `prometheus` package: promtool,
the server) accept and scrape the output."""
import base64
import http.client
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request

import sys

from jbtest import FAKES, needs_bwrap
from test_5000_serve_startup import APP_TOKEN, BOT_TOKEN, ServeCase

sys.path.insert(0, str(FAKES))
from llm_upstream import FakeUpstream  # noqa: E402

# Run inside the sandbox by the scripted agent: one Anthropic request through the LLM proxy
# (the fake upstream reports 10 input and 5 output tokens) and one CONNECT the egress proxy
# refuses (not on the allowlist). Sent base64-encoded: Slack escapes '<', '>' and '&'.
IN_SANDBOX = r"""
import json, os, socket, urllib.request as u
body = json.dumps({"model": "m", "max_tokens": 8,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
r = u.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body,
              headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"],
                       "content-type": "application/json", "anthropic-version": "2023-06-01"})
print("llm", u.urlopen(r).status)
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT denied.example.com:443 HTTP/1.1\r\nHost: denied.example.com\r\n\r\n")
print("egress", s.recv(40).split()[1].decode())
"""
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(text):
    """{(name, ((label, value), ...)): float} of every sample; fails on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = tuple(sorted(LABEL_RE.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@needs_bwrap
class Metrics(ServeCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.env["JANEBOT_METRICS_LISTEN"] = "127.0.0.1:%d" % self.port

    def request(self, path, method="GET", timeout=5.0):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.read().decode(), r.getheader("Content-Type") or ""
        finally:
            c.close()

    def wait_http(self, path, status, timeout=10.0):
        """Poll path until it answers status; return the body."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                self.fail("janebot serve exited (rc %s)%s" % (self.proc.returncode,
                                                              self.serve_output()))
            try:
                last = self.request(path)
                if last[0] == status:
                    return last[1]
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.fail("%s did not answer %d within %.0f s (last: %r)%s"
                  % (path, status, timeout, last, self.serve_output()))

    def scrape(self):
        status, body, ctype = self.request("/metrics")
        self.assertEqual(status, 200, body)
        self.assertIn("text/plain; version=0.0.4", ctype)
        return body

    def converse(self):
        """A DM answered, a redelivery of its event; returns the fake's state."""
        self.start_serve()
        d = self.dm("zq-9001 hello")
        self.wait_answer(d, "zq-9001 hello (turn 1)")
        self.slack.redeliver(d["event_ids"][0])
        s = self.wait_all_acked()
        self.wait_for(lambda s: s["envelopes"] and all(e["acked_at"] for e in s["envelopes"]),
                      "the redelivery acked")
        return self.slack.state()

    def test_9001_a_conversation_moves_the_counters_by_what_happened(self):
        s = self.converse()
        # The turn's end (reactions, status removal) may still be in flight: wait for it.
        # The turn is counted inside it, and its lane lets go of the message just after it
        # returns: wait for both.
        end = time.monotonic() + 10
        while True:
            m = parse(self.scrape())
            done = (value(m, "janebot_turns_total", outcome="ok") >= 1
                    and value(m, "janebot_queue_messages") == 0)
            if done or time.monotonic() > end:
                break
            time.sleep(0.1)
        s = self.slack.state()
        envs = [e for e in s["envelopes"] if e["acked_at"]]
        events = [e for e in envs if e.get("type", "events_api") == "events_api"]
        self.assertEqual(value(m, "janebot_turns_total", outcome="ok"), 1, self.scrape())
        self.assertEqual(value(m, "janebot_turn_duration_seconds_count"), 1)
        self.assertEqual(value(m, "janebot_events_received_total", type="events_api"),
                         len(events), "one per envelope the fake sent%s" % self.summary(s))
        self.assertEqual(value(m, "janebot_events_acked_total", type="events_api"), len(events))
        self.assertEqual(value(m, "janebot_socket_ack_seconds_count"), len(envs))
        self.assertLessEqual(value(m, "janebot_socket_ack_seconds_bucket", le="1"), len(envs))
        self.assertGreaterEqual(value(m, "janebot_events_deduped_total"), 1,
                                "the redelivered event was dropped as a duplicate")
        posts = [c for c in s["calls"] if c["method"] == "chat.postMessage"]
        self.assertGreaterEqual(len(posts), 1)
        self.assertEqual(value(m, "janebot_slack_api_calls_total", method="chat.postMessage"),
                         len(posts), "every chat.postMessage the fake saw is counted")
        self.assertEqual(value(m, "janebot_slack_api_calls_total", method="auth.test"),
                         len([c for c in s["calls"] if c["method"] == "auth.test"]))
        self.assertEqual(value(m, "janebot_socket_connected"), 1)
        self.assertEqual(value(m, "janebot_queue_messages"), 0)
        self.assertEqual(value(m, "janebot_turns_running"), 0)
        self.assertEqual(value(m, "janebot_build_info", version="0.1.0"), 1)
        self.assertGreater(value(m, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(m, "process_open_fds"), 3)
        start = value(m, "process_start_time_seconds")
        self.assertLess(abs(time.time() - start), 120, "process_start_time_seconds: %s" % start)
        text = self.scrape()
        for secret in (BOT_TOKEN, APP_TOKEN, "zq-9001"):
            self.assertNotIn(secret, text, "no token or message text in the metrics")

    def test_9002_healthz_readyz_follow_the_socket_and_other_requests_are_refused(self):
        self.slack.link(False)  # apps.connections.open refused: never connected
        self.start_serve(wait_connected=False)
        self.assertEqual(self.wait_http("/healthz", 200), "ok\n")
        # 503 all along: "starting" while the core comes up, then the socket's state.
        end = time.monotonic() + 10
        while True:
            status, body, _ = self.request("/readyz")
            self.assertEqual(status, 503, body)
            self.assertEqual(body.count("\n"), 1, "one line: %r" % body)
            if "Socket Mode is not connected" in body or time.monotonic() > end:
                break
            self.assertIn("starting", body)
            time.sleep(0.1)
        self.assertIn("Socket Mode is not connected", body)
        self.slack.link(True)
        self.assertEqual(self.wait_http("/readyz", 200, timeout=20), "ok\n")
        self.assertEqual(self.request("/nope")[0], 404)
        self.assertEqual(self.request("/metrics", method="POST")[0], 405)
        self.assertEqual(self.request("/readyz", method="DELETE")[0], 405)
        # A slow client holding a connection open delays no one else.
        slow = socket.create_connection(("127.0.0.1", self.port))
        slow.sendall(b"GET /metr")
        t0 = time.monotonic()
        self.assertEqual(self.request("/healthz")[0], 200)
        self.assertLess(time.monotonic() - t0, 2.0)
        # A malformed request line and an oversized head get a 4xx, not a hang.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            c.sendall(b"GET metrics\r\n\r\n")
            self.assertIn(b" 400 ", c.recv(200))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            try:
                c.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            except OSError:
                pass
            self.assertIn(b" 431 ", c.recv(200))
        slow.close()
        # Slack gone: the socket closes, readiness goes with it, the process stays healthy.
        self.slack.stop()
        body = self.wait_http("/readyz", 503, timeout=10)
        self.assertIn("Socket Mode", body)
        self.assertEqual(self.request("/healthz")[0], 200)

    def test_9007_readyz_says_so_while_the_store_takes_no_writes(self):
        self.start_serve()
        self.assertEqual(self.wait_http("/readyz", 200), "ok\n")
        # Another process holds the database's write lock (janebot waits 5 s for it).
        db = sqlite3.connect(str(self.tmp / "state" / "janebot.db"), isolation_level=None)
        self.addCleanup(db.close)
        db.execute("BEGIN IMMEDIATE")
        status, body, _ = self.request("/readyz", timeout=15)
        self.assertEqual(status, 503, body)
        self.assertIn("the store does not take writes", body)
        self.assertIn("locked", body)
        self.assertEqual(body.count("\n"), 1, "one line: %r" % body)
        self.assertEqual(self.request("/healthz")[0], 200, "up, though not ready")
        db.execute("ROLLBACK")
        self.assertEqual(self.request("/readyz")[0], 200)

    def test_9009_silent_peers_holding_every_slot_do_not_fail_the_liveness_probe(self):
        self.start_serve()
        self.assertEqual(self.wait_http("/healthz", 200), "ok\n")
        # More silent connections than the listener serves at once (8), and more than it
        # awaits a head from (32): each waited on in turn, they would hold a probe for 8 s.
        silent = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(48)]
        try:
            time.sleep(0.1)  # every slot taken by a peer that sends nothing
            status, body, _ = self.request("/healthz", timeout=3)
            self.assertEqual((status, body), (200, "ok\n"),
                             "the liveness probe is answered while the slots are held")
            status, body, _ = self.request("/metrics")
            self.assertEqual((status, body), (503, "busy\n"),
                             "the rest is told the listener is busy, not left hanging")
        finally:
            for c in silent:
                c.close()
        self.assertEqual(self.wait_http("/metrics", 200)[:7], "# HELP ")

    def test_9003_a_bad_or_busy_listen_address_is_refused_clearly(self):
        for bad in ("nonsense", "127.0.0.1:", "127.0.0.1:99999", ":9464", "::1:9464"):
            r = self.run_jb(["serve"], env={"JANEBOT_METRICS_LISTEN": bad}, timeout=20)
            self.assertNotEqual(r.rc, 0, str(r))
            self.assertIn('JANEBOT_METRICS_LISTEN="%s" is not valid' % bad, r.err, str(r))
            self.assertIn("HOST:PORT", r.err, str(r))
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.port))
            taken.listen(1)
            r = self.run_jb(["serve"], timeout=30)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("cannot listen on 127.0.0.1:%d" % self.port, r.err, str(r))
        self.assertEqual(self.slack.state()["calls"], [],
                         "refused before signing in to Slack")

    def test_9006_llm_tokens_and_proxy_requests_are_counted(self):
        fake = FakeUpstream(self.tmp / "upstream.jsonl").start()
        self.addCleanup(fake.stop)
        self.start_serve(env={"ANTHROPIC_API_KEY": "sk-ant-api03-REALKEY-9006abcdef0123456789",
                              "JANEBOT_UPSTREAM_ANTHROPIC": fake.url})
        code = base64.b64encode(IN_SANDBOX.encode()).decode()
        d = self.dm('run: python3 -c "import base64; exec(base64.b64decode(\'%s\'))"' % code)
        text = self.wait_answer(d, "egress")
        self.assertIn("llm 200", text)
        self.assertIn("egress 403", text)
        end = time.monotonic() + 10
        while True:
            m = parse(self.scrape())
            if value(m, "janebot_turns_total", outcome="ok") >= 1 or time.monotonic() > end:
                break
            time.sleep(0.1)
        self.assertEqual(value(m, "janebot_proxy_requests_total", proxy="llm", verdict="allowed"), 1)
        self.assertEqual(value(m, "janebot_proxy_requests_total", proxy="egress",
                               verdict="denied"), 1)
        self.assertGreater(value(m, "janebot_proxy_bytes_total", proxy="llm",
                                 direction="upstream"), 50)
        self.assertGreater(value(m, "janebot_proxy_bytes_total", proxy="llm",
                                 direction="downstream"), 50)
        self.assertEqual(value(m, "janebot_llm_tokens_total", kind="input"), 10)
        self.assertEqual(value(m, "janebot_llm_tokens_total", kind="output"), 5)
        self.promtool_check(self.scrape())

    def promtool_check(self, text):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool is not installed (Debian package prometheus; "
                          "scripts/setup.sh --test)")
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s%s\n--- output ---\n%s"
                         % (p.stdout.decode(), p.stderr.decode(), text))

    def test_9008_a_failed_sign_in_is_an_error_not_a_crash(self):
        self.slack.fail("auth.test", count=5, mode="error", error="invalid_auth")
        for env in ({}, {"JANEBOT_METRICS_LISTEN": None}):
            r = self.run_jb(["serve"], env=env, timeout=30)
            self.assertEqual(r.rc, 1, "exit 1, not a signal: %s" % r)
            self.assertIn("cannot sign in to Slack with SLACK_BOT_TOKEN", r.err, str(r))
            self.assertIn("invalid_auth", r.err, str(r))

    def test_9004_promtool_check_metrics_accepts_the_output(self):
        self.converse()
        self.promtool_check(self.scrape())

    def test_9005_a_real_prometheus_scrapes_janebot(self):
        prom = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not os.access(prom, os.X_OK):
            self.skipTest("prometheus is not installed (Debian package prometheus)")
        self.start_serve()
        pport = free_port()
        cfg = self.tmp / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                       "scrape_configs:\n  - job_name: janebot\n    static_configs:\n"
                       "      - targets: ['127.0.0.1:%d']\n" % self.port)
        log = open(self.tmp / "prometheus.log", "wb")
        p = subprocess.Popen([prom, "--config.file=%s" % cfg,
                              "--storage.tsdb.path=%s" % (self.tmp / "tsdb"),
                              "--web.listen-address=127.0.0.1:%d" % pport],
                             stdout=log, stderr=subprocess.STDOUT, cwd=str(self.tmp))
        self.addCleanup(lambda: (p.kill(), p.wait(), log.close()))

        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pport, urllib.parse.quote(q))
            with urllib.request.urlopen(url, timeout=3) as r:
                import json
                return json.loads(r.read().decode())["data"]["result"]

        end = time.monotonic() + 20
        up = None
        while time.monotonic() < end:
            if p.poll() is not None:
                self.skipTest("prometheus cannot run here (rc %s): %s"
                              % (p.returncode, (self.tmp / "prometheus.log").read_text()[-500:]))
            try:
                up = query('up{job="janebot"}')
                if up and up[0]["value"][1] == "1":
                    break
            except OSError:
                pass
            time.sleep(0.25)
        self.assertTrue(up and up[0]["value"][1] == "1",
                        "Prometheus never scraped janebot successfully: %r\n%s"
                        % (up, (self.tmp / "prometheus.log").read_text()[-2000:]))
        info = query('janebot_build_info{job="janebot"}')
        self.assertEqual([r["metric"].get("version") for r in info], ["0.1.0"])
        conn = query('janebot_socket_connected{job="janebot"}')
        self.assertEqual([r["value"][1] for r in conn], ["1"])

"""4600: the LLM proxy against a hostile sandbox (issue 11): only the API calls the agents
make reach the upstream with the real key, header lines two parsers could read differently
never reach it, and request bodies cannot drive janebot's memory up.

Built on the LLM proxy tests (tests/integration/test_7000_llm_proxy.py: ProxyCase starts
the fake upstream, holds fake real keys and runs its in-sandbox client). Each class runs
through both listeners: a local exec's own 127.0.0.1:4000 (handed to the host proxy) and
the TCP listener remote sandboxes (sprites) use, with the fake Sprites service.
"""
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import unittest

from sectest import SecCase, needs_bwrap  # first: puts tests/integration on sys.path
from jbtest import BIN, FAKES, default_signals  # noqa: E402
from test_7000_llm_proxy import WAIT, ProxyCase, anth, oai  # noqa: E402
from test_8300_sprites_llm import free_port  # noqa: E402

sys.path.insert(0, str(FAKES))
from llm_upstream import header  # noqa: E402

PREFIX = {"anthropic": "/anthropic", "openai": "/openai/v1", "amp": "/amp"}


def amp(path, method="POST", body=None, **kw):
    r = {"provider": "amp", "method": method, "path": path,
         "body": {"method": "getUserInfo", "params": {}} if body is None else body}
    r.update(kw)
    return r


def req(prov, method, path):
    if prov == "anthropic":
        return anth(path=path, method=method)
    if prov == "openai":
        return oai(path=path, method=method, body={})
    return amp(path, method=method)


# (provider, method, path after the provider's base URL): none may reach the upstream.
BAD_PATHS = [
    ("amp", "POST", "/api/.."),  # libcurl made this the upstream's "/" with the real key
    ("amp", "POST", "/api/../"),
    ("amp", "GET", "/api/.."),
    ("amp", "POST", "/api/./internal?getUserInfo"),
    ("amp", "POST", "/api//internal?getUserInfo"),
    ("amp", "POST", "/api/internal/?getUserInfo"),
    ("amp", "POST", "/api/internal/..?getUserInfo"),
    ("amp", "POST", "/api/%2e%2e"),
    ("amp", "POST", "/api/%2E%2E/admin"),
    ("amp", "POST", "/api/internal%2f..%2fthreads"),
    ("amp", "POST", "/api/internal%2F..%2Fthreads"),
    ("amp", "POST", "/api/internal%5c..%5cthreads"),
    ("amp", "POST", "/api\\..\\threads"),
    ("amp", "POST", "/api/threads"),  # other Amp endpoints: other people's threads
    ("amp", "GET", "/api/threads/T-0123456789"),
    ("amp", "GET", "/api/internal?getUserInfo"),
    ("amp", "DELETE", "/api/internal?getUserInfo"),
    ("amp", "POST", "/api/internal"),
    ("amp", "POST", "/api/internal?"),
    ("amp", "POST", "/api/internal?getUserInfo&x=1"),
    ("amp", "POST", "/api/internal?a=b"),
    ("amp", "POST", "/api/telemetry?x"),
    ("anthropic", "POST", "/v1/messages/../models"),
    ("anthropic", "POST", "/v1/messages/..%2fmodels"),
    ("anthropic", "POST", "/v1/messages%2F..%2Fmodels"),
    ("anthropic", "POST", "/v1/%2e/messages"),
    ("anthropic", "POST", "/v1/./messages"),
    ("anthropic", "POST", "/v1//messages"),
    ("anthropic", "POST", "/v1/messages/"),
    ("anthropic", "POST", "/v1/messages?beta=true&x=1"),
    ("anthropic", "POST", "/v1/messages?beta=false"),
    ("anthropic", "POST", "/v1/messages#x"),
    ("anthropic", "POST", "/v1\\messages"),
    ("anthropic", "POST", "/V1/messages"),
    ("anthropic", "POST", "/v1/messages;x"),
    ("anthropic", "GET", "/v1/messages"),
    ("anthropic", "PUT", "/v1/messages"),
    ("anthropic", "GET", "/v1/models"),
    ("openai", "GET", "/models/../files"),
    ("openai", "GET", "/models/gpt-fake"),
    ("openai", "POST", "/../chat/completions"),
    ("openai", "POST", "/chat/completions?x=1"),
    ("openai", "GET", "/chat/completions"),
    ("openai", "POST", "/embeddings"),
]

# What the agents send (agent-clis.md): (request, the path the upstream must see).
GOOD = [
    (anth(), "/v1/messages?beta=true"),
    (anth(path="/v1/messages"), "/v1/messages"),
    (anth(path="/v1/messages/count_tokens?beta=true"), "/v1/messages/count_tokens?beta=true"),
    (oai(), "/v1/chat/completions"),
    (oai(path="/responses", body={"model": "gpt-fake", "input": "hi"}), "/v1/responses"),
    (oai(path="/models", method="GET", body=None), "/v1/models"),
    (amp("/api/internal?getUserInfo"), "/api/internal?getUserInfo"),
    (amp("/api/telemetry", body=[]), "/api/telemetry"),
]
KEY_OF = {"/v1/messages": "ANTHROPIC_API_KEY", "/api/": "AMP_API_KEY", "/v1/": "OPENAI_API_KEY"}

# Header lines a strict parser refuses and a lenient one reads its own way: (what, headers).
BAD_HEADERS = [
    ("a space before the colon", {"x-foo ": "1"}),
    ("a tab before the colon", {"x-foo\t": "1"}),
    ("a folded line", {"x-a": "1\r\n  folded-on"}),
    ("a folded line that looks like a header", {"x-a": "1\r\n x-b: 2"}),
    ("a bare LF", {"x-a": "1\nx-b: 2"}),
    ("a bare CR", {"x-a": "1\rx-b: 2"}),
    ("a NUL", {"x-a": "1\x00x"}),
    ("a control character in a value", {"x-a": "1\x01"}),
    ("DEL in a value", {"x-a": "1\x7f"}),
    ("a name with a space", {"x a": "1"}),
    ("a name with '('", {"x(a)": "1"}),
    ("a non-ASCII name", {"x-\u00e9": "1"}),
    ("an empty name", {"x-a": "1\r\n: v"}),
    ("a line without a colon", {"x-a": "1\r\nno-colon"}),
    ("two Content-Length headers", {"x-a": "1\r\ncontent-length: 2"}),
    ("a Content-Length with a sign", {"x-a": "1\r\ncontent-length: +5"}),
]

# Says it is ready and waits for GO; then opens N connections to the Anthropic base URL,
# each announcing a body of TOTAL bytes and sending MIB MiB of it, says so, and holds them
# all until RELEASE exists. argv: N MIB TOTAL GO RELEASE.
HOLD_CLIENT = r'''
import json, os, socket, sys, threading, time
n, mib, total = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
go, release = sys.argv[4], sys.argv[5]
def wait_for(path):
    end = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.05)
print(json.dumps({"ready": True}), flush=True)
wait_for(go)
base, tok = os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_API_KEY"]
hostport, _, bpath = base.split("://", 1)[1].partition("/")
host, _, port = hostport.partition(":")
head = ("POST /%s/v1/messages HTTP/1.1\r\nhost: %s\r\nx-api-key: %s\r\n"
        "anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        "content-length: %d\r\n\r\n" % (bpath, hostport, tok, total)).encode()
chunk = b'{"pad":"' + b"a" * (1 << 20)
lock, socks, errors = threading.Lock(), [], []
def one():
    try:
        s = socket.create_connection((host, int(port or 80)), timeout=30)
        s.sendall(head)
        left = int(mib * (1 << 20))
        while left > 0:
            k = min(left, len(chunk))
            s.sendall(chunk[:k])
            left -= k
        with lock:
            socks.append(s)
    except OSError as e:
        with lock:
            errors.append(str(e))
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"held": len(socks), "errors": errors[:5]}), flush=True)
wait_for(release)
for s in socks:
    s.close()
'''


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS for pid %d" % pid)


class Sink:
    """An upstream that reads request bodies and throws them away: what the proxy forwards
    costs the test nothing. Answers 200 with usage once a whole body arrived."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(256)
        self.url = "http://127.0.0.1:%d" % self.srv.getsockname()[1]
        self.lock = threading.Lock()
        self.received = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            head, _, rest = buf.partition(b"\r\n\r\n")
            want = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    want = int(v)
            got = len(rest)
            while got < want:
                b = c.recv(1 << 20)
                if not b:
                    break
                got += len(b)
                with self.lock:
                    self.received += len(b)
            if got >= want:
                body = b'{"usage":{"input_tokens":1,"output_tokens":1}}'
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                          % (len(body), body))

    def close(self):
        self.srv.close()


class LLMProxyCase(ProxyCase, SecCase):
    """ProxyCase (fake upstream, fake real keys, in-sandbox client) with the escape suite's
    post-condition. Subclasses pick the listener."""

    remote = False

    def setUp(self):
        super().setUp()
        if self.remote:
            self.sprites = self.use_fake_sprites()
            port = free_port()
            self.public = "http://127.0.0.1:%d" % port
            self.env.update({"JANEBOT_PROXY_LISTEN": "127.0.0.1:%d" % port,
                             "JANEBOT_PUBLIC_URL": self.public})

    def still_serves(self, thread):
        """Post-condition: an allowed request still goes through, and a normal turn works."""
        r = self.results(thread, [anth()])
        self.assertEqual(r[0]["status"], 200, "an allowed request afterwards: %s" % r[0])
        self.normal_turn_still_works()

    def shared_file(self, thread, name):
        """(path inside the sandbox, path on the host) of a file the test creates."""
        if self.remote:
            return str(self.tmp / name), self.tmp / name
        return "/home/agent/" + name, self.home_of(thread) / name

    def start_raw(self, thread, argv):
        """`janebot sandbox exec THREAD -- ARGV` in the background; (proc, line queue) as
        ProxyCase.start_bg() gives for its client."""
        p = subprocess.Popen([str(BIN), "sandbox", "exec", thread, "--"] + argv,
                             cwd=str(self.cwd), env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=default_signals)

        def kill():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            p.wait(5)
        self.addCleanup(kill)
        lines = queue.Queue()

        def pump():
            for line in p.stdout:
                lines.put(line.decode(errors="replace"))
            lines.put(None)
        threading.Thread(target=pump, daemon=True).start()
        return p, lines


class PathsMixin:
    def test_4601_only_the_agents_endpoints_reach_the_upstream(self):
        res = self.results("chat:paths", [req(*b) for b in BAD_PATHS])
        for (prov, method, path), r in zip(BAD_PATHS, res):
            with self.subTest(req="%s %s %s" % (prov, method, path)):
                j = self.assert_refused(r, (403,), "anthropic" if prov == "anthropic"
                                        else "openai", "%s %s %s" % (prov, method, path))
                self.assertIn("%s %s%s" % (method, PREFIX[prov], path),
                              j["error"]["message"], "the refusal names the request")
                self.assertNoRealKey(r["body"], "a refusal")
        got = self.fake.requests()
        self.assertEqual([(g["method"], g["path"]) for g in got], [],
                         "refused requests reached the upstream (with the real key)")
        self.still_serves("chat:paths")

    def test_4602_the_agents_endpoints_reach_it_as_sent_with_the_real_key(self):
        res, env, x = self.boxed("chat:good", {
            "print_env": ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AMP_API_KEY"],
            "reqs": [g for g, _ in GOOD]})
        for r in res:
            self.assertEqual(r["status"], 200, "request %d: %s%s" % (r["i"], r, x))
        got = self.fake.requests()
        self.assertEqual([g["path"] for g in got], [p for _, p in GOOD], "paths upstream")
        for g in got:
            var = next(v for k, v in KEY_OF.items() if g["path"].startswith(k))
            want = self.real[var]
            if var == "ANTHROPIC_API_KEY":
                self.assertEqual(header(g, "x-api-key"), [want], g["path"])
            else:
                self.assertEqual(header(g, "authorization"), ["Bearer " + want], g["path"])
        for tok in env.values():
            self.upstream_has_no(tok, "a scoped token")


class HeadersMixin:
    def test_4611_malformed_header_lines_are_refused_not_forwarded(self):
        reqs = [anth(headers=h) for _, h in BAD_HEADERS]
        res = self.results("chat:hdrs", reqs)
        for (what, _), r in zip(BAD_HEADERS, res):
            with self.subTest(what=what):
                j = self.assert_refused(r, (400,), "anthropic", what)
                self.assertIn("bad", j["error"]["message"].lower(), j)
        self.assertEqual(self.fake.requests(), [], "a malformed head reached the upstream")
        # Control: well-formed extra headers pass, unchanged.
        ok = self.results("chat:hdrs", [anth(headers={"x-custom": "fine  value",
                                                      "anthropic-version": "2023-06-01"})])
        self.assertEqual(ok[0]["status"], 200, ok[0])
        got = self.fake.requests()
        self.assertEqual(len(got), 1, got)
        self.assertEqual(header(got[0], "x-custom"), ["fine  value"])
        self.still_serves("chat:hdrs")


    def test_4612_headers_that_could_reroute_a_request_do_not_reach_the_upstream(self):
        # Some servers take the method or path from a header instead of the request line,
        # and a key may reach other organisations or projects than its default one.
        sneaky = {"x-original-url": "/api/threads", "x-rewrite-url": "/api/threads",
                  "x-original-uri": "/api/threads", "x-http-method-override": "DELETE",
                  "x-http-method": "DELETE", "x-method-override": "DELETE",
                  "x-forwarded-prefix": "/admin", "openai-organization": "org-other",
                  "openai-project": "proj-other"}
        res = self.results("chat:route", [amp("/api/internal?getUserInfo", headers=sneaky),
                                          oai(headers=sneaky)])
        for r in res:
            self.assertEqual(r["status"], 200, r)
        got = self.fake.requests()
        self.assertEqual([g["path"] for g in got],
                         ["/api/internal?getUserInfo", "/v1/chat/completions"])
        for g in got:
            for name in sneaky:
                self.assertEqual(header(g, name), [], "%s reached the upstream" % name)


class MemoryMixin:
    CONNS, MIB, BOUND_MIB = 64, 8, 128

    def test_4621_request_bodies_in_flight_do_not_grow_janebots_memory(self):
        # 64 requests at once (the per-exec cap), each 8 MiB into a 31 MiB body: a proxy
        # holding bodies in memory grows by 512 MiB; one that streams them by a few MiB.
        sink = Sink()
        self.addCleanup(sink.close)
        self.env["JANEBOT_UPSTREAM_ANTHROPIC"] = sink.url
        thread = "chat:mem"
        self.assertEqual(self.sbx(thread, "true").rc, 0)  # the sandbox exists
        go_in, go = self.shared_file(thread, "go")
        release_in, release = self.shared_file(thread, "release")
        p, q = self.start_raw(thread, ["/usr/bin/python3", "-c", HOLD_CLIENT, str(self.CONNS),
                                       str(self.MIB), str(31 << 20), go_in, release_in])
        self.next_json(p, q, timeout=WAIT, what="the client's start")
        base = rss_mib(p.pid)
        go.write_text("")
        line = self.next_json(p, q, timeout=60, what="the client's report")
        self.assertEqual(line["held"], self.CONNS, "connections held: %s" % line)
        peak = rss_mib(p.pid)
        release.write_text("")
        self.assertEqual(p.wait(WAIT), 0, p.stderr.read().decode(errors="replace")[-2000:])
        sys.stderr.write("\n  [%s] janebot RSS %.0f MiB -> %.0f MiB with %d x %d MiB in flight "
                         "(%d MiB reached the upstream)\n" % (type(self).__name__, base, peak,
                                                               self.CONNS, self.MIB,
                                                               sink.received >> 20))
        self.assertLess(peak - base, self.BOUND_MIB,
                        "janebot's RSS grew by %.0f MiB with %d request bodies of %d MiB in "
                        "flight: bodies are held in memory" % (peak - base, self.CONNS, self.MIB))
        self.env["JANEBOT_UPSTREAM_ANTHROPIC"] = self.fake.url
        self.still_serves(thread)


@needs_bwrap
class LocalPaths(PathsMixin, LLMProxyCase):
    pass


@needs_bwrap
class LocalHeaders(HeadersMixin, LLMProxyCase):
    pass


@needs_bwrap
class LocalMemory(MemoryMixin, LLMProxyCase):
    pass


class RemotePaths(PathsMixin, LLMProxyCase):
    remote = True


class RemoteHeaders(HeadersMixin, LLMProxyCase):
    remote = True


class RemoteMemory(MemoryMixin, LLMProxyCase):
    remote = True


if __name__ == "__main__":
    unittest.main()

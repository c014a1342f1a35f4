"""7000: the LLM API proxy (issue 7): scoped per-exec tokens, the real key never in a sandbox.

Every test starts tests/fakes/llm_upstream.py in-process and points JANEBOT_UPSTREAM_* at it;
the host environment holds fake "real" keys for the three providers. Requests are made from
inside the sandbox by CLIENT (below), run with `janebot sandbox exec THREAD -- python3 -c`
or by the scripted agent ("run: python3 /home/agent/c.py SPEC"). Every wait is at most 20 s.
"""
import base64
import hashlib
import http.client
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

from jbtest import BIN, FAKES, JanebotCase, default_signals, needs_bwrap, sandbox_name

sys.path.insert(0, str(FAKES))
from llm_upstream import FakeUpstream, header  # noqa: E402

TOKEN_RE = re.compile(r"^jbt_[0-9a-f]{64}$")
ANY_TOKEN_RE = re.compile(r"jbt_[0-9a-f]{16,}")
PROXY_VARS = {
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000/anthropic",
    "OPENAI_BASE_URL": "http://127.0.0.1:4000/openai/v1",
    "AMP_URL": "http://127.0.0.1:4000/amp",
}
KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AMP_API_KEY")
WAIT = 20  # the longest any single wait in this file may take

# ---- the in-sandbox client ----------------------------------------------------------------
# argv[1]: base64(JSON spec). spec: {"print_env": [NAMES], "parallel": bool, "out": PATH,
#   "reqs": [req...], "repeat": N (the reqs N times over), "sleep_end": S}. req: {"provider": "anthropic"|"openai"|"amp"|null,
#   "method", "path" (after the provider's base URL from env; null provider: after
#   http://127.0.0.1:4000), "headers": {}, "body": obj|str, "body_mib": N (a JSON-ish body of
#   N MiB), "token": "env"|"none"|STRING, "auth": "x-api-key"|"bearer"|"both",
#   "read": "all"|"first", "wait_file": PATH, "touch_before": PATH}.
# Prints one JSON line per request (and appends it to "out"): status, headers, body (first
# 64 KiB), body_len, body_sha256, t_head/t_first/t_total (s after the request was sent), chunks
# (number of recv() calls that returned body bytes), error.
CLIENT = r'''
import base64, hashlib, json, os, socket, sys, threading, time
spec = json.loads(base64.urlsafe_b64decode(sys.argv[1]))
lock = threading.Lock()
BASES = {"anthropic": ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
         "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"), "amp": ("AMP_URL", "AMP_API_KEY")}

def emit(obj):
    line = json.dumps(obj)
    with lock:
        print(line, flush=True)
        if spec.get("out"):
            with open(spec["out"], "a") as f:
                f.write(line + "\n")

def dechunk(raw):
    out, i = bytearray(), 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return bytes(out), False
        n = int(raw[i:j].split(b";")[0] or b"0", 16)
        if n == 0:
            return bytes(out), True
        out += raw[j + 2:j + 2 + n]
        i = j + 2 + n + 2

def one(i, r):
    res = {"i": i, "status": None, "error": None}
    try:
        if r.get("touch_before"):
            open(r["touch_before"], "w").close()
        if r.get("wait_file"):
            end = time.monotonic() + 15
            while not os.path.exists(r["wait_file"]):
                if time.monotonic() > end:
                    res["error"] = "wait_file %s never appeared" % r["wait_file"]
                    return emit(res)
                time.sleep(0.05)
        prov = r.get("provider")
        base = "http://127.0.0.1:4000"
        tok = None
        if prov:
            bvar, kvar = BASES[prov]
            base = os.environ.get(bvar)
            if not base:
                res["error"] = "%s is not set in the sandbox" % bvar
                return emit(res)
            tok = os.environ.get(kvar)
        t = r.get("token", "env")
        if t == "none":
            tok = None
        elif t != "env":
            tok = t
        elif not tok:
            res["error"] = "%s is not set in the sandbox" % BASES[prov][1]
            return emit(res)
        rest = base.split("://", 1)[1]
        hostport, _, bpath = rest.partition("/")
        host, _, port = hostport.partition(":")
        path = ("/" + bpath if bpath else "").rstrip("/") + r["path"]
        hdrs = {"host": hostport, "connection": "close"}
        auth = r.get("auth") or ("x-api-key" if prov == "anthropic" else "bearer")
        if tok:
            if auth in ("x-api-key", "both"):
                hdrs["x-api-key"] = tok
            if auth in ("bearer", "both"):
                hdrs["authorization"] = "Bearer " + tok
        hdrs.update({k.lower(): v for k, v in (r.get("headers") or {}).items()})
        body = r.get("body")
        blen = None
        if r.get("body_mib"):
            blen = int(r["body_mib"] * (1 << 20))
            head_of_body = b'{"model":"m","messages":[{"role":"user","content":"'
            body = None
        elif body is not None:
            body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            blen = len(body)
        if blen is not None:
            hdrs.setdefault("content-type", "application/json")
            hdrs["content-length"] = str(blen)
        head = "%s %s HTTP/1.1\r\n" % (r.get("method", "POST"), path)
        head += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        s = socket.create_connection((host, int(port or 80)), timeout=15)
        t0 = time.monotonic()
        s.sendall(head.encode())
        send_err = []
        def send_big():
            try:
                left = blen
                s.sendall(head_of_body)
                left -= len(head_of_body)
                chunk = b"a" * (1 << 20)
                while left > 0:
                    n = min(left, len(chunk))
                    s.sendall(chunk[:n])
                    left -= n
            except OSError as e:
                send_err.append(str(e))
        sender = None
        if r.get("body_mib"):
            sender = threading.Thread(target=send_big, daemon=True)
            sender.start()
        elif body:
            s.sendall(body)
        buf = b""
        times = []
        hdr_end = -1
        status = None
        rh = {}
        first_body = None
        t_head = None
        while True:
            try:
                b = s.recv(1 << 16)
            except ConnectionResetError as e:
                if hdr_end < 0:
                    raise
                res["error"] = "reset after head: %s" % e
                break
            now = time.monotonic() - t0
            if not b:
                break
            buf += b
            if hdr_end < 0:
                hdr_end = buf.find(b"\r\n\r\n")
                if hdr_end >= 0:
                    t_head = now
                    lines = buf[:hdr_end].decode("latin-1").split("\r\n")
                    status = int(lines[0].split()[1])
                    for l in lines[1:]:
                        k, _, v = l.partition(":")
                        rh.setdefault(k.strip().lower(), []).append(v.strip())
                    if len(buf) > hdr_end + 4:
                        times.append(now)
            else:
                times.append(now)
            if hdr_end >= 0 and times and r.get("read") == "first":
                break
            if hdr_end >= 0 and "content-length" in rh and \
                    len(buf) - hdr_end - 4 >= int(rh["content-length"][0]):
                break
        t_total = time.monotonic() - t0
        s.close()
        raw = buf[hdr_end + 4:] if hdr_end >= 0 else b""
        if "chunked" in ",".join(rh.get("transfer-encoding", [])).lower():
            raw, _complete = dechunk(raw)
        res.update({"status": status, "headers": rh,
                    "body": raw[:65536].decode("utf-8", "replace"), "body_len": len(raw),
                    "body_sha256": hashlib.sha256(raw).hexdigest(),
                    "t_head": t_head, "t_first": times[0] if times else None,
                    "t_total": t_total,
                    "chunks": len(times), "chunk_times": times[:64], "send_error": send_err})
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    emit(res)

for name in spec.get("print_env") or []:
    emit({"env": name, "value": os.environ.get(name)})
reqs = (spec.get("reqs") or []) * spec.get("repeat", 1)
if spec.get("parallel"):
    ts = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(reqs)]
    for t in ts: t.start()
    for t in ts: t.join()
else:
    for i, r in enumerate(reqs):
        one(i, r)
if spec.get("sleep_end"):
    time.sleep(spec["sleep_end"])
'''


def b64spec(spec):
    return base64.urlsafe_b64encode(json.dumps(spec).encode()).decode()


def msg_body(text="hello", stream=False, model="claude-sonnet-4-5", **fake):
    b = {"model": model, "max_tokens": 64, "stream": stream,
         "messages": [{"role": "user", "content": text}]}
    if fake:
        b["fake"] = fake
    return b


def anth(path="/v1/messages?beta=true", body=None, **kw):
    r = {"provider": "anthropic", "method": "POST", "path": path,
         "headers": {"anthropic-version": "2023-06-01",
                     "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"},
         "body": msg_body() if body is None else body}
    r.update(kw)
    return r


def oai(path="/chat/completions", body=None, method="POST", **kw):
    r = {"provider": "openai", "method": method, "path": path,
         "body": ({"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
                  if body is None and method == "POST" else body)}
    r.update(kw)
    return r


class ProxyCase(JanebotCase):
    def setUp(self):
        super().setUp()
        self.fake = FakeUpstream(self.tmp / "upstream.jsonl").start()
        self.addCleanup(self.fake.stop)
        self.real = {
            "ANTHROPIC_API_KEY": "sk-ant-api03-REALKEY-" + secrets.token_hex(16),
            "OPENAI_API_KEY": "sk-proj-REALKEY-" + secrets.token_hex(16),
            "AMP_API_KEY": "sgamp_user_REALKEY_" + secrets.token_hex(16),
        }
        self.env.update(self.real)
        self.env.update({
            "JANEBOT_UPSTREAM_ANTHROPIC": self.fake.url,
            "JANEBOT_UPSTREAM_OPENAI": self.fake.url,
            "JANEBOT_UPSTREAM_AMP": self.fake.url,
            "JANEBOT_LOG_LEVEL": "debug",
        })
        self.bg = []

    # Every janebot run of this file: the real keys never show in its output or log.
    def run_jb(self, args, **kw):
        kw.setdefault("timeout", WAIT)
        r = super().run_jb(args, **kw)
        self.assertNoRealKey(r.both, "janebot output%s" % r)
        return r

    def assertNoRealKey(self, text, where):
        for name, v in self.real.items():
            self.assertNotIn(v, text, "the real %s appears in %s" % (name, where))

    # ---- helpers ----------------------------------------------------------------------

    def boxed(self, thread, spec, env=None, timeout=WAIT):
        """Run CLIENT in THREAD's sandbox; return its JSON lines (env lines and results)."""
        if isinstance(spec, list):
            spec = {"reqs": spec}
        x = self.sbx(thread, "/usr/bin/python3", "-", b64spec(spec), input=CLIENT, env=env,
                     timeout=timeout)
        lines = [json.loads(l) for l in x.out.splitlines() if l.startswith("{")]
        self.assertEqual(x.rc, 0, "the in-sandbox client failed%s" % x)
        self.assertNoRealKey(x.out, "a response seen inside the sandbox%s" % x)
        return [l for l in lines if "env" not in l], {l["env"]: l["value"] for l in lines
                                                     if "env" in l}, x

    def results(self, thread, spec, **kw):
        res, _, x = self.boxed(thread, spec, **kw)
        for r in res:
            self.assertIsNone(r.get("error"), "client error: %s%s" % (r.get("error"), x))
        return res

    def start_bg(self, thread, spec):
        """janebot sandbox exec ... CLIENT in the background; returns (proc, line queue)."""
        argv = [str(BIN), "sandbox", "exec", thread, "--", "/usr/bin/python3", "-",
                b64spec(spec)]
        p = subprocess.Popen(argv, cwd=str(self.cwd), env=self.env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=default_signals)
        p.stdin.write(CLIENT.encode())
        p.stdin.close()

        def kill():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            p.wait(5)
        self.addCleanup(kill)
        q = queue.Queue()

        def pump():
            for line in p.stdout:
                q.put(line.decode(errors="replace"))
            q.put(None)
        threading.Thread(target=pump, daemon=True).start()
        return p, q

    def next_json(self, p, q, timeout=15, what="a line"):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.fail("the background sandbox exec printed no %s within %ss" % (what, timeout))
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                err = p.stderr.read().decode(errors="replace") if p.poll() is not None else ""
                self.fail("the background sandbox exec ended (rc %s) before %s; stderr:\n%s"
                          % (p.poll(), what, err[-3000:]))
            if line.startswith("{"):
                return json.loads(line)

    def token_of(self, thread):
        _, env, x = self.boxed(thread, {"print_env": ["ANTHROPIC_API_KEY"]})
        tok = env.get("ANTHROPIC_API_KEY")
        self.assertTrue(tok and TOKEN_RE.match(tok),
                        "expected a scoped token jbt_<64 hex> in ANTHROPIC_API_KEY, got %r%s"
                        % (tok, x))
        return tok

    def put_client(self, thread):
        w = self.sbx(thread, "/bin/sh", "-c", "cat > /home/agent/c.py", input=CLIENT,
                     timeout=WAIT)
        self.assertEqual(w.rc, 0, w)

    def wait_for(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out after %ss waiting for %s" % (timeout, what))

    def assert_refused(self, r, statuses, shape, what):
        self.assertIn(r["status"], statuses, "%s: expected %s, got %s (%s)"
                      % (what, statuses, r["status"], r.get("body", "")[:500]))
        try:
            j = json.loads(r["body"])
        except ValueError:
            self.fail("%s: the refusal is not JSON: %r" % (what, r["body"][:500]))
        if shape == "anthropic":
            self.assertEqual(j.get("type"), "error", "%s: anthropic error shape: %r" % (what, j))
            self.assertIsInstance(j.get("error"), dict, what)
            self.assertIn("message", j["error"], what)
            self.assertIn("type", j["error"], what)
        elif shape == "openai":
            self.assertIsInstance(j.get("error"), dict, "%s: openai error shape: %r" % (what, j))
            self.assertIn("message", j["error"], what)
            self.assertIn("type", j["error"], what)
        return j

    def upstream_has_no(self, needle, what):
        raw = Path(self.fake.log_path).read_text() if Path(self.fake.log_path).exists() else ""
        self.assertNotIn(needle, raw, "%s reached the upstream" % what)

    def state_files_text(self):
        """Every file of the state dir except the sandbox homes (a home's disk image, as
        root, is the home too), as one bytes blob."""
        out = []
        homes = self.state / "sandboxes"
        for root, dirs, files in os.walk(self.state):
            if Path(root) == homes:
                continue
            rel = Path(root).relative_to(self.state)
            if len(rel.parts) >= 2 and rel.parts[0] == "sandboxes" and rel.parts[2:3] == ("home",):
                dirs[:] = []
                continue
            if len(rel.parts) == 2 and rel.parts[0] == "sandboxes":
                files = [f for f in files if f not in ("home.img", "home.img.new")]
            for f in files:
                try:
                    out.append((Path(root) / f).read_bytes())
                except OSError:
                    pass
        return b"\n".join(out)


@needs_bwrap
class Environment(ProxyCase):
    def test_7001_exec_gets_proxy_variables_and_a_scoped_token_not_the_real_key(self):
        x = self.sbx("chat:env7", "env", timeout=WAIT)
        self.assertEqual(x.rc, 0, x)
        env = dict(l.split("=", 1) for l in x.out.splitlines() if "=" in l)
        for var, url in PROXY_VARS.items():
            self.assertEqual(env.get(var), url, "%s inside the sandbox%s" % (var, x))
        for var in KEY_VARS:
            self.assertRegex(env.get(var, "<unset>"), TOKEN_RE,
                             "%s must be a scoped token jbt_<64 hex>%s" % (var, x))
        self.assertNoRealKey(x.out, "env inside the sandbox")
        # Different per exec.
        t2 = self.token_of("chat:env7")
        self.assertNotEqual(t2, env["ANTHROPIC_API_KEY"], "the token must differ per exec")

    def test_7002_only_providers_with_a_host_key_get_variables(self):
        x = self.sbx("chat:only", "env", env={"OPENAI_API_KEY": None, "AMP_API_KEY": None})
        env = dict(l.split("=", 1) for l in x.out.splitlines() if "=" in l)
        self.assertEqual(env.get("ANTHROPIC_BASE_URL"), PROXY_VARS["ANTHROPIC_BASE_URL"], x)
        for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "AMP_URL", "AMP_API_KEY"):
            self.assertNotIn(var, env, "%s set without a host key%s" % (var, x))

    def test_7003_no_real_key_in_proc_environ_files_or_an_agent_turn(self):
        x = self.sbx("chat:grep", "/bin/sh", "-c",
                     "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; true")
        self.assertEqual(x.rc, 0, x)
        self.assertIn("ANTHROPIC_BASE_URL=", x.out, "no proxy variables in /proc/*/environ%s" % x)
        self.assertNoRealKey(x.out, "/proc/*/environ in the sandbox")
        # A grep of the whole visible tree (bounded: 14 s; what it covered is enough).
        g = self.sbx("chat:grep", "/bin/sh", "-c",
                     "timeout 14 grep -rlsF --exclude-dir=proc --exclude-dir=sys "
                     "--exclude-dir=dev %s / 2>/dev/null | head -5; true"
                     % " ".join("-e '%s'" % v for v in self.real.values()), timeout=WAIT)
        self.assertEqual(g.out.strip(), "", "files holding a real key inside the sandbox%s" % g)
        r = self.chat_ok(["getenv ANTHROPIC_API_KEY", "getenv ANTHROPIC_BASE_URL", "env"],
                         thread="grep", timeout=WAIT)
        self.assertRegex(r.out, r"ANTHROPIC_API_KEY=jbt_[0-9a-f]{64}\b",
                         "a turn must see the scoped token%s" % r)
        self.assertIn_("ANTHROPIC_BASE_URL=http://127.0.0.1:4000/anthropic", r)
        for name in ("OPENAI_BASE_URL", "AMP_URL", "OPENAI_API_KEY", "AMP_API_KEY"):
            self.assertIn(name, r.out, "turn environment lacks %s%s" % (name, r))
        # Nothing on the host side keeps a token or the key in clear.
        tok = self.token_of("chat:grep")
        blob = self.state_files_text()
        self.assertNotIn(tok.encode(), blob, "a token is stored in clear in the state dir")
        for v in self.real.values():
            self.assertNotIn(v.encode(), blob, "a real key is stored in the state dir")


@needs_bwrap
class Forwarding(ProxyCase):
    def test_7101_anthropic_request_reaches_upstream_with_the_real_key_only(self):
        tok = None
        body = msg_body("hello upstream")
        reqs = [anth(body=body), anth(path="/v1/messages/count_tokens", body=body),
                anth(body=body, auth="bearer")]
        res, env, x = self.boxed("chat:fw", {"print_env": ["ANTHROPIC_API_KEY"], "reqs": reqs})
        tok = env.get("ANTHROPIC_API_KEY")
        self.assertTrue(tok and TOKEN_RE.match(tok),
                        "expected a scoped token jbt_<64 hex> in ANTHROPIC_API_KEY, got %r%s"
                        % (tok, x))
        for r in res:
            self.assertIsNone(r.get("error"), x)
            self.assertEqual(r["status"], 200, "request %d through the proxy: %s" % (r["i"], r))
        self.assertEqual(json.loads(res[0]["body"])["content"][0]["text"],
                         "hi from fake (user messages seen: 1)")
        self.assertEqual(json.loads(res[1]["body"]), {"input_tokens": 10})
        got = self.fake.requests()
        self.assertEqual([g["path"] for g in got],
                         ["/v1/messages?beta=true", "/v1/messages/count_tokens",
                          "/v1/messages?beta=true"], "paths seen upstream")
        sent = json.dumps(body).encode()
        for g in got:
            with self.subTest(path=g["path"]):
                self.assertEqual(header(g, "x-api-key"), [self.real["ANTHROPIC_API_KEY"]],
                                 "upstream must get exactly the real key in x-api-key")
                self.assertEqual(header(g, "authorization"), [], "authorization not stripped")
                self.assertEqual(header(g, "anthropic-version"), ["2023-06-01"])
                self.assertEqual(header(g, "anthropic-beta"),
                                 ["claude-code-20250219,interleaved-thinking-2025-05-14"])
                self.assertEqual(g["body_sha256"], hashlib.sha256(sent).hexdigest(),
                                 "body changed on the way")
        self.upstream_has_no(tok, "the scoped token")
        self.upstream_has_no("jbt_", "a scoped token")
        for r in res:
            self.assertNotIn(tok, json.dumps(r["headers"]), "token echoed in response headers")

    def test_7102_openai_and_amp_requests_get_bearer_with_the_real_key(self):
        reqs = [oai(), oai(path="/models", method="GET", body=None),
                oai(path="/responses", body={"model": "gpt-fake", "input": "hi"}),
                # the token in x-api-key as well as in the bearer: x-api-key must not reach OpenAI
                oai(auth="both"),
                {"provider": "amp", "method": "POST", "path": "/api/internal?getUserInfo",
                 "body": {"method": "getUserInfo", "params": {}}},
                {"provider": "amp", "method": "POST", "path": "/api/telemetry", "body": []}]
        res, env, x = self.boxed("chat:oa", {"print_env": ["OPENAI_API_KEY", "AMP_API_KEY"],
                                             "reqs": reqs})
        for r in res:
            self.assertIsNone(r.get("error"), x)
            self.assertEqual(r["status"], 200, "request %d: %s" % (r["i"], r))
        got = self.fake.requests()
        self.assertEqual([(g["method"], g["path"]) for g in got],
                         [("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                          ("POST", "/v1/responses"),
                          ("POST", "/v1/chat/completions"), ("POST", "/api/internal?getUserInfo"),
                          ("POST", "/api/telemetry")])
        for g in got:
            with self.subTest(path=g["path"]):
                key = self.real["AMP_API_KEY" if g["path"].startswith("/api/")
                                else "OPENAI_API_KEY"]
                self.assertEqual(header(g, "authorization"), ["Bearer " + key])
                self.assertEqual(header(g, "x-api-key"), [], "x-api-key must be stripped")
        self.assertEqual(json.loads(res[4]["body"])["echo"]["method"], "getUserInfo")
        for v in env.values():
            self.upstream_has_no(v, "a scoped token")
        # A different credential next to the token: refused, or forwarded without it.
        stray = "stray-credential-" + secrets.token_hex(4)
        r = self.results("chat:oa", [oai(headers={"x-api-key": stray}),
                                     anth(headers={"authorization": "Bearer " + stray,
                                                   "anthropic-version": "2023-06-01"})])
        for x in r:
            self.assertIn(x["status"], (200, 401), x)
        self.upstream_has_no(stray, "a second credential header")

    def test_7103_upstream_errors_are_passed_on(self):
        res = self.results("chat:err", [anth(body=msg_body(status=500)),
                                        anth(body=msg_body(status=429)),
                                        oai(body={"model": "g", "messages": [],
                                                  "fake": {"status": 500}})])
        self.assertEqual([r["status"] for r in res], [500, 429, 500], res)
        self.assertEqual(json.loads(res[0]["body"])["error"]["message"], "fake upstream error 500")
        self.assertEqual(json.loads(res[1]["body"])["error"]["type"], "rate_limit_error")
        self.assertEqual(res[1]["headers"].get("retry-after"), ["7"], "retry-after passed on")
        self.assertEqual(json.loads(res[2]["body"])["error"]["type"], "server_error")


@needs_bwrap
class Refusals(ProxyCase):
    def test_7201_missing_and_forged_tokens_get_401_in_the_providers_shape(self):
        forged = "jbt_" + secrets.token_hex(32)
        reqs = [anth(token="none"), anth(token=forged), anth(token=forged, auth="bearer"),
                anth(token="jbt_short"), anth(token=self.real["ANTHROPIC_API_KEY"][:12] + "x"),
                oai(token=forged), oai(token="none"),
                {"provider": "amp", "method": "POST", "path": "/api/internal?getUserInfo",
                 "body": {}, "token": forged}]
        res = self.results("chat:forge", reqs)
        for r, shape in zip(res, ["anthropic"] * 5 + ["openai"] * 2 + [None]):
            with self.subTest(i=r["i"]):
                self.assert_refused(r, (401,), shape, "request %d" % r["i"])
        self.assertEqual(self.fake.requests(), [], "a refused request reached the upstream")

    def test_7202_a_token_of_another_threads_sandbox_is_refused(self):
        # Thread A's exec stays alive (its token valid) while thread B tries to use it.
        p, q = self.start_bg("chat:ta", {"print_env": ["ANTHROPIC_API_KEY"],
                                         "reqs": [anth(wait_file="/home/agent/go")]})
        tok = self.next_json(p, q, what="thread A's token")["value"]
        self.assertTrue(tok and TOKEN_RE.match(tok), "thread A's token: %r" % tok)
        res = self.results("chat:tb", [anth(token=tok), oai(token=tok)])
        self.assert_refused(res[0], (401,), "anthropic", "A's token from B's sandbox")
        self.assert_refused(res[1], (401,), "openai", "A's token from B's sandbox (openai)")
        self.assertEqual(self.fake.requests(), [], "B's request with A's token went upstream")
        # Control: A itself can still use it.
        (self.home_of("chat:ta") / "go").write_text("")
        a = self.next_json(p, q, what="thread A's own request")
        self.assertEqual(a["status"], 200, "A's own token stopped working: %s" % a)
        self.assertEqual(p.wait(WAIT), 0)

    def test_7203_a_token_of_an_ended_exec_is_refused(self):
        tok = self.token_of("chat:ended")
        res = self.results("chat:ended", [anth(token=tok)])
        self.assert_refused(res[0], (401,), "anthropic", "an ended exec's token")
        self.assertEqual(self.fake.requests(), [])

    def test_7204_revoked_tokens_are_refused(self):
        p, q = self.start_bg("chat:rv", {"print_env": ["ANTHROPIC_API_KEY"],
                                         "reqs": [anth(), anth(wait_file="/home/agent/go")]})
        tok = self.next_json(p, q, what="the token")["value"]
        first = self.next_json(p, q, what="the first request")
        self.assertEqual(first["status"], 200, first)
        rv = self.run_jb(["tokens", "revoke", "chat:rv"])
        self.assertEqual(rv.rc, 0, rv)
        self.assertNotIn(tok, rv.both, rv)
        (self.home_of("chat:rv") / "go").write_text("")
        second = self.next_json(p, q, what="the request after revoke")
        self.assert_refused(second, (401,), "anthropic", "a request after `tokens revoke`")
        self.assertEqual(len(self.fake.requests()), 1, "the revoked request went upstream")
        p.wait(WAIT)

    def test_7205_paths_outside_the_api_are_refused(self):
        bad = [("anthropic", "POST", "/v1/complete"), ("anthropic", "GET", "/v1/models"),
               ("anthropic", "POST", "/v1/files"), ("anthropic", "POST", "/v1/messagesX"),
               ("anthropic", "POST", "/v1/messages/batches"),
               ("anthropic", "POST", "/v1/messages/../../v1/files"),
               ("anthropic", "POST", "/v1/messages/%2e%2e/%2e%2e/admin"),
               ("openai", "POST", "/files"), ("openai", "GET", "/fine_tuning/jobs"),
               ("openai", "POST", "/embeddings"),  # no agent CLI calls it (agent-clis.md)
               ("openai", "DELETE", "/models/gpt-fake"), ("openai", "POST", "/../../api/internal"),
               ("amp", "POST", "/admin"), ("amp", "GET", "/"), ("amp", "POST", "/api/../admin"),
               (None, "GET", "/"), (None, "POST", "/v1/messages"), (None, "GET", "/metrics")]
        reqs = []
        for prov, method, path in bad:
            reqs.append({"provider": prov, "method": method, "path": path, "body": {},
                         "token": "env" if prov else "none"})
        res = self.results("chat:paths", reqs)
        for (prov, method, path), r in zip(bad, res):
            with self.subTest(path="%s %s %s" % (prov, method, path)):
                self.assertIn(r["status"], (400, 403, 404, 405),
                              "%s %s %s: expected 403/404, got %s %s"
                              % (prov, method, path, r["status"], r.get("body", "")[:300]))
        self.assertEqual(self.fake.requests(), [], "a refused path reached the upstream")

    def test_7206_a_request_body_over_32_mib_gets_413(self):
        res = self.results("chat:big", [anth(body_mib=33)], timeout=WAIT)
        self.assert_refused(res[0], (413,), "anthropic", "a 33 MiB body")
        self.assertEqual(self.fake.requests(), [], "the oversized request reached the upstream")
        # Control: 31 MiB is accepted and arrives whole.
        ok = self.results("chat:big", [anth(body_mib=31)], timeout=WAIT)
        self.assertEqual(ok[0]["status"], 200, ok[0])
        got = self.fake.requests()
        self.assertEqual([g["body_len"] for g in got], [31 << 20])


@needs_bwrap
class Streaming(ProxyCase):
    def direct(self, body, path="/v1/messages?beta=true"):
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=15)
        c.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return data

    def test_7301_sse_passes_through_event_by_event(self):
        body = msg_body("stream please", stream=True, delay=0.5, deltas=6)
        res = self.results("chat:sse", [anth(body=body)])
        r = res[0]
        self.assertEqual(r["status"], 200, r)
        self.assertIn("text/event-stream", ",".join(r["headers"].get("content-type", [])))
        # 11 events, 0.5 s apart: about 5 s from first to last.
        self.assertLess(r["t_first"], 1.5, "first SSE event arrived late (buffered?): %s"
                        % r["chunk_times"])
        self.assertGreater(r["t_total"] - r["t_first"], 3.5,
                           "the stream arrived at once, not event by event: %s" % r["chunk_times"])
        self.assertGreaterEqual(r["chunks"], 8, "expected the events in separate reads: %s"
                                % r["chunk_times"])
        want = self.direct(body)
        self.assertEqual(r["body_len"], len(want), "proxied body length != direct")
        self.assertEqual(r["body_sha256"], hashlib.sha256(want).hexdigest(),
                         "proxied SSE bytes differ from the upstream's")

    def test_7307_the_head_goes_on_at_once_though_the_first_event_is_slow(self):
        # The proxy sends the head together with the body bytes of the same read; one that
        # held the head until a body byte came would keep an SDK from its response 2 s.
        body = msg_body("slow start", stream=True, first_delay=2.0, deltas=2)
        r = self.results("chat:sse-slow", [anth(body=body)])[0]
        self.assertEqual(r["status"], 200, r)
        self.assertIsNotNone(r["t_head"], r)
        self.assertLess(r["t_head"], 1.0, "the head waited for the first event: %s" % r)
        self.assertGreater(r["t_first"], 1.8, "the fake did not hold the first event: %s" % r)
        want = self.direct(body)
        self.assertEqual(r["body_sha256"], hashlib.sha256(want).hexdigest())

    def test_7302_openai_stream_passes_through(self):
        body = {"model": "g", "stream": True, "messages": [{"role": "user", "content": "x"}],
                "fake": {"delay": 0.5, "deltas": 4}}
        r = self.results("chat:osse", [oai(body=body)])[0]
        self.assertEqual(r["status"], 200, r)
        self.assertLess(r["t_first"], 1.5, r["chunk_times"])
        self.assertGreater(r["t_total"] - r["t_first"], 2.5, r["chunk_times"])
        self.assertTrue(r["body"].rstrip().endswith("data: [DONE]"), r["body"][-300:])

    def test_7303_the_proxy_survives_a_client_that_disconnects_mid_stream(self):
        slow = msg_body("long", stream=True, delay=1.0, deltas=15)
        res = self.results("chat:dc", [anth(body=slow, read="first"), anth()])
        self.assertEqual(res[0]["status"], 200, res[0])
        self.assertLess(res[0]["t_total"], 3, res[0])
        self.assertEqual(res[1]["status"], 200, "a request after the disconnect: %s" % res[1])
        again = self.results("chat:dc", [anth()])
        self.assertEqual(again[0]["status"], 200, again[0])

    def test_7304_the_upstream_stream_is_closed_when_the_client_goes(self):
        slow = msg_body("long", stream=True, delay=1.0, deltas=15)
        self.results("chat:dc2", [anth(body=slow, read="first")])
        first = self.fake.requests()[0]["id"]

        def ended():
            return [r for r in self.fake.records()
                    if r.get("event") == "stream_end" and r["id"] == first]
        e = self.wait_for(ended, 8, "the upstream stream to end after the client left "
                                    "(the proxy must close it, not read all 17 s of it)")
        self.assertTrue(e[0]["aborted"], e)

    def test_7305_a_slow_upstream_does_not_block_other_requests(self):
        res = self.results("chat:slow", {"parallel": True, "reqs": [
            anth(body=msg_body("slow", head_delay=6)),
            anth(body=msg_body("quick"))]})
        by = {r["i"]: r for r in res}
        self.assertEqual(by[1]["status"], 200, by[1])
        self.assertLess(by[1]["t_total"], 3, "a quick request waited for a slow one: %s" % by[1])
        self.assertEqual(by[0]["status"], 200, by[0])
        self.assertGreater(by[0]["t_total"], 5.5, by[0])
        after = self.results("chat:slow", [anth()])
        self.assertEqual(after[0]["status"], 200)

    def test_7306_200_streams_at_once_from_one_sandbox_all_complete(self):
        """Past the per-sandbox cap (64 requests at once) a request waits for one to end:
        a burst of parallel calls completes, none is reset or closed without an answer."""
        n = 200
        body = msg_body("many", stream=True, deltas=20)
        body["fake"]["text"] = "y" * 400  # about 8 KiB in 20 events
        res = self.results("chat:many", {"parallel": True, "reqs": [anth(body=body)],
                                         "repeat": n})
        self.assertEqual(len(res), n, "one result per request")
        bad = [(r["status"], r["body"][:200]) for r in res if r["status"] != 200]
        self.assertEqual(bad, [], "every request completes")
        for r in res:
            self.assertIn("event: message_stop", r["body"], "a whole stream: %s" % r["body"][-300:])
        self.assertEqual(len(self.fake.requests("/v1/messages")), n, "each reached the upstream once")


@needs_bwrap
class Accounting(ProxyCase):
    def three_requests_prompt(self, thread, extra=None, out=None):
        self.put_client(thread)
        reqs = [anth(), anth(body=msg_body("s", stream=True)), oai()] + (extra or [])
        return "run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": reqs, "out": out or "/home/agent/out.jsonl"})

    def test_7401_usage_is_recorded_per_thread_and_user_and_shown_in_a_footer(self):
        prompt = self.three_requests_prompt("chat:use")
        r = self.chat_ok([prompt], thread="use", user="U7USE", timeout=WAIT,
                         env={"JANEBOT_PRICES": "claude-sonnet-4-5=3:15,gpt-fake=1:2"})
        outs = [json.loads(l) for l in (self.home_of("chat:use") / "out.jsonl").read_text()
                .splitlines()]
        self.assertEqual([o["status"] for o in outs], [200, 200, 200], outs)
        # 3 responses x (10 in, 5 out): 30 in, 15 out, of two models, each priced.
        last = [l for l in r.out.strip().splitlines() if l.strip()][-1]
        self.assertIn("30 in / 15 out", last, "footer with the tokens as last line%s" % r)
        self.assertIn("claude-sonnet-4-5: 20 in / 10 out, $0.0002", last, r)
        self.assertIn("gpt-fake: 10 in / 5 out, $0.0000", last, r)
        self.assertIn("$0.0002 (", last, "the turn's total cost%s" % r)
        u = self.run_jb(["usage", "--json"])
        self.assertEqual(u.rc, 0, u)
        rows = {(x["user"], x["thread"], x["model"]): x for x in json.loads(u.out)}
        cl = rows.get(("U7USE", "chat:use", "claude-sonnet-4-5"))
        gp = rows.get(("U7USE", "chat:use", "gpt-fake"))
        self.assertIsNotNone(cl, u)
        self.assertIsNotNone(gp, u)
        self.assertEqual((cl["requests"], cl["input_tokens"], cl["output_tokens"],
                          cl["total_tokens"], cl["cost_usd"]), (2, 20, 10, 30, None), cl)
        self.assertEqual((gp["requests"], gp["input_tokens"], gp["output_tokens"],
                          gp["total_tokens"]), (1, 10, 5, 15), gp)
        priced = self.run_jb(["usage"], env={"JANEBOT_PRICES": "claude-sonnet-4*=3:15"})
        line = self.line_with(priced, "claude-sonnet-4-5")
        self.assertIn("U7USE", line, priced)
        self.assertIn("$0.0002", line, "cost of the model's row%s" % priced)
        self.assertIn("no price", self.line_with(priced, "gpt-fake"), priced)
        old = self.run_jb(["usage", "--since", "2000-01-01"])
        self.assertIn("chat:use", old.out, old)
        future = self.run_jb(["usage", "--since", "2999-01-01"])
        self.assertEqual(future.rc, 0, future)
        self.assertNotIn("chat:use", future.out, future)
        bad = self.run_jb(["usage", "--since", "yesterday"])
        self.assertNotEqual(bad.rc, 0, "a malformed --since must be refused%s" % bad)

    def test_7402_tokens_list_shows_thread_and_usage_never_a_token(self):
        p, q = self.start_bg("chat:tl", {"print_env": ["ANTHROPIC_API_KEY"],
                                         "reqs": [anth(), anth(wait_file="/home/agent/go")]})
        tok = self.next_json(p, q, what="the token")["value"]
        self.assertEqual(self.next_json(p, q, what="the first request")["status"], 200)
        ls = self.run_jb(["tokens", "list"])
        self.assertEqual(ls.rc, 0, ls)
        self.assertNotIn(tok, ls.both, "tokens list printed a token%s" % ls)
        self.assertIsNone(ANY_TOKEN_RE.search(ls.both), "tokens list printed a token%s" % ls)
        self.assertNotIn(hashlib.sha256(tok.encode()).hexdigest(), ls.both,
                         "tokens list printed a token hash%s" % ls)
        line = self.line_with(ls, "chat:tl")
        self.assertRegex(line, r"\b10\b", "usage (10 in) expected in the thread's line%s" % ls)
        self.assertRegex(line, r"\b5\b", "usage (5 out) expected in the thread's line%s" % ls)
        self.assertRegex(line, r"\d{4}-\d\d-\d\d", "created / last used expected%s" % ls)
        (self.home_of("chat:tl") / "go").write_text("")
        self.assertEqual(self.next_json(p, q, what="the second request")["status"], 200)
        p.wait(WAIT)
        blob = self.state_files_text()
        self.assertNotIn(tok.encode(), blob, "the token is stored in clear in the state dir")

    def test_7403_daily_cap_gives_429_and_the_user_is_told_when_it_resets(self):
        env = {"JANEBOT_USER_DAILY_TOKENS": "1"}
        self.put_client("chat:cap")
        reqs = [anth(), anth(), oai()]
        prompt = "run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": reqs, "out": "/home/agent/out.jsonl"})
        t0 = time.monotonic()
        r = self.chat([prompt], thread="cap", user="UCAP", env=env, timeout=WAIT)
        self.assertLess(time.monotonic() - t0, 15, "the over-budget turn did not end promptly%s" % r)
        out = self.home_of("chat:cap") / "out.jsonl"
        outs = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
        self.assertGreaterEqual(len(outs), 2, "the client's results%s" % r)
        self.assertEqual(outs[0]["status"], 200, "first request is within budget: %s" % outs[0])
        self.assert_refused(outs[1], (429,), "anthropic", "a request past the daily cap")
        if len(outs) > 2:
            self.assert_refused(outs[2], (429,), "openai", "an OpenAI request past the cap")
        self.assertRegex(r.out, r"(?i)daily|budget|limit|quota",
                         "the user must be told about the daily budget%s" % r)
        self.assertRegex(r.out, r"(?i)reset", "the user must be told when it resets%s" % r)
        self.assertEqual(len(self.fake.requests()), 1, "over-budget requests went upstream")
        # The same user's next turn, in another thread: refused at its first request too.
        self.put_client("chat:cap2")
        r2 = self.chat(["run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": [anth()], "out": "/home/agent/out.jsonl"})], thread="cap2", user="UCAP",
            env=env, timeout=WAIT)
        o2 = [json.loads(l) for l in
              (self.home_of("chat:cap2") / "out.jsonl").read_text().splitlines()]
        self.assert_refused(o2[0], (429,), "anthropic", "the capped user in another thread")
        self.assertRegex(r2.out, r"(?i)reset", "the user must be told when it resets%s" % r2)
        self.assertEqual(len(self.fake.requests()), 1, "over-budget requests went upstream")
        # Another user is not affected.
        self.put_client("chat:cap3")
        r3 = self.chat(["run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": [anth()], "out": "/home/agent/out.jsonl"})], thread="cap3", user="UOTHER",
            env=env, timeout=WAIT)
        o3 = [json.loads(l) for l in
              (self.home_of("chat:cap3") / "out.jsonl").read_text().splitlines()]
        self.assertEqual(o3[0]["status"], 200, "another user's request: %s%s" % (o3[0], r3))

    def usage_rows(self, thread):
        u = self.run_jb(["usage", "--json"])
        self.assertEqual(u.rc, 0, u)
        return {x["model"]: x for x in json.loads(u.out) if x["thread"] == thread}

    def test_7404_cache_tokens_count_for_usage_and_the_daily_cap(self):
        # Claude Code's requests are mostly cache reads: 11 in, 100 written to the cache,
        # 1000 read from it, 7 out is 1118 tokens billed, past a cap of 1000.
        self.put_client("chat:cache")
        big = msg_body("a", stream=True, input=11, cache_write=100, cache_read=1000, output=7)
        prompt = "run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": [anth(body=big), anth()], "out": "/home/agent/out.jsonl"})
        r = self.chat([prompt], thread="cache", user="UCACHE", timeout=WAIT,
                      env={"JANEBOT_USER_DAILY_TOKENS": "1000",
                           "JANEBOT_PRICES": "claude-sonnet-4-5=3:15:3.75:0.3"})
        outs = [json.loads(l) for l in
                (self.home_of("chat:cache") / "out.jsonl").read_text().splitlines()]
        self.assertEqual(outs[0]["status"], 200, outs[0])
        self.assert_refused(outs[1], (429,), "anthropic", "a request past the cap of 1000")
        row = self.usage_rows("chat:cache").get("claude-sonnet-4-5")
        self.assertIsNotNone(row, self.run_jb(["usage", "--json"]))
        self.assertEqual((row["input_tokens"], row["cache_write_tokens"], row["cache_read_tokens"],
                          row["output_tokens"], row["total_tokens"]), (11, 100, 1000, 7, 1118),
                         row)
        cost = (11 * 3 + 100 * 3.75 + 1000 * 0.3 + 7 * 15) / 1e6
        self.assertIsNone(row["cost_usd"], "no prices in this command's environment")
        priced = self.run_jb(["usage", "--json"],
                             env={"JANEBOT_PRICES": "claude-sonnet-4-5=3:15:3.75:0.3"})
        row = [x for x in json.loads(priced.out) if x["thread"] == "chat:cache"][0]
        self.assertAlmostEqual(row["cost_usd"], cost, places=9)
        self.assertRegex(r.out, r"(?i)daily token budget", r)

    def test_7405_a_streamed_chat_completion_is_counted_though_the_client_did_not_ask(self):
        self.put_client("chat:oais")
        body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "x"}],
                "fake": {"input": 3, "cache_read": 20, "output": 4}}
        asked = dict(body, stream_options={"include_usage": True})
        prompt = "run: /usr/bin/python3 /home/agent/c.py " + b64spec(
            {"reqs": [oai(body=body), oai(body=asked)], "out": "/home/agent/out.jsonl"})
        self.chat_ok([prompt], thread="oais", user="UOAIS", timeout=WAIT)
        outs = [json.loads(l) for l in
                (self.home_of("chat:oais") / "out.jsonl").read_text().splitlines()]
        self.assertEqual([o["status"] for o in outs], [200, 200], outs)
        chunks = [json.loads(l[5:]) for l in outs[0]["body"].splitlines()
                  if l.startswith("data:") and not l.endswith("[DONE]")]
        self.assertTrue(chunks, outs[0])
        self.assertTrue(all(c["choices"] for c in chunks),
                        "a client that did not ask got the usage chunk: %s" % outs[0]["body"])
        self.assertIn("data: [DONE]", outs[0]["body"])
        mine = [json.loads(l[5:]) for l in outs[1]["body"].splitlines()
                if l.startswith("data:") and not l.endswith("[DONE]")]
        self.assertEqual([c["usage"]["prompt_tokens"] for c in mine if not c["choices"]], [23],
                         "a client that asked gets its usage chunk: %s" % outs[1]["body"])
        row = self.usage_rows("chat:oais").get("gpt-fake")
        self.assertIsNotNone(row, self.run_jb(["usage", "--json"]))
        self.assertEqual((row["requests"], row["input_tokens"], row["cache_read_tokens"],
                          row["output_tokens"]), (2, 6, 40, 8), row)
        sent = [g for g in self.fake.requests() if g["path"].endswith("/chat/completions")]
        first = json.loads(sent[0]["body"])
        self.assertEqual(first.get("stream_options"), {"include_usage": True}, sent[0]["body"])


@needs_bwrap
class Revocation(ProxyCase):
    def test_7501_revoking_a_running_turns_token_ends_the_turn_promptly(self):
        self.put_client("chat:rvt")
        home = self.home_of("chat:rvt")
        spec = {"reqs": [anth(), anth(touch_before="/home/agent/ready",
                                      wait_file="/home/agent/go")],
                "out": "/home/agent/out.jsonl", "sleep_end": 60}
        prompt = "run: /usr/bin/python3 /home/agent/c.py " + b64spec(spec)
        argv = [str(BIN), "chat", "--thread", "rvt", "--user", "URV"]
        (self.tmp / "prompt.txt").write_text(prompt + "\n")
        with open(self.tmp / "prompt.txt") as stdin:
            p = subprocess.Popen(argv, cwd=str(self.cwd), env=self.env, stdin=stdin,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True, preexec_fn=default_signals)
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))
        def ready():
            out = home / "out.jsonl"
            if out.exists():
                first = json.loads(out.read_text().splitlines()[0])
                self.assertEqual(first["status"], 200, "the turn's first request: %s" % first)
            return (home / "ready").exists()
        self.wait_for(ready, 15, "the turn's first request")
        rv = self.run_jb(["tokens", "revoke", "chat:rvt"])
        self.assertEqual(rv.rc, 0, rv)
        (home / "go").write_text("")
        t0 = time.monotonic()
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            self.fail("the turn went on for 15 s after its token was revoked (the agent "
                      "keeps retrying); output:\n%s\n%s" % (out.decode(errors="replace"),
                                                            err.decode(errors="replace")[-2000:]))
        took = time.monotonic() - t0
        text = out.decode(errors="replace") + err.decode(errors="replace")
        self.assertNoRealKey(text, "chat output")
        self.assertLess(took, 10, "the turn ended %.1fs after the refusal" % took)
        self.assertRegex(text, r"(?i)revok", "the message must say the token was revoked:\n"
                         + text[-3000:])
        outs = [json.loads(l) for l in (home / "out.jsonl").read_text().splitlines()]
        self.assertEqual(outs[0]["status"], 200, outs)
        if len(outs) > 1:
            self.assert_refused(outs[1], (401,), "anthropic", "the request after revoke")
        self.assertEqual(len(self.fake.requests()), 1)

    def test_7502_sandbox_rm_revokes_the_threads_tokens(self):
        p, q = self.start_bg("chat:rmv", {"print_env": ["ANTHROPIC_API_KEY"],
                                          "reqs": [anth()], "sleep_end": 30})
        tok = self.next_json(p, q, what="the token")["value"]
        self.assertEqual(self.next_json(p, q, what="the request")["status"], 200)
        # Refused while the exec runs; once its janebot is killed (nothing revoked the
        # token then), removing the sandbox revokes it.
        rm = self.run_jb(["sandbox", "rm", "chat:rmv"])
        self.assertEqual(rm.rc, 1, rm)
        self.assertIn("a turn is running in this thread's sandbox", rm.err, rm)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
        rm = self.run_jb(["sandbox", "rm", "chat:rmv"])
        self.assertEqual(rm.rc, 0, rm)
        res = self.results("chat:other", [anth(token=tok)])
        self.assert_refused(res[0], (401,), "anthropic", "a token after `sandbox rm`")


if __name__ == "__main__":
    unittest.main()

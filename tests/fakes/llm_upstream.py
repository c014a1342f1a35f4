#!/usr/bin/python3
"""tests/fakes/llm_upstream.py -- a fake LLM upstream: Anthropic Messages, OpenAI, Amp.

Standard library only (http.server.ThreadingHTTPServer on 127.0.0.1). Used by the issue-7
tests (janebot's LLM proxy forwards to it through JANEBOT_UPSTREAM_*) and bench/llm-proxy.py,
either in-process (FakeUpstream(log_path).start()) or as a program:

  llm_upstream.py [--port N] [--port-file FILE] [--log FILE]

Endpoints (see docs/agent-clis.md, "Testing without a real LLM"):
  POST /v1/messages[?...]            Anthropic; "stream": true -> SSE (message_start,
                                     content_block_start/delta/stop, message_delta,
                                     message_stop), else one JSON message. Scripted reply:
                                     last user content holds a tool_result -> "done";
                                     user text holds USE_TOOL -> a Bash tool_use; otherwise
                                     "hi from fake (user messages seen: N)".
  POST /v1/messages/count_tokens     {"input_tokens": 10}
  POST /v1/chat/completions          OpenAI; JSON with usage (stream: SSE "data:" chunks,
                                     usage chunk, "data: [DONE]")
  POST /v1/responses, /v1/embeddings, GET /v1/models    minimal OpenAI answers
  * /api/...                         Amp-like: {"ok":true,"method":...,"echo":<body>}
  anything else                      404, JSON error in the shape of the path's provider
  GET /_health                       {"ok":true}   (control, not an API path)
  POST /_control                     JSON {"delay":..., ...} sets defaults for later
                                     requests (same keys as below); {} resets
Usage is fixed: every reply reports input 10 and output 5 tokens (SSE: message_start
input_tokens 10 / output_tokens 1, message_delta output_tokens 5; OpenAI prompt_tokens 10,
completion_tokens 5), so tests can check janebot's accounting.

Switches, from (lowest to highest precedence) /_control, the query string
(fake_<key>=value) and a "fake" object in the JSON request body (the body is the one
thing the proxy must pass unchanged):
  delay=S        seconds between SSE events (slow streaming)
  head_delay=S   seconds before the status line (a slow upstream)
  deltas=N       number of text deltas (default 1)
  mib=N          stream N MiB of text deltas (16 KiB each) for benchmarks
  status=N       answer N (e.g. 500, 429) with the provider's error body; 429 adds
                 retry-after: 7
  text=S         reply text instead of the scripted one
Every request is logged as one JSON line to --log: {"t","id","method","path","headers"
(list of [lower-case name, value]),"body" (text, first 1 MiB),"body_len","body_sha256"};
when a stream ends an {"event":"stream_end","id","aborted","sent"} line follows, with
aborted true when the client went away mid-stream.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USAGE_IN, USAGE_OUT = 10, 5
BODY_LOG_MAX = 1 << 20
BODY_MAX = 64 << 20  # a request body larger than this is refused (the proxy caps at 32 MiB)
DELTA_BYTES = 16 << 10


def provider_of(path):
    p = path.split("?", 1)[0]
    if p.startswith("/api/"):
        return "amp"
    if p.startswith("/v1/messages"):
        return "anthropic"
    if p.startswith("/v1/"):
        return "openai"
    return "anthropic"


def error_body(provider, status, message):
    if provider == "openai":
        typ = {401: "invalid_request_error", 404: "invalid_request_error",
               429: "rate_limit_exceeded", 500: "server_error"}.get(status, "api_error")
        return {"error": {"message": message, "type": typ, "param": None, "code": None}}
    typ = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
           500: "api_error", 529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": typ, "message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm-upstream/1.0"

    def log_message(self, *a):
        pass

    # ---- plumbing ---------------------------------------------------------------------

    def read_body(self):
        te = (self.headers.get("transfer-encoding") or "").lower()
        if "chunked" in te:
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    break
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += n
                if total > BODY_MAX:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(n))
                self.rfile.readline(8)
            return b"".join(parts)
        n = int(self.headers.get("content-length") or 0)
        if n > BODY_MAX:
            raise ValueError("body too large")
        out, left = [], n
        while left > 0:
            b = self.rfile.read(min(left, 1 << 20))
            if not b:
                break
            out.append(b)
            left -= len(b)
        return b"".join(out)

    def log_request_line(self, body):
        srv = self.server
        with srv.lock:
            srv.seq += 1
            rid = srv.seq
        rec = {"t": time.time(), "id": rid, "method": self.command, "path": self.path,
               "headers": [[k.lower(), v] for k, v in self.headers.items()],
               "body": body[:BODY_LOG_MAX].decode("utf-8", "replace"),
               "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
        srv.write_log(rec)
        return rid

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake_%d" % self.rid)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def options(self, body_obj):
        opts = dict(self.server.control)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        for k, v in q.items():
            if k.startswith("fake_"):
                opts[k[5:]] = v[-1]
        if isinstance(body_obj, dict) and isinstance(body_obj.get("fake"), dict):
            opts.update(body_obj["fake"])
        return opts

    # ---- dispatch ---------------------------------------------------------------------

    def handle_any(self):
        self.rid = 0
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.rid = self.log_request_line(b"")
            self.send_json(413, error_body(provider_of(self.path), 413, "request too large"))
            return
        self.rid = self.log_request_line(body)
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_health":
            return self.send_json(200, {"ok": True})
        if path == "/_control" and self.command == "POST":
            try:
                ctl = json.loads(body or b"{}")
            except ValueError:
                return self.send_json(400, {"error": "bad json"})
            with self.server.lock:
                self.server.control = dict(ctl) if ctl else {}
            return self.send_json(200, {"ok": True, "control": self.server.control})
        try:
            body_obj = json.loads(body) if body else None
        except ValueError:
            body_obj = None
        opts = self.options(body_obj)
        prov = provider_of(self.path)
        hd = float(opts.get("head_delay") or 0)
        if hd > 0:
            time.sleep(hd)
        st = int(opts.get("status") or 0)
        if st >= 400:
            extra = {"retry-after": "7"} if st == 429 else None
            return self.send_json(st, error_body(prov, st, "fake upstream error %d" % st), extra)
        m = self.command
        if prov == "amp":
            method = urllib.parse.urlsplit(self.path).query.split("&")[0]
            return self.send_json(200, {"ok": True, "method": method, "path": path,
                                        "echo": body_obj if body_obj is not None
                                        else body.decode("utf-8", "replace")})
        if m == "POST" and path == "/v1/messages":
            return self.anthropic_messages(body_obj or {}, opts)
        if m == "POST" and path == "/v1/messages/count_tokens":
            return self.send_json(200, {"input_tokens": USAGE_IN})
        if m == "POST" and path == "/v1/chat/completions":
            return self.openai_chat(body_obj or {}, opts)
        if m == "POST" and path == "/v1/responses":
            return self.send_json(200, {
                "id": "resp_fake_1", "object": "response", "status": "completed",
                "model": (body_obj or {}).get("model", "gpt-fake"),
                "output": [{"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": opts.get("text") or "hi from fake"}]}],
                "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT,
                          "total_tokens": USAGE_IN + USAGE_OUT}})
        if m == "POST" and path == "/v1/embeddings":
            return self.send_json(200, {"object": "list", "model": "fake-embed",
                                        "data": [{"object": "embedding", "index": 0,
                                                  "embedding": [0.1, 0.2, 0.3]}],
                                        "usage": {"prompt_tokens": USAGE_IN,
                                                  "total_tokens": USAGE_IN}})
        if m == "GET" and path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [
                {"id": "gpt-fake", "object": "model", "owned_by": "fake"}]})
        self.send_json(404, error_body(prov, 404, "fake upstream: no such endpoint %s %s"
                                       % (m, self.path)))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    # ---- Anthropic ----------------------------------------------------------------------

    @staticmethod
    def scripted(req):
        msgs = req.get("messages") or []
        users = [x for x in msgs if isinstance(x, dict) and x.get("role") == "user"]
        last = users[-1].get("content") if users else ""
        blocks = last if isinstance(last, list) else [{"type": "text", "text": str(last)}]
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
            return "text", "done"
        txt = " ".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        if "USE_TOOL" in txt:
            return "tool", None
        return "text", "hi from fake (user messages seen: %d)" % len(users)

    def anthropic_messages(self, req, opts):
        model = req.get("model") or "claude-fake"
        kind, text = self.scripted(req)
        if opts.get("text"):
            kind, text = "text", str(opts["text"])
        if not req.get("stream"):
            content = ([{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                         "input": {"command": "echo hi"}}] if kind == "tool"
                       else [{"type": "text", "text": text}])
            return self.send_json(200, {
                "id": "msg_fake_1", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": "tool_use" if kind == "tool" else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        events = [("message_start", {"type": "message_start", "message": {
            "id": "msg_fake_1", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})]
        if kind == "tool":
            events += [("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "tool_use",
                                                                   "id": "toolu_1",
                                                                   "name": "Bash", "input": {}}}),
                       ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "input_json_delta",
                                                           "partial_json":
                                                           "{\"command\":\"echo hi\"}"}})]
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text",
                                                                      "text": ""}}))
        mib = float(opts.get("mib") or 0)
        deltas = int(opts.get("deltas") or 1)

        def delta_events():
            if kind == "tool":
                return
            if mib > 0:
                left = int(mib * (1 << 20))
                piece = "x" * DELTA_BYTES
                while left > 0:
                    n = min(left, DELTA_BYTES)
                    left -= n
                    yield ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta",
                                                             "text": piece[:n]}})
                return
            for i in range(deltas):
                t = text if deltas == 1 else "%s [%d]" % (text, i)
                yield ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": t}})

        tail = [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "tool_use" if kind == "tool"
                                             else "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": USAGE_OUT}}),
                ("message_stop", {"type": "message_stop"})]

        def all_events():
            yield from events
            yield from delta_events()
            yield from tail
        self.stream(("event: %s\ndata: %s\n\n" % (n, json.dumps(d, separators=(",", ":")))
                     for n, d in all_events()), float(opts.get("delay") or 0))

    def stream(self, chunks, delay):
        """Send an SSE response, one write per event, Connection: close, no length."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header("request-id", "req_fake_%d" % self.rid)
        self.end_headers()
        sent, aborted = 0, False
        try:
            self.wfile.flush()
            first = True
            for c in chunks:
                if delay > 0 and not first:
                    time.sleep(delay)
                first = False
                self.wfile.write(c.encode())
                self.wfile.flush()
                sent += 1
        except (BrokenPipeError, ConnectionResetError, OSError):
            aborted = True
        self.server.write_log({"event": "stream_end", "t": time.time(), "id": self.rid,
                               "aborted": aborted, "sent": sent})

    # ---- OpenAI -------------------------------------------------------------------------

    def openai_chat(self, req, opts):
        model = req.get("model") or "gpt-fake"
        users = [x for x in (req.get("messages") or []) if isinstance(x, dict)
                 and x.get("role") == "user"]
        text = opts.get("text") or "hi from fake (user messages seen: %d)" % len(users)
        usage = {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                 "total_tokens": USAGE_IN + USAGE_OUT}
        if not req.get("stream"):
            return self.send_json(200, {
                "id": "chatcmpl-fake1", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant",
                                                         "content": text}}],
                "usage": usage})
        base = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        deltas = int(opts.get("deltas") or 1)
        chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant",
                                                             "content": ""}}])]
        for i in range(deltas):
            chunks.append(dict(base, choices=[{"index": 0, "delta": {
                "content": text if deltas == 1 else "%s [%d]" % (text, i)}}]))
        chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        chunks.append(dict(base, choices=[], usage=usage))
        self.stream(["data: %s\n\n" % json.dumps(c) for c in chunks] + ["data: [DONE]\n\n"],
                    float(opts.get("delay") or 0))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, log_path=None):
        super().__init__(addr, Handler)
        self.lock = threading.Lock()
        self.seq = 0
        self.control = {}
        self.log_path = log_path
        self.log_file = open(log_path, "a") if log_path else None

    def write_log(self, rec):
        if not self.log_file:
            return
        line = json.dumps(rec) + "\n"
        with self.lock:
            self.log_file.write(line)
            self.log_file.flush()


class FakeUpstream:
    """In-process fake: FakeUpstream(log_path).start(); .url, .port, .requests(), .stop()."""

    def __init__(self, log_path, port=0):
        self.log_path = str(log_path)
        self.srv = Server(("127.0.0.1", port), self.log_path)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        if self.srv.log_file:
            self.srv.log_file.close()

    def records(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def requests(self, path_prefix=None):
        """Logged API requests (control and health calls left out)."""
        out = []
        for r in self.records():
            if "method" not in r or r["path"].startswith(("/_control", "/_health")):
                continue
            if path_prefix and not r["path"].startswith(path_prefix):
                continue
            out.append(r)
        return out

    def control(self, **kw):
        import urllib.request
        req = urllib.request.Request(self.url + "/_control", data=json.dumps(kw).encode(),
                                     method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())


def header(rec, name):
    """All values of header name (lower case) in a logged request."""
    return [v for k, v in rec["headers"] if k == name.lower()]


def main():
    ap = argparse.ArgumentParser(description="fake LLM upstream (Anthropic/OpenAI/Amp)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), a.log)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    sys.stderr.write("fake llm upstream on 127.0.0.1:%d\n" % port)
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

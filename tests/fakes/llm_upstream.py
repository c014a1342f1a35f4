#!/usr/bin/python3
"""tests/fakes/llm_upstream.py -- a fake LLM upstream: Anthropic Messages, OpenAI, Amp.

Standard library only (http.server.ThreadingHTTPServer on 127.0.0.1). Used by the LLM proxy
tests (janebot's LLM proxy forwards to it through JANEBOT_UPSTREAM_*), the real-client tests
and bench/llm-proxy.py, either in-process (FakeUpstream(log_path).start()) or as a program:

  llm_upstream.py [--port N] [--port-file FILE] [--log FILE]

Endpoints, in the shapes of the providers' public API references (and of what their
official SDKs parse; see docs/agent-clis.md, "Testing without a real LLM"):
  POST /v1/messages[?...]            Anthropic; "stream": true -> SSE (message_start,
                                     content_block_start/delta/stop, message_delta,
                                     message_stop), else one JSON message. Scripted reply:
                                     last user content holds a tool_result -> "done";
                                     user text holds USE_TOOL -> a Bash tool_use (command:
                                     tool_command, default "echo hi"); otherwise
                                     "hi from fake (user messages seen: N)".
  POST /v1/messages/count_tokens     {"input_tokens": input + cache_write + cache_read}
  POST /v1/chat/completions          OpenAI Chat Completions; stream: SSE "data:" chunks and
                                     "data: [DONE]"; the usage chunk (choices: [], usage)
                                     only when the request has stream_options.include_usage
                                     true, and then every other chunk has "usage": null
  POST /v1/responses                 OpenAI Responses; stream: SSE response.created,
                                     response.in_progress, output_item.added,
                                     content_part.added, output_text.delta..., .done events,
                                     response.completed (response.usage)
  POST /v1/embeddings, GET /v1/models    minimal OpenAI answers
  * /api/...                         Amp-like: {"ok":true,"method":...,"echo":<body>}
  anything else                      404, JSON error in the shape of the path's provider
  GET /_health                       {"ok":true}   (control, not an API path)
  POST /_control                     JSON {"delay":..., ...} sets defaults for later
                                     requests (same keys as below); {} resets. Also
                                     {"fail_next": N, "fail_status": 529|429|..., "retry_after":
                                     S, "fail_path": PREFIX}: the next N API requests (under
                                     PREFIX, if given) answer that error (retry-after: S when
                                     given), whatever else they ask for.

Usage (what every answer reports), set by the switches input, output, cache_write,
cache_read, reasoning (defaults 10, 5, 0, 0, 0): "input" is the uncached input.
  Anthropic: usage {input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
    output_tokens}; streamed: message_start carries input and the cache fields with
    output_tokens 1, message_delta the cumulative output_tokens (delta_usage=full: all four
    fields again, as the API also sends them).
  OpenAI (no cache writes): Chat prompt_tokens = input + cache_read, prompt_tokens_details.
    cached_tokens = cache_read, completion_tokens = output (reasoning included, in
    completion_tokens_details.reasoning_tokens); Responses input_tokens / input_tokens_details.
    cached_tokens / output_tokens / output_tokens_details.reasoning_tokens / total_tokens.
  answer_model=S names another model in the answer than the request's (as OpenAI names a
  dated snapshot); in /_control also {"REQUESTED": "ANSWERED", ...}.

Switches, from (lowest to highest precedence) /_control, the query string
(fake_<key>=value) and a "fake" object in the JSON request body (the body is the one
thing the proxy must pass unchanged): the usage ones above, and
  delay=S        seconds between SSE events (slow streaming)
  head_delay=S   seconds before the status line (a slow upstream)
  first_delay=S  seconds between the head and the first SSE event (a model that thinks)
  deltas=N       number of text deltas (default 1)
  mib=N          stream N MiB of text deltas (16 KiB each) for benchmarks
  status=N       answer N (e.g. 500, 429) with the provider's error body; 429 adds
                 retry-after (7 unless retry_after is given)
  text=S         reply text instead of the scripted one
  tool_command=S the Bash command of a scripted tool_use
Log (--log), one JSON line each:
  every request  {"t","id","method","path","headers" (list of [lower-case name, value]),
                 "body" (text, first 1 MiB),"body_len","body_sha256"}
  every answer with usage  {"event":"usage","id","api" ("anthropic", "openai-chat",
                 "openai-responses"),"model" (as answered),"stream","reported" (the usage
                 object as sent, null when the request did not ask for it),"billed"
                 ({input, cache_write, cache_read, output, reasoning, total}: what the
                 provider bills, reported or not)}
  a forced error {"event":"failed","id","status"}
  a stream's end {"event":"stream_end","id","aborted","sent"}, aborted true when the client
                 went away mid-stream.
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

from llm_shapes import (anthropic_usage, answered_model, billed, chat_usage, error_body,
                        provider_of, responses_usage, sse, usage_knobs)

BODY_LOG_MAX = 1 << 20
BODY_MAX = 64 << 20  # a request body larger than this is refused (the proxy caps at 32 MiB)
DELTA_BYTES = 16 << 10


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

    def log_usage(self, api, model, stream, reported, u):
        self.server.write_log({"event": "usage", "t": time.time(), "id": self.rid, "api": api,
                               "model": model, "stream": stream, "reported": reported,
                               "billed": billed(u, api)})

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake_%d" % self.rid)
        self.send_header("x-request-id", "req_fake_%d" % self.rid)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def send_error_answer(self, status, retry_after, why):
        extra = {"retry-after": str(retry_after)} if retry_after not in (None, "") else None
        msg = {529: "Overloaded", 429: "Rate limit reached (fake upstream)"}.get(status, why)
        self.send_json(status, error_body(provider_of(self.path), status, msg), extra)

    def options(self, body_obj):
        opts = dict(self.server.control)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        for k, v in q.items():
            if k.startswith("fake_"):
                opts[k[5:]] = v[-1]
        if isinstance(body_obj, dict) and isinstance(body_obj.get("fake"), dict):
            opts.update(body_obj["fake"])
        return opts

    def forced_failure(self, path):
        """(status, retry_after) when this request is one of the next N told to fail."""
        srv = self.server
        with srv.lock:
            f = srv.fail
            if not f or f["left"] <= 0 or not path.startswith(f.get("path") or "/"):
                return None
            f["left"] -= 1
            return f["status"], f.get("retry_after")

    # ---- dispatch ---------------------------------------------------------------------

    def control(self, body):
        try:
            ctl = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        fail = None
        if "fail_next" in ctl:
            fail = {"left": int(ctl.pop("fail_next")), "status": int(ctl.pop("fail_status", 529)),
                    "retry_after": ctl.pop("retry_after", None), "path": ctl.pop("fail_path", None)}
        with self.server.lock:
            if fail:
                self.server.fail = fail
            else:
                self.server.control = dict(ctl) if ctl else {}
                self.server.fail = None
        return self.send_json(200, {"ok": True, "control": self.server.control,
                                    "fail": self.server.fail})

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
            return self.control(body)
        forced = self.forced_failure(path)
        if forced:
            self.server.write_log({"event": "failed", "t": time.time(), "id": self.rid,
                                   "status": forced[0]})
            return self.send_error_answer(forced[0], forced[1], "forced")
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
            ra = opts.get("retry_after", 7 if st == 429 else None)
            return self.send_error_answer(st, ra, "fake upstream error %d" % st)
        m = self.command
        req = body_obj if isinstance(body_obj, dict) else {}
        if prov == "amp":
            method = urllib.parse.urlsplit(self.path).query.split("&")[0]
            return self.send_json(200, {"ok": True, "method": method, "path": path,
                                        "echo": body_obj if body_obj is not None
                                        else body.decode("utf-8", "replace")})
        if m == "POST" and path == "/v1/messages":
            return self.anthropic_messages(req, opts)
        if m == "POST" and path == "/v1/messages/count_tokens":
            u = usage_knobs(opts)
            return self.send_json(200, {"input_tokens": u["input"] + u["cache_write"]
                                        + u["cache_read"]})
        if m == "POST" and path == "/v1/chat/completions":
            return self.openai_chat(req, opts)
        if m == "POST" and path == "/v1/responses":
            return self.openai_responses(req, opts)
        if m == "POST" and path == "/v1/embeddings":
            return self.send_json(200, {"object": "list", "model": "fake-embed",
                                        "data": [{"object": "embedding", "index": 0,
                                                  "embedding": [0.1, 0.2, 0.3]}],
                                        "usage": {"prompt_tokens": 10, "total_tokens": 10}})
        if m == "GET" and path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [
                {"id": "gpt-fake", "object": "model", "owned_by": "fake"}]})
        self.send_json(404, error_body(prov, 404, "fake upstream: no such endpoint %s %s"
                                       % (m, self.path)))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def stream(self, chunks, delay, first_delay=0.0):
        """Send an SSE response, one write per event, Connection: close, no length."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header("request-id", "req_fake_%d" % self.rid)
        self.send_header("x-request-id", "req_fake_%d" % self.rid)
        self.end_headers()
        sent, aborted = 0, False
        try:
            self.wfile.flush()
            if first_delay > 0:
                time.sleep(first_delay)
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

    @staticmethod
    def texts(text, opts):
        """The reply as its text deltas (deltas=N, or mib=N of 16 KiB pieces)."""
        mib = float(opts.get("mib") or 0)
        if mib > 0:
            left = int(mib * (1 << 20))
            piece = "x" * DELTA_BYTES
            while left > 0:
                n = min(left, DELTA_BYTES)
                left -= n
                yield piece[:n]
            return
        deltas = int(opts.get("deltas") or 1)
        for i in range(deltas):
            yield text if deltas == 1 else "%s [%d]" % (text, i)

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
        model = answered_model(opts, req, "claude-fake")
        kind, text = self.scripted(req)
        if opts.get("text"):
            kind, text = "text", str(opts["text"])
        u = usage_knobs(opts)
        usage = anthropic_usage(u)
        stream = bool(req.get("stream"))
        self.log_usage("anthropic", model, stream, usage, u)
        tool_input = {"command": str(opts.get("tool_command") or "echo hi")}
        stop = "tool_use" if kind == "tool" else "end_turn"
        # Fixed by the request (the same request gets the same bytes); a tool id per turn.
        msg_id = "msg_fake_1"
        tool_id = "toolu_fake_%d" % len(req.get("messages") or [])
        if not stream:
            content = ([{"type": "tool_use", "id": tool_id, "name": "Bash",
                         "input": tool_input}] if kind == "tool"
                       else [{"type": "text", "text": text}])
            return self.send_json(200, {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": usage})
        start_usage = dict(usage, output_tokens=1)
        delta_usage = ({k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                                "cache_read_input_tokens", "output_tokens")}
                       if opts.get("delta_usage") == "full"
                       else {"output_tokens": usage["output_tokens"]})

        def events():
            yield "message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": start_usage}}
            if kind == "tool":
                yield "content_block_start", {
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": tool_id,
                                      "name": "Bash", "input": {}}}
                yield "content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(tool_input, separators=(",", ":"))}}
            else:
                yield "content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}}
                for t in self.texts(text, opts):
                    yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": t}}
            yield "content_block_stop", {"type": "content_block_stop", "index": 0}
            yield "message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": delta_usage}
            yield "message_stop", {"type": "message_stop"}
        self.stream((sse(n, d) for n, d in events()), float(opts.get("delay") or 0),
                    float(opts.get("first_delay") or 0))

    # ---- OpenAI -------------------------------------------------------------------------

    def openai_chat(self, req, opts):
        model = answered_model(opts, req, "gpt-fake")
        users = [x for x in (req.get("messages") or []) if isinstance(x, dict)
                 and x.get("role") == "user"]
        text = opts.get("text") or "hi from fake (user messages seen: %d)" % len(users)
        u = usage_knobs(opts)
        usage = chat_usage(u)
        created = int(time.time())
        if not req.get("stream"):
            self.log_usage("openai-chat", model, False, usage, u)
            return self.send_json(200, {
                "id": "chatcmpl-fake1", "object": "chat.completion",
                "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": text,
                                         "refusal": None}}],
                "usage": usage, "system_fingerprint": "fp_fake"})
        so = req.get("stream_options")
        with_usage = isinstance(so, dict) and so.get("include_usage") is True
        self.log_usage("openai-chat", model, True, usage if with_usage else None, u)
        base = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                "created": created, "model": model, "system_fingerprint": "fp_fake"}
        if with_usage:
            base["usage"] = None

        def chunk(delta, finish=None):
            return dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                        "finish_reason": finish}])

        def chunks():
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            for t in self.texts(text, opts):
                yield chunk({"content": t})
            yield chunk({}, "stop")
            if with_usage:
                yield dict(base, choices=[], usage=usage)
        self.stream([sse(None, c) for c in chunks()] + ["data: [DONE]\n\n"],
                    float(opts.get("delay") or 0))

    def openai_responses(self, req, opts):
        model = answered_model(opts, req, "gpt-fake")
        text = opts.get("text") or "hi from fake responses"
        u = usage_knobs(opts)
        usage = responses_usage(u)
        stream = bool(req.get("stream"))
        self.log_usage("openai-responses", model, stream, usage, u)
        rid, mid = "resp_fake_%d" % self.rid, "msg_fake_%d" % self.rid

        def response(status, output, usage_or_none):
            return {"id": rid, "object": "response", "created_at": int(time.time()),
                    "status": status, "error": None, "incomplete_details": None,
                    "instructions": req.get("instructions"), "model": model,
                    "output": output, "parallel_tool_calls": True, "previous_response_id": None,
                    "reasoning": {"effort": None, "summary": None}, "store": True,
                    "temperature": 1.0, "text": {"format": {"type": "text"}},
                    "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
                    "usage": usage_or_none, "metadata": {}}

        def message(status, content):
            return {"type": "message", "id": mid, "status": status, "role": "assistant",
                    "content": content}
        part = {"type": "output_text", "text": text, "annotations": []}
        if not stream:
            return self.send_json(200, response("completed", [message("completed", [part])],
                                                usage))
        seq = iter(range(1 << 30))

        def ev(typ, **kw):
            return sse(typ, dict({"type": typ, "sequence_number": next(seq)}, **kw))

        def events():
            yield ev("response.created", response=response("in_progress", [], None))
            yield ev("response.in_progress", response=response("in_progress", [], None))
            yield ev("response.output_item.added", output_index=0,
                     item=message("in_progress", []))
            yield ev("response.content_part.added", item_id=mid, output_index=0,
                     content_index=0, part=dict(part, text=""))
            for t in self.texts(text, opts):
                yield ev("response.output_text.delta", item_id=mid, output_index=0,
                         content_index=0, delta=t, logprobs=[])
            yield ev("response.output_text.done", item_id=mid, output_index=0,
                     content_index=0, text=text, logprobs=[])
            yield ev("response.content_part.done", item_id=mid, output_index=0,
                     content_index=0, part=part)
            yield ev("response.output_item.done", output_index=0,
                     item=message("completed", [part]))
            yield ev("response.completed",
                     response=response("completed", [message("completed", [part])], usage))
        self.stream(events(), float(opts.get("delay") or 0))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, log_path=None):
        super().__init__(addr, Handler)
        self.lock = threading.Lock()
        self.seq = 0
        self.control = {}
        self.fail = None
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

    def events(self, kind):
        """Logged {"event": kind} lines ("usage", "failed", "stream_end")."""
        return [r for r in self.records() if r.get("event") == kind]

    def billed(self):
        """What the provider bills, summed per answered model over every answer with usage:
        {model: {"requests", "input", "cache_write", "cache_read", "output", "total"}}."""
        out = {}
        for e in self.events("usage"):
            m = out.setdefault(e["model"], {"requests": 0, "input": 0, "cache_write": 0,
                                            "cache_read": 0, "output": 0, "total": 0})
            m["requests"] += 1
            for k in ("input", "cache_write", "cache_read", "output", "total"):
                m[k] += e["billed"][k]
        return out

    def control(self, **kw):
        import urllib.request
        req = urllib.request.Request(self.url + "/_control", data=json.dumps(kw).encode(),
                                     method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def fail_next(self, n, status, retry_after=None, path=None):
        """The next n API requests (under path) answer status (retry-after when given)."""
        kw = {"fail_next": n, "fail_status": status, "fail_path": path}
        if retry_after is not None:
            kw["retry_after"] = retry_after
        return self.control(**kw)


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

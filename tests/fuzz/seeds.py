#!/usr/bin/env python3
"""tests/fuzz/seeds.py -- (re)write the seed corpora in tests/fuzz/corpus/<target>/ from the
payloads the unit tests and fakes already use (C string literals picked by what they look
like) plus a few written here. Run from anywhere; files are named by content hash, so
running it again adds nothing twice. Crash inputs kept as regression seeds (crash-*) are
left alone."""
import glob
import hashlib
import json
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UNIT = os.path.join(ROOT, "tests", "unit")

LIT = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}


def c_strings(path):
    """Each C string literal of a file, adjacent literals joined, as bytes."""
    src = open(path, encoding="utf-8", errors="replace").read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    out, cur, last_end = [], None, -1
    for m in LIT.finditer(src):
        between = src[last_end:m.start()] if last_end >= 0 else "x"
        raw = m.group(1).encode()
        val, i = b"", 0
        while i < len(raw):
            c = raw[i:i + 1]
            if c == b"\\" and i + 1 < len(raw):
                n = chr(raw[i + 1])
                if n == "x":
                    h = re.match(rb"[0-9a-fA-F]{1,2}", raw[i + 2:])
                    val += bytes([int(h.group(0), 16)])
                    i += 2 + len(h.group(0))
                    continue
                val += ESC.get(n, n.encode())
                i += 2
                continue
            val += c
            i += 1
        if cur is not None and between.strip() == "":
            cur += val
        else:
            if cur is not None:
                out.append(cur)
            cur = val
        last_end = m.end()
    if cur is not None:
        out.append(cur)
    return out


def save(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def from_tests(target, files, keep, limit=60):
    n = 0
    for f in files:
        for s in c_strings(os.path.join(UNIT, f)):
            if keep(s) and n < limit:
                save(target, s)
                n += 1


def client_hello(name=b"example.com", split=None):
    sni = struct.pack(">HBH", len(name) + 3, 0, len(name)) + name
    ext = struct.pack(">HH", 0, len(sni)) + sni
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    parts = [hs] if not split else [hs[:split], hs[split:]]
    return b"".join(b"\x16\x03\x01" + struct.pack(">H", len(p)) + p for p in parts)


def main():
    is_json_obj = lambda s: s.lstrip().startswith(b"{") and len(s) > 8
    from_tests("envelope", ["test_slack_events.c", "test_files_in.c"], is_json_obj)
    from_tests("stream", ["test_agent_stream.c"], lambda s: b'"type"' in s)
    from_tests("mrkdwn", ["test_slack_mrkdwn.c"], lambda s: len(s) > 3)
    from_tests("http", ["test_http_head.c", "test_proxy.c", "test_llm_public.c"],
               lambda s: b"HTTP/1." in s and b"\r\n\r\n" in s)
    from_tests("llm", ["test_llm_usage.c"],
               lambda s: is_json_obj(s) or s.startswith(b"data:"), limit=80)
    from_tests("config", ["test_policy.c"], lambda s: b":" in s and b"\n" in s)
    from_tests("sprites", ["test_sprites.c"], lambda s: is_json_obj(s) or b'"type"' in s)
    from_tests("web", ["test_slack_web.c"], is_json_obj)
    # a few written here: shapes the tests build in code
    env = {"envelope_id": "e1", "type": "events_api", "accepts_response_payload": False,
           "retry_attempt": 0, "retry_reason": "",
           "payload": {"type": "event_callback", "event_id": "Ev1", "team_id": "T1",
                       "event": {"type": "app_mention", "user": "U1", "channel": "C1",
                                 "ts": "1.000001", "text": "<@U0BOT> hi &amp; bye",
                                 "files": [{"id": "F1", "name": "a.txt", "size": 3,
                                            "url_private_download": "https://files.example.com/a",
                                            "mimetype": "text/plain"}]}}}
    save("envelope", json.dumps(env).encode())
    save("envelope", b'{"type":"hello","num_connections":1}')
    save("envelope", b'{"type":"disconnect","reason":"refresh_requested"}')
    save("envelope", b'{"envelope_id":"e2","type":"slash_commands","payload":{"command":"/jb"}}')
    save("web", b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n"
                b'{"ok":false,"error":"ratelimited"}')
    save("web", b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n"
                b'{"ok":true,"messages":[{"ts":"1.0","files":[{"id":"F","size":1,'
                b'"url_private_download":"https://files.example.com/x"}]}],'
                b'"response_metadata":{"next_cursor":"","warnings":["missing_charset"]}}')
    save("web", b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT"
                b"\r\n\r\n<html>")
    save("sni", b"\x00" + client_hello())
    save("sni", b"\x00" + client_hello(split=20))
    save("sni", b"\x05" + client_hello(b"a" * 255))
    save("sprites", b"\x02\x01hi\x02\x02\x02err\x02\x01\x03\x07")
    save("sprites", b'\x02\x1a{"type":"exit","exit_code":3}')
    save("sprites", b'{"type":"info","data":"x"}\n{"type":"complete"}\n\x00')
    save("sprites", b'{"sprites":[{"name":"jane-pool-1","created_at":"2026-01-13T10:30:00Z"}],'
                    b'"next_continuation_token":"t"}\x06')
    save("sprites", b'{"error":"slow down","retry_after_seconds":2.5}\x06')
    save("llm", b"\x00\x01\x00" b'{"model":"gpt-4o","stream":true,"messages":[]}')
    save("llm", b"\x00\x01\x01" b'{"model":"gpt-4o","stream":true,"stream_options":'
                b'{"include_usage":false},"messages":[{"role":"user","content":"\\u00e9"}]}')
    save("llm", b"\x01\x00\x00" b'data: {"type":"message_start","message":{"model":"claude",'
                b'"usage":{"input_tokens":5,"cache_read_input_tokens":2}}}\n\n')
    save("dotenv", b"# comment\nexport SLACK_BOT_TOKEN=xoxb-1\nA='q v'\nB=\"x\"  \n"
                   b"JANEBOT_PRICES=claude-*=3/15/3.75/0.3,gpt-4o=2.5/10\n")
    save("dotenv", b"BAD NAME=1\n")
    save("config", b"rate_limit_per_minute: 5\nallowed_users: [U1, U2]\nchannels:\n  C1:\n"
                   b"    agent: claude\nprices:\n  claude-*: {in: 3, out: 15}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""tests/fakes/sprites.py -- a fake Sprites API following docs/sprites-protocol.md.

REST and the WebSocket exec endpoint share one HTTP/1.1 port (as on api.sprites.dev, the
exec URL is the base URL with http -> ws): the WebSocket upgrade of
GET /v1/sprites/{name}/exec is done here by hand (RFC 6455, standard library only), so
no python3-websockets is needed. Commands run as local processes, with HOME and `dir`
under /home/sprite mapped to a per-sprite directory <root>/<name>.

In-process use (tests): f = FakeSprites(root, token).start(); f.url; f.calls (every
request: method, path, query, headers; the token is checked, never stored); f.events
(order of create/policy/exec/delete per sprite); switches (plain attributes):
  quirk_500       a missing sprite answers 500 "failed to retrieve" instead of 404
  fail_next       the next N REST calls answer 503
  drop_exec       a string: the next exec whose command line holds it drops the connection
                  after its first output, with no exit frame (then the switch resets)
  create_delay    seconds a create takes
Standalone: sprites.py --port N --root DIR --token T (serves until killed).
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOME = "/home/sprite"


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeSprites:
    def __init__(self, root, token, port=0):
        self.root, self.token = str(root), token
        self.sprites = {}   # name -> dict
        self.calls, self.events = [], []
        self.quirk_500, self.fail_next, self.drop_exec, self.create_delay = False, 0, None, 0
        self.lock = threading.Lock()
        os.makedirs(self.root, exist_ok=True)
        fake = self

        class H(Handler):
            pass
        H.fake = fake
        self.srv = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port

    def start(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def event(self, kind, name, **kw):
        with self.lock:
            self.events.append(dict(kind=kind, name=name, **kw))

    def sprite_dir(self, name):
        return os.path.join(self.root, name)

    def obj(self, name):
        s = self.sprites[name]
        return {"id": s["id"], "name": name, "organization": "fake-org",
                "url": "https://%s-fake.sprites.app" % name, "url_settings": {"auth": "sprite"},
                "status": s["status"], "created_at": s["created_at"],
                "updated_at": s["updated_at"]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None

    def log_message(self, *a):
        pass

    # ---- plumbing ----
    def reply(self, status, obj=None, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def record(self):
        u = urlsplit(self.path)
        auth = self.headers.get("Authorization") or ""
        f = self.fake
        with f.lock:
            f.calls.append({"method": self.command, "path": u.path, "query": u.query,
                            "raw_path": self.path, "auth_ok": auth == "Bearer " + f.token,
                            "headers": {k: v for k, v in self.headers.items()
                                        if k.lower() != "authorization"}})
        return u, auth == "Bearer " + f.token

    def route(self):
        u, ok = self.record()
        if not ok:
            return self.reply(401, {"error": "unauthorized"})
        parts = [unquote(p) for p in u.path.split("/") if p]
        q = parse_qs(u.query, keep_blank_values=True)
        f = self.fake
        is_exec = len(parts) == 4 and parts[3] == "exec" and self.command == "GET"
        if not is_exec and f.fail_next > 0:
            f.fail_next -= 1
            return self.reply(503, {"error": "service unavailable (injected)"})
        if parts[:2] != ["v1", "sprites"]:
            return self.reply(404, {"error": "not found"})
        if len(parts) == 2:
            return self.collection(q)
        name = parts[2]
        if len(parts) == 3:
            return self.one(name)
        if name not in f.sprites:
            return self.missing()
        if is_exec:
            return Exec(self, name, q).run()
        if parts[3:] == ["policy", "network"]:
            return self.policy(name)
        return self.reply(404, {"error": "not found"})

    def missing(self):
        if self.fake.quirk_500:
            return self.reply(500, {"error": "failed to retrieve sprite: not found"})
        return self.reply(404, {"error": "sprite not found"})

    do_GET = do_POST = do_DELETE = do_PUT = route

    # ---- REST ----
    def collection(self, q):
        f = self.fake
        if self.command == "POST":
            b = self.body_json()
            name = b.get("name") if isinstance(b, dict) else None
            if not isinstance(name, str) or not name:
                return self.reply(400, {"error": "name is required"})
            if name in f.sprites:
                return self.reply(400, {"error": "sprite with this name already exists"})
            time.sleep(f.create_delay)
            t = now_iso()
            f.sprites[name] = {"id": hashlib.md5(name.encode()).hexdigest(), "status": "cold",
                               "created_at": t, "updated_at": t, "policy": {"rules": []}}
            os.makedirs(f.sprite_dir(name), exist_ok=True)
            f.event("create", name)
            return self.reply(201, f.obj(name))
        if self.command != "GET":
            return self.reply(404, {"error": "not found"})
        prefix = (q.get("prefix") or [""])[0]
        maxr = max(1, min(50, int((q.get("max_results") or ["50"])[0])))
        start = int((q.get("continuation_token") or ["0"])[0] or 0)
        names = sorted(n for n in f.sprites if n.startswith(prefix))
        page = names[start:start + maxr]
        more = start + maxr < len(names)
        return self.reply(200, {"sprites": [{"name": n, "org_slug": "fake-org",
                                             "updated_at": f.sprites[n]["updated_at"]}
                                            for n in page],
                                "has_more": more,
                                "next_continuation_token": str(start + maxr) if more else None})

    def one(self, name):
        f = self.fake
        if name not in f.sprites:
            return self.missing() if self.command == "GET" else self.reply(
                404, {"error": "sprite not found"})
        if self.command == "GET":
            return self.reply(200, f.obj(name))
        if self.command == "DELETE":
            del f.sprites[name]
            shutil.rmtree(f.sprite_dir(name), ignore_errors=True)
            f.event("delete", name)
            return self.reply(204)
        return self.reply(404, {"error": "not found"})

    def policy(self, name):
        f = self.fake
        if self.command == "GET":
            return self.reply(200, f.sprites[name]["policy"])
        b = self.body_json()
        rules = b.get("rules") if isinstance(b, dict) else None
        if not isinstance(rules, list):
            return self.reply(400, {"error": "Invalid policy: rules must be a list"})
        for r in rules:
            has_d, has_i = "domain" in r, "include" in r
            if has_d == has_i or (has_d and r.get("action") not in ("allow", "deny")):
                return self.reply(400, {"error": "Invalid policy: bad rule %r" % (r,)})
        f.sprites[name]["policy"] = {"rules": rules}
        f.event("policy", name, rules=rules)
        return self.reply(204)


class Exec:
    """One WebSocket exec session (non-TTY framing)."""

    def __init__(self, h, name, q):
        self.h, self.name, self.q, self.f = h, name, q, h.fake
        self.sock = h.connection
        self.wlock = threading.Lock()
        self.open = True

    def mapped(self, p):
        d = self.f.sprite_dir(self.name)
        return d + p[len(HOME):] if p == HOME or p.startswith(HOME + "/") else p

    def run(self):
        h, q = self.h, self.q
        cmd = q.get("cmd") or []
        if not cmd:
            return h.reply(400, {"error": "cmd is required"})
        key = h.headers.get("Sec-WebSocket-Key")
        if not key or (h.headers.get("Upgrade") or "").lower() != "websocket":
            return h.reply(400, {"error": "websocket upgrade required"})
        env = None
        if "env" in q:
            env = dict(e.split("=", 1) for e in q["env"] if "=" in e)
            if "HOME" in env:
                env["HOME"] = self.mapped(env["HOME"])
        cwd = self.mapped((q.get("dir") or [HOME])[0])
        want_stdin = (q.get("stdin") or ["false"])[0] == "true"
        drop = False
        with self.f.lock:
            if self.f.drop_exec and self.f.drop_exec in " ".join(cmd):
                self.f.drop_exec = None
                drop = True
        self.f.event("exec", self.name, cmd=cmd, dir=cwd, env=env)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        self.f.sprites[self.name]["status"] = "running"
        try:
            p = subprocess.Popen(cmd, executable=(q.get("path") or [cmd[0]])[0], cwd=cwd, env=env,
                                 stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        except OSError as e:
            self.send(2, ("%s: %s\n" % (cmd[0], e.strerror)).encode())
            self.send(3, bytes([127 if isinstance(e, FileNotFoundError) else 126]))
            return self.linger()
        self.proc = p
        outs = [threading.Thread(target=self.pump, args=(p.stdout, 1, drop)),
                threading.Thread(target=self.pump, args=(p.stderr, 2, False))]
        for t in outs:
            t.start()
        threading.Thread(target=self.reader, args=(p,), daemon=True).start()
        for t in outs:
            t.join()
        code = p.wait()
        for pipe in (p.stdin, p.stdout, p.stderr):
            if pipe:
                try:
                    pipe.close()
                except OSError:
                    pass
        code = code & 0xff if code >= 0 else 128 + (-code)
        self.f.sprites[self.name]["status"] = "warm"
        self.f.sprites[self.name]["updated_at"] = now_iso()
        self.f.event("exit", self.name, code=code)
        if self.open:
            self.send(3, bytes([code]))
            self.linger()

    def linger(self):
        end = time.monotonic() + 5
        while self.open and time.monotonic() < end:
            time.sleep(0.05)
        self.close()

    def close(self):
        if self.open:
            self.open = False
            try:
                self.sock.shutdown(2)
            except OSError:
                pass

    def pump(self, pipe, sid, drop):
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            if self.open:
                self.send(sid, data)
            if drop and self.open:
                self.f.event("dropped", self.name)
                self.close()
                threading.Thread(target=self.kill_later, args=(10,), daemon=True).start()

    def kill_later(self, secs):
        time.sleep(secs)
        self.kill(signal.SIGKILL)

    def kill(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (OSError, AttributeError):
            pass

    def send(self, sid, payload, opcode=2):
        data = (bytes([sid]) if sid is not None else b"") + payload
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        with self.wlock:
            try:
                self.sock.sendall(head + data)
            except OSError:
                self.open = False

    def read_frame(self, rf):
        b = rf.read(2)
        if len(b) < 2:
            return None, None
        op, n = b[0] & 0x0f, b[1] & 0x7f
        if n == 126:
            n = struct.unpack(">H", rf.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", rf.read(8))[0]
        mask = rf.read(4) if b[1] & 0x80 else b"\0\0\0\0"
        data = bytearray(rf.read(n))
        for i in range(len(data)):
            data[i] ^= mask[i % 4]
        return op, bytes(data)

    def reader(self, p):
        rf, msg, mop = self.h.rfile, b"", 0
        try:
            while self.open:
                op, data = self.read_frame(rf)
                if op is None or op == 8:
                    break
                if op == 9:
                    self.send(None, data, opcode=10)
                    continue
                if op in (1, 2):
                    mop, msg = op, data
                elif op == 0:
                    msg += data
                else:
                    continue
                self.message(p, mop, msg)
        except (OSError, ValueError, struct.error):
            pass
        if self.open:  # the client went away first: the command outlives it a little
            self.open = False
            threading.Thread(target=self.kill_later, args=(10,), daemon=True).start()

    def message(self, p, op, msg):
        if op == 1:
            try:
                m = json.loads(msg)
            except ValueError:
                return
            if m.get("type") == "signal":
                self.f.event("signal", self.name, signal=m.get("signal"))
                self.kill(getattr(signal, str(m.get("signal")), signal.SIGTERM))
            return
        if not msg or p.stdin is None:
            return
        try:
            if msg[0] == 0:
                p.stdin.write(msg[1:])
                p.stdin.flush()
            elif msg[0] == 4:
                p.stdin.close()
        except (OSError, ValueError):
            pass


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--root", required=True)
    ap.add_argument("--token", required=True)
    a = ap.parse_args()
    f = FakeSprites(a.root, a.token, a.port).start()
    print(f.url, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())

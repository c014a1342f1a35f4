#!/usr/bin/python3
"""tests/fakes/sprites.py -- a fake Sprites API following docs/sprites-protocol.md.

REST and the WebSocket exec endpoint share one HTTP/1.1 port (as on api.sprites.dev, the
exec URL is the base URL with http -> ws): the WebSocket upgrade of
GET /v1/sprites/{name}/exec is done here by hand (RFC 6455, standard library only), so
no python3-websockets is needed. Commands run as local processes, with HOME and `dir`
under /home/sprite mapped to a per-sprite directory <root>/<name>.

In-process use (tests): f = FakeSprites(root, token).start(); f.url; f.calls (every
request: method, path, query, headers; the token is checked, never stored); f.events
(order of create/policy/exec/checkpoint/restore/delete per sprite, see below);
f.checkpoints(name) (the public checkpoint list of a sprite, newest first).
Switches (plain attributes; set them at any time):
  quirk_500       a missing sprite answers 500 "failed to retrieve" instead of 404
  fail_next       the next N REST calls answer 503 (counts down; exec upgrades excluded)
  rate_limit_next the next N REST calls answer 429 with the structured body of the doc's
                  section 2 ({"error":"sprite_creation_rate_limited","message":...,
                  "retry_after_seconds":R,...}) and headers Retry-After (R rounded up),
                  X-RateLimit-Limit/-Remaining/-Reset (counts down; exec upgrades
                  excluded; checked before fail_next)
  retry_after     R above, in seconds (default 1)
  drop_exec       a string: the next exec whose command line holds it drops the connection
                  after its first output, with no exit frame (then the switch resets)
  create_delay    seconds a create takes
  rest_delay      seconds every REST answer is delayed (401s and injected errors too)
  exec_delay      seconds every exec upgrade answer (the 101) is delayed: a sprite slow to
                  answer. A client that hangs up meanwhile gets nothing and nothing runs
                  (event "exec_abandoned" instead of "exec")
  checkpoint_fail True: the next checkpoint or restore stream (200) sends info lines then
                  an `error` event and no `complete`; nothing is saved or restored (then
                  the switch resets; events "checkpoint_failed" / "restore_failed")
  fail_ratio      0..1: besides fail_next, each REST call answers 503 with this probability
                  (a flaky service; exec upgrades excluded; drawn from fail_random, a
                  random.Random the test may seed)
  fail_retry_after a Retry-After header value ("2", or an HTTP date) for the 503s of
                  fail_next (default None: no header)
  lose_answer     ("checkpoint" | "restore", "502" | "drop" | "503"): the next such call
                  is done, then its answer is lost: a 502 instead of the stream, or the
                  connection closed in the middle of the stream; "503": it is refused
                  before anything is done (then the switch resets)
  checkpoint_text the text of a checkpoint stream's `complete` event, "%s" for the id
                  (default "Checkpoint %s created"; the docs show other wordings)
  exec_as_root    True: commands run as the fake's own user even as root, as a service
                  whose exec user is root would (no ambient capabilities: a command that
                  drops to uid 1000 cannot come back with sudo)
  bare_exit       True (default): an exit status 0 is the bare frame [3] (the protocol
                  doc: the SDKs read an empty exit payload as 0); False: [3, 0]
  restore_delay   seconds a restore takes after its stream's `complete` (default 1): the
                  service "triggers async restore and environment restart", so meanwhile
                  the old files and policy remain and exec upgrades answer 503
Checkpoints: POST /v1/sprites/{name}/checkpoint copies the sprite's directory and its
network policy (ids v1, v2, ... per sprite; the NDJSON stream ends with "Checkpoint vN
created"); POST .../checkpoints/{id}/restore (a POST without a body must still say
Content-Length: 0, as any POST here: else 411) kills the processes of the sprite's
running execs (SIGKILL to their process groups), answers its stream, and restore_delay
later replaces the directory with the copy's contents and restores the policy. A checkpoint's source_id is the checkpoint the sprite was last
restored from (absent when it never was). Deleting a sprite kills its execs and drops its
files, policy and checkpoints. Copies live under <root>/.checkpoints (names starting with
"." or holding "/" are refused at create).
Listing pages by name: next_continuation_token is the last name of the page (base64url),
so paging stays exact when sprites are created or deleted between two pages.
Events (f.events, dicts with kind and name): create, policy, exec, exec_abandoned,
exec_refused (while restoring), exit, dropped, signal, checkpoint (id, comment),
checkpoint_failed, restore_started (id), restore (id: done), restore_failed, delete.
As root (euid 0), every sprite directory belongs to uid/gid 1000 (on a real sprite
/home/sprite belongs to its non-root user `sprite`), recursively after a restore, and
commands run as that user, so what they write is theirs. As on a real sprite, that user
has passwordless `sudo`: the fake's image puts a `sudo` first on every exec's PATH that
runs its command as root (the exec keeps ambient CAP_SETUID/CAP_SETGID for it: like
passwordless sudo, it lets the sprite's user become root, nothing more). Not as root,
commands run as the fake's own user and `sudo` changes nothing. The directories above
root are left alone: they must let uid 1000 search them (a mkdtemp() dir is 0700); the
fake warns on stderr when they do not.
Standalone: sprites.py --port N --root DIR --token T (serves until killed).
"""
import base64
import copy
import hashlib
import json
import math
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOME = "/home/sprite"
SPRITE_UID = SPRITE_GID = 1000  # the non-root user owning /home/sprite on a real sprite
CP_DIR = ".checkpoints"
IMAGE_BIN = ".image/bin"  # under root: the image's own programs (sudo), first on PATH
SETPRIV = "/usr/bin/setpriv"
# The sprite's user with the capabilities passwordless sudo amounts to (setuid/setgid):
# setpriv keeps them as ambient capabilities over the uid change and the exec.
AS_SPRITE_USER = [SETPRIV, "--reuid=%d" % SPRITE_UID, "--regid=%d" % SPRITE_GID,
                  "--clear-groups", "--inh-caps=+setuid,+setgid",
                  "--ambient-caps=+setuid,+setgid", "--"]
# `sudo [-n] [-E] [-H] [-u root] [--] CMD...`: CMD as root, or as is when the fake does not
# run as root. The environment is kept (as `sudo -E`).
SUDO_SH = r"""#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-E|-H|-S|--preserve-env) shift ;;
    -u) [ "$2" = root ] || [ "$2" = 0 ] || { echo "sudo: only root here" >&2; exit 1; }
        shift 2 ;;
    --) shift; break ;;
    -*) echo "sudo: option $1 is not supported by this image" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: sudo [-n] [-E] [-u root] CMD..." >&2; exit 1; }
[ "$(id -u)" = 0 ] && exec "$@"
if grep -q '^CapEff:.*[1-9a-f]' /proc/self/status 2>/dev/null; then
  exec %s --reuid=0 --regid=0 --init-groups -- "$@"
fi
exec "$@"
""" % SETPRIV


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def copy_tree(src, dst):
    """Copy directories, regular files (mode and times) and symlinks (not followed);
    skip other file types (sockets, FIFOs, devices) and entries that vanish or cannot be
    read meanwhile: the sprite may be busy while it is checkpointed."""
    os.makedirs(dst, exist_ok=True)
    try:
        shutil.copystat(src, dst, follow_symlinks=False)
    except OSError:
        pass
    try:
        entries = list(os.scandir(src))
    except OSError:
        return
    for e in entries:
        d = os.path.join(dst, e.name)
        try:
            if e.is_symlink():
                os.symlink(os.readlink(e.path), d)
            elif e.is_dir(follow_symlinks=False):
                copy_tree(e.path, d)
            elif e.is_file(follow_symlinks=False):
                shutil.copy2(e.path, d, follow_symlinks=False)
        except OSError:
            pass


def unreachable_ancestor(path, uid):
    """The first directory on path's way that uid cannot search (no x for it), or None."""
    p = os.path.abspath(path)
    chain = []
    while True:
        chain.append(p)
        up = os.path.dirname(p)
        if up == p:
            break
        p = up
    for d in reversed(chain):
        try:
            st = os.stat(d)
        except OSError:
            return None
        if not st.st_mode & (0o100 if st.st_uid == uid else 0o001):
            return d
    return None


def chown_tree(path, uid, gid):
    for dirpath, dirnames, filenames in os.walk(path):
        for n in [dirpath] + [os.path.join(dirpath, x) for x in dirnames + filenames]:
            try:
                os.lchown(n, uid, gid)
            except OSError:
                pass


class FakeSprites:
    def __init__(self, root, token, port=0):
        self.root, self.token = str(root), token
        self.sprites = {}   # name -> dict
        self.calls, self.events = [], []
        self.quirk_500, self.fail_next, self.drop_exec, self.create_delay = False, 0, None, 0
        self.rate_limit_next, self.retry_after = 0, 1
        self.rest_delay, self.exec_delay = 0, 0
        self.checkpoint_fail = False
        self.fail_retry_after, self.lose_answer = None, None
        self.fail_ratio, self.fail_random = 0.0, random.Random()
        self.bare_exit, self.restore_delay = True, 1.0
        self.checkpoint_text, self.exec_as_root = "Checkpoint %s created", False
        self.lock = threading.RLock()
        self.cp_lock = threading.Lock()  # one checkpoint/restore/delete at a time
        self.running = {}   # name -> set of Exec sessions with a live process
        self.creating = set()
        os.makedirs(self.root, exist_ok=True)
        if os.geteuid() == 0:
            bad = unreachable_ancestor(self.root, SPRITE_UID)
            if bad:
                print("fake sprites: uid %d cannot search %s (mode %o): a command that drops "
                      "to it cannot reach its sprite's home under %s"
                      % (SPRITE_UID, bad, os.stat(bad).st_mode & 0o7777, self.root),
                      file=sys.stderr, flush=True)
        self.cp_root = os.path.join(self.root, CP_DIR)
        self.image_bin = os.path.join(self.root, IMAGE_BIN)
        os.makedirs(self.image_bin, exist_ok=True)
        for d in (os.path.dirname(self.image_bin), self.image_bin):
            os.chmod(d, 0o755)
        sudo = os.path.join(self.image_bin, "sudo")
        with open(sudo, "w") as fh:
            fh.write(SUDO_SH)
        os.chmod(sudo, 0o755)
        fake = self

        class H(Handler):
            pass
        H.fake = fake
        self.srv = Server(("127.0.0.1", port), H)
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

    def own(self, path):
        """As root, give a sprite's directory (recursively) to the sprite's user."""
        if os.geteuid() == 0:
            chown_tree(path, SPRITE_UID, SPRITE_GID)

    def obj(self, name):
        s = self.sprites[name]
        return {"id": s["id"], "name": name, "organization": "fake-org",
                "url": "https://%s-fake.sprites.app" % name, "url_settings": {"auth": "sprite"},
                "status": s["status"], "created_at": s["created_at"],
                "updated_at": s["updated_at"]}

    @staticmethod
    def cp_public(c):
        out = {"id": c["id"], "create_time": c["create_time"], "comment": c["comment"]}
        if c.get("source_id"):
            out["source_id"] = c["source_id"]
        return out

    def checkpoints(self, name):
        """The public checkpoint list of sprite name, newest first ([] if none/unknown)."""
        with self.lock:
            s = self.sprites.get(name)
            cps = list(s.get("checkpoints", [])) if s else []
        return [self.cp_public(c) for c in sorted(cps, key=lambda c: -c["n"])]

    def kill_running(self, name):
        with self.lock:
            sessions = list(self.running.get(name, ()))
        for x in sessions:
            x.kill(signal.SIGKILL)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with self.lock:
                if not self.running.get(name):
                    break
            time.sleep(0.02)
        return len(sessions)

    def restoring(self, name):
        with self.lock:
            s = self.sprites.get(name)
            return bool(s and s.get("restoring_until", 0) > time.monotonic())

    def take_lost(self, kind):
        """How the answer of this `kind` call is lost ("502", "drop"), or None."""
        with self.lock:
            if self.lose_answer and self.lose_answer[0] == kind:
                how, self.lose_answer = self.lose_answer[1], None
                return how
        return None

    def drop_checkpoints(self, s):
        for c in s.get("checkpoints", []):
            shutil.rmtree(c["snap"], ignore_errors=True)
        s["checkpoints"] = []


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # a client hanging up is not news


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

    def body_raw(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def body_json(self):
        try:
            return json.loads(self.body_raw() or b"null")
        except ValueError:
            return None

    # NDJSON streams (checkpoint, restore): 200, chunked, one event per chunk.
    def ndjson_start(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def ndjson(self, typ, text, pause=0.02):
        ev = {"type": typ, ("error" if typ == "error" else "data"): text, "time": now_iso()}
        line = (json.dumps(ev) + "\n").encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        time.sleep(pause)  # let the client see a stream, not one blob

    def ndjson_end(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

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

    def rate_limited(self):
        f = self.fake
        r = f.retry_after
        r = int(r) if float(r) == int(r) else float(r)
        secs = max(0, int(math.ceil(float(r))))
        return self.reply(429, {"error": "sprite_creation_rate_limited",
                                "message": "Sprite creation rate limit exceeded",
                                "limit": 10, "window_seconds": 60,
                                "retry_after_seconds": r, "current_count": 10,
                                "upgrade_available": False},
                          headers={"Retry-After": str(secs), "X-RateLimit-Limit": "10",
                                   "X-RateLimit-Remaining": "0",
                                   "X-RateLimit-Reset": str(int(time.time()) + secs)})

    def route(self):
        u, ok = self.record()
        parts = [unquote(p) for p in u.path.split("/") if p]
        f = self.fake
        is_exec = len(parts) == 4 and parts[3] == "exec" and self.command == "GET"
        if not is_exec and f.rest_delay:
            time.sleep(f.rest_delay)
        if not ok:
            self.body_raw()
            return self.reply(401, {"error": "unauthorized"})
        q = parse_qs(u.query, keep_blank_values=True)
        if not is_exec:
            with f.lock:
                limited = f.rate_limit_next > 0
                failed = not limited and f.fail_next > 0
                if limited:
                    f.rate_limit_next -= 1
                elif failed:
                    f.fail_next -= 1
                elif f.fail_ratio and f.fail_random.random() < f.fail_ratio:
                    failed = True
            if limited or failed:
                self.body_raw()
                ra = {"Retry-After": str(f.fail_retry_after)} if f.fail_retry_after else None
                return self.rate_limited() if limited else self.reply(
                    503, {"error": "service unavailable (injected)"}, headers=ra)
            if self.command in ("POST", "PUT") and self.headers.get("Content-Length") is None \
                    and self.headers.get("Transfer-Encoding") is None:
                self.close_connection = True  # the body's end is unknown
                return self.reply(411, {"error": "length required"})
        if parts[:2] != ["v1", "sprites"]:
            self.body_raw()
            return self.reply(404, {"error": "not found"})
        if len(parts) == 2:
            return self.collection(q)
        name = parts[2]
        if len(parts) == 3:
            return self.one(name)
        if f.sprites.get(name) is None:
            self.body_raw()
            return self.missing()
        if is_exec:
            return Exec(self, name, q).run()
        rest = parts[3:]
        if rest == ["policy", "network"]:
            return self.policy(name)
        if rest == ["checkpoint"] and self.command == "POST":
            return self.checkpoint(name)
        if rest == ["checkpoints"] and self.command == "GET":
            self.body_raw()
            return self.reply(200, f.checkpoints(name))
        if len(rest) == 2 and rest[0] == "checkpoints" and self.command == "GET":
            self.body_raw()
            for c in f.checkpoints(name):
                if c["id"] == rest[1]:
                    return self.reply(200, c)
            return self.reply(404, {"error": "checkpoint not found"})
        if len(rest) == 3 and rest[0] == "checkpoints" and rest[2] == "restore" \
                and self.command == "POST":
            self.body_raw()
            return self.restore(name, rest[1])
        self.body_raw()
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
            if "/" in name or name.startswith(".") or "\0" in name:
                return self.reply(400, {"error": "invalid sprite name"})
            with f.lock:
                if name in f.sprites or name in f.creating:
                    return self.reply(400, {"error": "sprite with this name already exists"})
                f.creating.add(name)
            time.sleep(f.create_delay)
            t = now_iso()
            os.makedirs(f.sprite_dir(name), exist_ok=True)
            f.own(f.sprite_dir(name))
            with f.lock:
                f.creating.discard(name)
                f.sprites[name] = {"id": str(uuid.uuid4()), "status": "cold",
                                   "created_at": t, "updated_at": t, "policy": {"rules": []},
                                   "checkpoints": [], "next_cp": 1, "restored_from": None}
            f.event("create", name)
            return self.reply(201, f.obj(name))
        self.body_raw()
        if self.command != "GET":
            return self.reply(404, {"error": "not found"})
        prefix = (q.get("prefix") or [""])[0]
        try:
            maxr = max(1, min(50, int((q.get("max_results") or ["50"])[0])))
        except ValueError:
            return self.reply(400, {"errors": ["invalid max_results parameter"]})
        # The continuation token is opaque to clients: here, the last name of the previous
        # page (base64url), so a page boundary survives sprites created or deleted between
        # two calls (a pool refilling in the background).
        tok = (q.get("continuation_token") or [""])[0]
        after = None
        if tok:
            try:
                after = base64.b64decode(tok.encode() + b"=" * (-len(tok) % 4), altchars=b"-_",
                                         validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return self.reply(400, {"errors": ["invalid continuation_token parameter"]})
        with f.lock:
            names = sorted(n for n in f.sprites if n.startswith(prefix)
                           and (after is None or n > after))
            page = [(n, f.sprites[n]["updated_at"]) for n in names[:maxr]]
        more = len(names) > maxr
        nxt = base64.urlsafe_b64encode(page[-1][0].encode()).decode().rstrip("=") \
            if more else None
        return self.reply(200, {"sprites": [{"name": n, "org_slug": "fake-org", "updated_at": u}
                                            for n, u in page],
                                "has_more": more, "next_continuation_token": nxt})

    def one(self, name):
        f = self.fake
        self.body_raw()
        if f.sprites.get(name) is None:
            return self.missing() if self.command == "GET" else self.reply(
                404, {"error": "sprite not found"})
        if self.command == "GET":
            return self.reply(200, f.obj(name))
        if self.command == "DELETE":
            with f.cp_lock:
                with f.lock:
                    s = f.sprites.pop(name, None)
                if s is None:
                    return self.reply(404, {"error": "sprite not found"})
                f.kill_running(name)  # the VM is gone, and its processes with it
                f.drop_checkpoints(s)
                shutil.rmtree(f.sprite_dir(name), ignore_errors=True)
            f.event("delete", name)
            return self.reply(204)
        return self.reply(404, {"error": "not found"})

    def policy(self, name):
        f = self.fake
        if self.command == "GET":
            self.body_raw()
            return self.reply(200, f.sprites[name]["policy"])
        if self.command != "POST":
            self.body_raw()
            return self.reply(404, {"error": "not found"})
        b = self.body_json()
        rules = b.get("rules") if isinstance(b, dict) else None
        if not isinstance(rules, list):
            return self.reply(400, {"error": "Invalid policy: rules must be a list"})
        for r in rules:
            if not isinstance(r, dict):
                return self.reply(400, {"error": "Invalid policy: bad rule %r" % (r,)})
            has_d, has_i = "domain" in r, "include" in r
            if has_d == has_i or (has_d and r.get("action") not in ("allow", "deny")):
                return self.reply(400, {"error": "Invalid policy: bad rule %r" % (r,)})
        f.sprites[name]["policy"] = {"rules": rules}
        f.event("policy", name, rules=rules)
        return self.reply(204)

    # ---- checkpoints ----
    def take_fail(self):
        f = self.fake
        with f.lock:
            fail, f.checkpoint_fail = bool(f.checkpoint_fail), False
        return fail

    def checkpoint(self, name):
        f = self.fake
        raw = self.body_raw()
        try:
            b = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self.reply(400, {"error": "invalid JSON body"})
        if not isinstance(b, dict) or not isinstance(b.get("comment", ""), str):
            return self.reply(400, {"errors": ["comment must be a string"]})
        comment = b.get("comment", "")
        lost = f.take_lost("checkpoint")
        if lost == "503":
            return self.reply(503, {"error": "service unavailable (injected)"})
        if lost == "502":  # done, but a proxy in front gave up waiting for the answer
            self.make_checkpoint(name, comment)
            return self.reply(502, {"error": "bad gateway"})
        self.ndjson_start()
        self.ndjson("info", "Creating checkpoint...")
        if self.take_fail():
            self.ndjson("error", "checkpoint failed (injected)")
            f.event("checkpoint_failed", name)
            return self.ndjson_end()
        self.ndjson("info", "Saving filesystem state...")
        cid = self.make_checkpoint(name, comment)
        if cid is None:  # deleted meanwhile
            self.ndjson("error", "sprite not found")
            return self.ndjson_end()
        if lost == "drop":
            return self.drop()
        text = f.checkpoint_text % cid if "%s" in f.checkpoint_text else f.checkpoint_text
        self.ndjson("complete", text, pause=0)
        return self.ndjson_end()

    def make_checkpoint(self, name, comment):
        """The new checkpoint's id, or None when the sprite is gone."""
        f = self.fake
        with f.cp_lock:
            s = f.sprites.get(name)
            if s is None:
                return None
            with f.lock:
                n = s.setdefault("next_cp", 1)
                s["next_cp"] = n + 1
            cid = "v%d" % n
            os.makedirs(f.cp_root, exist_ok=True)
            snap = tempfile.mkdtemp(prefix="%s-%s-" % (name, cid), dir=f.cp_root)
            copy_tree(f.sprite_dir(name), snap)
            cp = {"n": n, "id": cid, "create_time": now_iso(), "comment": comment,
                  "source_id": s.get("restored_from"), "snap": snap,
                  "policy": copy.deepcopy(s["policy"])}
            with f.lock:
                s.setdefault("checkpoints", []).append(cp)
        f.event("checkpoint", name, id=cid, comment=comment)
        return cid

    def drop(self):
        """Close the connection in the middle of a chunked answer (no last chunk)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def restore(self, name, cid):
        f = self.fake
        with f.lock:
            s = f.sprites.get(name)
            cp = next((c for c in (s or {}).get("checkpoints", []) if c["id"] == cid), None)
        if cp is None:
            return self.reply(404, {"error": "checkpoint not found"})
        lost = f.take_lost("restore")
        if lost == "503":
            return self.reply(503, {"error": "service unavailable (injected)"})
        if lost == "502":
            self.start_restore(name, s, cp)
            return self.reply(502, {"error": "bad gateway"})
        self.ndjson_start()
        self.ndjson("info", "Restoring checkpoint %s..." % cid)
        if self.take_fail():
            self.ndjson("error", "restore failed (injected)")
            f.event("restore_failed", name, id=cid)
            return self.ndjson_end()
        if not self.start_restore(name, s, cp):
            self.ndjson("error", "sprite not found")
            return self.ndjson_end()
        if lost == "drop":
            return self.drop()
        self.ndjson("info", "Restore complete")
        self.ndjson("complete", "Environment restarting", pause=0)
        return self.ndjson_end()

    def start_restore(self, name, s, cp):
        """Stop the sprite's processes and restore cp restore_delay seconds from now (the
        service restores asynchronously); False when the sprite is gone."""
        f = self.fake
        with f.lock:
            if f.sprites.get(name) is not s:
                return False
            delay = float(f.restore_delay or 0)
            s["restoring_until"] = time.monotonic() + delay + 60  # until done, below
        f.event("restore_started", name, id=cp["id"])
        f.kill_running(name)
        if delay <= 0:
            self.finish_restore(name, s, cp)
        else:
            threading.Timer(delay, self.finish_restore, args=(name, s, cp)).start()
        return True

    def finish_restore(self, name, s, cp):
        f = self.fake
        with f.cp_lock:
            with f.lock:
                if f.sprites.get(name) is not s:
                    return
            f.kill_running(name)
            d = f.sprite_dir(name)
            old = os.path.join(f.cp_root, "restoring-%s-%s" % (name, uuid.uuid4().hex[:8]))
            try:
                os.rename(d, old)
            except FileNotFoundError:
                old = None
            copy_tree(cp["snap"], d)
            f.own(d)
            if old:
                shutil.rmtree(old, ignore_errors=True)
            with f.lock:
                s["policy"] = copy.deepcopy(cp["policy"])
                s["restored_from"] = cp["id"]
                s["status"] = "warm"
                s["updated_at"] = now_iso()
                s["restoring_until"] = 0
        f.event("restore", name, id=cp["id"])


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
        if self.f.exec_delay and not self.wait_alive(self.f.exec_delay):
            self.f.event("exec_abandoned", self.name, cmd=cmd)
            h.close_connection = True
            return
        drop = False
        with self.f.lock:
            if self.f.drop_exec and self.f.drop_exec in " ".join(cmd):
                self.f.drop_exec = None
                drop = True
        sp = self.f.sprites.get(self.name)
        if sp is None:  # deleted meanwhile
            return h.reply(404, {"error": "sprite not found"})
        if self.f.restoring(self.name):  # its environment is restarting
            self.f.event("exec_refused", self.name, cmd=cmd)
            return h.reply(503, {"error": "sprite is restoring a checkpoint; try again"})
        self.f.event("exec", self.name, cmd=cmd, dir=cwd, env=env)
        env = self.image_env(env)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        sp["status"] = "running"
        path = (q.get("path") or [cmd[0]])[0]
        argv, exe = (AS_SPRITE_USER + [path] + cmd[1:], SETPRIV) \
            if os.geteuid() == 0 and not self.f.exec_as_root else (cmd, path)
        try:
            if exe == SETPRIV and not shutil.which(path, path=env.get("PATH")):
                raise FileNotFoundError(2, os.strerror(2), path)  # not setpriv's words
            p = subprocess.Popen(argv, executable=exe, cwd=cwd, env=env,
                                 stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        except OSError as e:
            with self.f.lock:
                if not self.f.running.get(self.name):
                    sp["status"] = "warm"
            self.send(2, ("%s: %s\n" % (cmd[0], e.strerror)).encode())
            self.send(3, bytes([127 if isinstance(e, FileNotFoundError) else 126]))
            return self.linger()
        self.proc = p
        with self.f.lock:
            self.f.running.setdefault(self.name, set()).add(self)
        outs = [threading.Thread(target=self.pump, args=(p.stdout, 1, drop)),
                threading.Thread(target=self.pump, args=(p.stderr, 2, False))]
        for t in outs:
            t.start()
        threading.Thread(target=self.reader, args=(p,), daemon=True).start()
        for t in outs:
            t.join()
        code = p.wait()
        with self.f.lock:
            self.f.running.get(self.name, set()).discard(self)
        for pipe in (p.stdin, p.stdout, p.stderr):
            if pipe:
                try:
                    pipe.close()
                except OSError:
                    pass
        code = code & 0xff if code >= 0 else 128 + (-code)
        with self.f.lock:
            if not self.f.running.get(self.name):
                sp["status"] = "warm"
        sp["updated_at"] = now_iso()
        bare = code == 0 and self.f.bare_exit
        self.f.event("exit", self.name, code=code, bare=bare)
        if self.open:
            self.send(3, b"" if bare else bytes([code]))
            self.linger()

    def image_env(self, env):
        """The exec's environment with the image's bin (sudo) first on PATH."""
        env = dict(os.environ if env is None else env)
        env["PATH"] = self.f.image_bin + (":" + env["PATH"] if env.get("PATH") else "")
        return env

    def wait_alive(self, secs):
        """Sleep secs before answering the upgrade; False as soon as the client hangs up."""
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            try:
                r, _, _ = select.select([self.sock], [], [], min(left, 0.05))
                if r and not self.sock.recv(1, socket.MSG_PEEK):
                    return False
            except OSError:
                return False

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

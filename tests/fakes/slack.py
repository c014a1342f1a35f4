#!/usr/bin/python3
"""tests/fakes/slack.py -- a fake Slack (Web API + Socket Mode) for janebot's tests.

Written from docs/slack-protocol.md (section 6, "What a faithful fake must do"), not from
janebot's code. Run as a program it serves:

  http://127.0.0.1:PORT/api/<method>       the Web API (POST, form or JSON bodies, Bearer token)
  http://127.0.0.1:PORT/upload/v1/<file>   upload URLs handed out by files.getUploadURLExternal
  http://127.0.0.1:PORT/files-pri/...      url_private(_download) of files users "shared"
  http://127.0.0.1:PORT/_control/...       the test control API (JSON; see Control below)
  ws://127.0.0.1:WSPORT/link/?ticket=N     Socket Mode (apps.connections.open hands it out)

The WebSocket listens on a second port: websockets 10.4's legacy server only speaks GET,
so it cannot serve the POST Web API on the same port.

  tests/fakes/slack.py [--port P] [--ws-port P] [--port-file F] [--ack-timeout S]
                       [--ping-interval S] [--bot-token T] [--app-token T] [--fixtures DIR]

--port-file F gets the HTTP port (one line: "PORT WSPORT") once both servers listen.
SIGTERM / SIGINT shut down cleanly (exit 0).

Imported as a module (no websockets needed) it offers FakeSlack, a client that starts the
program and drives its control API; the integration tests use that.

Behaviour (defaults; most are switchable with /_control/config):
  * Tokens: xoxb- for every method, xapp- only for apps.connections.open, in the
    Authorization header. None -> not_authed; wrong kind or a mismatch with --bot-token /
    --app-token -> invalid_auth (HTTP 200, ok:false). A token in the body of
    apps.connections.open -> invalid_auth. Every call is recorded (never the token).
  * apps.connections.open returns a fresh one-time ticket; a second dial with it -> HTTP 403.
  * On a socket: hello (num_connections, debug_info, connection_info.app_id), then
    envelopes. Each events_api envelope must be acked ({"envelope_id": ...}) within
    ack_timeout (3 s); otherwise it is redelivered on an open socket with a new envelope_id,
    retry_attempt+1, retry_reason "timeout", the same event_id, up to 3 retries. Ack latency
    is recorded per envelope: from the write of the envelope to the read of its ack
    (--switch-interval shortens the GIL's, so a control thread delays that read less).
    Events injected with no socket open wait for the next one.
  * The 11th socket gets disconnect too_many_websockets. Pings every ping_interval.
  * chat.postMessage keeps message metadata ({event_type, event_payload}, a JSON string)
    on the message; conversations.replies returns it with include_all_metadata=true.
  * chat.postMessage stores the message (ts "1717180000.NNNNNN", one increasing counter
    for every message of the fake), honours thread_ts (parent reply_count/latest_reply),
    and echoes a message event with bot_id/app_id/user to the socket ("bots see their own
    posts"; echo_bot_posts). text > 40,000 chars -> msg_too_long (long_text "reject";
    "truncate" posts it cut with the message_truncated warning).
  * Failure switches: the next N calls of a method answer 429 (Retry-After S, body
    ratelimited), 500, drop the connection, or ok:false with an error, or hang: the
    request is held for S seconds (a stuck Slack), then answered as usual. A call of a
    method inside its Retry-After window is counted as an early retry and answered 429
    again.

Control (all JSON; POST unless noted):
  GET  /_control/health                     {ok, port, ws_port}
  GET  /_control/state                      everything recorded (see State.dump)
  POST /_control/state    {brief: true}     the same, uploads without their bytes
  POST /_control/state    {only: [PART..]}  only those parts of it (envelopes, messages, ...)
  POST /_control/reset                      forget everything, close sockets
  POST /_control/config   {key: value}      ack_timeout, max_retries, echo_bot_posts,
                                            long_text, delivery ("round_robin"|"random"),
                                            repeat_parent, warning_close_after, ...
  POST /_control/inject   {kind, ...}       kind: mention | dm | message | both |
                          bot_message | own_bot_reply | message_changed | message_deleted |
                          file_share | reaction_added | reaction_removed |
                          raw_event | raw_payload | fixture; returns
                          {ts, channel, thread_ts, event_ids, envelope_ids};
                          mention/dm/message/both take fragment_pad: N (send each
                          envelope as [N spaces, envelope] fragments of one message)
  POST /_control/redeliver {event_id}       send that event again (retry_attempt+1)
  POST /_control/frame    {frame} | {text}  send one raw frame to every open socket
  POST /_control/fail     {method, count, mode: 429|500|drop|error|hang, retry_after,
                          error, seconds}   hang: hold each of those calls for seconds
  POST /_control/disconnect {reason, close_after}
  POST /_control/drop                       close every socket abruptly (no frame)
  POST /_control/halfopen                   stop reading / pinging on every socket
  POST /_control/link     {enabled}         Socket Mode on/off (apps.connections.open)
  POST /_control/click    {channel, ts, action_id, user?, stale?}
                                            a person presses the button action_id on the
                                            message ts (stale: as first posted, a client
                                            that has not yet shown an update, as when
                                            two clicks race): an interactive envelope with a
                                            block_actions payload (shape of the conformance
                                            fixture interactive_block_actions_thread_decision),
                                            never redelivered; returns {envelope_ids}
  POST /_control/seed     {channel, messages: [{user, text}], thread_ts?}
                                            history: first message is the parent unless
                                            thread_ts is given; returns the ts list
"""
import argparse
import base64
import hashlib
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

TEAM = "T0AB12CDE"
APP_ID = "A0JANEBOT1"
BOT_USER = "U0JANEBOT"
BOT_ID = "B0JANEBOT"
HUMAN = "U0ALICE01"
CHANNEL = "C0DEVCHAN1"
DM = "D0ALICEDM1"
TS_BASE = 1717180000
MAX_TEXT = 40000
DEFAULT_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "shared", "conformance", "slack")


# ======================================================================================
# Client side (used by the tests; standard library only)
# ======================================================================================

class FakeSlackError(Exception):
    pass


class FakeSlack:
    """Start the fake as a subprocess and talk to its control API.

        fs = FakeSlack.start(workdir)          # waits until it listens (≤ 10 s)
        fs.api_url                             # http://127.0.0.1:PORT/api/
        fs.inject("dm", text="hello")          # -> {ts, channel, thread_ts, event_ids, ...}
        fs.state()                             # everything recorded
        fs.stop()                              # SIGTERM, then SIGKILL after 3 s
    """

    PYTHON = "/usr/bin/python3"  # Debian's python3 has python3-websockets

    def __init__(self, proc, port, ws_port, log_path):
        self.proc, self.port, self.ws_port, self.log_path = proc, port, ws_port, log_path
        self.base = "http://127.0.0.1:%d" % port
        self.api_url = self.base + "/api/"

    @classmethod
    def start(cls, workdir, args=(), timeout=10.0):
        workdir = str(workdir)
        os.makedirs(workdir, exist_ok=True)
        port_file = os.path.join(workdir, "fake-slack.port")
        log_path = os.path.join(workdir, "fake-slack.log")
        py = cls.PYTHON if os.path.exists(cls.PYTHON) else sys.executable
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([py, os.path.abspath(__file__), "--port-file", port_file]
                                    + list(args), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise FakeSlackError("fake slack exited with %s:\n%s"
                                     % (proc.returncode, _tail(log_path)))
            try:
                with open(port_file) as f:
                    parts = f.read().split()
                if len(parts) == 2:
                    return cls(proc, int(parts[0]), int(parts[1]), log_path)
            except (OSError, ValueError):
                pass
            time.sleep(0.03)
        proc.kill()
        raise FakeSlackError("fake slack did not start within %ss:\n%s"
                             % (timeout, _tail(log_path)))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
            except OSError:
                pass

    def log(self):
        return _tail(self.log_path, 6000)

    def call(self, path, body=None, timeout=10.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + "/_control/" + path, data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            raise FakeSlackError("control %s: HTTP %s %s" % (path, e.code, e.read()[:500]))
        except (urllib.error.URLError, OSError) as e:
            raise FakeSlackError("control %s: %s (fake alive: %s)"
                                 % (path, e, self.proc.poll() is None))
        if not out.get("ok", True):
            raise FakeSlackError("control %s: %s" % (path, out))
        return out

    # thin wrappers
    def state(self, brief=False, only=None, timeout=10.0):
        """brief: uploads without their bytes (content, content_b64; sha256 stays);
        only: the names of the parts wanted (e.g. ["envelopes", "messages"])."""
        if not brief and not only:
            return self.call("state", None, timeout=timeout)
        req = {"brief": True} if brief else {}
        if only:
            req["only"] = list(only)
        return self.call("state", req, timeout=timeout)

    def inject(self, kind, **kw):
        kw["kind"] = kind
        return self.call("inject", kw)

    def redeliver(self, event_id):
        return self.call("redeliver", {"event_id": event_id})

    def frame(self, frame=None, text=None):
        return self.call("frame", {"frame": frame} if text is None else {"text": text})

    def fail(self, method, count=1, mode=429, retry_after=1, error="internal_error",
             seconds=0):
        return self.call("fail", {"method": method, "count": count, "mode": mode,
                                  "retry_after": retry_after, "error": error,
                                  "seconds": seconds})

    def disconnect(self, reason, close_after=None):
        return self.call("disconnect", {"reason": reason, "close_after": close_after})

    def drop(self):
        return self.call("drop", {})

    def halfopen(self):
        return self.call("halfopen", {})

    def link(self, enabled):
        return self.call("link", {"enabled": bool(enabled)})

    def click(self, channel, ts, action_id, user=HUMAN, stale=False):
        return self.call("click", {"channel": channel, "ts": ts, "action_id": action_id,
                                   "user": user, "stale": stale})

    def seed(self, channel, messages, thread_ts=None):
        return self.call("seed", {"channel": channel, "messages": messages,
                                  "thread_ts": thread_ts})

    def config(self, **kw):
        return self.call("config", kw)

    def reset(self):
        return self.call("reset", {})


def _tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[-n:].decode(errors="replace")


# ======================================================================================
# Server side
# ======================================================================================

def slack_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rich_text_blocks(text):
    """A rich_text block for a user's message, as Slack clients send it (approximate)."""
    elements = []
    pos = 0
    for m in re.finditer(r"<@([UW][A-Z0-9]+)>", text):
        if m.start() > pos:
            elements.append({"type": "text", "text": _unescape(text[pos:m.start()])})
        elements.append({"type": "user", "user_id": m.group(1)})
        pos = m.end()
    if pos < len(text):
        elements.append({"type": "text", "text": _unescape(text[pos:])})
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5],
             "elements": [{"type": "rich_text_section", "elements": elements}]}]


def _unescape(s):
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def channel_type_of(channel):
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


class Switch:
    def __init__(self, mode, count, retry_after, error, seconds=0):
        self.mode, self.count, self.retry_after, self.error = mode, count, retry_after, error
        self.seconds = seconds


class Conn:
    def __init__(self, cid, ws, ticket):
        self.id, self.ws, self.ticket = cid, ws, ticket
        self.opened_at = time.time()
        self.closed_at = None
        self.hello_at = None
        self.draining = False      # got a disconnect frame: no new envelopes
        self.halfopen = False
        self.close_reason = None
        self.close_code = None     # the WebSocket close code, once closed

    def info(self):
        return {"id": self.id, "ticket": self.ticket, "opened_at": self.opened_at,
                "hello_at": self.hello_at, "closed_at": self.closed_at,
                "draining": self.draining, "halfopen": self.halfopen,
                "close_reason": self.close_reason, "close_code": self.close_code,
                "open": self.closed_at is None}


class State:
    """Everything the fake knows. Guarded by self.lock (HTTP threads and the WS loop)."""

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.cfg = {
                "ack_timeout": self.opts.ack_timeout,
                "max_retries": 3,
                "echo_bot_posts": True,
                "long_text": "reject",          # or "truncate"
                "delivery": "round_robin",      # or "random"
                "repeat_parent": True,          # conversations.replies pages repeat parent
                "warning_close_after": 3.0,
                "refresh_close_after": 10.0,
                "max_connections": 10,
                "replies_max_limit": 1000,      # clamp conversations.replies' limit
                "unknown_users": [],
                "unknown_channels": [],
            }
            self.ts_counter = 0
            self.ids = 0
            self.messages = {}       # channel -> {ts: message}
            self.calls = []          # every Web API call
            self.posts = []          # chat.postMessage successes
            self.ephemerals = []
            self.updates = []
            self.deletes = []
            self.reaction_log = []   # {op, channel, ts, name, t, result}
            self.reactions = {}      # (channel, ts) -> [names]
            self.uploads = {}        # file_id -> {...} (getUploadURLExternal)
            self.shared_files = []   # completed uploads
            self.user_files = {}     # file_id -> {name, content} (for url_private_download)
            self.envelopes = []      # every envelope sent (incl. retries)
            self.env_by_id = {}
            self.events = {}         # event_id -> {payload, attempts, ...}
            self.pending = []        # envelope dicts waiting for a socket
            self.acks = []           # every ack frame received
            self.stray_acks = []     # acks for unknown / already acked envelope ids
            self.frames_in = []      # every text frame from the client
            self.bad_frames = []
            self.switches = {}       # method -> [Switch]
            self.blocked_until = {}  # method -> epoch secs (429 window)
            self.early_retries = []  # {method, t, blocked_until}
            self.tickets = {}        # ticket -> used?
            self.conns = []          # Conn
            self.link_enabled = True
            self.rr = 0

    def next_ts(self):
        with self.lock:
            self.ts_counter += 1
            return "%d.%06d" % (TS_BASE, self.ts_counter)

    def new_id(self, prefix):
        with self.lock:
            self.ids += 1
            return "%s%07d" % (prefix, self.ids)

    # ---- message store ---------------------------------------------------------------

    def store(self, channel, msg):
        with self.lock:
            ch = self.messages.setdefault(channel, {})
            ch[msg["ts"]] = msg
            tts = msg.get("thread_ts")
            if tts and tts != msg["ts"] and tts in ch:
                parent = ch[tts]
                parent["thread_ts"] = tts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                u = msg.get("user") or msg.get("bot_id")
                if u and u not in users:
                    users.append(u)
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = msg["ts"]
                msg.setdefault("parent_user_id", parent.get("user") or "")

    def find(self, channel, ts):
        with self.lock:
            return self.messages.get(channel, {}).get(ts)

    def thread_of(self, channel, ts):
        """Parent + replies (oldest first) of the thread holding ts, or None."""
        with self.lock:
            ch = self.messages.get(channel, {})
            m = ch.get(ts)
            if m is None:
                return None
            parent_ts = m.get("thread_ts") or ts
            if parent_ts not in ch:
                return None
            out = [ch[parent_ts]] + [x for t, x in ch.items()
                                     if t != parent_ts and x.get("thread_ts") == parent_ts]
            return sorted(out, key=lambda x: x["ts"])

    def dump(self, only=None):
        """Everything recorded, or only the named parts (a long run's full record is big)."""
        parts = {
            "config": lambda: dict(self.cfg),
            "calls": lambda: list(self.calls), "posts": lambda: list(self.posts),
            "ephemerals": lambda: list(self.ephemerals),
            "updates": lambda: list(self.updates), "deletes": lambda: list(self.deletes),
            "reaction_log": lambda: list(self.reaction_log),
            "reactions": lambda: [{"channel": c, "ts": t, "names": list(n)}
                                  for (c, t), n in self.reactions.items()],
            "uploads": lambda: list(self.shared_files),
            "envelopes": lambda: [dict(e, payload=None) for e in self.envelopes],
            "events": lambda: {k: {kk: vv for kk, vv in v.items() if kk != "payload"}
                               for k, v in self.events.items()},
            "pending": lambda: len(self.pending),
            "acks": lambda: list(self.acks), "stray_acks": lambda: list(self.stray_acks),
            "frames_in": lambda: list(self.frames_in[-500:]),
            "bad_frames": lambda: list(self.bad_frames),
            "early_retries": lambda: list(self.early_retries),
            "connections": lambda: [c.info() for c in self.conns],
            "link_enabled": lambda: self.link_enabled,
            "messages": lambda: {c: sorted(m.values(), key=lambda x: x["ts"])
                                 for c, m in self.messages.items()},
        }
        unknown = [k for k in (only or ()) if k not in parts]
        if unknown:
            return {"ok": False, "error": "unknown state parts %s" % unknown}
        with self.lock:
            out = {"ok": True}
            for k in (only or parts):
                out[k] = parts[k]()
            return out


class Server:
    def __init__(self, opts):
        self.opts = opts
        self.st = State(opts)
        self.loop = None
        self.port = None
        self.ws_port = None
        self.fixtures = opts.fixtures

    # ---- helpers called from HTTP threads -----------------------------------------------

    def in_loop(self, fn, *args):
        """Run fn(*args) on the asyncio loop (fire and forget)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def in_loop_wait(self, coro, timeout=5.0):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ---- events ---------------------------------------------------------------------

    def event_callback(self, event, event_id=None):
        st = self.st
        event_id = event_id or st.new_id("Ev0FAKE")
        return {
            "token": "verificationTokenUnusedInSocketMode",
            "team_id": TEAM, "context_team_id": TEAM, "context_enterprise_id": None,
            "api_app_id": APP_ID, "event": event, "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": BOT_USER,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-" + base64.b64encode(
                json.dumps({"et": event.get("type"), "tid": TEAM}).encode()).decode().rstrip("="),
        }

    def submit_payload(self, payload, env_type="events_api", accepts_response_payload=False,
                       fragment_pad=0):
        """Register an event and deliver it (first attempt). Returns the event_id.
        fragment_pad > 0: each delivery is one WebSocket message in two fragments (RFC 6455
        5.4), fragment_pad spaces and then the envelope, which is valid JSON as a whole and
        its tail fragment on its own too."""
        st = self.st
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        with st.lock:
            key = event_id or st.new_id("Raw")
            st.events[key] = {"event_id": key, "payload": payload, "type": env_type,
                              "accepts_response_payload": accepts_response_payload,
                              "attempts": 0, "acked": False, "gave_up": False,
                              "injected_at": time.time(), "fragment_pad": fragment_pad}
        self.in_loop(self._deliver_event, key, 0, "")
        return key

    def _deliver_event(self, key, attempt, reason):
        st = self.st
        with st.lock:
            ev = st.events.get(key)
            if ev is None:
                return
            env_id = str(uuid.uuid4())
            env = {"envelope_id": env_id, "payload": ev["payload"], "type": ev["type"],
                   "accepts_response_payload": ev["accepts_response_payload"]}
            if ev["type"] == "events_api":
                env["retry_attempt"] = attempt
                env["retry_reason"] = reason
            rec = {"envelope_id": env_id, "event_id": key, "type": ev["type"],
                   "retry_attempt": attempt, "retry_reason": reason, "conn": None,
                   "created_at": time.time(), "sent_at": None, "acked_at": None,
                   "latency": None, "late": False, "timed_out": False, "ack_payload": None,
                   "frame": env, "fragment_pad": ev.get("fragment_pad", 0)}
            st.envelopes.append(rec)
            st.env_by_id[env_id] = rec
            if attempt == 0:
                ev["first_envelope_id"] = env_id
            ev["attempts"] += 1
            st.pending.append(rec)
        self._flush_pending()

    def _pick_conn(self):
        st = self.st
        live = [c for c in st.conns if c.closed_at is None and c.hello_at is not None
                and not c.draining and not c.halfopen]
        if not live:
            return None
        if st.cfg["delivery"] == "random":
            return random.choice(live)
        st.rr += 1
        return live[st.rr % len(live)]

    def _flush_pending(self):
        st = self.st
        with st.lock:
            while st.pending:
                c = self._pick_conn()
                if c is None:
                    return
                rec = st.pending.pop(0)
                rec["conn"] = c.id
                rec["sent_at"] = time.time()
                frame = json.dumps(rec["frame"])
                pad = rec.get("fragment_pad") or 0
                self._send(c, [" " * pad, frame] if pad else frame, rec)  # a list: fragments
                self.loop.call_later(st.cfg["ack_timeout"], self._check_ack,
                                     rec["envelope_id"])

    def _send(self, c, text, rec=None):
        import asyncio

        async def go():
            try:
                if rec is not None:  # latency counts from the write, not from the queueing
                    with self.st.lock:
                        rec["sent_at"] = time.time()
                await c.ws.send(text)
            except Exception as e:  # connection gone: the ack timer redelivers
                log("send on conn %s failed: %s" % (c.id, e))
        asyncio.ensure_future(go())

    def _check_ack(self, env_id):
        st = self.st
        with st.lock:
            rec = st.env_by_id.get(env_id)
            if rec is None or rec["acked_at"] is not None:
                return
            rec["timed_out"] = True
            ev = st.events.get(rec["event_id"])
            if ev is None or ev["acked"]:
                return
            if ev["type"] != "events_api" or rec["retry_attempt"] >= st.cfg["max_retries"]:
                ev["gave_up"] = True
                return
        self._deliver_event(rec["event_id"], rec["retry_attempt"] + 1, "timeout")

    # ---- websocket side -------------------------------------------------------------

    async def ws_process_request(self, path, headers):
        from http import HTTPStatus
        u = urllib.parse.urlparse(path)
        if not u.path.startswith("/link"):
            return HTTPStatus.NOT_FOUND, [], b"not found\n"
        ticket = (urllib.parse.parse_qs(u.query).get("ticket") or [""])[0]
        st = self.st
        with st.lock:
            if ticket not in st.tickets:
                return HTTPStatus.FORBIDDEN, [], b"unknown ticket\n"
            if st.tickets[ticket]:
                return HTTPStatus.FORBIDDEN, [], b"ticket already used\n"
            st.tickets[ticket] = True
            if not st.link_enabled:
                return HTTPStatus.FORBIDDEN, [], b"socket mode disabled\n"
        return None

    async def ws_handler(self, ws, path=None):
        import asyncio
        path = path or getattr(ws, "path", "")
        ticket = (urllib.parse.parse_qs(urllib.parse.urlparse(path).query).get("ticket")
                  or [""])[0]
        st = self.st
        with st.lock:
            cid = len(st.conns) + 1
            c = Conn(cid, ws, ticket)
            st.conns.append(c)
            n_open = sum(1 for x in st.conns if x.closed_at is None)
            too_many = n_open > st.cfg["max_connections"]
        try:
            if too_many:
                await ws.send(json.dumps({"type": "disconnect", "reason": "too_many_websockets",
                                          "num_connections": n_open,
                                          "debug_info": {"host": "applink-fake-1"},
                                          "connection_info": {"app_id": APP_ID}}))
                c.close_reason = "too_many_websockets"
                await ws.close()
                return
            hello = {"type": "hello", "num_connections": n_open,
                     "debug_info": {"host": "applink-fake-%d" % cid, "build_number": 10,
                                    "approximate_connection_time": 18060},
                     "connection_info": {"app_id": APP_ID}}
            await ws.send(json.dumps(hello))
            with st.lock:
                c.hello_at = time.time()
            self._flush_pending()
            async for msg in ws:
                self.on_frame(c, msg)
        except Exception as e:
            log("conn %d: %s" % (cid, e.__class__.__name__))
        finally:
            with st.lock:
                c.closed_at = time.time()
                c.close_code = ws.close_code
            await asyncio.sleep(0)
            self._flush_pending()

    def on_frame(self, c, msg):
        st = self.st
        now = time.time()
        if isinstance(msg, bytes):
            msg = msg.decode(errors="replace")
        with st.lock:
            st.frames_in.append({"conn": c.id, "t": now, "text": msg[:2000]})
            try:
                obj = json.loads(msg)
            except ValueError:
                st.bad_frames.append({"conn": c.id, "t": now, "text": msg[:2000],
                                      "why": "not json"})
                return
            if not isinstance(obj, dict) or not isinstance(obj.get("envelope_id"), str):
                st.bad_frames.append({"conn": c.id, "t": now, "text": msg[:2000],
                                      "why": "no envelope_id"})
                return
            eid = obj["envelope_id"]
            ack = {"envelope_id": eid, "conn": c.id, "t": now,
                   "payload": obj.get("payload")}
            st.acks.append(ack)
            rec = st.env_by_id.get(eid)
            if rec is None or rec["acked_at"] is not None:
                st.stray_acks.append(dict(ack, why="unknown" if rec is None else "duplicate"))
                return
            rec["acked_at"] = now
            rec["latency"] = now - (rec["sent_at"] or now)
            rec["late"] = rec["timed_out"]
            rec["ack_payload"] = obj.get("payload")
            rec["ack_conn"] = c.id
            if rec["conn"] != c.id:
                rec["ack_on_other_conn"] = True
            ev = st.events.get(rec["event_id"])
            if ev is not None and not rec["timed_out"]:
                ev["acked"] = True

    # control operations on sockets (run on the loop)

    async def op_frame(self, text):
        with self.st.lock:
            conns = [c for c in self.st.conns if c.closed_at is None and c.hello_at]
        for c in conns:
            try:
                await c.ws.send(text)
            except Exception:
                pass
        return len(conns)

    async def op_disconnect(self, reason, close_after):
        import asyncio
        st = self.st
        with st.lock:
            conns = [c for c in st.conns if c.closed_at is None and c.hello_at]
            if close_after is None:
                close_after = {"warning": st.cfg["warning_close_after"],
                               "link_disabled": 0.5,
                               "too_many_websockets": 0.2}.get(reason,
                                                               st.cfg["refresh_close_after"])
            if reason == "link_disabled":
                st.link_enabled = False
        frame = {"type": "disconnect", "reason": reason,
                 "debug_info": {"host": "applink-fake"}}
        if reason == "too_many_websockets":
            frame["num_connections"] = len(conns)
            frame["connection_info"] = {"app_id": APP_ID}
        for c in conns:
            c.draining = True
            try:
                await c.ws.send(json.dumps(frame))
            except Exception:
                pass

        async def closer(c):
            await asyncio.sleep(close_after)
            if c.closed_at is None:
                c.close_reason = "closed after disconnect " + reason
                try:
                    await asyncio.wait_for(c.ws.close(), 2)
                except Exception:
                    c.ws.transport.abort()
        for c in conns:
            asyncio.ensure_future(closer(c))
        return len(conns)

    async def op_drop(self):
        with self.st.lock:
            conns = [c for c in self.st.conns if c.closed_at is None]
        for c in conns:
            c.close_reason = "dropped"
            c.draining = True
            try:
                c.ws.transport.abort()
            except Exception:
                pass
        return len(conns)

    async def op_halfopen(self):
        with self.st.lock:
            conns = [c for c in self.st.conns if c.closed_at is None]
        for c in conns:
            c.halfopen = True
            try:
                c.ws.transport.pause_reading()
                t = getattr(c.ws, "keepalive_ping_task", None)
                if t is not None:
                    t.cancel()
            except Exception:
                pass
        return len(conns)

    async def op_close_all(self):
        with self.st.lock:
            conns = [c for c in self.st.conns if c.closed_at is None]
        for c in conns:
            try:
                c.ws.transport.abort()
            except Exception:
                pass

    # ---- injection --------------------------------------------------------------------

    def inject(self, req):
        st = self.st
        kind = req.get("kind", "dm")
        user = req.get("user", HUMAN)
        thread_ts = req.get("thread_ts")
        text = req.get("text", "")
        if not req.get("raw_text"):
            text = slack_escape(text)
        out = {"event_ids": []}

        def user_message(channel, mention):
            ts = req.get("ts") or st.next_ts()
            body = ("<@%s> " % BOT_USER + text) if mention and not req.get("no_mention_prefix") \
                else text
            msg = {"type": "message", "user": user, "text": body, "ts": ts, "team": TEAM,
                   "client_msg_id": str(uuid.uuid4()), "blocks": rich_text_blocks(body)}
            if thread_ts:
                msg["thread_ts"] = thread_ts
            st.store(channel, dict(msg))
            return msg

        if kind in ("mention", "dm", "message", "both"):
            channel = req.get("channel") or (DM if kind == "dm" else CHANNEL)
            mention = kind in ("mention", "both") or bool(req.get("mention"))
            msg = user_message(channel, mention)
            ts = msg["ts"]
            evs = []
            if kind in ("mention", "both"):
                e = {k: v for k, v in msg.items() if k != "type"}
                e = dict({"client_msg_id": msg["client_msg_id"], "type": "app_mention"}, **e)
                e.update({"channel": channel, "event_ts": ts})
                e.pop("parent_user_id", None)
                evs.append(e)
            if kind in ("dm", "message", "both"):
                e = dict(msg)
                e.update({"channel": channel, "event_ts": ts,
                          "channel_type": channel_type_of(channel)})
                if thread_ts:
                    parent = st.find(channel, thread_ts)
                    e["parent_user_id"] = (parent or {}).get("user", user)
                evs.append(e)
            if req.get("reverse"):
                evs.reverse()
            for e in evs:
                out["event_ids"].append(self.submit_payload(
                    self.event_callback(e), fragment_pad=int(req.get("fragment_pad", 0))))
            out.update(ts=ts, channel=channel, thread_ts=thread_ts or ts, text=msg["text"])
        elif kind == "bot_message":
            channel = req.get("channel") or DM
            ts = st.next_ts()
            e = {"type": "message", "subtype": "bot_message", "text": text,
                 "bot_id": "B0CIBOT001", "username": "ci-bot", "app_id": "A0CIBOTAPP",
                 "ts": ts, "channel": channel, "event_ts": ts,
                 "channel_type": channel_type_of(channel)}
            if thread_ts:
                e["thread_ts"] = thread_ts
            st.store(channel, {k: v for k, v in e.items() if k not in ("channel", "event_ts",
                                                                       "channel_type")})
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
            out.update(ts=ts, channel=channel, thread_ts=thread_ts or ts)
        elif kind == "own_bot_reply":
            channel = req.get("channel") or DM
            ts = st.next_ts()
            e = self.bot_message_event(channel, ts, text or "an earlier answer", thread_ts)
            st.store(channel, {k: v for k, v in e.items() if k not in ("channel", "event_ts",
                                                                       "channel_type")})
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
            out.update(ts=ts, channel=channel, thread_ts=thread_ts or ts)
        elif kind in ("message_changed", "message_deleted"):
            channel = req.get("channel") or DM
            target = req.get("target_ts")
            old = st.find(channel, target) if target else None
            old = dict(old or {"type": "message", "user": user, "text": "old text",
                               "ts": target or st.next_ts(), "team": TEAM})
            ts = st.next_ts()
            e = {"type": "message", "subtype": kind, "hidden": True, "channel": channel,
                 "ts": ts, "event_ts": ts, "channel_type": channel_type_of(channel),
                 "previous_message": old}
            if kind == "message_changed":
                new = dict(old, text=text or "edited text",
                           edited={"user": old.get("user", user), "ts": ts})
                e["message"] = new
                if old.get("ts") and st.find(channel, old["ts"]):
                    st.find(channel, old["ts"])["text"] = new["text"]
            else:
                e["deleted_ts"] = old["ts"]
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
            out.update(ts=ts, channel=channel, thread_ts=old.get("thread_ts") or old["ts"])
        elif kind == "file_share":
            channel = req.get("channel") or DM
            ts = req.get("ts") or st.next_ts()
            files = []
            for f in req.get("files") or [{"name": "note.txt", "content": "hello\n"}]:
                fid = st.new_id("F0USER")
                content = f.get("content", "").encode()
                st.user_files[fid] = {"name": f["name"], "content": content}
                base = "http://127.0.0.1:%d/files-pri/%s-%s" % (self.port, TEAM, fid)
                files.append({"id": fid, "created": int(time.time()),
                              "timestamp": int(time.time()), "name": f["name"],
                              "title": f["name"], "mimetype": f.get("mimetype", "text/plain"),
                              "filetype": "text", "pretty_type": "Plain Text", "user": user,
                              "size": len(content), "mode": "hosted", "is_external": False,
                              "url_private": base + "/" + f["name"],
                              "url_private_download": base + "/download/" + f["name"],
                              "permalink": "https://example-team.slack.com/files/%s/%s/%s"
                              % (user, fid, f["name"]), "file_access": "visible"})
            e = {"type": "message", "subtype": "file_share", "text": text, "files": files,
                 "upload": False, "user": user, "display_as_bot": False,
                 "blocks": rich_text_blocks(text) if text else [], "ts": ts,
                 "client_msg_id": str(uuid.uuid4()), "channel": channel, "event_ts": ts,
                 "channel_type": channel_type_of(channel)}
            if thread_ts:
                e["thread_ts"] = thread_ts
            st.store(channel, {k: v for k, v in e.items() if k not in ("channel", "event_ts",
                                                                       "channel_type")})
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
            out.update(ts=ts, channel=channel, thread_ts=thread_ts or ts,
                       files=[f["id"] for f in files])
        elif kind in ("reaction_added", "reaction_removed"):
            # A user adds (removes) an emoji on a message: the event names the message by
            # item {type, channel, ts} and its author as item_user (as in the real events_api_reaction_added payload).
            channel = req.get("channel") or CHANNEL
            target = req.get("target_ts")
            name = req.get("reaction") or "x"
            with st.lock:
                msg = st.find(channel, target)
                if msg is not None:
                    names = st.reactions.setdefault((channel, target), [])
                    if kind == "reaction_added" and name not in names:
                        names.append(name)
                    elif kind == "reaction_removed" and name in names:
                        names.remove(name)
            e = {"type": kind, "user": user,
                 "item": {"type": "message", "channel": channel, "ts": target},
                 "reaction": name, "event_ts": st.next_ts()}
            if msg is not None and msg.get("user"):
                e["item_user"] = msg["user"]
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
            out.update(channel=channel, ts=target)
        elif kind == "raw_event":
            e = req.get("event") or {}
            out["event_ids"].append(self.submit_payload(self.event_callback(e)))
        elif kind == "raw_payload":
            out["event_ids"].append(self.submit_payload(
                req.get("payload"), env_type=req.get("type", "events_api"),
                accepts_response_payload=bool(req.get("accepts_response_payload"))))
        elif kind == "fixture":
            name = os.path.basename(req.get("name", ""))
            path = os.path.join(self.fixtures or "", name)
            with open(path) as f:
                env = json.load(f)
            if "payload" not in env:  # a frame without envelope (hello, disconnect)
                self.in_loop_wait(self.op_frame(json.dumps(env)))
                return out
            out["event_ids"].append(self.submit_payload(
                env["payload"], env_type=env.get("type", "events_api"),
                accepts_response_payload=bool(env.get("accepts_response_payload"))))
        else:
            raise ValueError("unknown kind %r" % kind)
        # envelope ids of first attempts (assigned on the loop; give it a moment)
        return out

    def bot_message_event(self, channel, ts, text, thread_ts=None, extra=None):
        e = {"type": "message", "text": text, "user": BOT_USER, "bot_id": BOT_ID,
             "app_id": APP_ID,
             "bot_profile": {"id": BOT_ID, "deleted": False, "name": "janebot",
                             "updated": 1700000000, "app_id": APP_ID, "icons": {},
                             "team_id": TEAM},
             "blocks": [{"type": "section", "block_id": uuid.uuid4().hex[:4],
                         "text": {"type": "mrkdwn", "text": text[:3000], "verbatim": False}}],
             "team": TEAM, "ts": ts, "channel": channel, "event_ts": ts,
             "channel_type": channel_type_of(channel)}
        if thread_ts:
            e["thread_ts"] = thread_ts
            parent = self.st.find(channel, thread_ts)
            if parent:
                e["parent_user_id"] = parent.get("user", "")
        if extra:
            e.update(extra)
        return e

    def click(self, req):
        """A block_actions payload for a button on a stored message (docs: interaction
        payloads; conformance interactive_block_actions_thread_decision.json)."""
        st = self.st
        ch, ts, action_id = req.get("channel"), req.get("ts"), req.get("action_id")
        user = req.get("user", HUMAN)
        with st.lock:
            m = st.find(ch, ts)
            if m is None:
                return {"ok": False, "error": "message_not_found"}
            msg = json.loads(json.dumps(m))
            if req.get("stale"):
                first = next((p for p in self.st.posts if p["channel"] == ch
                              and p["ts"] == ts), None)
                if first is not None:
                    msg["text"], msg["blocks"] = first["text"], first["blocks"]
        button = block_id = None
        for b in msg.get("blocks") or []:
            for e in b.get("elements") or [] if b.get("type") == "actions" else []:
                if e.get("action_id") == action_id:
                    button, block_id = e, b.get("block_id")
        if button is None:
            return {"ok": False, "error": "no button %s on that message" % action_id}
        action = {"action_id": action_id, "block_id": block_id,
                  "text": dict(button.get("text", {}), emoji=True),
                  "type": "button", "action_ts": "%.6f" % time.time()}
        if "value" in button:
            action["value"] = button["value"]
        if "style" in button:
            action["style"] = button["style"]
        container = {"type": "message", "message_ts": ts, "channel_id": ch,
                     "is_ephemeral": False}
        if msg.get("thread_ts"):
            container["thread_ts"] = msg["thread_ts"]
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(),
                     "team_id": TEAM},
            "api_app_id": APP_ID, "token": "verificationTokenUnusedInSocketMode",
            "container": container, "trigger_id": "%d.1234567890.%s" % (
                int(time.time()), uuid.uuid4().hex),
            "team": {"id": TEAM, "domain": "example-team"}, "enterprise": None,
            "is_enterprise_install": False, "channel": {"id": ch, "name": "dev"},
            "message": msg, "state": {"values": {}},
            "response_url": "https://hooks.example.com/actions/%s/%s" % (TEAM, uuid.uuid4().hex),
            "actions": [action],
        }
        key = self.submit_payload(payload, env_type="interactive")
        end = time.monotonic() + 1.0
        envs = []
        while time.monotonic() < end and not envs:
            with st.lock:
                envs = [e["envelope_id"] for e in st.envelopes if e["event_id"] == key]
            time.sleep(0.005)
        return {"ok": True, "event_id": key, "envelope_ids": envs}

    def seed(self, req):
        st = self.st
        channel = req.get("channel") or CHANNEL
        parent = req.get("thread_ts")
        out = []
        for m in req.get("messages") or []:
            ts = st.next_ts()
            text = m.get("text", "")
            if not m.get("raw_text"):
                text = slack_escape(text)
            msg = {"type": "message", "user": m.get("user", HUMAN), "text": text, "ts": ts,
                   "team": TEAM}
            if m.get("bot"):
                msg.update(user=BOT_USER, bot_id=BOT_ID, app_id=APP_ID)
            else:
                msg["client_msg_id"] = str(uuid.uuid4())
            if parent:
                msg["thread_ts"] = parent
            st.store(channel, msg)
            if parent is None and not req.get("top_level"):
                parent = ts
            out.append(ts)
        return {"ok": True, "ts": out, "channel": channel,
                "thread_ts": req.get("thread_ts") or (out[0] if out else None)}

    # ---- Web API --------------------------------------------------------------------

    def api(self, method, args, token, token_in_body, content_type):
        """Returns (status, headers, body_obj or None for 'drop')."""
        st = self.st
        now = time.time()
        call = {"method": method, "t": now, "content_type": content_type,
                "token_kind": _token_kind(token), "token_in_body": token_in_body,
                "args": {k: v for k, v in args.items() if k != "token"}}
        hang = 0
        with st.lock:
            st.calls.append(call)
            # 429 window: a call inside it is an early retry
            bu = st.blocked_until.get(method)
            if bu is not None and now < bu - 0.05:
                st.early_retries.append({"method": method, "t": now, "blocked_until": bu})
                call["status"] = 429
                call["early"] = True
                return 429, {"Retry-After": str(max(1, int(bu - now + 0.999)))}, \
                    {"ok": False, "error": "ratelimited"}
            sw = st.switches.get(method) or []
            if sw:
                s = sw[0]
                s.count -= 1
                if s.count <= 0:
                    sw.pop(0)
                call["switch"] = str(s.mode)
                if str(s.mode) == "429":
                    st.blocked_until[method] = now + s.retry_after
                    call["status"] = 429
                    return 429, {"Retry-After": str(int(math.ceil(s.retry_after)))}, \
                        {"ok": False, "error": "ratelimited"}
                if str(s.mode) in ("500", "502", "503"):
                    call["status"] = int(s.mode)
                    return int(s.mode), {"Content-Type": "text/html"}, \
                        "<html><body>Internal Server Error</body></html>"
                if s.mode == "drop":
                    call["status"] = "dropped"
                    return None, {}, None
                if s.mode == "error":
                    call["status"] = 200
                    call["error"] = s.error
                    return 200, {}, {"ok": False, "error": s.error}
                if s.mode == "hang":
                    hang = s.seconds
                    call["held"] = hang
        if hang:  # a stuck Slack: the request is held, then answered as usual
            time.sleep(hang)
        try:
            body = self.dispatch(method, args, token, token_in_body)
        except Exception as e:  # a bug in the fake: make it visible
            log("api %s crashed: %r" % (method, e))
            import traceback
            traceback.print_exc()
            body = {"ok": False, "error": "fake_internal_error", "detail": repr(e)}
        with st.lock:
            call["status"] = 200
            call["ok"] = body.get("ok")
            if not body.get("ok"):
                call["error"] = body.get("error")
        return 200, {}, body

    def dispatch(self, method, args, token, token_in_body):
        st = self.st
        o = self.opts
        if method == "apps.connections.open":
            if token_in_body:
                return {"ok": False, "error": "invalid_auth"}
            if not token:
                return {"ok": False, "error": "not_authed"}
            if not token.startswith("xapp-") or (o.app_token and token != o.app_token):
                return {"ok": False, "error": "invalid_auth"}
            with st.lock:
                if not st.link_enabled:
                    return {"ok": False, "error": "socket_mode_disabled"}
                ticket = str(uuid.uuid4())
                st.tickets[ticket] = False
            return {"ok": True, "url": "ws://127.0.0.1:%d/link/?ticket=%s&app_id=%s"
                    % (self.ws_port, ticket, APP_ID)}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xoxb-") or (o.bot_token and token != o.bot_token):
            return {"ok": False, "error": "invalid_auth"}
        fn = getattr(self, "m_" + method.replace(".", "_"), None)
        if fn is None:
            return {"ok": False, "error": "unknown_method"}
        return fn(args)

    def _channel_ok(self, ch):
        if not ch or not re.match(r"^[CGD][A-Z0-9]{2,}$", ch) \
                or ch in self.st.cfg["unknown_channels"]:
            return False
        return True

    def m_auth_test(self, a):
        return {"ok": True, "url": "https://example-team.slack.com/", "team": "Example Team",
                "user": "janebot", "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID,
                "is_enterprise_install": False}

    def _check_text(self, a):
        text = a.get("text")
        blocks = a.get("blocks")
        if isinstance(blocks, str) and blocks:
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return None, None, {"ok": False, "error": "invalid_blocks_format"}
        if not text and not blocks:
            return None, None, {"ok": False, "error": "no_text"}
        if blocks:
            if not isinstance(blocks, list) or len(blocks) > 50:
                return None, None, {"ok": False, "error": "invalid_blocks"}
            for b in blocks:
                if isinstance(b, dict) and b.get("type") == "section" and \
                        len(((b.get("text") or {}).get("text")) or "") > 3000:
                    return None, None, {"ok": False, "error": "invalid_blocks",
                                        "errors": ["must be less than 3001 characters "
                                                   "[json-pointer:/blocks/0/text]"]}
        warnings = []
        text = text or ""
        if len(text) > MAX_TEXT:
            if self.st.cfg["long_text"] == "reject":
                return None, None, {"ok": False, "error": "msg_too_long"}
            text = text[:MAX_TEXT]
            warnings.append("message_truncated")
        return text, blocks, warnings

    def m_chat_postMessage(self, a):
        st = self.st
        ch = a.get("channel")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        text, blocks, warn = self._check_text(a)
        if isinstance(warn, dict):
            return warn
        tts = a.get("thread_ts") or None
        ts = st.next_ts()
        msg = {"user": BOT_USER, "type": "message", "ts": ts, "bot_id": BOT_ID,
               "app_id": APP_ID, "text": text, "team": TEAM,
               "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": "janebot",
                               "icons": {}, "deleted": False, "updated": 1700000000,
                               "team_id": TEAM}}
        if blocks:
            msg["blocks"] = blocks
        if tts:
            msg["thread_ts"] = tts
        meta = a.get("metadata")
        if meta is not None:  # message metadata: {event_type, event_payload}, JSON or a string
            try:
                meta = json.loads(meta) if isinstance(meta, str) else meta
            except ValueError:
                return {"ok": False, "error": "invalid_metadata_format"}
            if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) \
                    or not isinstance(meta.get("event_payload"), dict):
                return {"ok": False, "error": "invalid_metadata_format"}
            msg["metadata"] = {"event_type": meta["event_type"],
                               "event_payload": meta["event_payload"]}
        with st.lock:
            thread_known = bool(tts and st.find(ch, tts))
            is_reply_ts = bool(tts and thread_known and st.find(ch, tts).get("thread_ts")
                               not in (None, tts))
            st.store(ch, dict(msg))
            st.posts.append({"channel": ch, "ts": ts, "thread_ts": tts, "text": text,
                             "blocks": blocks, "t": time.time(),
                             "thread_known": thread_known, "thread_ts_is_reply": is_reply_ts,
                             "mrkdwn": a.get("mrkdwn"), "unfurl_links": a.get("unfurl_links")})
            echo = st.cfg["echo_bot_posts"]
        if echo:
            self.submit_payload(self.event_callback(
                self.bot_message_event(ch, ts, text, tts)))
        out = {"ok": True, "channel": ch, "ts": ts, "message": msg}
        if warn:
            out["response_metadata"] = {"warnings": warn}
            out["warning"] = ",".join(warn)
        return out

    def m_chat_postEphemeral(self, a):
        st = self.st
        ch = a.get("channel")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        if not a.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        text, blocks, warn = self._check_text(a)
        if isinstance(warn, dict):
            return warn
        ts = st.next_ts()
        with st.lock:
            st.ephemerals.append({"channel": ch, "user": a.get("user"), "text": text,
                                  "blocks": blocks,
                                  "thread_ts": a.get("thread_ts") or None, "ts": ts,
                                  "t": time.time()})
        return {"ok": True, "message_ts": ts}

    def m_chat_update(self, a):
        st = self.st
        ch, ts = a.get("channel"), a.get("ts")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        with st.lock:
            m = st.find(ch, ts)
            if m is None:
                return {"ok": False, "error": "message_not_found"}
            if m.get("user") != BOT_USER:
                return {"ok": False, "error": "cant_update_message"}
            text, blocks, warn = self._check_text(a)
            if isinstance(warn, dict):
                return warn
            m["text"] = text
            if blocks is not None:
                m["blocks"] = blocks
            m["edited"] = {"user": BOT_USER, "ts": st.next_ts()}
            st.updates.append({"channel": ch, "ts": ts, "text": text, "blocks": blocks,
                               "thread_ts": m.get("thread_ts"), "t": time.time()})
            msg = dict(m)
        return {"ok": True, "channel": ch, "ts": ts, "text": text, "message": msg}

    def m_chat_delete(self, a):
        st = self.st
        ch, ts = a.get("channel"), a.get("ts")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        with st.lock:
            m = st.find(ch, ts)
            if m is None:
                return {"ok": False, "error": "message_not_found"}
            if m.get("user") != BOT_USER:
                return {"ok": False, "error": "cant_delete_message"}
            del st.messages[ch][ts]
            st.deletes.append({"channel": ch, "ts": ts, "thread_ts": m.get("thread_ts"),
                               "text": m.get("text"), "t": time.time()})
        return {"ok": True, "channel": ch, "ts": ts}

    def _reaction(self, a, add):
        st = self.st
        ch, ts, name = a.get("channel"), a.get("timestamp"), a.get("name") or ""
        rec = {"op": "add" if add else "remove", "channel": ch, "ts": ts, "name": name,
               "t": time.time()}

        def done(body):
            rec["result"] = "ok" if body.get("ok") else body.get("error")
            with st.lock:
                st.reaction_log.append(rec)
            return body
        if not self._channel_ok(ch):
            return done({"ok": False, "error": "channel_not_found"})
        if not name or ":" in name.replace("::skin-tone-", "") or " " in name:
            return done({"ok": False, "error": "invalid_name"})
        with st.lock:
            if st.find(ch, ts) is None:
                return done({"ok": False, "error": "message_not_found"})
            names = st.reactions.setdefault((ch, ts), [])
            if add:
                if name in names:
                    return done({"ok": False, "error": "already_reacted"})
                names.append(name)
            else:
                if name not in names:
                    return done({"ok": False, "error": "no_reaction"})
                names.remove(name)
        return done({"ok": True})

    def m_reactions_add(self, a):
        return self._reaction(a, True)

    def m_reactions_remove(self, a):
        return self._reaction(a, False)

    @staticmethod
    def _limit(a, default):
        try:
            n = int(a.get("limit") or default)
        except (TypeError, ValueError):
            n = default
        return max(1, min(n, 1000))

    @staticmethod
    def _cursor(a):
        """(after_ts or None, error)"""
        c = a.get("cursor")
        if not c:
            return None, None
        try:
            raw = base64.b64decode(c.encode(), validate=True).decode()
        except Exception:
            return None, "invalid_cursor"
        if not raw.startswith("next_ts:"):
            return None, "invalid_cursor"
        return raw[len("next_ts:"):], None

    def m_conversations_replies(self, a):
        st = self.st
        ch, ts = a.get("channel"), a.get("ts")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "invalid_arguments"}
        after, err = self._cursor(a)
        if err:
            return {"ok": False, "error": err}
        limit = min(self._limit(a, 1000), int(st.cfg["replies_max_limit"]))
        with st.lock:
            thread = st.thread_of(ch, ts)
            if thread is None:
                return {"ok": False, "error": "thread_not_found"}
            thread = [dict(m) for m in thread]
            repeat = st.cfg["repeat_parent"]
        if str(a.get("include_all_metadata", "")).lower() not in ("1", "true"):
            for m in thread:
                m.pop("metadata", None)
        parent, replies = thread[0], thread[1:]
        if after is None:
            items = [parent] + replies
        else:
            items = ([parent] if repeat else []) + [m for m in replies if m["ts"] > after]
        page = items[:limit]
        if after is not None and repeat and len(page) == 1 and len(items) > 1:
            page = items[:2]
        rest = [m for m in items[len(page):] if m is not parent]
        out = {"ok": True, "messages": page, "has_more": bool(rest)}
        last = page[-1]["ts"] if page else ""
        out["response_metadata"] = {"next_cursor": base64.b64encode(
            ("next_ts:" + last).encode()).decode() if rest else ""}
        return out

    def m_conversations_history(self, a):
        st = self.st
        ch = a.get("channel")
        if not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        before, err = self._cursor(a)
        if err:
            return {"ok": False, "error": err}
        limit = self._limit(a, 100)
        with st.lock:
            top = [dict(m) for m in st.messages.get(ch, {}).values()
                   if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]
        top.sort(key=lambda m: m["ts"], reverse=True)
        if before is not None:
            top = [m for m in top if m["ts"] < before]
        page, rest = top[:limit], top[limit:]
        return {"ok": True, "messages": page, "has_more": bool(rest), "pin_count": 0,
                "response_metadata": {"next_cursor": base64.b64encode(
                    ("next_ts:" + page[-1]["ts"]).encode()).decode() if rest else ""}}

    def m_users_info(self, a):
        uid = a.get("user") or ""
        if not re.match(r"^[UW][A-Z0-9]{2,}$", uid) or uid in self.st.cfg["unknown_users"]:
            return {"ok": False, "error": "user_not_found"}
        is_bot = uid == BOT_USER
        name = {"U0ALICE01": "alice", BOT_USER: "janebot"}.get(uid, uid.lower())
        real = {"U0ALICE01": "Alice Example", BOT_USER: "janebot"}.get(uid, "User " + uid)
        return {"ok": True, "user": {
            "id": uid, "team_id": TEAM, "name": name, "deleted": False, "real_name": real,
            "tz": "Europe/Berlin", "tz_label": "Central European Summer Time",
            "tz_offset": 7200, "is_bot": is_bot, "is_app_user": False, "is_admin": False,
            "updated": 1716000000,
            "profile": {"real_name": real, "real_name_normalized": real, "display_name": name,
                        "display_name_normalized": name, "team": TEAM,
                        "image_72": "https://secure.gravatar.com/avatar/x.jpg?s=72"}}}

    def m_files_upload(self, a):
        return {"ok": False, "error": "method_deprecated"}

    def m_files_getUploadURLExternal(self, a):
        st = self.st
        fn = a.get("filename")
        try:
            length = int(a.get("length"))
        except (TypeError, ValueError):
            length = -1
        if not fn or length < 0:
            return {"ok": False, "error": "invalid_arguments",
                    "response_metadata": {"messages": ["[ERROR] missing required field: "
                                                       + ("filename" if not fn else "length")]}}
        fid = st.new_id("F0UP")
        with st.lock:
            st.uploads[fid] = {"file_id": fid, "filename": fn, "length": length,
                               "data": None, "completed": False, "t": time.time(),
                               "alt_txt": a.get("alt_txt")}
        return {"ok": True, "file_id": fid,
                "upload_url": "http://127.0.0.1:%d/upload/v1/%s" % (self.port, fid)}

    def upload_bytes(self, fid, data, content_type):
        st = self.st
        with st.lock:
            up = st.uploads.get(fid)
            if up is None:
                return 404, "unknown upload\n"
        if content_type.startswith("multipart/form-data"):
            data = _multipart_file(data, content_type)
            if data is None:
                return 400, "bad multipart body\n"
        with st.lock:
            if len(data) != up["length"]:
                up["bad_length"] = len(data)
                return 400, "length mismatch: expected %d bytes, got %d\n" % (
                    up["length"], len(data))
            up["data"] = data
        return 200, "OK - %d\n" % len(data)

    def m_files_completeUploadExternal(self, a):
        st = self.st
        files = a.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        ch = a.get("channel_id") or (a.get("channels") or "").split(",")[0] or None
        tts = a.get("thread_ts") or None
        if ch and not self._channel_ok(ch):
            return {"ok": False, "error": "channel_not_found"}
        out = []
        with st.lock:
            for f in files:
                up = st.uploads.get((f or {}).get("id"))
                if up is None or up["data"] is None or up["completed"]:
                    return {"ok": False, "error": "file_not_found"}
            for f in files:
                up = st.uploads[f["id"]]
                up["completed"] = True
                title = f.get("title") or up["filename"]
                rec = {"file_id": up["file_id"], "name": up["filename"], "title": title,
                       "size": len(up["data"]),
                       "sha256": hashlib.sha256(up["data"]).hexdigest(), "content_b64":
                       base64.b64encode(up["data"]).decode(), "channel": ch,
                       "thread_ts": tts, "initial_comment": a.get("initial_comment"),
                       "t": time.time()}
                try:
                    rec["content"] = up["data"].decode()
                except UnicodeDecodeError:
                    rec["content"] = None
                st.shared_files.append(rec)
                out.append({"id": up["file_id"], "title": title, "name": up["filename"],
                            "size": len(up["data"])})
        if ch:
            ts = st.next_ts()
            msg = {"type": "message", "subtype": "file_share", "user": BOT_USER,
                   "bot_id": BOT_ID, "app_id": APP_ID, "ts": ts, "team": TEAM,
                   "text": a.get("initial_comment") or "", "upload": True,
                   "files": [{"id": x["id"], "name": x["name"], "title": x["title"],
                              "size": x["size"], "mode": "hosted", "user": BOT_USER}
                             for x in out]}
            if tts:
                msg["thread_ts"] = tts
            st.store(ch, dict(msg))
            if st.cfg["echo_bot_posts"]:
                e = dict(msg, channel=ch, event_ts=ts, channel_type=channel_type_of(ch))
                self.submit_payload(self.event_callback(e))
        return {"ok": True, "files": out}

    def user_file(self, path, token):
        m = re.match(r"^/files-pri/[A-Z0-9]+-([A-Z0-9]+)/(?:download/)?(.+)$", path)
        with self.st.lock:
            f = self.st.user_files.get(m.group(1)) if m else None
        if f is None:
            return 404, "text/html", b"<html>not found</html>"
        if not token or not token.startswith("xoxb-") or \
                (self.opts.bot_token and token != self.opts.bot_token):
            return 200, "text/html; charset=utf-8", \
                b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
        return 200, "text/plain", f["content"]

    # ---- control --------------------------------------------------------------------

    def control(self, op, req):
        st = self.st
        if op == "health":
            return {"ok": True, "port": self.port, "ws_port": self.ws_port}
        if op == "state":
            d = st.dump((req or {}).get("only"))
            if (req or {}).get("brief") and "uploads" in d:
                d["uploads"] = [{k: v for k, v in u.items() if k not in ("content",
                                                                          "content_b64")}
                                for u in d["uploads"]]
            return d
        if op == "reset":
            self.in_loop_wait(self.op_close_all())
            st.reset()
            return {"ok": True}
        if op == "config":
            with st.lock:
                for k, v in req.items():
                    if k not in st.cfg:
                        return {"ok": False, "error": "unknown config key %s" % k}
                    st.cfg[k] = v
                return {"ok": True, "config": dict(st.cfg)}
        if op == "inject":
            out = self.inject(req)
            # let the loop assign envelope ids to first attempts
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                with st.lock:  # by the event's own record: envelopes grow without bound
                    envs = [st.events[k]["first_envelope_id"] for k in out["event_ids"]
                            if st.events.get(k, {}).get("first_envelope_id")]
                if len(envs) >= len(out["event_ids"]):
                    break
                time.sleep(0.005)
            out["envelope_ids"] = envs
            out["ok"] = True
            return out
        if op == "redeliver":
            eid = req.get("event_id")
            with st.lock:
                ev = st.events.get(eid)
                if ev is None:
                    return {"ok": False, "error": "unknown event"}
                attempt = max([e["retry_attempt"] for e in st.envelopes
                               if e["event_id"] == eid] + [0]) + 1
            self.in_loop(self._deliver_event, eid, attempt, req.get("reason", "timeout"))
            return {"ok": True, "retry_attempt": attempt}
        if op == "frame":
            text = req["text"] if "text" in req else json.dumps(req.get("frame"))
            n = self.in_loop_wait(self.op_frame(text))
            return {"ok": True, "sent_to": n}
        if op == "fail":
            method = req["method"]
            mode = req.get("mode", 429)
            with st.lock:
                st.switches.setdefault(method, []).append(
                    Switch(mode if mode in ("drop", "error", "hang") else str(mode),
                           int(req.get("count", 1)), float(req.get("retry_after", 1)),
                           req.get("error", "internal_error"), float(req.get("seconds", 0))))
            return {"ok": True}
        if op == "disconnect":
            n = self.in_loop_wait(self.op_disconnect(req.get("reason", "refresh_requested"),
                                                     req.get("close_after")))
            return {"ok": True, "sent_to": n}
        if op == "drop":
            return {"ok": True, "dropped": self.in_loop_wait(self.op_drop())}
        if op == "halfopen":
            return {"ok": True, "halfopen": self.in_loop_wait(self.op_halfopen())}
        if op == "link":
            with st.lock:
                st.link_enabled = bool(req.get("enabled", True))
            return {"ok": True}
        if op == "seed":
            return self.seed(req)
        if op == "click":
            return self.click(req)
        return {"ok": False, "error": "unknown control op %s" % op}


def _token_kind(token):
    if not token:
        return None
    for p in ("xoxb-", "xapp-", "xoxp-"):
        if token.startswith(p):
            return p[:-1]
    return "other"


def _multipart_file(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        return None
    boundary = b"--" + m.group(1).encode()
    for part in body.split(boundary):
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if b"filename=" in head or b'name="file"' in head or b'name="filename"' in head:
            if data.endswith(b"\r\n"):
                data = data[:-2]
            return data
    return None


def log(msg):
    sys.stderr.write("%s fake-slack: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def make_http_handler(server):
    from http.server import BaseHTTPRequestHandler

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    data += self.rfile.read(size)
                    self.rfile.readline()
                return data
            return self.rfile.read(n) if n else b""

        def _send(self, status, obj, headers=None, ctype="application/json; charset=utf-8"):
            if isinstance(obj, (dict, list)):
                data = json.dumps(obj).encode()
            elif isinstance(obj, str):
                data = obj.encode()
            else:
                data = obj
            self.send_response(status)
            hdrs = {"Content-Type": ctype}
            hdrs.update(headers or {})
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _token(self):
            auth = self.headers.get("Authorization") or ""
            return auth[7:].strip() if auth.lower().startswith("bearer ") else None

        def do_GET(self):
            self.handle_any(b"")

        def do_POST(self):
            self.handle_any(self._body())

        def handle_any(self, body):
            u = urllib.parse.urlparse(self.path)
            path = u.path
            try:
                if path.startswith("/api/"):
                    return self.web_api(path[5:], body, u.query)
                if path.startswith("/_control/"):
                    req = json.loads(body.decode() or "{}") if body else {}
                    return self._send(200, server.control(path[10:], req))
                if path.startswith("/upload/v1/"):
                    if self.command != "POST":
                        return self._send(405, "POST only\n", ctype="text/plain")
                    st, text = server.upload_bytes(path[11:], body,
                                                   self.headers.get("Content-Type") or "")
                    return self._send(st, text, ctype="text/plain")
                if path.startswith("/files-pri/"):
                    st, ct, data = server.user_file(path, self._token())
                    return self._send(st, data, ctype=ct)
                return self._send(404, {"ok": False, "error": "not found"})
            except (BrokenPipeError, ConnectionResetError):
                raise  # the client went away: the server logs one line for it
            except Exception as e:
                import traceback
                traceback.print_exc()
                return self._send(500, {"ok": False, "error": "fake crashed: %r" % e})

        def web_api(self, method, body, query):
            ctype = (self.headers.get("Content-Type") or "").lower()
            args = {}
            if body:
                if ctype.startswith("application/json"):
                    try:
                        args = json.loads(body.decode())
                        if not isinstance(args, dict):
                            raise ValueError
                    except ValueError:
                        return self._send(200, {"ok": False, "error": "invalid_json"})
                else:
                    args = {k: v[0] for k, v in urllib.parse.parse_qs(
                        body.decode(errors="replace"), keep_blank_values=True).items()}
            if query:
                for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items():
                    args.setdefault(k, v[0])
            token = self._token()
            token_in_body = "token" in args
            if not token and method != "apps.connections.open" and args.get("token"):
                token = args.get("token")
            status, headers, obj = server.api(method, args, token, token_in_body, ctype)
            if status is None:  # drop the connection without an answer
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if isinstance(obj, str):
                return self._send(status, obj, headers, ctype="text/html")
            return self._send(status, obj, headers)

    return H


def main():
    ap = argparse.ArgumentParser(description="fake Slack for janebot tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--ack-timeout", type=float, default=3.0)
    ap.add_argument("--ping-interval", type=float, default=10.0)
    ap.add_argument("--ping-timeout", type=float, default=30.0)
    ap.add_argument("--bot-token", default="")
    ap.add_argument("--app-token", default="")
    ap.add_argument("--fixtures", default=os.path.normpath(DEFAULT_FIXTURES))
    ap.add_argument("--switch-interval", type=float, default=0.0,
                    help="the GIL's switch interval in s (0: Python's default); a short one "
                         "lets the socket loop run soon after a control thread took the GIL")
    opts = ap.parse_args()
    if opts.switch_interval > 0:
        sys.setswitchinterval(opts.switch_interval)

    import asyncio
    from http.server import ThreadingHTTPServer
    import websockets

    class QuietServer(ThreadingHTTPServer):
        # A client that goes away mid-request (the bot killed by a test) is normal here:
        # log one line instead of a traceback.
        def handle_error(self, request, client_address):
            exc = sys.exc_info()[1]
            if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError)):
                log("http client %s:%s went away (%s)" % (client_address[0], client_address[1],
                                                           type(exc).__name__))
                return
            super().handle_error(request, client_address)

    srv = Server(opts)
    httpd = QuietServer(("127.0.0.1", opts.port), make_http_handler(srv))
    httpd.daemon_threads = True
    srv.port = httpd.server_address[1]

    async def run():
        loop = asyncio.get_running_loop()
        srv.loop = loop
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(True))
        ws_server = await websockets.serve(
            srv.ws_handler, "127.0.0.1", opts.ws_port, process_request=srv.ws_process_request,
            ping_interval=opts.ping_interval or None, ping_timeout=opts.ping_timeout or None,
            max_size=1 << 22, close_timeout=2)
        srv.ws_port = ws_server.sockets[0].getsockname()[1]
        t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True)
        t.start()
        if opts.port_file:
            d = os.path.dirname(os.path.abspath(opts.port_file))
            fd, tmp = tempfile.mkstemp(dir=d)
            with os.fdopen(fd, "w") as f:
                f.write("%d %d\n" % (srv.port, srv.ws_port))
            os.replace(tmp, opts.port_file)
        log("listening: http %d, ws %d" % (srv.port, srv.ws_port))
        await stop
        log("shutting down")
        ws_server.close()
        await srv.op_close_all()
        try:
            await asyncio.wait_for(ws_server.wait_closed(), 3)
        except Exception:
            pass
        httpd.shutdown()
        httpd.server_close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""tests/fakes/agent.py -- a scripted agent CLI that prints Claude-style stream-json.

Used as JANEBOT_AGENT_CMD (the "command" adapter). janebot runs it inside the thread's
sandbox with the prompt on stdin, HOME=/home/agent, cwd=HOME, and JANEBOT_RESUME_ID set
when it continues a conversation. What it does is chosen by the prompt text, so tests
script it through ordinary chat messages. The command is the last line of the prompt
that starts with a known keyword (so a prefix janebot might add does not matter);
without one the agent echoes:

  <anything>            "echo: <prompt> (turn N)"; N = prompts seen in this session
  run: <shell cmd>      tool_use Bash, runs /bin/sh -c CMD, tool_result, answers stdout
  write <relpath> <txt> writes HOME/<relpath> (or an absolute path), answers "wrote <relpath>"
  read <path>           answers the file's content, or "missing: <path> (<reason>)"
  crash <N> [TEXT]      init line, a secret-looking line on stderr (then TEXT, its
                        backslash escapes decoded as printf does), exit N without result
  hang [TAG]            init line, then sleeps forever (in a child `sh` whose command line
                        holds "hang-TAG" so tests can look for leftovers with pgrep -f)
  garbage               non-JSON lines, unknown types, a blank line, a split line, a CRLF
                        line, a 1 MB text line, then the result "survived garbage"
  noresult-text         assistant text lines only, exit 0 without a result line
  error                 result with is_error true, result null, errors ["boom"], exit 1
  env                   answers the sorted names (not values) of its environment
  getenv <NAME>         answers "NAME=<value>" or "unset: NAME"
  whoami                answers "uid=<uid> host=<hostname>"
  spawn-orphan [TAG]    starts `sh -c 'sleep 300; : orphan-TAG'` detached (setsid,
                        stdio on /dev/null), writes its pid to HOME/orphan.pid, answers
  sleep <secs>          sleeps, answers "slept"
  ask <Tool>: <cmd>     asks janebot's approval endpoint (JANEBOT_APPROVE_URL, bearer
                        JANEBOT_APPROVE_TOKEN; body {"tool", "input": {"command"}}) before
                        using Tool; when allowed runs CMD as `run:` does and answers
                        "approved <decision> by <who>: <output>", else "denied by <who>:
                        <reason>" without running it
  steerwait <secs>      (stream-json input) waits up to secs for more user lines on stdin
                        (after one, up to 3 s more for further ones), answers "steered: <their texts, joined by ' | '>" or "no steering"

Stream-json input (JANEBOT_INPUT=stream-json, as JANEBOT_AGENT_CMD_INPUT=stream-json
declares; the shape of Claude Code's --input-format stream-json): stdin carries one
{"type":"user","message":{"role":"user","content":...}} line per message, the first being
the prompt. A line that is not such JSON ends the run with exit 1 (as Claude Code does).
After its result the agent keeps reading: every further line is another turn, answered
"late: <text>" with its own result, until stdin closes; then it exits 0.

History: HOME/.fake-agent/<session_id>.json holds the prompts of each session; every
call is also appended to HOME/.fake-agent/calls.jsonl (argv, resume id, prompt).
Standard library only.
"""
import codecs
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid

HOME = os.environ.get("HOME") or os.getcwd()
STATE = os.path.join(HOME, ".fake-agent")
MODEL = "fake-model-1"
KEYWORDS = ("run:", "write", "read", "crash", "hang", "garbage", "noresult-text", "error",
            "env", "getenv", "whoami", "spawn-orphan", "sleep", "ask", "steerwait")


def emit(obj, ascii_only=False):
    # Assistant lines carry raw UTF-8, result lines \uXXXX escapes (surrogate pairs for
    # emoji): a reader must decode both.
    sys.stdout.write(json.dumps(obj, ensure_ascii=ascii_only) + "\n")
    sys.stdout.flush()


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class Session:
    def __init__(self, resume_id):
        self.id = resume_id or "S-" + secrets.token_hex(8)
        self.path = os.path.join(STATE, re.sub(r"[^A-Za-z0-9._-]", "_", self.id) + ".json")
        self.prompts = []
        try:
            with open(self.path) as f:
                self.prompts = json.load(f).get("prompts", [])
        except (OSError, ValueError):
            pass

    def add(self, prompt):
        self.prompts.append(prompt)
        os.makedirs(STATE, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"session_id": self.id, "prompts": self.prompts}, f)
        os.replace(tmp, self.path)
        return len(self.prompts)


def init_line(sid):
    emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": sid,
          "tools": ["Bash", "Read", "Write"], "mcp_servers": [], "model": MODEL,
          "permissionMode": "bypassPermissions", "apiKeySource": "none",
          "claude_code_version": "0.0.0-fake", "output_style": "default",
          "uuid": str(uuid.uuid4())})


def assistant_line(sid, blocks, msg_id=None):
    return {"type": "assistant",
            "message": {"id": msg_id or "msg_" + secrets.token_hex(6), "type": "message",
                        "role": "assistant", "model": MODEL, "content": blocks,
                        "stop_reason": None, "stop_sequence": None,
                        "usage": {"input_tokens": 10, "output_tokens": 5,
                                  "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 0},
                        "context_management": None},
            "parent_tool_use_id": None, "session_id": sid, "uuid": str(uuid.uuid4()),
            "timestamp": now_iso()}


def text(sid, s):
    emit(assistant_line(sid, [{"type": "text", "text": s}]))


def result_line(sid, answer, turns, is_error=False, subtype="success", errors=None):
    # Key order as the real CLI prints it: "type" comes late, not first.
    obj = {"duration_api_ms": 12, "stop_reason": None if is_error else "end_turn",
           "session_id": sid, "total_cost_usd": 0.0001 * turns,
           "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0, "output_tokens": 5},
           "modelUsage": {MODEL: {"inputTokens": 10, "outputTokens": 5,
                                  "costUSD": 0.0001, "contextWindow": 200000}},
           "permission_denials": [],
           "terminal_reason": "error" if is_error else "completed",
           "is_error": is_error, "num_turns": 1, "subtype": subtype,
           "api_error_status": None, "result": answer}
    if errors is not None:
        obj["errors"] = errors
    obj["type"] = "result"
    obj["duration_ms"] = 34
    obj["uuid"] = str(uuid.uuid4())
    emit(obj, ascii_only=True)


def find_command(prompt):
    """(keyword, rest) of the last line starting with a keyword, else (None, prompt)."""
    for line in reversed(prompt.splitlines()):
        s = line.strip()
        for kw in KEYWORDS:
            if s == kw or s.startswith(kw + " ") or (kw.endswith(":") and s.startswith(kw)):
                return kw, s[len(kw):].strip()
    return None, prompt


def in_home(p):
    return p if os.path.isabs(p) else os.path.join(HOME, p)


def tool_run(sid, cmd):
    tid = "toolu_" + secrets.token_hex(6)
    emit(assistant_line(sid, [{"type": "tool_use", "id": tid, "name": "Bash",
                               "input": {"command": cmd, "description": "run a command"}}]))
    p = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    emit({"type": "user",
          "message": {"role": "user",
                      "content": [{"tool_use_id": tid, "type": "tool_result",
                                   "content": out + err, "is_error": p.returncode != 0}]},
          "parent_tool_use_id": None, "session_id": sid, "uuid": str(uuid.uuid4()),
          "timestamp": now_iso(),
          "tool_use_result": {"stdout": out, "stderr": err, "interrupted": False,
                              "isImage": False}})
    answer = out.strip()
    if p.returncode != 0:
        answer = (answer + "\n" if answer else "") + "[exit %d] %s" % (p.returncode, err.strip())
    return answer


def ask_approval(tool, cmd):
    """POST the ask to JANEBOT_APPROVE_URL, bypassing any HTTP proxy; the answer as a dict."""
    import urllib.request
    url = os.environ.get("JANEBOT_APPROVE_URL")
    token = os.environ.get("JANEBOT_APPROVE_TOKEN")
    if not url or not token:
        return {"decision": "deny", "allowed": False, "by": "agent",
                "reason": "no approval endpoint in the environment"}
    body = json.dumps({"tool": tool, "input": {"command": cmd}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=3600) as r:
            return json.loads(r.read().decode())
    except Exception as e:  # an HTTP error or no endpoint: not allowed
        return {"decision": "deny", "allowed": False, "by": "agent", "reason": str(e)}


def garbage(sid):
    w = sys.stdout.write
    w("this line is not json\n")
    w("{broken json, starts like an object\n")
    emit({"type": "mystery_event", "session_id": sid, "data": [1, 2, 3]})
    emit({"type": "system", "subtype": "unknown_subtype", "session_id": sid})
    w("\n")
    w("   \n")
    sys.stdout.flush()
    line = json.dumps(assistant_line(sid, [{"type": "text", "text": "split line ok"}]))
    half = len(line) // 2
    w(line[:half])
    sys.stdout.flush()
    time.sleep(0.2)
    w(line[half:] + "\n")
    sys.stdout.flush()
    w(json.dumps(assistant_line(sid, [{"type": "text", "text": "crlf line ok"}])) + "\r\n")
    emit(assistant_line(sid, [{"type": "text", "text": "x" * 1000000}]))
    # A subagent's text must not become the main answer.
    sub = assistant_line(sid, [{"type": "text", "text": "subagent chatter"}])
    sub["parent_tool_use_id"] = "toolu_parent"
    emit(sub)
    w("Warning: an update notice on stdout\n")
    sys.stdout.flush()


class LineReader:
    """User lines of stream-json input, read straight from fd 0 (no buffering surprises
    with select)."""

    def __init__(self):
        self.buf = b""
        self.eof = False

    def _fill(self, timeout):
        import select
        r, _, _ = select.select([0], [], [], timeout)
        if not r:
            return False
        data = os.read(0, 65536)
        if not data:
            self.eof = True
        self.buf += data
        return True

    def line(self, timeout=None):
        """The next user message's text; None at EOF or when timeout passes."""
        end = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf and not self.eof:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._fill(left)
        if b"\n" not in self.buf:
            return None
        raw, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(raw.decode())
            content = msg["message"]["content"]
            assert msg["type"] == "user"
        except (ValueError, KeyError, TypeError, AssertionError):
            sys.stderr.write("Error parsing streaming input line: %r\n" % raw[:80])
            sys.exit(1)
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def main():
    if sys.argv[1:] in (["--version"], ["-v"]):
        print("fake-agent 1.0 (janebot tests)")
        return
    reader = LineReader() if os.environ.get("JANEBOT_INPUT") == "stream-json" else None
    if reader:
        prompt = reader.line() or ""
    else:
        prompt = sys.stdin.read()
    prompt = prompt.rstrip("\n")
    resume = os.environ.get("JANEBOT_RESUME_ID") or None
    sess = Session(resume)
    sid = sess.id
    turn = sess.add(prompt)
    try:
        os.makedirs(STATE, exist_ok=True)
        with open(os.path.join(STATE, "calls.jsonl"), "a") as f:
            f.write(json.dumps({"argv": sys.argv, "resume": resume, "session_id": sid,
                                "prompt": prompt, "cwd": os.getcwd(), "turn": turn}) + "\n")
    except OSError:
        pass

    kw, rest = find_command(prompt)
    init_line(sid)

    if kw == "crash":
        try:
            code = int(rest.split()[0]) if rest else 1
        except ValueError:
            code = 1
        sys.stderr.write("starting up\n")
        sys.stderr.write("fatal: something broke token=sk-ant-api03-SECRETSECRETSECRET\n")
        sys.stderr.flush()
        parts = rest.split(None, 1)
        if len(parts) > 1:
            sys.stderr.buffer.write(codecs.escape_decode(parts[1].encode())[0] + b"\n")
            sys.stderr.buffer.flush()
        sys.stdout.flush()
        os._exit(code)

    if kw == "hang":
        text(sid, "thinking very hard...")
        tag = rest.split()[0] if rest else "notag"
        child = subprocess.Popen(["/bin/sh", "-c", "sleep 86400; : hang-" + tag])
        child.wait()
        while True:
            time.sleep(3600)

    if kw == "noresult-text":
        text(sid, "partial answer one")
        text(sid, "partial answer two")
        sys.exit(0)

    if kw == "error":
        text(sid, "about to fail")
        result_line(sid, None, turn, is_error=True, subtype="error_during_execution",
                    errors=["boom"])
        sys.exit(1)

    if kw == "run:":
        answer = tool_run(sid, rest)
    elif kw == "ask":
        tool, _, cmd = rest.partition(":")
        d = ask_approval(tool.strip(), cmd.strip())
        with open(os.path.join(HOME, "approvals.jsonl"), "a") as f:
            f.write(json.dumps(d) + "\n")
        if d.get("allowed"):
            out = tool_run(sid, cmd.strip())
            answer = "approved %s by %s: %s" % (d.get("decision"), d.get("by"), out)
        else:
            answer = "denied by %s: %s" % (d.get("by"), d.get("reason"))
    elif kw == "write":
        parts = rest.split(None, 1)
        rel = parts[0] if parts else "unnamed.txt"
        content = parts[1] if len(parts) > 1 else ""
        try:
            path = in_home(rel)
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
            answer = "wrote " + rel
        except OSError as e:
            answer = "write failed: %s (%s)" % (rel, e.strerror)
    elif kw == "read":
        try:
            with open(in_home(rest), errors="replace") as f:
                answer = f.read()
        except OSError as e:
            answer = "missing: %s (%s)" % (rest, e.strerror)
    elif kw == "garbage":
        garbage(sid)
        answer = "survived garbage"
    elif kw == "env":
        answer = " ".join(sorted(os.environ.keys()))
    elif kw == "getenv":
        name = rest.split()[0] if rest else ""
        answer = "%s=%s" % (name, os.environ[name]) if name in os.environ else "unset: " + name
    elif kw == "whoami":
        answer = "uid=%d host=%s" % (os.getuid(), socket.gethostname())
    elif kw == "spawn-orphan":
        tag = rest.split()[0] if rest else "notag"
        with open(os.devnull, "r+b") as dn:
            p = subprocess.Popen(["/bin/sh", "-c", "sleep 300; : orphan-" + tag],
                                 stdin=dn, stdout=dn, stderr=dn, start_new_session=True,
                                 close_fds=True)
        with open(os.path.join(HOME, "orphan.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        answer = "spawned orphan %d" % p.pid
    elif kw == "sleep":
        try:
            time.sleep(float(rest.split()[0]) if rest else 1.0)
        except ValueError:
            time.sleep(1.0)
        answer = "slept"
    elif kw == "steerwait" and reader:
        try:
            wait = float(rest.split()[0]) if rest else 5.0
        except ValueError:
            wait = 5.0
        got = []
        end = time.monotonic() + wait
        while not got and time.monotonic() < end:
            t = reader.line(timeout=end - time.monotonic())
            if t is None:
                break
            got.append(t)
        while got:  # more may follow: they are taken for 3 s after the first one
            t = reader.line(timeout=3.0)
            if t is None:
                break
            got.append(t)
        answer = "steered: " + " | ".join(got) if got else "no steering"
    else:
        answer = "echo: %s (turn %d)" % (prompt, turn)

    text(sid, answer if len(answer) < 2000 else answer[:2000])
    result_line(sid, answer, turn)
    while reader:  # stream-json input: every later line is another turn, until EOF
        late = reader.line()
        if late is None:
            break
        turn = sess.add(late)
        text(sid, "late: " + late)
        result_line(sid, "late: " + late, turn)
    sys.exit(0)


if __name__ == "__main__":
    main()

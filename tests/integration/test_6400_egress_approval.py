"""6400: egress approval (issue 16) in `janebot serve` against the fake Slack. A channel
with `egress_approval: true`: a sandbox's CONNECT to a name off its allowlist is held
while the thread gets a question naming the domain and port; Allow once lets that
connection through (the client gets its 200, then the origin's bytes through TLS), Allow
for this thread puts the name on the thread's own list (kept across restarts, shown by
`janebot sandbox show`, removed by `janebot sandbox egress rm`), Deny and the timeout answer
the usual 403. IP literals are refused before anyone is asked, the address checks still
apply after an allow, and a flood of names gets a bounded number of questions.

The origin is a local HTTPS server (tests/security's HostServer, with a throwaway
certificate) that JANEBOT_EGRESS_TEST_HOSTS maps the test names to. The probe runs inside
the sandbox as the fake agent's `run:` command and speaks to the proxy itself."""
import json
import sqlite3
import sys
from pathlib import Path

from jbtest import JanebotCase, needs_bwrap, sandbox_name
from test_5000_serve_startup import CHANNEL, HUMAN, ServeCase
import test_6300_approvals as t6300

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "security"))
from sectest import HostServer, self_signed_cert  # noqa: E402

BOB = t6300.BOB
CAROL = t6300.CAROL
ENV = t6300.ENV

# Inside the sandbox: one CONNECT per name (all at once, in threads), then TLS and a GET
# when the tunnel opens. Prints one JSON line: name -> [status, body or error, seconds].
PROBE = r'''
import json, socket, ssl, sys, threading, time
def forward(name):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", 3128), timeout=90)
    s.sendall(("GET http://%s/zq6400 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (name, name)).encode())
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "EOF"
    return [status, data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"),
            round(time.monotonic() - t0, 2)]
def get(name, port=443):
    if name.startswith("http:"):
        return forward(name[5:])
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", 3128), timeout=90)
    try:
        a = "%s:%d" % (name, port)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = s.recv(4096)
            if not c:
                break
            head += c
        status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "EOF"
        rest = head.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in head else b""
        if status != "200":
            s.settimeout(5)
            try:
                while True:
                    c = s.recv(4096)
                    if not c:
                        break
                    rest += c
            except OSError:
                pass
            return [status, rest.decode(errors="replace"), round(time.monotonic() - t0, 2)]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s, server_hostname=name)
        t.sendall(("GET /zq6400 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % name).encode())
        data = b""
        while True:
            c = t.recv(65536)
            if not c:
                break
            data += c
        return [status, data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"),
                round(time.monotonic() - t0, 2)]
    except Exception as e:
        return ["error", type(e).__name__ + ": " + str(e), round(time.monotonic() - t0, 2)]
    finally:
        s.close()
res, tag = {}, "-"
def one(i, name):
    res["%d %s" % (i, name)] = get(name)
ths = []
for i, name in enumerate(sys.argv[1:]):
    if name.startswith("@"):
        tag = name[1:]
        continue
    if name.startswith("+"):
        time.sleep(float(name[1:]))
        continue
    th = threading.Thread(target=one, args=(i, name))
    th.start()
    ths.append(th)
for th in ths:
    th.join()
print("RESULT %s %s" % (tag, json.dumps(res, sort_keys=True)))
'''


def probe_line(*names, tag="a"):
    """The fake agent's `run:` line that runs PROBE for names ("+SECS" waits first); its
    answer is "RESULT TAG {...}"."""
    return ("run: python3 -c \"exec(bytes.fromhex('%s').decode())\" @%s %s"
            % (PROBE.encode().hex(), tag, " ".join(names)))


def results(text, by_index=False):
    """The probe's results in an answer: name -> [status, body, secs], or with by_index
    "INDEX NAME" -> the same (for a name asked more than once)."""
    line = next(x for x in text.splitlines() if x.startswith("RESULT "))
    res = json.loads(line.split(" ", 2)[2])
    return res if by_index else {k.split(" ", 1)[1]: v for k, v in res.items()}


def start_origins(case):
    """An HTTPS origin for the tunnel names and a plain HTTP one for plain.example.com,
    mapped by JANEBOT_EGRESS_TEST_HOSTS; none of the names is on any allowlist."""
    cert, key, _ = self_signed_cert(case.tmp, "asked.example.com")
    case.origin = HostServer("origin-body-zq6400", tls=(cert, key))
    case.addCleanup(case.origin.close)
    case.plain = HostServer("plain-body-zq6400")
    case.addCleanup(case.plain.close)
    names = ["asked.example.com", "same.example.com"] + \
        ["flood%d.example.com" % i for i in range(8)]
    case.env["JANEBOT_EGRESS_TEST_HOSTS"] = ",".join(
        ["%s=127.0.0.1:%d" % (n, case.origin.port) for n in names] +
        ["plain.example.com=127.0.0.1:%d" % case.plain.port])


@needs_bwrap
class EgressApproval(t6300.ApprovalHelpers, ServeCase):
    # Reused as they are: finding, clicking and reading approval messages and decisions.

    def setUp(self):
        super().setUp()
        start_origins(self)
        self.write_config("5m")

    def write_config(self, timeout):
        (self.state / "janebot.yaml").write_text(
            "channels:\n  %s: {egress_approval: true, approvers: [%s], approve_timeout: %s}\n"
            % (CHANNEL, CAROL, timeout))

    def key(self, info):
        return "%s:%s" % (info["channel"], info["thread_ts"])

    def questions(self, info, s=None):
        s = s or self.slack.state()
        return [p for p in s["posts"] if self.in_thread(p, info)
                and "Permission needed" in (p["text"] or "")]

    def answer(self, info, tag="a"):
        return results(self.wait_answer(info, "RESULT %s " % tag))

    def audit(self, info):
        with sqlite3.connect(str(self.state / "janebot.db")) as db:
            return db.execute("SELECT tool, domain, answer, decided_by FROM approvals WHERE "
                              "thread_key = ? ORDER BY id", (self.key(info),)).fetchall()

    def test_6401_a_held_connect_completes_after_allow_once(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        q = self.question(a)
        self.assertIn("wants to reach `asked.example.com:443`", q["text"])
        section = q["blocks"][0]["text"]["text"]
        self.assertIn("reach `asked.example.com:443`", section)
        self.assertNotIn("```", section, "no tool input for a domain")
        self.assertEqual([e["text"]["text"] for e in q["blocks"][2]["elements"]],
                         ["Allow once", "Deny", "Allow for this thread"])
        self.wait_answer(a, "waiting for approval: reach asked.example.com:443")
        self.assertEqual(self.origin.requests, [], "nothing reaches the origin before the yes")
        self.click(q, "allow_once")
        r = self.answer(a)
        self.assertEqual(r["asked.example.com"][:2], ["200", "origin-body-zq6400"], r)
        self.assertEqual(self.origin.paths(), ["/zq6400"])
        self.wait_decided(q, "Permission to reach `asked.example.com:443`: allowed once by <@%s>"
                          % HUMAN)
        self.assertEqual(self.audit(a),
                         [("egress", "asked.example.com:443", "allow_once", HUMAN)])
        # Once was for that connection: the next one asks again.
        b = self.mention(probe_line("asked.example.com", tag="b"), thread_ts=a["thread_ts"])
        q2 = self.wait_for(lambda s: len(self.questions(a, s)) >= 2 and self.questions(a, s)[1],
                           "a second question")
        self.click(q2, "deny")
        r = self.answer(b, "b")
        self.assertEqual(r["asked.example.com"][0], "403", r)

    def test_6402_deny_answers_403_and_the_origin_sees_nothing(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        q = self.question(a)
        self.click(q, "deny")
        r = self.answer(a)
        status, body, _ = r["asked.example.com"]
        self.assertEqual(status, "403", r)
        self.assertIn("asked.example.com is not on the allowlist and was not approved", body)
        self.assertIn("denied by %s" % HUMAN, body)
        self.assertEqual(self.origin.requests, [])
        self.wait_decided(q, "denied by <@%s>" % HUMAN)
        self.assertIn("refused asked.example.com:443: 403 not on the allowlist and not "
                      "approved", self.serve_output())

    def test_6413_a_name_denied_once_is_not_asked_about_again_in_that_run(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com", "+6", "asked.example.com"))
        self.click(self.question(a), "deny")
        r = results(self.wait_answer(a, "RESULT a "), by_index=True)
        first, again = r["1 asked.example.com"], r["3 asked.example.com"]
        self.assertEqual((first[0], again[0]), ("403", "403"), r)
        self.assertIn("denied by %s" % HUMAN, first[1])
        self.assertIn("denied earlier in this run; not asked again", again[1])
        s = self.slack.state()
        self.assertEqual(len([p for p in s["posts"] if self.in_thread(p, a)
                              and "Permission" in (p["text"] or "")]), 1, "one question")
        self.assertEqual(self.audit(a), [("egress", "asked.example.com:443", "deny", HUMAN)])

    def test_6403_an_unanswered_question_times_out_as_a_403(self):
        self.write_config("2s")
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        q = self.question(a)
        self.assertIn("expires in 2 s", q["blocks"][1]["elements"][0]["text"])
        r = self.answer(a)
        status, body, secs = r["asked.example.com"]
        self.assertEqual(status, "403", r)
        self.assertIn("nobody answered", body)
        self.assertGreaterEqual(secs, 1.5, "held until the timeout")
        self.wait_decided(q, "nobody answered")
        self.assertEqual(self.audit(a), [("egress", "asked.example.com:443", "deny", "timeout")])

    def test_6404_allow_for_this_thread_persists_across_a_restart_and_can_be_removed(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        self.click(self.question(a), "allow_thread")
        self.assertEqual(self.answer(a)["asked.example.com"][:2], ["200", "origin-body-zq6400"])
        self.wait_reaction(a, "white_check_mark")
        self.stop_serve()
        show = self.run_jb(["sandbox", "show", self.key(a)])
        self.assertEqual(show.rc, 0, show)
        self.assertIn("egress_approval on", show.out)
        self.assertIn("1 name(s) allowed for this thread", show.out)
        self.assertRegex(show.out, r"asked\.example\.com\s+added by %s at " % HUMAN)
        self.start_serve(env=ENV)
        b = self.mention(probe_line("asked.example.com", tag="b"), thread_ts=a["thread_ts"])
        self.assertEqual(self.answer(b, "b")["asked.example.com"][:2],
                         ["200", "origin-body-zq6400"])
        self.assertEqual(len(self.questions(a)), 1, "the thread's own list needs no question")
        # Another thread of the same channel still asks: the channel's list is unchanged.
        other = self.mention(probe_line("asked.example.com"))
        self.click(self.question(other), "deny")
        self.assertEqual(self.answer(other)["asked.example.com"][0], "403")
        # Removed: the next run of the thread asks again.
        rm = self.run_jb(["sandbox", "egress", "rm", self.key(a), "Asked.Example.com."])
        self.assertEqual(rm.rc, 0, rm)
        rm = self.run_jb(["sandbox", "egress", "rm", self.key(a), "asked.example.com"])
        self.assertNotEqual(rm.rc, 0, rm)
        self.assertIn("asked.example.com is not on the egress list of thread %s"
                      % self.key(a), rm.err)
        show = self.run_jb(["sandbox", "show", self.key(a)])
        self.assertIn("0 name(s) allowed for this thread", show.out)
        c = self.mention(probe_line("asked.example.com", tag="c"), thread_ts=a["thread_ts"])
        q2 = self.wait_for(lambda s: len(self.questions(a, s)) >= 2 and self.questions(a, s)[1],
                           "a question again after the removal")
        self.click(q2, "deny")
        self.assertEqual(self.answer(c, "c")["asked.example.com"][0], "403")

    def test_6405_ip_literals_are_refused_without_a_question(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("127.0.0.1", "93.184.216.34", "2130706433"))
        r = self.answer(a)
        for name in ("127.0.0.1", "93.184.216.34", "2130706433"):
            self.assertEqual(r[name][0], "403", r)
            self.assertIn("IP addresses are not allowed", r[name][1])
            self.assertLess(r[name][2], 5, "refused at once")
        self.assertEqual(self.questions(a), [], "nobody is asked about an IP literal")

    def test_6406_a_name_of_a_forbidden_address_is_refused_after_allow(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("metadata.localhost"))
        q = self.question(a)
        self.assertIn("reach `metadata.localhost:443`", q["text"])
        self.click(q, "allow_once")
        r = self.answer(a)
        self.assertEqual(r["metadata.localhost"][0], "403", r)
        self.assertIn("a localhost name is a loopback address", r["metadata.localhost"][1])
        self.wait_decided(q, "allowed once")

    def test_6407_a_click_by_someone_else_is_refused(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        q = self.question(a)
        self.click(q, "allow_once", user=BOB)
        e = self.wait_for(lambda s: next((x for x in s["ephemerals"] if x["user"] == BOB), None),
                          "an ephemeral note to the other user")
        self.assertIn("Only <@%s>" % HUMAN, e["text"])
        self.quiet(0.5)
        self.assertEqual(self.updates_of(q), [], "still pending")
        self.assertEqual(self.origin.requests, [])
        self.click(q, "allow_once", user=CAROL)  # an approver of the channel may
        self.assertEqual(self.answer(a)["asked.example.com"][:2], ["200", "origin-body-zq6400"])
        self.wait_decided(q, "allowed once by <@%s>" % CAROL)

    def test_6408_a_flood_of_names_gets_a_bounded_number_of_questions(self):
        self.write_config("3s")
        self.start_serve(env=ENV)
        flood = ["flood%d.example.com" % i for i in range(8)]
        a = self.mention(probe_line(*(["same.example.com"] * 4 + ["+1.0"] + flood)))
        r = results(self.wait_answer(a, "RESULT a "), by_index=True)
        self.assertEqual(len(r), 12, r)
        self.assertTrue(all(v[0] == "403" for v in r.values()), r)
        qs = self.questions(a)
        self.assertEqual(len(qs), 3, "one question for same.example.com and two more names "
                         "(3 names wait at most): %s" % [q["text"] for q in qs])
        self.assertEqual(sum("same.example.com" in q["text"] for q in qs), 1)
        refused_at_once = [k for k, v in r.items()
                           if "wait for a person's answer" in v[1]]
        self.assertEqual(len(refused_at_once), 6, r)
        self.assertTrue(all(r[k][2] < 2 for k in refused_at_once), r)
        self.assertEqual(self.origin.requests, [])

    def test_6409_off_by_default_and_without_a_running_turn_nobody_is_asked(self):
        (self.state / "janebot.yaml").write_text("channels:\n  default: {}\n")
        self.start_serve(env=ENV)
        a = self.mention(probe_line("asked.example.com"))
        r = self.answer(a)
        self.assertEqual(r["asked.example.com"][0], "403", r)
        self.assertIn("not on the allowlist", r["asked.example.com"][1])
        self.assertEqual(self.questions(a), [])
        self.stop_serve()
        self.write_config("5m")
        x = self.run_jb(["sandbox", "exec", "%s:1700000000.000100" % CHANNEL, "--",
                         "python3", "-c", PROBE, "@x", "asked.example.com"], timeout=60)
        self.assertEqual(x.rc, 0, x)
        r = results(x.out)
        self.assertEqual(r["asked.example.com"][0], "403", x)
        self.assertLess(r["asked.example.com"][2], 5)

    def test_6410_a_plain_http_request_is_held_and_forwarded_after_allow(self):
        self.start_serve(env=ENV)
        a = self.mention(probe_line("http:plain.example.com"))
        q = self.question(a)
        self.assertIn("reach `plain.example.com:80`", q["text"])
        self.assertEqual(self.plain.requests, [])
        self.click(q, "allow_once")
        r = self.answer(a)
        self.assertEqual(r["http:plain.example.com"][:2], ["200", "plain-body-zq6400"], r)
        self.assertEqual(self.plain.paths(), ["/zq6400"])


@needs_bwrap
class ChatEgressApproval(JanebotCase):
    """`janebot chat` asks on the terminal: y, a or n as the next line."""

    def test_6411_chat_asks_about_a_name_on_the_terminal(self):
        start_origins(self)
        (self.state / "janebot.yaml").write_text("channels:\n  default: {egress_approval: true}\n")
        lines = [probe_line("asked.example.com"), "y",
                 probe_line("asked.example.com", tag="b"), "n"]
        r = self.run_jb(["chat", "--user", "U0TERM001"], input="\n".join(lines) + "\n",
                        env=ENV, timeout=90)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.err.count("approval needed: the agent wants to reach "
                                     "asked.example.com:443"), 2, r.err)
        first = results(next(x for x in r.out.splitlines() if x.startswith("RESULT a ")))
        second = results(next(x for x in r.out.splitlines() if x.startswith("RESULT b ")))
        self.assertEqual(first["asked.example.com"][:2], ["200", "origin-body-zq6400"], r)
        self.assertEqual(second["asked.example.com"][0], "403", r)
        self.assertIn("denied by U0TERM001", second["asked.example.com"][1])


class SpritesEgressList(JanebotCase):
    """On Sprites nothing is held; the thread's own list is part of its sprite's policy,
    set anew at every run (so a removal reaches the sprite at the next one)."""

    def rules(self, key):
        return self.fake.sprites[sandbox_name(key)]["policy"]["rules"]

    def allow_for_thread(self, key, name):
        with sqlite3.connect(str(self.state / "janebot.db")) as db:
            db.execute("INSERT INTO egress_allow (thread_key, name, added_by, added_at) "
                       "VALUES (?, ?, 'U0ALICE01', 1)", (key, name))

    def test_6412_the_threads_list_is_in_its_sprites_policy_until_removed(self):
        self.fake = self.use_fake_sprites()
        (self.state / "janebot.yaml").write_text(
            "channels:\n  C0SPRITE01: {egress_approval: true}\n")
        asking, plain = "C0SPRITE01:1700000000.000100", "C0PLAIN001:1700000000.000100"
        pkgs = {"action": "allow", "domain": "pkgs.example.com"}
        for key in (asking, plain):
            self.assertEqual(self.sbx(key, "true").rc, 0)
            self.assertNotIn(pkgs, self.rules(key))
            self.allow_for_thread(key, "pkgs.example.com")
        self.assertEqual(self.sbx(asking, "true").rc, 0)
        self.assertIn(pkgs, self.rules(asking))
        self.assertEqual(self.rules(asking)[-1], {"action": "deny", "domain": "*"})
        self.assertEqual(self.sbx(plain, "true").rc, 0)
        self.assertNotIn(pkgs, self.rules(plain), "only while the channel has egress_approval")
        rm = self.run_jb(["sandbox", "egress", "rm", asking, "pkgs.example.com"])
        self.assertEqual(rm.rc, 0, rm)
        self.assertEqual(self.sbx(asking, "true").rc, 0)
        self.assertNotIn(pkgs, self.rules(asking), "the next run's policy drops it")


if __name__ == "__main__":
    import unittest
    unittest.main()

"""6300: approvals (issue 16) in `janebot serve` against the fake Slack: a channel's
`approve:` tools make the turn pause on a message with Allow once / Allow for this thread /
Deny buttons; the click comes back as an interactive block_actions envelope (the fake's
/_control/click), is acked, checked and shown (chat.update); a click by someone else gets
an ephemeral note. The agent is tests/fakes/agent.py's `ask <Tool>: <cmd>`, which asks
through the documented endpoint on its own loopback (JANEBOT_APPROVE_URL)."""
import sqlite3

from jbtest import JanebotCase, needs_bwrap, sandbox_name
from test_5000_serve_startup import CHANNEL, HUMAN, ServeCase

BOB = "U0BOB0002"
CAROL = "U0CAROL03"
ENV = {"ANTHROPIC_API_KEY": "sk-ant-test-key-6300x",
       "JANEBOT_UPSTREAM_ANTHROPIC": "http://127.0.0.1:9"}


class ApprovalHelpers:
    """What a test of approvals in serve looks at: the question, its buttons, its update,
    the audit rows, the thread's home."""
    agent_line = ""  # added to the channel's config

    def write_config(self, timeout):
        (self.state / "janebot.yaml").write_text(
            "channels:\n  %s: {approve: [Bash], approvers: [%s], approve_timeout: %s%s}\n"
            % (CHANNEL, CAROL, timeout, self.agent_line))

    def question(self, info, n=1):
        """The n-th approval message in info's thread (its post record)."""
        def find(s):
            qs = [p for p in s["posts"] if self.in_thread(p, info)
                  and "Permission needed" in (p["text"] or "")]
            return qs[n - 1] if len(qs) >= n else None
        return self.wait_for(find, "approval message %d in %s" % (n, info["thread_ts"]))

    def click(self, q, action, user=HUMAN, stale=False):
        return self.slack.click(q["channel"], q["ts"], "janebot_perm_" + action, user=user,
                                stale=stale)

    def updates_of(self, q, s=None):
        s = s or self.slack.state()
        return [u for u in s["updates"] if u["ts"] == q["ts"] and u["channel"] == q["channel"]]

    def wait_decided(self, q, needle):
        return self.wait_for(lambda s: next((u for u in self.updates_of(q, s)
                                             if needle in (u["text"] or "")), None),
                             "the approval message updated with %r" % needle)

    def decisions(self, info):
        key = "%s:%s" % (info["channel"], info["thread_ts"])
        with sqlite3.connect(str(self.state / "janebot.db")) as db:
            return db.execute("SELECT tool, answer, decided_by FROM approvals WHERE "
                              "thread_key = ? ORDER BY id", (key,)).fetchall()

    def home_file(self, info, name):
        key = "%s:%s" % (info["channel"], info["thread_ts"])
        return self.state / "sandboxes" / sandbox_name(key) / "home" / name


@needs_bwrap
class Approvals(ApprovalHelpers, ServeCase):
    def setUp(self):
        super().setUp()
        self.write_config("5m")

    def test_6301_allow_once_runs_the_tool_and_the_next_use_asks_again(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6301 > once.txt; echo ran-zq6301")
        q = self.question(a)
        blocks = q["blocks"]
        self.assertEqual([b["type"] for b in blocks], ["section", "context", "actions"])
        self.assertIn("```", blocks[0]["text"]["text"])
        self.assertIn("echo zq6301 &gt; once.txt", blocks[0]["text"]["text"])
        self.assertIn("<@%s>" % HUMAN, blocks[1]["elements"][0]["text"])
        self.assertIn("<@%s>" % CAROL, blocks[1]["elements"][0]["text"])
        labels = [e["text"]["text"] for e in blocks[2]["elements"]]
        self.assertEqual(labels, ["Allow once", "Deny", "Allow for this thread"])
        self.wait_answer(a, "waiting for approval")
        self.assertFalse(self.home_file(a, "once.txt").exists(), "it must wait for the yes")
        env = self.click(q, "allow_once")["envelope_ids"]
        self.wait_answer(a, "approved allow_once by %s: ran-zq6301" % HUMAN)
        self.assertTrue(self.home_file(a, "once.txt").exists())
        u = self.wait_decided(q, "allowed once by <@%s>" % HUMAN)
        self.assertNotIn("actions", [b["type"] for b in u["blocks"]], "buttons are gone")
        s = self.slack.state()
        ack = [e for e in s["envelopes"] if e["envelope_id"] in env]
        self.assertTrue(ack and ack[0]["acked_at"], "the click was acked")
        self.assertLess(ack[0]["latency"], 3.0)
        b = self.mention("ask Bash: echo again-zq6301", thread_ts=a["thread_ts"])
        q2 = self.question(b, 2)
        self.click(q2, "allow_once")
        self.wait_answer(b, "approved allow_once by %s: again-zq6301" % HUMAN)
        self.assertEqual([d[1] for d in self.decisions(a)], ["allow_once", "allow_once"])

    def test_6302_allow_for_this_thread_persists_across_a_restart(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo first-zq6302")
        q = self.question(a)
        self.click(q, "allow_thread")
        self.wait_answer(a, "approved allow_thread by %s: first-zq6302" % HUMAN)
        self.wait_decided(q, "allowed for this thread")
        self.wait_reaction(a, "white_check_mark")
        self.stop_serve()
        self.start_serve(env=ENV)
        b = self.mention("ask Bash: echo second-zq6302", thread_ts=a["thread_ts"])
        self.wait_answer(b, "approved not_required by janebot: second-zq6302")
        s = self.slack.state()
        qs = [p for p in s["posts"] if self.in_thread(p, a)
              and "Permission needed" in (p["text"] or "")]
        self.assertEqual(len(qs), 1, "no second question in the thread")
        other = self.mention("ask Bash: echo other-zq6302")  # another thread still asks
        self.question(other)

    def test_6303_deny_keeps_the_tool_from_running(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6303 > denied.txt")
        q = self.question(a)
        self.click(q, "deny")
        self.wait_answer(a, "denied by %s: denied by %s" % (HUMAN, HUMAN))
        self.wait_decided(q, "denied by <@%s>" % HUMAN)
        self.assertFalse(self.home_file(a, "denied.txt").exists())
        self.assertEqual(self.decisions(a), [("Bash", "deny", HUMAN)])

    def test_6304_an_unanswered_request_expires_as_a_deny(self):
        self.write_config("2s")
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6304 > late.txt")
        q = self.question(a)
        self.assertIn("expires in 2 s", q["blocks"][1]["elements"][0]["text"])
        self.wait_answer(a, "denied by timeout: nobody answered")
        self.wait_decided(q, "nobody answered")
        self.assertFalse(self.home_file(a, "late.txt").exists())
        self.click(q, "allow_once", stale=True)  # too late: nothing changes
        self.quiet(1.0)
        self.assertEqual(len(self.updates_of(q)), 1)
        self.assertEqual(self.decisions(a), [("Bash", "deny", "timeout")])

    def test_6305_a_click_by_someone_else_is_refused_and_the_request_stays_pending(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6305")
        q = self.question(a)
        self.click(q, "allow_once", user=BOB)
        e = self.wait_for(lambda s: next((x for x in s["ephemerals"] if x["user"] == BOB), None),
                          "an ephemeral note to the other user")
        self.assertIn("Only <@%s>" % HUMAN, e["text"])
        self.assertEqual(e["thread_ts"], a["thread_ts"])
        self.quiet(0.5)
        self.assertEqual(self.updates_of(q), [], "still pending")
        self.click(q, "deny", user=CAROL)  # an approver of the channel may decide
        self.wait_answer(a, "denied by %s" % CAROL)
        self.wait_decided(q, "denied by <@%s>" % CAROL)

    def test_6306_a_double_click_decides_once(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6306")
        q = self.question(a)
        self.click(q, "allow_once")
        self.click(q, "deny", stale=True)  # pressed before the client showed the update
        self.click(q, "allow_once", stale=True)
        self.wait_answer(a, "approved allow_once by %s: zq6306" % HUMAN)
        self.wait_decided(q, "allowed once")
        self.wait_reaction(a, "white_check_mark")
        self.quiet(1.0)
        self.assertEqual(len(self.updates_of(q)), 1, "one update of the question")
        self.assertEqual(self.decisions(a), [("Bash", "allow_once", HUMAN)])
        self.wait_all_acked()

    def test_6310_stopping_the_turn_ends_a_pending_request_as_a_deny(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6310 > stopped.txt")
        q = self.question(a)
        self.mention("stop", thread_ts=a["thread_ts"])
        self.wait_decided(q, "the turn was stopped")
        self.wait_answer(a, "the turn was stopped by <@%s>" % HUMAN)
        self.assertFalse(self.home_file(a, "stopped.txt").exists())
        self.assertEqual(self.decisions(a), [("Bash", "deny", "stop")])

    def test_6312_when_the_question_is_gone_the_decision_is_posted_anew(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Bash: echo zq6312")
        q = self.question(a)
        self.wait_answer(a, "waiting for approval")  # the status message is up to date
        self.slack.fail("chat.update", count=1, mode="error", error="message_not_found")
        self.click(q, "allow_once")
        self.wait_answer(a, "approved allow_once by %s: zq6312" % HUMAN)
        self.wait_post(lambda p: self.in_thread(p, a) and "Permission for `Bash`: allowed once "
                       "by <@%s>" % HUMAN in (p["text"] or ""), "the decision as a new message")

    def test_6307_tools_not_listed_need_no_approval(self):
        self.start_serve(env=ENV)
        a = self.mention("ask Read: echo zq6307")
        self.wait_answer(a, "approved not_required by janebot: zq6307")
        s = self.slack.state()
        self.assertFalse([p for p in s["posts"] if "Permission needed" in (p["text"] or "")])


@needs_bwrap
class ChatApprovals(JanebotCase):
    """`janebot chat` asks the same questions on the terminal: y, a or n as the next line."""

    def test_6308_chat_asks_on_the_terminal_y_a_n(self):
        (self.state / "janebot.yaml").write_text("channels:\n  default: {approve: [Bash]}\n")
        lines = ["ask Bash: echo once-zq6308", "y",
                 "ask Bash: echo no-zq6308 > nope.txt", "maybe", "n",
                 "ask Bash: echo thread-zq6308", "a",
                 "ask Bash: echo again-zq6308"]
        r = self.run_jb(["chat", "--user", "U0TERM001"], input="\n".join(lines) + "\n",
                        env=ENV, timeout=90)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("approved allow_once by U0TERM001: once-zq6308", r.out)
        self.assertIn("denied by U0TERM001", r.out)
        self.assertIn("approved allow_thread by U0TERM001: thread-zq6308", r.out)
        self.assertIn("approved not_required by janebot: again-zq6308", r.out)
        self.assertEqual(r.err.count("approval needed: the agent wants to use Bash"), 3, r.err)
        self.assertIn("answer y (allow once), a (allow for this thread) or n (deny)", r.err)
        self.assertNotIn("echo: maybe", r.out, "an answer is not a message")
        home = self.state / "sandboxes" / sandbox_name("chat:default") / "home"
        self.assertFalse((home / "nope.txt").exists())

    def test_6313_approvals_for_an_agent_that_cannot_ask_are_refused_not_ignored(self):
        (self.state / "janebot.yaml").write_text(
            "channels:\n  default: {approve: [Bash]}\n  C0DEPLOY01: {approve: [edit], agent: amp}\n")
        r = self.run_jb(["chat", "--user", "U0TERM001"], input="hello zq6313\n",
                        env=ENV, timeout=60)
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("channel C0DEPLOY01 at line 3: `approve:` needs an agent that asks", r.err)
        self.assertIn("the amp agent cannot ask janebot (the claude and command agents can)",
                      r.err)
        self.assertNotIn("zq6313", r.out, "nothing ran")
        r = self.run_jb(["config", "check"], env=ENV, timeout=30)
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("`approve:` needs an agent that asks", r.err + r.out)

    def test_6309_chat_with_its_input_at_the_end_denies_at_once(self):
        (self.state / "janebot.yaml").write_text("channels:\n  default: {approve: [Bash]}\n")
        r = self.run_jb(["chat", "--user", "U0TERM001"], input="ask Bash: echo zq6309\n",
                        env=ENV, timeout=60)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("denied by U0TERM001", r.out)
        self.assertNotIn("zq6309\n", r.out.replace("ask Bash: echo zq6309", ""))

    def test_6311_the_endpoint_takes_only_its_runs_token_a_POST_and_a_tool_name(self):
        (self.state / "janebot.yaml").write_text("channels:\n  default: {approve: [Bash]}\n")
        probe = """import os, urllib.request as u
o = u.build_opener(u.ProxyHandler({}))
url, tok = os.environ["JANEBOT_APPROVE_URL"], os.environ["JANEBOT_APPROVE_TOKEN"]
def go(t, m, b):
    r = u.Request(url, data=b, method=m, headers={"Authorization": "Bearer " + t})
    try:
        return o.open(r, timeout=20).status
    except Exception as e:
        return getattr(e, "code", str(e))
print("codes", go("jbt_" + "0" * 64, "POST", b"{}"), go(tok, "GET", None),
      go(tok, "POST", b"not json"), go(tok, "POST", b'{"tool": "a b"}'))
"""
        line = 'run: python3 -c "exec(bytes.fromhex(\'%s\').decode())"' % probe.encode().hex()
        r = self.run_jb(["chat", "--user", "U0TERM001"], input=line + "\n", env=ENV, timeout=60)
        self.assertIn("codes 401 405 400 400", r.out, str(r))

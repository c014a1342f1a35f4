"""6330: approvals with Claude Code (issue 16): a channel with `approve:` runs claude with
`--permission-prompt-tool stdio` instead of `--dangerously-skip-permissions`; each
can_use_tool control request it prints is answered on its stdin: at once for a tool the
channel does not list, after a click for one it does (agent-approvals.md 2.5). The CLI is
the fake in tests/fakes/bin/claude (`tool <Name> <cmd>`, `tool-withdraw <Name>`); the real
one is in test_7900."""
import json
import unittest

from jbtest import JanebotCase, needs_bwrap
from test_5000_serve_startup import CHANNEL, HUMAN, ServeCase
from test_6300_approvals import CAROL, ApprovalHelpers
from test_6500_steering import FAKE_BIN

CLAUDE_ENV = {"JANEBOT_AGENT": "claude", "ANTHROPIC_API_KEY": "sk-ant-test-key-6330x",
              "JANEBOT_AGENT_BIN": str(FAKE_BIN / "claude"),
              "JANEBOT_UPSTREAM_ANTHROPIC": "http://127.0.0.1:9"}


def fake_claude_records(state, name):
    out = []
    for p in state.glob("**/.fake-claude/" + name):
        out += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return out


@needs_bwrap
class ClaudeApprovals(ApprovalHelpers, ServeCase):
    def setUp(self):
        super().setUp()
        self.write_config("5m")

    def answers_sent(self):
        return [c["response"] for c in fake_claude_records(self.state, "control.jsonl")
                if c.get("type") == "control_response"]

    def test_6330_allow_once_answers_claude_on_its_stdin_and_the_tool_runs(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool Bash echo zq6330 > c.txt; echo ran-zq6330")
        q = self.question(a)
        self.assertIn("echo zq6330 &gt; c.txt", q["blocks"][0]["text"]["text"])
        self.wait_answer(a, "waiting for approval")
        self.assertFalse(self.home_file(a, "c.txt").exists(), "it must wait for the yes")
        self.click(q, "allow_once")
        self.wait_answer(a, "tool Bash allowed: ran-zq6330")
        self.assertTrue(self.home_file(a, "c.txt").exists())
        self.wait_decided(q, "allowed once by <@%s>" % HUMAN)
        argv = [c["argv"] for c in fake_claude_records(self.state, "calls.jsonl")]
        self.assertEqual(len(argv), 1, argv)
        i = argv[0].index("--permission-prompt-tool")
        self.assertEqual(argv[0][i + 1], "stdio")
        self.assertNotIn("--dangerously-skip-permissions", argv[0])
        sent = self.answers_sent()
        self.assertEqual(len(sent), 1, sent)
        self.assertEqual(sent[0]["subtype"], "success")
        self.assertEqual(sent[0]["response"]["behavior"], "allow")
        self.assertEqual(sent[0]["response"]["updatedInput"]["command"],
                         "echo zq6330 > c.txt; echo ran-zq6330", "the input runs unchanged")
        self.assertEqual(self.decisions(a), [("Bash", "allow_once", HUMAN)])

    def test_6331_deny_tells_claude_why_and_the_tool_never_runs(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool Bash echo zq6331 > denied.txt")
        q = self.question(a)
        self.click(q, "deny", user=CAROL)  # an approver of the channel
        self.wait_answer(a, "tool Bash denied: Not allowed in this thread: denied by %s" % CAROL)
        self.assertFalse(self.home_file(a, "denied.txt").exists())
        self.assertEqual(self.decisions(a), [("Bash", "deny", CAROL)])

    def test_6332_a_tool_the_channel_does_not_list_is_allowed_without_a_question(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool Read echo read-zq6332")
        self.wait_answer(a, "tool Read allowed: read-zq6332")
        s = self.slack.state()
        self.assertEqual([p for p in s["posts"] if self.in_thread(p, a)
                          and "Permission needed" in (p["text"] or "")], [])
        self.assertEqual(self.decisions(a), [], "nothing to audit: nobody was asked")

    def test_6333_allow_for_this_thread_answers_the_next_turns_without_asking(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool Bash echo first-zq6333")
        self.click(self.question(a), "allow_thread")
        self.wait_answer(a, "tool Bash allowed: first-zq6333")
        b = self.mention("tool Bash echo second-zq6333", thread_ts=a["thread_ts"])
        self.wait_answer(b, "tool Bash allowed: second-zq6333")
        s = self.slack.state()
        self.assertEqual(len([p for p in s["posts"] if self.in_thread(p, a)
                              and "Permission needed" in (p["text"] or "")]), 1)
        self.assertEqual(self.decisions(a), [("Bash", "allow_thread", HUMAN)])

    def test_6334_a_question_claude_withdraws_is_closed_in_the_thread(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool-withdraw Bash")
        q = self.question(a)
        self.wait_decided(q, "the question was withdrawn")
        self.wait_answer(a, "withdrawn")
        self.assertEqual(self.answers_sent(), [], "nothing answered to a withdrawn question")
        self.assertEqual(self.decisions(a), [("Bash", "deny", "janebot")])

    def test_6335_a_click_by_someone_else_does_not_decide_for_claude(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool Bash echo zq6335")
        q = self.question(a)
        self.click(q, "allow_once", user="U0MALLORY9")
        self.quiet(1.0)
        self.assertEqual(self.answers_sent(), [], "the stranger's click answered nothing")
        self.click(q, "allow_once")
        self.wait_answer(a, "tool Bash allowed: zq6335")


    def test_6337_a_flood_of_questions_asks_a_bounded_number_and_denies_the_rest(self):
        self.start_serve(env=CLAUDE_ENV)
        a = self.mention("tool-flood 9")
        self.question(a, 4)
        r = self.wait_answer(a, "answers: ")
        refused = "deny(Not allowed in this thread: too many questions wait already)"
        self.assertEqual(r.count(refused), 5, r)
        self.assertNotIn("allow(", r)
        self.quiet(1.0)
        s = self.slack.state()
        self.assertEqual(len([p for p in s["posts"] if self.in_thread(p, a)
                              and "Permission needed" in (p["text"] or "")]), 4)


class ClaudeChatApprovals(JanebotCase):
    """`janebot chat` asks Claude Code's questions on the terminal as well."""

    def test_6336_chat_answers_claude_y_and_n(self):
        (self.state / "janebot.yaml").write_text("channels:\n  default: {approve: [Bash]}\n")
        self.env.update(CLAUDE_ENV)
        self.env.update({"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true"})
        lines = ["tool Bash echo yes-zq6336", "y", "tool Bash echo no-zq6336", "n"]
        r = self.run_jb(["chat", "--user", "U0TERM001"], input="\n".join(lines) + "\n",
                        timeout=60)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("tool Bash allowed: yes-zq6336", r.out)
        self.assertIn("tool Bash denied: Not allowed in this thread: denied by U0TERM001", r.out)
        self.assertEqual(r.err.count("approval needed: the agent wants to use Bash"), 2, r.err)


if __name__ == "__main__":
    unittest.main()

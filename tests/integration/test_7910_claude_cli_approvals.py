"""7910: the real Claude Code CLI (pinned as in test_7900) in `janebot serve` with a channel
whose `approve:` lists Bash: it runs with --permission-prompt-tool stdio, pauses on the
Bash call the fake upstream scripts, the thread gets the question, and the run continues
after the click: Allow runs the command in the sandbox, Deny hands the model janebot's
reason as the tool's error. A read-only command, which Claude Code runs unasked in its
default mode, is asked about too.
"""
import json
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import HUMAN, ServeCase
from test_6300_approvals import ApprovalHelpers
from test_7900_claude_cli_via_proxy import claude_fixture

COMMAND = 'echo approved-7910 > "$HOME/approved.txt" && echo wrote-7910'


@needs_bwrap
class RealClaudeApprovals(ApprovalHelpers, ServeCase):
    def setUp(self):
        super().setUp()
        self.fake, self.real_key, self.claude_env = claude_fixture(self)
        self.fake.control(tool_command=COMMAND)
        self.write_config("5m")

    def model_calls(self):
        return [g for g in self.fake.requests() if g["path"].split("?")[0] == "/v1/messages"]

    def tool_results(self):
        """The tool_result blocks Claude Code sent upstream after the Bash call."""
        out = []
        for g in self.model_calls():
            for m in json.loads(g["body"]).get("messages") or []:
                for b in m.get("content") if isinstance(m.get("content"), list) else []:
                    if isinstance(b, dict) and b.get("type") == "tool_result":
                        out.append(b)
        return out

    def test_7911_claude_pauses_on_the_question_and_runs_the_tool_after_allow(self):
        self.start_serve(env=self.claude_env)
        a = self.mention("USE_TOOL please")
        q = self.question(a)
        self.assertIn("approved-7910", q["blocks"][0]["text"]["text"])
        self.assertFalse(self.home_file(a, "approved.txt").exists(), "it waits for the yes")
        self.assertEqual(self.tool_results(), [], "no tool result before the click")
        self.click(q, "allow_once")
        self.wait_answer(a, "done")
        self.assertEqual(self.home_file(a, "approved.txt").read_text(), "approved-7910\n")
        results = self.tool_results()
        self.assertTrue(results and "wrote-7910" in json.dumps(results[-1]), results)
        self.assertFalse(results[-1].get("is_error"), results)
        self.assertEqual(self.decisions(a), [("Bash", "allow_once", HUMAN)])
        self.assertNotIn(self.real_key, self.serve_output())
        tools = [t.get("name") for t in json.loads(self.model_calls()[0]["body"]).get("tools")]
        self.assertIn("Bash", tools)
        self.assertNotIn("AskUserQuestion", tools, "janebot has no answers to give it")

    def test_7912_after_deny_claude_hands_the_model_janebots_reason(self):
        self.start_serve(env=self.claude_env)
        a = self.mention("USE_TOOL please")
        self.click(self.question(a), "deny")
        self.wait_answer(a, "done")
        self.assertFalse(self.home_file(a, "approved.txt").exists())
        results = self.tool_results()
        self.assertTrue(results, "the denial went back to the model")
        self.assertTrue(results[-1].get("is_error"), results)
        self.assertIn("Not allowed in this thread: denied by %s" % HUMAN,
                      json.dumps(results[-1]), results)

    def test_7913_a_call_claude_would_run_unasked_is_asked_when_its_tool_is_listed(self):
        # `echo` is read-only: Claude Code's default mode runs it without a prompt. Listed
        # in `approve:`, Bash asks all the same (janebot's PreToolUse hook says "ask").
        self.fake.control(tool_command="echo unasked-7913")
        self.start_serve(env=self.claude_env)
        a = self.mention("USE_TOOL please")
        q = self.question(a)
        self.assertIn("unasked-7913", q["blocks"][0]["text"]["text"])
        self.assertEqual(self.tool_results(), [], "nothing ran before the click")
        self.click(q, "allow_once")
        self.wait_answer(a, "done")
        self.assertIn("unasked-7913", json.dumps(self.tool_results()[-1]))


if __name__ == "__main__":
    unittest.main()

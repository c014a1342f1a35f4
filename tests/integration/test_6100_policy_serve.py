"""6100: policy in `janebot serve` against the fake Slack: rate limits per user, each
channel's agent seeing only its MCP servers (the settings file the fake amp received and
the --mcp-config file the fake claude received), no-shell channels, and SIGHUP reloads."""
import json
import signal
import unittest

from jbtest import FAKE_BIN, needs_bwrap, sandbox_name
from test_5000_serve_startup import CHANNEL, ServeCase

GH_SECRET = "ghp_zq6100GithubSecretValue"
LIN_SECRET = "lin_zq6100LinearSecretValue"
SERVERS = {"gh": {"command": "gh-mcp", "env": {"GH_TOKEN": GH_SECRET}},
           "linear": {"url": "https://mcp.linear.app/sse",
                      "headers": {"Authorization": "Bearer " + LIN_SECRET}}}
AMP = {"JANEBOT_AGENT": "amp", "JANEBOT_AGENT_CMD": None, "AMP_API_KEY": "amp-test-key-6100x",
       "JANEBOT_AGENT_BIN": str(FAKE_BIN / "amp"), "MCP_SERVERS": json.dumps(SERVERS)}
CLAUDE = {"JANEBOT_AGENT": "claude", "JANEBOT_AGENT_CMD": None,
          "ANTHROPIC_API_KEY": "sk-ant-test-key-6100x",
          "JANEBOT_AGENT_BIN": str(FAKE_BIN / "claude"), "MCP_SERVERS": json.dumps(SERVERS)}
OTHER = "C0OTHERCH9"


@needs_bwrap
class ServePolicy(ServeCase):
    def write_config(self, text):
        (self.state / "janebot.yaml").write_text(text)

    def fake_calls(self, info, agent):
        key = "%s:%s" % (info["channel"], info["thread_ts"])
        p = self.state / "sandboxes" / sandbox_name(key) / "home" / (".fake-" + agent) / \
            "calls.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def amp_settings(self, info):
        calls = self.fake_calls(info, "amp")
        self.assertTrue(calls, "the fake amp did not run in %s%s" % (info, self.summary()))
        return calls[-1]["settings"]

    def test_6101_a_second_message_over_the_limit_is_refused_with_a_retry_time(self):
        self.start_serve(env={"RATE_LIMIT_PER_MINUTE": "1"})
        a = self.mention("zq-6101 first")
        self.wait_answer(a, "zq-6101 first (turn 1)")
        b = self.mention("zq-6101 second")  # a new thread, same user
        text = self.wait_answer(b, "rate limited")
        self.assertIn("try again in", text)
        self.quiet(1.0)
        prompts = [c.get("prompt", "") for c in self.agent_calls()]
        self.assertFalse([p for p in prompts if "zq-6101 second" in p], "it must not run")
        key = "%s:%s" % (b["channel"], b["thread_ts"])
        self.assertFalse((self.state / "sandboxes" / sandbox_name(key)).exists(),
                         "no sandbox for a refused message")
        c = self.mention("zq-6101 other user", user="U0BOB0002")
        self.wait_answer(c, "zq-6101 other user (turn 1)")
        self.wait_reaction(c, "white_check_mark")
        self.quiet(1.0)  # let in-flight Web API calls finish before serve stops

    def test_6102_amp_in_each_channel_sees_only_that_channels_mcp_servers(self):
        self.write_config("channels:\n"
                          "  %s: {mcp_servers: [gh], tools: no-shell}\n"
                          "  %s: {mcp_servers: [linear]}\n" % (CHANNEL, OTHER))
        self.start_serve(env=AMP)
        a = self.mention("zq-6102 eng")
        o = self.mention("zq-6102 other", channel=OTHER)
        d = self.dm("zq-6102 dm")
        for info in (a, o, d):
            self.wait_answer(info, "argv ok")
        s = self.amp_settings(a)
        self.assertEqual(sorted(s["amp.mcpServers"]), ["gh"])
        self.assertNotIn(LIN_SECRET, json.dumps(s))
        self.assertIn("Bash", s["amp.tools.disable"], "no-shell")
        self.assertIn("edit_file", s["amp.tools.enable"])
        s = self.amp_settings(o)
        self.assertEqual(sorted(s["amp.mcpServers"]), ["linear"])
        self.assertNotIn(GH_SECRET, json.dumps(s))
        self.assertNotIn("Bash", s["amp.tools.disable"], "full profile")
        s = self.amp_settings(d)
        self.assertEqual(s["amp.mcpServers"], {}, "DMs use the default entry: none")
        for s in (self.amp_settings(x) for x in (a, o, d)):
            self.assertIn("find_thread", s["amp.tools.disable"])
            self.assertIn("read_thread", s["amp.tools.disable"])

    def test_6103_claude_gets_a_strict_mcp_config_with_only_its_channels_servers(self):
        self.write_config("channels:\n  %s: {mcp_servers: [linear], tools: no-shell}\n" % CHANNEL)
        self.start_serve(env=CLAUDE)
        a = self.mention("zq-6103 eng")
        d = self.dm("zq-6103 dm")
        self.wait_answer(a, "argv ok")
        self.wait_answer(d, "argv ok")
        call = self.fake_calls(a, "claude")[-1]
        self.assertIn("--strict-mcp-config", call["argv"])
        self.assertEqual(sorted(call["mcp_config"]["mcpServers"]), ["linear"])
        self.assertNotIn(GH_SECRET, json.dumps(call))
        i = call["argv"].index("--disallowedTools")
        self.assertIn("Bash", call["argv"][i + 1])
        call = self.fake_calls(d, "claude")[-1]
        self.assertEqual(call["mcp_config"], {"mcpServers": {}})
        self.assertNotIn("--disallowedTools", call["argv"])

    def test_6104_sighup_reloads_the_file_and_keeps_the_old_one_when_invalid(self):
        self.write_config("channels:\n  %s: {tools: full}\n" % CHANNEL)
        p = self.start_serve(env=AMP)
        a = self.mention("zq-6104 before")
        self.wait_answer(a, "argv ok")
        self.assertNotIn("Bash", self.amp_settings(a)["amp.tools.disable"])
        self.write_config("channels:\n  %s: {tools: no-shell, mcp_servers: [gh]}\n" % CHANNEL)
        p.send_signal(signal.SIGHUP)
        self.wait_for(lambda s: "configuration reloaded" in self.serve_output(), "the reload")
        b = self.mention("zq-6104 after")
        self.wait_answer(b, "argv ok")
        self.assertIn("Bash", self.amp_settings(b)["amp.tools.disable"])
        self.write_config("channels:\n  %s: {tools: bash}\n" % CHANNEL)
        p.send_signal(signal.SIGHUP)
        self.wait_for(lambda s: "not reloaded" in self.serve_output(), "the refused reload")
        self.assertIn("janebot.yaml:2", self.serve_output())
        c = self.mention("zq-6104 still")
        self.wait_answer(c, "argv ok")
        s = self.amp_settings(c)
        self.assertIn("Bash", s["amp.tools.disable"], "the previous configuration stays")
        self.assertEqual(sorted(s["amp.mcpServers"]), ["gh"])

    def _order(self, env):
        self.start_serve(env=env)
        a = self.mention("sleep 2")
        b = self.mention("zq-6105 second thread")
        self.wait_answer(a, "slept")
        self.wait_answer(b, "zq-6105 second thread (turn 1)")
        self.wait_reaction(a, "white_check_mark")
        self.wait_reaction(b, "white_check_mark")
        log = [(r["name"], r["ts"]) for r in self.slack.state()["reaction_log"]
               if r["op"] == "add"]
        return log.index(("white_check_mark", a["ts"])), log.index(("eyes", b["ts"]))

    def test_6105_a_users_turns_beyond_JANEBOT_MAX_TURNS_PER_USER_wait_their_turn(self):
        a_done, b_started = self._order({"JANEBOT_MAX_TURNS_PER_USER": "1"})
        self.assertLess(a_done, b_started, "the second thread must wait%s" % self.summary())
        self.quiet(0.5)

    def test_6106_without_the_cap_the_same_users_threads_run_side_by_side(self):
        a_done, b_started = self._order({"JANEBOT_MAX_TURNS_PER_USER": "0"})
        self.assertGreater(a_done, b_started, "both run at once%s" % self.summary())
        self.quiet(0.5)


if __name__ == "__main__":
    unittest.main()

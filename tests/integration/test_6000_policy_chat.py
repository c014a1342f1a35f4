"""6000: policy through `janebot chat --user`: per-user rate limits (kept across restarts),
bad values, the config file and `janebot config check`, a channel's MCP servers and tool
profile as the command agent sees them."""
import json
import unittest

from jbtest import JanebotCase, needs_bwrap

RATE_RE_WORDS = ("rate limited", "try again in")
GH_SECRET = "ghp_zq6000GithubSecretValue"
LIN_SECRET = "lin_zq6000LinearSecretValue"
SERVERS = {"gh": {"command": "gh-mcp", "args": ["stdio"], "env": {"GH_TOKEN": GH_SECRET}},
           "linear": {"url": "https://mcp.linear.app/sse",
                      "headers": {"Authorization": "Bearer " + LIN_SECRET}}}


class RateLimits(JanebotCase):
    def assertRateLimited(self, r):
        for w in RATE_RE_WORDS:
            self.assertIn(w, r.out.lower(), "expected a rate-limit reply%s" % r)

    def calls(self, key):
        p = self.home_of(key) / ".fake-agent" / "calls.jsonl"
        return p.read_text().splitlines() if p.exists() else []

    @needs_bwrap
    def test_6001_a_user_over_the_limit_is_told_when_to_retry_and_nothing_runs(self):
        env = {"RATE_LIMIT_PER_MINUTE": "2"}
        r = self.chat(["zq-a one", "zq-a two", "zq-a three"], thread="t1", user="U1", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn_("zq-a one", r)
        self.assertIn_("zq-a two", r)
        self.assertNotIn("echo: zq-a three", r.out, r)
        self.assertRateLimited(r)
        self.assertEqual(len(self.calls("chat:t1")), 2, "the refused message must not run")
        # Another user has a bucket of their own.
        r = self.chat(["zq-b hi"], thread="t1", user="U2", env=env)
        self.assertIn_("zq-b hi", r)
        # A refused message creates no sandbox.
        r = self.chat(["zq-c fresh"], thread="fresh", user="U1", env=env)
        self.assertRateLimited(r)
        self.assertFalse(self.home_of("chat:fresh").exists(), "no sandbox for a refusal")

    @needs_bwrap
    def test_6002_a_restart_does_not_refill_the_bucket(self):
        env = {"RATE_LIMIT_PER_MINUTE": "2"}
        r = self.chat(["zq-r one", "zq-r two"], thread="r", user="U1", env=env)
        self.assertIn_("zq-r two", r)
        r = self.chat(["zq-r three"], thread="r", user="U1", env=env)
        self.assertRateLimited(r)
        self.assertNotIn("echo: zq-r three", r.out, r)
        self.assertEqual(len(self.calls("chat:r")), 2)

    @needs_bwrap
    def test_6003_zero_turns_the_limit_off(self):
        lines = ["zq-z %d" % i for i in range(4)]
        r = self.chat(lines, thread="z", user="U1", env={"RATE_LIMIT_PER_MINUTE": "0"})
        for line in lines:
            self.assertIn_(line, r)
        self.assertNotIn("rate limited", r.out.lower(), r)

    def test_6004_bad_values_stop_start_up_naming_the_variable(self):
        for var in ("RATE_LIMIT_PER_MINUTE", "JANEBOT_MAX_TURNS_PER_USER"):
            for value in ("abc", "-1", "1.5"):
                with self.subTest(var=var, value=value):
                    r = self.chat(["hello"], user="U1", env={var: value}, timeout=20)
                    self.assertNotEqual(r.rc, 0, r)
                    self.assertIn(var, r.err, r)
                    self.assertNotIn("echo: hello", r.out, r)


class ConfigFile(JanebotCase):
    def write_config(self, text, name="janebot.yaml"):
        p = self.state / name
        p.write_text(text)
        return p

    def test_6011_config_check_prints_the_effective_configuration_with_secrets_masked(self):
        self.write_config("rate_limit_per_minute: 4\n"
                          "channels:\n"
                          "  C0ENG: {mcp_servers: [gh], tools: no-shell}\n"
                          "  C0PROD: {tools: [Read, Grep]}\n")
        r = self.run_jb(["config", "check"],
                        env={"MCP_SERVERS": json.dumps(SERVERS), "JANEBOT_MAX_TURNS_PER_USER": "3",
                             "SLACK_BOT_TOKEN": "xoxb-1111-2222-zq6000BotTokenValue"})
        self.assertEqual(r.rc, 0, r)
        for s in (GH_SECRET, LIN_SECRET, "zq6000BotTokenValue"):
            self.assertNotIn(s, r.both, "a secret was printed%s" % r)
        self.assertIn_("set (hidden)", r)
        self.assertIn_("rate_limit_per_minute   4", r)
        self.assertIn_("max_turns_per_user      3", r)
        self.assertIn_("C0ENG: tools no-shell; mcp_servers gh", r)
        self.assertIn_("C0PROD: tools allow [Read, Grep]", r)
        self.assertIn_("from MCP_SERVERS", r)

    def test_6012_a_bad_file_stops_start_up_naming_file_line_and_key(self):
        cases = [("rate_limit_per_minute: 3\nrate_limit: 2\n", ":2:", "rate_limit"),
                 ("channels:\n  C1: {tools: bash}\n", ":2:", "channels.C1.tools"),
                 ("channels:\n  C1: {mcp_servers: [nope]}\n", ":2:", "nope"),
                 ("max_turns_per_user: [1]\n", ":1:", "max_turns_per_user")]
        for text, line, key in cases:
            with self.subTest(text=text):
                p = self.write_config(text)
                for args in (["config", "check"], ["chat", "--user", "U1"]):
                    r = self.run_jb(args, input="hello\n", timeout=20)
                    self.assertNotEqual(r.rc, 0, r)
                    self.assertIn(str(p) + line, r.err, r)
                    self.assertIn(key, r.err, r)
                    self.assertNotIn("echo: hello", r.out, r)

    def test_6013_JANEBOT_CONFIG_must_exist_when_set(self):
        r = self.run_jb(["config", "check"], env={"JANEBOT_CONFIG": str(self.tmp / "nope.yaml")})
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("JANEBOT_CONFIG", r.err, r)

    def test_6014_the_environment_wins_over_the_file(self):
        p = self.write_config("rate_limit_per_minute: 4\n", name="other.yaml")
        r = self.run_jb(["config", "check"],
                        env={"JANEBOT_CONFIG": str(p), "RATE_LIMIT_PER_MINUTE": "9"})
        self.assertEqual(r.rc, 0, r)
        self.assertIn_("rate_limit_per_minute   9", r)

    @needs_bwrap
    def test_6015_chat_threads_get_the_default_channels_servers_and_profile(self):
        self.write_config("channels:\n  default: {mcp_servers: [gh], tools: no-shell}\n"
                          "  C0ENG: {mcp_servers: [linear]}\n")
        env = {"MCP_SERVERS": json.dumps(SERVERS)}
        r = self.chat(["getenv JANEBOT_MCP_CONFIG", "getenv JANEBOT_TOOL_PROFILE", "env"],
                      thread="m", user="U1", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn_("JANEBOT_MCP_CONFIG=/run/janebot/mcp.json", r)
        self.assertIn_("JANEBOT_TOOL_PROFILE=no-shell", r)
        self.assertNotIn("MCP_SERVERS", r.out, "the declaration never enters the sandbox%s" % r)
        r = self.chat(["read /run/janebot/mcp.json"], thread="m", user="U1", env=env)
        self.assertIn_('"gh"', r)
        self.assertIn_(GH_SECRET, r)  # its own server's credential, and only that one
        self.assertNotIn(LIN_SECRET, r.out, r)
        self.assertNotIn("linear", r.out, r)


if __name__ == "__main__":
    unittest.main()

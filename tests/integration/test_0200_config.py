"""0200: configuration from the environment and .env files; bad values stop start-up."""
import unittest

from jbtest import JanebotCase, needs_bwrap

BAD_VALUES = [
    # variable, value, words the message should offer as allowed (any case)
    ("JANEBOT_MAX_CONCURRENT_TURNS", "abc", []),
    ("JANEBOT_MAX_CONCURRENT_TURNS", "0", []),
    ("JANEBOT_AGENT", "nope", ["amp", "claude", "command"]),
    ("JANEBOT_SANDBOX", "nope", ["local", "host"]),
    ("JANEBOT_TURN_TIMEOUT", "-5", []),
    ("JANEBOT_TURN_TIMEOUT", "abc", []),
    ("JANEBOT_TURN_TIMEOUT", "0", []),
    ("JANEBOT_TURN_TIMEOUT", "99999999999999999999", []),
    ("JANEBOT_LOG_LEVEL", "loud", ["debug", "error"]),
    ("ALLOW_LOCAL_EXECUTION", "maybe", ["true", "false"]),
    ("JANEBOT_STATE_DIR", "relative/state", ["absolute"]),
    ("JANEBOT_AGENT_CMD", "relative/agent.py", ["absolute"]),
]


class Config(JanebotCase):
    def assertRefused(self, r, var, value, allowed=()):
        self.assertNotEqual(r.rc, 0, "start-up should fail for %s=%s%s" % (var, value, r))
        self.assertNotIn("echo: hello", r.out, r)
        self.assertIn(var, r.err, "the message should name the variable%s" % r)
        self.assertIn(value, r.err, "the message should quote the value%s" % r)
        for word in allowed:
            self.assertIn(word, r.err.lower(), "the message should say what is allowed%s" % r)

    def test_0201_a_bad_value_in_the_environment_stops_start_up_naming_variable_value_and_allowed(self):
        for var, value, allowed in BAD_VALUES:
            with self.subTest(var=var, value=value):
                r = self.chat(["hello"], env={var: value}, timeout=20)
                self.assertRefused(r, var, value, allowed)

    def test_0202_a_bad_value_stops_doctor_and_sandbox_commands_too(self):
        for args in (["doctor"], ["sandbox", "list"], ["sessions", "list"],
                     ["sandbox", "exec", "chat:x", "--", "true"]):
            with self.subTest(args=" ".join(args)):
                r = self.run_jb(args, env={"JANEBOT_AGENT": "nope"}, timeout=20)
                self.assertNotEqual(r.rc, 0, r)
                # doctor may report it as one of its check lines on stdout
                where = r.both if args == ["doctor"] else r.err
                self.assertIn("JANEBOT_AGENT", where, r)
                self.assertIn("nope", where, r)

    def test_0203_a_bad_value_in_the_cwd_env_file_stops_start_up(self):
        (self.cwd / ".env").write_text("JANEBOT_TURN_TIMEOUT=-5\n")
        r = self.chat(["hello"], timeout=20)
        self.assertRefused(r, "JANEBOT_TURN_TIMEOUT", "-5")

    def test_0204_a_bad_value_in_the_state_dir_env_file_stops_start_up(self):
        (self.state / ".env").write_text("JANEBOT_SANDBOX=nope\n")
        r = self.chat(["hello"], env={"JANEBOT_SANDBOX": None}, timeout=20)
        self.assertRefused(r, "JANEBOT_SANDBOX", "nope", ["local"])

    @needs_bwrap
    def test_0205_the_environment_wins_over_both_env_files(self):
        (self.cwd / ".env").write_text("JANEBOT_AGENT=nope\n")
        (self.state / ".env").write_text("JANEBOT_MAX_CONCURRENT_TURNS=abc\n")
        r = self.chat_ok(["hello"], env={"JANEBOT_MAX_CONCURRENT_TURNS": "2"})
        self.assertIn_("echo: hello (turn 1)", r)

    @needs_bwrap
    def test_0206_the_cwd_env_file_wins_over_the_state_dir_env_file(self):
        (self.cwd / ".env").write_text("JANEBOT_SANDBOX=local\n")
        (self.state / ".env").write_text("JANEBOT_SANDBOX=nope\n")
        r = self.chat_ok(["hello"], env={"JANEBOT_SANDBOX": None})
        self.assertIn_("echo: hello (turn 1)", r)

    @needs_bwrap
    def test_0207_settings_can_come_from_the_cwd_env_file_alone(self):
        (self.cwd / ".env").write_text(
            "# janebot settings\nJANEBOT_STATE_DIR=%s\nJANEBOT_AGENT=command\n"
            "JANEBOT_AGENT_CMD=%s\n\nJANEBOT_SANDBOX=local\n" % (self.state, self.env["JANEBOT_AGENT_CMD"]))
        r = self.chat_ok(["hello"], env={"JANEBOT_STATE_DIR": None, "JANEBOT_AGENT": None,
                                         "JANEBOT_AGENT_CMD": None, "JANEBOT_SANDBOX": None})
        self.assertIn_("echo: hello (turn 1)", r)
        self.assertTrue((self.state / "janebot.db").exists(), "janebot.db in the state dir")

    @needs_bwrap
    def test_0208_settings_can_come_from_the_state_dir_env_file(self):
        (self.state / ".env").write_text("JANEBOT_AGENT_CMD=%s\n" % self.env["JANEBOT_AGENT_CMD"])
        r = self.chat_ok(["hello"], env={"JANEBOT_AGENT_CMD": None})
        self.assertIn_("echo: hello (turn 1)", r)

    @needs_bwrap
    def test_0209_a_missing_state_dir_is_created_with_the_database_in_it(self):
        state = self.tmp / "new" / "state"
        r = self.chat_ok(["hello"], env={"JANEBOT_STATE_DIR": str(state)})
        self.assertIn_("echo: hello (turn 1)", r)
        self.assertTrue((state / "janebot.db").is_file(), r)
        self.assertTrue((state / "sandboxes").is_dir(), r)

    def test_0210_the_host_sandbox_is_refused_without_allow_local_execution(self):
        for allow in (None, "false", "0", ""):
            with self.subTest(ALLOW_LOCAL_EXECUTION=allow):
                r = self.chat(["hello"], env={"JANEBOT_SANDBOX": "host",
                                              "ALLOW_LOCAL_EXECUTION": allow}, timeout=20)
                self.assertNotEqual(r.rc, 0, r)
                self.assertNotIn("echo: hello", r.out, r)
                self.assertIn("ALLOW_LOCAL_EXECUTION", r.err, r)

    def test_0211_the_host_sandbox_runs_with_allow_local_execution_and_warns_at_start(self):
        r = self.chat_ok(["hello"], env={"JANEBOT_SANDBOX": "host",
                                         "ALLOW_LOCAL_EXECUTION": "true"})
        self.assertIn_("echo: hello (turn 1)", r)
        self.assertRegex(r.err.lower(), r"warn|isolat|host", "a start-up warning%s" % r)

    def test_0212_the_command_agent_needs_an_agent_command(self):
        r = self.chat(["hello"], env={"JANEBOT_AGENT_CMD": None}, timeout=20)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("JANEBOT_AGENT_CMD", r.err, r)


if __name__ == "__main__":
    unittest.main()

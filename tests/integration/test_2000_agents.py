"""2000: the amp and claude adapters, through the fake CLIs in tests/fakes/bin."""
import json
import shutil
import unittest

from jbtest import FAKE_BIN, SYS_PATH, JanebotCase, needs_bwrap

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@needs_bwrap
class Agents(JanebotCase):
    def amp_env(self, via_path=True):
        env = {"JANEBOT_AGENT": "amp", "AMP_API_KEY": "amp-test-key-123456",
               "JANEBOT_AGENT_CMD": None}
        if via_path:
            env["PATH"] = "%s:%s" % (FAKE_BIN, SYS_PATH)
        else:
            env["JANEBOT_AGENT_BIN"] = str(FAKE_BIN / "amp")
        return env

    def claude_env(self, via_path=True):
        env = {"JANEBOT_AGENT": "claude", "ANTHROPIC_API_KEY": "sk-ant-test-key-123456",
               "JANEBOT_AGENT_CMD": None}
        if via_path:
            env["PATH"] = "%s:%s" % (FAKE_BIN, SYS_PATH)
        else:
            env["JANEBOT_AGENT_BIN"] = str(FAKE_BIN / "claude")
        return env

    def check_two_turns(self, env, thread, agent, id_re):
        r1 = self.chat_ok(["first"], thread=thread, env=env)
        self.assertIn_("argv ok: echo: first (turn 1)", r1)
        r2 = self.chat_ok(["second"], thread=thread, env=env)
        self.assertIn_("argv ok: echo: second (turn 2)", r2)
        s = self.run_jb(["sessions", "list"], env=env, timeout=20)
        self.assertEqual(s.rc, 0, s)
        line = self.line_with(s, "chat:" + thread)
        self.assertIn(agent, line, s)
        self.assertRegex(line, id_re, "agent session id in sessions list%s" % s)
        self.assertRegex(line, r"(^|\s)2(\s|$)", "2 turns%s" % s)

    def test_2001_amp_found_on_path_answers_and_continues_its_thread(self):
        self.check_two_turns(self.amp_env(), "amp1", "amp", "T-" + UUID)

    def test_2002_amp_named_by_janebot_agent_bin_answers_and_continues_its_thread(self):
        self.check_two_turns(self.amp_env(via_path=False), "amp2", "amp", "T-" + UUID)

    def test_2003_amp_gets_a_settings_file_disabling_thread_tools(self):
        self.chat_ok(["hi"], thread="amp3", env=self.amp_env())
        calls = (self.home_of("chat:amp3") / ".fake-amp" / "calls.jsonl").read_text()
        call = json.loads(calls.splitlines()[0])
        self.assertIn("--settings-file", call["argv"], call)
        disabled = call["settings"]["amp.tools.disable"]
        self.assertIn("find_thread", disabled)
        self.assertIn("read_thread", disabled)

    def test_2004_claude_found_on_path_answers_and_resumes_its_session(self):
        self.check_two_turns(self.claude_env(), "cl1", "claude", UUID)

    def test_2005_claude_named_by_janebot_agent_bin_answers_and_resumes_its_session(self):
        self.check_two_turns(self.claude_env(via_path=False), "cl2", "claude", UUID)

    def test_2006_claude_with_a_lost_transcript_starts_a_fresh_session(self):
        env = self.claude_env()
        r1 = self.chat_ok(["one"], thread="lost", env=env)
        self.assertIn_("argv ok: echo: one (turn 1)", r1)
        shutil.rmtree(self.home_of("chat:lost") / ".fake-claude")
        r2 = self.chat_ok(["two", "three"], thread="lost", env=env)
        self.assertRegex(r2.out, r"argv ok: echo: (two|three) \(turn 1\)",
                         "after 'No conversation found' a new session should start%s" % r2)
        self.assertNotIn("sk-ant-test-key", r2.both)

    def test_2007_claude_gets_the_configured_model(self):
        env = self.claude_env()
        env["JANEBOT_AGENT_MODEL"] = "claude-test-model"
        r = self.chat_ok(["hi"], thread="model", env=env)
        self.assertIn_("argv ok: echo: hi (turn 1) model=claude-test-model", r)

    def test_2008_an_agent_cli_that_fails_its_argv_check_is_reported_not_hidden(self):
        # amp without its key: the fake prints "Error: no API key..." and exits 1.
        env = self.amp_env()
        env["AMP_API_KEY"] = None
        r = self.chat(["hello"], thread="nokey", env=env, timeout=30)
        self.assertNotIn("argv ok", r.out, r)
        self.assertTrue(r.rc != 0 or "status 1" in r.both or "AMP_API_KEY" in r.both, r)

    def test_2009_an_agent_cli_that_prints_its_key_is_shown_with_the_key_redacted(self):
        key = "plainkey-Q7W8E9R0T1Y2U3"
        for agent, env in (("amp", self.amp_env()), ("claude", self.claude_env())):
            with self.subTest(agent=agent):
                env["AMP_API_KEY" if agent == "amp" else "ANTHROPIC_API_KEY"] = key
                r = self.chat(["crash-with-key"], thread="leak-" + agent, env=env, timeout=30)
                self.assertIn("upstream rejected key", r.both, r)
                self.assertIn("status 1", r.both, r)
                self.assertNotIn(key, r.both, "configured key leaked%s" % r)
                self.assertNotIn(key[9:], r.both, "part of the key leaked%s" % r)


if __name__ == "__main__":
    unittest.main()

"""0300: `janebot doctor`: one line per check, exit status, keys never printed."""
import shutil
import unittest

from jbtest import FAKE_BIN, JanebotCase, SYS_PATH, needs_bwrap

ANTHROPIC_KEY = "sk-ant-api03-DOCTORSECRETKEY0123456789"
AMP_KEY = "amp-doctor-secret-key-0123456789"


class Doctor(JanebotCase):
    @needs_bwrap
    def test_0301_doctor_passes_for_the_command_agent_and_reports_each_check_on_its_own_line(self):
        r = self.run_jb(["doctor"], timeout=30)
        self.assertEqual(r.rc, 0, r)
        lines = [l for l in r.both.splitlines() if l.strip()]
        self.assertGreaterEqual(len(lines), 4, "one line per check%s" % r)
        low = r.both.lower()
        for word in ("bwrap|bubblewrap", "namespace", "state", "agent"):
            with self.subTest(check=word):
                self.assertRegex(low, word, r)

    @needs_bwrap
    def test_0302_doctor_never_prints_api_keys_but_says_whether_they_are_present(self):
        for agent, binary in (("claude", "claude"), ("amp", "amp"), ("command", None)):
            with self.subTest(agent=agent):
                env = {"JANEBOT_AGENT": agent, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
                       "AMP_API_KEY": AMP_KEY}
                if binary:
                    env["JANEBOT_AGENT_BIN"] = str(FAKE_BIN / binary)
                r = self.run_jb(["doctor"], env=env, timeout=30)
                for secret in (ANTHROPIC_KEY, AMP_KEY, ANTHROPIC_KEY[14:], AMP_KEY[4:]):
                    self.assertNotIn_(secret, r)
                if agent == "claude":
                    self.assertIn_("ANTHROPIC_API_KEY", r, "both")
                    self.assertEqual(r.rc, 0, r)
                if agent == "amp":
                    self.assertIn_("AMP_API_KEY", r, "both")
                    self.assertEqual(r.rc, 0, r)

    @needs_bwrap
    def test_0303_doctor_mentions_a_missing_key(self):
        r = self.run_jb(["doctor"], env={"JANEBOT_AGENT": "amp",
                                          "JANEBOT_AGENT_BIN": str(FAKE_BIN / "amp")},
                        timeout=30)
        self.assertIn_("AMP_API_KEY", r, "both")

    def test_0304_doctor_fails_and_says_how_to_install_when_the_claude_cli_is_missing(self):
        if shutil.which("claude", path=SYS_PATH):
            self.skipTest("a real claude is installed on %s" % SYS_PATH)
        r = self.run_jb(["doctor"], env={"JANEBOT_AGENT": "claude",
                                          "ANTHROPIC_API_KEY": ANTHROPIC_KEY}, timeout=30)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("install", r.both.lower(), r)
        self.assertIn("claude", r.both.lower(), r)
        self.assertNotIn_(ANTHROPIC_KEY, r)

    def test_0305_doctor_fails_when_the_amp_cli_is_missing(self):
        if shutil.which("amp", path=SYS_PATH):
            self.skipTest("a real amp is installed on %s" % SYS_PATH)
        r = self.run_jb(["doctor"], env={"JANEBOT_AGENT": "amp", "AMP_API_KEY": AMP_KEY},
                        timeout=30)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("install", r.both.lower(), r)
        self.assertNotIn_(AMP_KEY, r)

    def test_0306_doctor_fails_when_the_agent_command_does_not_exist(self):
        r = self.run_jb(["doctor"], env={"JANEBOT_AGENT_CMD": str(self.tmp / "no-such-agent")},
                        timeout=30)
        self.assertNotEqual(r.rc, 0, r)


if __name__ == "__main__":
    unittest.main()

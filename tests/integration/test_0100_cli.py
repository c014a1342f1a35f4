"""0100: the command line surface: --help, unknown flags, missing arguments."""
import unittest

from jbtest import JanebotCase

COMMANDS = [
    [],
    ["chat"],
    ["sandbox", "exec"],
    ["sandbox", "list"],
    ["sandbox", "rm"],
    ["sessions", "list"],
    ["doctor"],
]
GROUPS = [["sandbox"], ["sessions"]]


class Cli(JanebotCase):
    def test_0101_every_command_prints_usage_on_stdout_and_exits_0_with_help(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=" ".join(cmd) or "(top level)"):
                r = self.run_jb(cmd + ["--help"], timeout=20)
                self.assertEqual(r.rc, 0, r)
                self.assertTrue(r.out.strip(), "usage expected on stdout%s" % r)
                self.assertIn("usage", r.out.lower(), r)
                if cmd:
                    self.assertIn(cmd[-1], r.out, "usage should name the command%s" % r)

    def test_0107_command_groups_answer_help_with_their_subcommands(self):
        for cmd, subs in ((["sandbox"], ["exec", "list", "rm"]), (["sessions"], ["list"])):
            with self.subTest(cmd=cmd[0]):
                r = self.run_jb(cmd + ["--help"], timeout=20)
                self.assertEqual(r.rc, 0, r)
                self.assertIn("usage", r.out.lower(), r)
                for sub in subs:
                    self.assertIn(sub, r.out, r)

    def test_0108_a_command_group_without_a_subcommand_is_a_usage_error(self):
        for cmd in (["sandbox"], ["sessions"]):
            with self.subTest(cmd=cmd[0]):
                r = self.run_jb(cmd, timeout=20)
                self.assertEqual(r.rc, 2, r)
                self.assertTrue(r.err.strip(), r)

    def test_0102_help_works_even_with_a_broken_configuration(self):
        r = self.run_jb(["chat", "--help"], env={"JANEBOT_AGENT": "nope"}, timeout=20)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("usage", r.out.lower(), r)

    def test_0103_an_unknown_flag_prints_usage_on_stderr_and_exits_2(self):
        for cmd in COMMANDS + GROUPS:
            with self.subTest(cmd=" ".join(cmd) or "(top level)"):
                r = self.run_jb(cmd + ["--no-such-flag"], input="hello\n", timeout=20)
                self.assertEqual(r.rc, 2, r)
                self.assertTrue(r.err.strip(), "usage expected on stderr%s" % r)
                self.assertEqual(r.out.strip(), "", "nothing expected on stdout%s" % r)
                self.assertNotIn("echo: hello", r.out)

    def test_0104_an_unknown_command_is_a_usage_error(self):
        r = self.run_jb(["frobnicate"], timeout=20)
        self.assertEqual(r.rc, 2, r)
        self.assertTrue(r.err.strip(), r)

    def test_0105_sandbox_exec_and_rm_without_their_arguments_are_usage_errors(self):
        for cmd in (["sandbox", "exec"], ["sandbox", "rm"]):
            with self.subTest(cmd=" ".join(cmd)):
                r = self.run_jb(cmd, timeout=20)
                self.assertEqual(r.rc, 2, r)
                self.assertTrue(r.err.strip(), r)

    def test_0106_chat_flags_that_need_a_value_refuse_to_go_without_one(self):
        for flag in ("--thread", "--user"):
            with self.subTest(flag=flag):
                r = self.run_jb(["chat", flag], input="hello\n", timeout=20)
                self.assertEqual(r.rc, 2, r)
                self.assertNotIn("echo: hello", r.out)


if __name__ == "__main__":
    unittest.main()

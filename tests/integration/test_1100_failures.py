"""1100: agents that crash, hang, print garbage or report errors."""
import unittest

from jbtest import SECRET_TOKEN, JanebotCase, needs_bwrap


@needs_bwrap
class Failures(JanebotCase):
    def test_1101_a_crash_without_result_is_reported_with_status_and_redacted_stderr(self):
        r = self.chat(["crash 7"])
        self.assertIn("the agent exited with status 7 without an answer", r.both, r)
        self.assertIn("fatal: something broke", r.both, "last stderr lines shown%s" % r)
        self.assertNotIn(SECRET_TOKEN, r.both, "secret leaked%s" % r)
        self.assertNotIn("SECRETSECRET", r.both, "secret leaked%s" % r)

    def test_1102_the_bot_keeps_serving_after_a_crash_and_keeps_the_session_from_the_init_line(self):
        r = self.chat_ok(["crash 3", "after the crash"], thread="c")
        self.assertIn("the agent exited with status 3 without an answer", r.both, r)
        self.assertIn_("echo: after the crash (turn 2)", r)

    def test_1103_garbage_in_the_stream_is_survived(self):
        r = self.chat_ok(["garbage", "still there"], thread="g")
        self.assertIn_("survived garbage", r)
        self.assertIn_("echo: still there (turn 2)", r)
        self.assertLess(len(r.out), 200000, "the 1 MB line should not be the answer%s" % r)

    def test_1104_without_a_result_line_the_answer_falls_back_to_the_assistant_text(self):
        r = self.chat_ok(["noresult-text"])
        self.assertInOrder(r, ["partial answer one", "partial answer two"], "out")
        self.assertNotIn("without an answer", r.both, r)

    def test_1105_an_error_result_is_reported_to_the_user(self):
        r = self.chat_ok(["error", "next"], thread="e")
        self.assertIn("boom", r.both, r)
        self.assertIn_("echo: next (turn 2)", r)

    def test_1106_a_turn_past_the_timeout_is_killed_and_the_user_is_told(self):
        tag = self.tag("hang")
        r = self.chat_ok(["hang " + tag], env={"JANEBOT_TURN_TIMEOUT": "2"}, timeout=40)
        self.assertRegex(r.both.lower(), r"timed out|timeout", r)
        self.assertLess(r.secs, 10.0, "timeout message within 10 s%s" % r)
        left = self.wait_gone("hang-" + tag, 3)
        self.assertEqual(left, [], "processes of the timed-out turn survived")

    def test_1107_the_thread_answers_again_after_a_timeout(self):
        tag = self.tag("hang")
        r = self.chat_ok(["hang " + tag, "are you back"], thread="h",
                         env={"JANEBOT_TURN_TIMEOUT": "2"}, timeout=40)
        self.assertInOrder(r, ["are you back"], "out")
        self.assertRegex(r.out, r"echo: are you back \(turn \d\)", r)
        self.assertEqual(self.wait_gone("hang-" + tag, 3), [])

    def test_1108_a_failing_turn_does_not_change_the_exit_status_of_chat(self):
        r = self.chat(["crash 9"])
        self.assertEqual(r.rc, 0, r)


if __name__ == "__main__":
    unittest.main()

"""2100: who asked and where reach the agent in its instructions, not in its prompt."""
import unittest

from jbtest import JanebotCase, needs_bwrap


class Instructions(JanebotCase):
    @needs_bwrap
    def test_2101_the_asker_and_the_thread_are_in_the_instructions_not_the_prompt(self):
        r = self.chat_ok(["getenv JANEBOT_INSTRUCTIONS", "zq-2101 plain"], thread="who",
                         user="alice")
        self.assertIn_("asked by alice", r)
        self.assertIn_("chat thread who", r)
        # The prompt itself is only what the user typed.
        self.assertIn_("echo: zq-2101 plain (turn 2)", r)


if __name__ == "__main__":
    unittest.main()

"""4700: what an agent sends never drives the operator's terminal. `janebot chat` prints
the agent's answer, its progress (the tool calls) and its errors (the tail of its stderr);
a hostile agent fills them with escape sequences: OSC 52 (write the operator's
clipboard), OSC 0 (retitle, a step towards title-report injection), CSI 2 J (clear the
screen) and the 8-bit C1 forms of CSI and OSC. None of those bytes may reach janebot's
stdout or stderr, while ordinary UTF-8 text comes through intact."""
import re
import unittest

from sectest import SecCase, needs_bwrap

ESC, BEL = "\x1b", "\x07"
# printf escapes, so the shell inside writes the raw bytes: OSC 52, CSI 2 J, OSC 0 title,
# and C1 CSI / OSC (U+009B, U+009D) in UTF-8.
HOSTILE = r"\033]52;c;cm0gLXJmIH4=\007\033[2J\033]0;pwned\007\302\23331m\302\2352;x\007"
VISIBLE = "visible-caf\u00e9-\u2713"
# Raw bytes in the command text itself, which the progress line shows.
RAW_IN_COMMAND = ESC + "]0;from-the-command" + BEL + ESC + "[5m"
# Any control character but tab and newline (CR is allowed on a terminal, which adds it).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@needs_bwrap
class Terminal(SecCase):
    def assertClean(self, text, where, r, allow_cr=False):
        if not allow_cr:
            self.assertNotIn("\r", text, "%s: CR%s" % (where, r))
        bad = sorted({"%02x" % ord(c) for c in CONTROL.findall(text)})
        self.assertEqual(bad, [], "%s holds control characters %s%s" % (where, bad, r))

    def test_4701_escape_sequences_in_an_answer_never_reach_the_terminal(self):
        line = "run: : '%s'; printf '%s %s\\n'" % (RAW_IN_COMMAND, HOSTILE, VISIBLE)
        for tty in (False, True):
            with self.subTest(stderr_tty=tty):
                r = self.chat_ok([line], thread="esc-%d" % tty, stderr_tty=tty)
                self.assertIn(VISIBLE, r.out, "the text around the escapes stays%s" % r)
                self.assertIn("]52;c;cm0gLXJmIH4=", r.out,
                              "only the control characters go, not the text%s" % r)
                self.assertClean(r.out, "stdout", r)
                self.assertClean(r.err, "stderr", r, allow_cr=tty)
                if tty:
                    self.assertIn("]0;from-the-command", r.err,
                                  "the progress line shows the tool call%s" % r)
        self.normal_turn_still_works()

    def test_4702_escape_sequences_in_an_agents_error_never_reach_the_terminal(self):
        # The agent dies without an answer after writing the sequences to its stderr:
        # janebot reports the failure with the tail of that stderr.
        for tty in (False, True):
            with self.subTest(stderr_tty=tty):
                r = self.chat(["crash 3 fatal %s %s" % (HOSTILE, VISIBLE)], thread="err-%d" % tty,
                              stderr_tty=tty)
                self.assertEqual(r.rc, 0, r)
                self.assertIn("error: the agent exited with status 3", r.out, r)
                self.assertIn(VISIBLE, r.out, "with the agent's stderr%s" % r)
                self.assertClean(r.out, "stdout", r)
                self.assertClean(r.err, "stderr", r, allow_cr=tty)
        self.normal_turn_still_works()

if __name__ == "__main__":
    unittest.main()

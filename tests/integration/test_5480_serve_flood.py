"""5480: a hostile (or injected) agent cannot make the bot flood Slack. A huge answer is
posted as at most SLACK_ANSWER_MESSAGES_MAX (4) messages plus the whole answer as the file
answer.md; files left in the outbox that cannot be sent are one notice per turn, which
names the first ten and counts the rest."""
import hashlib
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import ServeCase

ANSWER_MESSAGES_MAX = 4
LINE = "zq5481 flood line 0123456789"  # 29 chars + newline


@needs_bwrap
class Flood(ServeCase):
    def test_5481_a_16_MB_answer_is_a_few_messages_and_one_file_with_all_of_it(self):
        self.start_serve()
        reps = 16_000_000 // (len(LINE) + 1)
        d = self.dm("run: yes '%s' | head -n %d" % (LINE, reps))
        want = ((LINE + "\n") * reps).strip()  # the fake agent answers the output stripped

        def done(s):
            ups = [u for u in s["uploads"] if self.in_thread(u, d)]
            cut = [p for p in s["posts"] if self.in_thread(p, d) and "answer.md" in p["text"]]
            return ups and cut and s
        s = self.wait_for(lambda _: done(self.slack.state(brief=True)),
                          "the cut answer: its note and answer.md", timeout=120)
        self.quiet(2.0)
        s = self.slack.state(brief=True)
        posts = [p for p in s["posts"] if self.in_thread(p, d)
                 and not p["text"].startswith("_Working on it")]
        self.assertLessEqual(len(posts), ANSWER_MESSAGES_MAX,
                             "a 16 MB answer was posted as %d messages" % len(posts))
        self.assertIn(LINE, posts[0]["text"], "the answer begins in the thread")
        self.assertIn("answer.md", posts[-1]["text"], "the last message says where the rest is")
        ups = [u for u in s["uploads"] if self.in_thread(u, d)]
        self.assertEqual([u["name"] for u in ups], ["answer.md"], "one file: %r" % ups)
        self.assertEqual(ups[0]["size"], len(want.encode()), "the file holds the whole answer")
        self.assertEqual(ups[0]["sha256"], hashlib.sha256(want.encode()).hexdigest(),
                         "the file holds the answer byte for byte")

    def test_5482_fifty_outbox_files_too_big_to_send_are_one_short_notice(self):
        self.start_serve()
        d = self.dm("run: mkdir -p outbox && for i in $(seq -w 1 50); do "
                    "truncate -s 51M outbox/zq5482-big-$i.bin; done; echo zq5482 made")
        self.wait_answer(d, "zq5482 made")
        self.quiet(3.0)
        s = self.slack.state()
        notes = [p["text"] for p in s["posts"] if self.in_thread(p, d) and "outbox" in p["text"]]
        self.assertEqual(len(notes), 1, "one notice for the turn, not one per file%s"
                         % self.summary(s))
        note = notes[0]
        named = [n for n in range(1, 51) if "zq5482-big-%02d.bin" % n in note]
        self.assertEqual(len(named), 10, "the first ten are named: %r" % note)
        self.assertIn("40 more", note, "the rest are counted: %r" % note)
        self.assertIn("50", note, "the notice says how many: %r" % note)
        self.assertLess(len(note), 1500, "the notice stays short: %r" % note)
        self.assertEqual([u for u in s["uploads"] if self.in_thread(u, d)], [],
                         "nothing over the size cap is uploaded")


if __name__ == "__main__":
    unittest.main()

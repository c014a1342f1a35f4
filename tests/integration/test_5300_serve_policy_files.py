"""5300: `janebot serve`: allowlists, files from the sandbox outbox, and the context of an
existing human thread."""
import time
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import CHANNEL, DM, HUMAN, ServeCase

MALLORY = "U0MALLORY9"


@needs_bwrap
class Policy(ServeCase):
    def _refusals(self, s, info):
        return [t for t in self.thread_texts(s, info) if t.strip()]

    def _check_one_refusal(self, info):
        self.wait_for(lambda s: self._refusals(s, info), "a refusal in the thread")
        self.quiet(1.0)
        s = self.slack.state()
        posted = [p for p in s["posts"] if self.in_thread(p, info)]
        eph = [e for e in s["ephemerals"] if e["channel"] == info["channel"]
               and e.get("thread_ts") in (info["thread_ts"], None)]
        self.assertEqual(len(posted) + len(eph), 1, "exactly one refusal%s" % self.summary(s))
        text = (posted + eph)[0]["text"]
        self.assertLess(len(text), 400, "a short refusal: %r" % text)
        self.assertNotIn("echo:", text)
        self.assertFalse([r for r in s["reaction_log"] if r["ts"] == info["ts"]
                          and r["name"] in ("eyes", "white_check_mark")],
                         "no work may start%s" % self.summary(s))
        return text

    def test_5301_a_user_not_in_ALLOWED_USER_IDS_gets_one_polite_refusal_and_nothing_runs(self):
        self.start_serve(env={"ALLOWED_USER_IDS": "U0BOB0002, %s" % HUMAN})
        bad = self.dm("run: touch zq-mallory-was-here", user=MALLORY, channel="D0MALLORY9")
        self._check_one_refusal(bad)
        self.assertEqual(self.agent_calls(), [], "the agent must not run for an outsider")
        good = self.dm("zq-5301 alice is fine")
        self.wait_answer(good, "zq-5301 alice is fine (turn 1)")
        self.assertEqual(list(self.state.glob("**/zq-mallory-was-here")), [])

    def test_5302_a_channel_not_in_ALLOWED_CHANNEL_IDS_gets_one_refusal_and_nothing_runs(self):
        self.start_serve(env={"ALLOWED_CHANNEL_IDS": CHANNEL})
        bad = self.mention("zq-5302 from elsewhere", channel="C0OTHERCH9")
        self._check_one_refusal(bad)
        self.assertEqual(self.agent_calls(), [])
        good = self.mention("zq-5302 here")
        self.wait_answer(good, "zq-5302 here (turn 1)")

    def test_5303_empty_allowlists_let_everyone_in(self):
        self.start_serve(env={"ALLOWED_USER_IDS": "", "ALLOWED_CHANNEL_IDS": ""})
        d = self.dm("zq-5303 hi", user=MALLORY, channel="D0MALLORY9")
        self.wait_answer(d, "zq-5303 hi (turn 1)")


@needs_bwrap
class FilesAndContext(ServeCase):
    def test_5311_files_left_in_the_outbox_are_uploaded_to_the_thread_and_moved_to_sent(self):
        self.start_serve()
        d = self.dm("write outbox/zq-report.txt zq-5311 report body")
        up = self.wait_for(lambda s: next((u for u in s["uploads"]
                                           if u["name"] == "zq-report.txt"), None),
                           "the upload of zq-report.txt")
        self.assertEqual(up["content"], "zq-5311 report body", self.summary())
        self.assertEqual(up["channel"], d["channel"])
        self.assertEqual(up["thread_ts"], d["ts"], "the file goes into the thread")
        self.wait_answer(d, "wrote outbox/zq-report.txt")

        def moved(_s):
            sent = list(self.state.glob("**/outbox/sent/zq-report.txt"))
            left = [p for p in self.state.glob("**/outbox/zq-report.txt")]
            return sent if sent and not left else None
        self.wait_for(moved, "outbox/zq-report.txt to move to outbox/sent/", timeout=5)
        self.quiet(1.5)
        s = self.slack.state()
        self.assertEqual(len([u for u in s["uploads"] if u["name"] == "zq-report.txt"]), 1,
                         "uploaded once%s" % self.summary(s))

    def test_5312_the_first_mention_in_a_human_thread_gets_the_earlier_messages_as_context(self):
        self.start_serve()
        seed = self.slack.seed(CHANNEL, [
            {"user": "U0BOB0002", "text": "the build broke at zq-step-7"},
            {"user": HUMAN, "text": "I think it is the zq-linker flags"},
        ])
        parent = seed["thread_ts"]
        m = self.mention("zq-5312 can you look?", thread_ts=parent)
        text = self.wait_answer(m, "zq-5312 can you look?")
        self.assertIn("zq-step-7", text, "the thread's first message reaches the agent")
        self.assertIn("zq-linker", text, "the thread's replies reach the agent")
        s = self.slack.state()
        replies = [c for c in s["calls"] if c["method"] == "conversations.replies"]
        self.assertTrue(replies, "thread history is read with conversations.replies")
        self.assertTrue(all(c["args"].get("ts") in (parent, m["ts"]) for c in replies),
                        replies)
        self.assertEqual(m["thread_ts"], parent)
        p = [p for p in s["posts"] if "zq-5312" in p["text"]]
        self.assertTrue(p and all(x["thread_ts"] == parent for x in p), self.summary(s))

    def test_5313_a_long_thread_history_is_read_across_pages(self):
        self.start_serve()
        msgs = [{"user": "U0BOB0002", "text": "zq-hist-%02d" % i} for i in range(1, 13)]
        seed = self.slack.seed(CHANNEL, msgs)
        # pages of at most 5 messages, each repeating the parent (as Slack may)
        self.slack.config(repeat_parent=True, replies_max_limit=5)
        m = self.mention("zq-5313 summarise", thread_ts=seed["thread_ts"])
        text = self.wait_answer(m, "zq-5313 summarise")
        s = self.slack.state()
        replies = [c for c in s["calls"] if c["method"] == "conversations.replies"]
        self.assertGreater(len(replies), 2, "next_cursor must be followed%s" % self.summary(s))
        for i in range(1, 13):
            self.assertIn("zq-hist-%02d" % i, text, "every message of the thread")
        self.assertEqual(text.count("zq-hist-01"), 1, "the parent appears once (dedupe by ts)")


if __name__ == "__main__":
    unittest.main()

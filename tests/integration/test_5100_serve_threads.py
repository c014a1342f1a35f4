"""5100: `janebot serve`: mentions and DMs are answered in their thread; follow-ups resume
the conversation; acks, redeliveries, duplicates and events to ignore."""
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import (ACK_DEADLINE, BOT_USER, CHANNEL, DM, ServeCase)


@needs_bwrap
class Threads(ServeCase):
    def test_5101_a_mention_in_a_channel_is_answered_in_its_thread_without_the_mention(self):
        self.start_serve()
        m = self.mention("hello zq-5101 there")
        p = self.wait_post(lambda p: p["channel"] == CHANNEL and "zq-5101" in p["text"]
                           and "echo:" in p["text"], "the answer to the mention")
        self.assertEqual(p["thread_ts"], m["ts"],
                         "a top-level mention is answered in the thread under it%s"
                         % self.summary())
        self.assertIn("hello zq-5101 there (turn 1)", p["text"], self.summary())
        self.assertNotIn("<@%s>" % BOT_USER, p["text"], "the bot mention must be stripped")

    def test_5102_a_dm_is_answered_in_a_thread_under_it_and_every_envelope_is_acked(self):
        self.start_serve()
        d = self.dm("zq-5102 ping")
        text = self.wait_answer(d, "zq-5102 ping (turn 1)")
        self.assertIn("echo:", text)
        s = self.wait_all_acked()
        for e in s["envelopes"]:
            self.assertLess(e["latency"], ACK_DEADLINE, "ack too slow: %r%s" % (e, self.summary(s)))
        self.assertFalse([e for e in s["envelopes"] if e["retry_attempt"] > 0],
                         "nothing should need redelivery%s" % self.summary(s))
        self.assertFalse(s["stray_acks"], "acks for unknown envelopes: %r" % s["stray_acks"])

    def test_5103_follow_ups_in_a_thread_resume_the_same_agent_conversation(self):
        self.start_serve()
        d = self.dm("first zq-5103")
        self.wait_answer(d, "first zq-5103 (turn 1)")
        self.dm("second zq-5103", thread_ts=d["ts"])
        self.wait_answer(d, "second zq-5103 (turn 2)")
        m = self.mention("alpha zq-5103")
        self.wait_answer(m, "alpha zq-5103 (turn 1)")
        self.mention("beta zq-5103", thread_ts=m["ts"])
        self.wait_answer(m, "beta zq-5103 (turn 2)")

    def test_5104_separate_threads_are_separate_conversations(self):
        self.start_serve()
        a = self.dm("thread-a zq-5104")
        b = self.dm("thread-b zq-5104")
        self.wait_answer(a, "thread-a zq-5104 (turn 1)")
        self.wait_answer(b, "thread-b zq-5104 (turn 1)")
        s = self.slack.state()
        for p in s["posts"]:
            if "thread-a" in p["text"]:
                self.assertEqual(p["thread_ts"], a["ts"], self.summary(s))
            if "thread-b" in p["text"]:
                self.assertEqual(p["thread_ts"], b["ts"], self.summary(s))

    def test_5105_bot_messages_own_posts_edits_and_deletions_are_acked_and_ignored(self):
        self.start_serve()
        first = self.dm("zq-5105 original")
        self.wait_answer(first, "zq-5105 original (turn 1)")
        n_posts = len(self.slack.state()["posts"])
        self.slack.inject("bot_message", text="zq-5105 from another bot", channel=DM)
        self.slack.inject("own_bot_reply", text="zq-5105 my own words", channel=DM,
                          thread_ts=first["ts"])
        self.slack.inject("message_changed", channel=DM, target_ts=first["ts"],
                          text="zq-5105 edited")
        self.slack.inject("message_deleted", channel=DM, target_ts=first["ts"])
        last = self.dm("zq-5105 after")
        self.wait_answer(last, "zq-5105 after (turn 1)")
        s = self.wait_all_acked()
        later = s["posts"][n_posts:]
        self.assertEqual([p for p in later if p["thread_ts"] != last["ts"]], [],
                         "nothing but the last DM may be answered%s" % self.summary(s))
        for needle in ("another bot", "my own words", "edited"):
            self.assertNotIn(needle, self.all_bot_text(s), self.summary(s))
        prompts = [c["prompt"] for c in self.agent_calls()]
        self.assertEqual(len(prompts), 2, "the agent runs twice only: %r" % prompts)

    def test_5106_the_same_post_as_app_mention_and_as_message_runs_once(self):
        self.start_serve()
        both = self.slack.inject("both", text="zq-5106 twice delivered", channel=CHANNEL)
        self.assertEqual(len(both["event_ids"]), 2)
        self.wait_answer(both, "zq-5106 twice delivered (turn 1)")
        self.quiet(2.0)
        s = self.wait_all_acked()
        self.assertEqual(self.count_final(s, both, "zq-5106"), 1,
                         "answered exactly once%s" % self.summary(s))
        self.assertNotIn("(turn 2)", "\n".join(self.thread_texts(s, both)), self.summary(s))
        self.assertEqual(len(self.agent_calls()), 1, "the agent ran once")

    def test_5107_a_redelivered_event_is_acked_and_not_run_twice(self):
        self.start_serve()
        d = self.dm("zq-5107 once")
        self.wait_all_acked()
        self.slack.redeliver(d["event_ids"][0])     # retry_attempt 1, new envelope_id
        self.wait_answer(d, "zq-5107 once (turn 1)")
        self.slack.redeliver(d["event_ids"][0])     # retry_attempt 2, after the answer
        self.quiet(2.0)
        s = self.wait_all_acked()
        retries = [e for e in s["envelopes"] if e["retry_attempt"] > 0]
        self.assertEqual(len(retries), 2, self.summary(s))
        self.assertEqual(self.count_final(s, d, "zq-5107"), 1, "answered once%s"
                         % self.summary(s))
        self.assertEqual(len(self.agent_calls()), 1, "the agent ran once")

    def test_5108_malformed_envelopes_are_acked_and_serve_keeps_working(self):
        self.start_serve()
        self.slack.inject("raw_payload", payload={"type": "event_callback",
                                                  "event_id": "Ev0BROKEN01"})  # no event
        self.slack.inject("raw_payload", payload="not an object")
        self.slack.inject("raw_payload", payload={"event_id": "Ev0BROKEN02",
                                                  "event": {"type": "app_mention"}})
        self.slack.inject("raw_payload", type="mystery_type", payload={"x": 1})
        self.slack.inject("raw_event", event={"type": "reaction_added", "user": "U0ALICE01",
                                              "reaction": "tada"})
        self.slack.frame(text="this is not json at all")
        self.slack.frame(frame={"type": "unknown_frame_kind"})
        d = self.dm("zq-5108 still alive")
        self.wait_answer(d, "zq-5108 still alive (turn 1)")
        s = self.wait_all_acked()
        for e in s["envelopes"]:
            self.assertLess(e["latency"], ACK_DEADLINE, "%r%s" % (e, self.summary(s)))

    def test_5109_envelopes_are_acked_within_3_s_while_the_agent_is_busy(self):
        self.start_serve()
        busy = self.dm("sleep 4")
        self.wait_reaction(busy, "eyes")
        others = [self.dm("zq-5109 other %d" % i) for i in range(4)]
        self.dm("zq-5109 queued", thread_ts=busy["ts"])
        self.slack.inject("raw_payload", payload={"type": "event_callback",
                                                  "event_id": "Ev0BROKEN03"})
        s = self.wait_all_acked()
        for e in s["envelopes"]:
            self.assertLess(e["latency"], ACK_DEADLINE, "%r%s" % (e, self.summary(s)))
        self.assertFalse([e for e in s["envelopes"] if e["retry_attempt"] > 0],
                         "nothing should need redelivery%s" % self.summary(s))
        for i, o in enumerate(others):
            self.wait_answer(o, "zq-5109 other %d (turn 1)" % i)


if __name__ == "__main__":
    unittest.main()

"""5200: `janebot serve`: one turn as seen in Slack: reactions, the status message, the
answer (mrkdwn, chunked), failures, "status" / "abort" / "stop", queued follow-ups and
debounce."""
import re
import time
import unittest

from jbtest import needs_bwrap, procs_matching
from test_5000_serve_startup import ELAPSED_RE, ServeCase

SECRETS = ("sk-ant-api03", "SECRETSECRET", "b0tT0kenS3cretValue", "appT0kenS3cretValue")


@needs_bwrap
class Turns(ServeCase):
    def test_5201_eyes_when_work_starts_then_white_check_mark_when_answered(self):
        self.start_serve()
        d = self.dm("sleep 2")
        eyes = self.wait_reaction(d, "eyes")
        s = self.slack.state()
        self.assertEqual(self.count_final(s, d, "slept"), 0,
                         "eyes must come while the turn runs, before the answer%s"
                         % self.summary(s))
        self.wait_answer(d, "slept")
        done = self.wait_reaction(d, "white_check_mark")
        self.assertGreaterEqual(done["t"], eyes["t"])
        s = self.slack.state()
        self.assertFalse([r for r in s["reaction_log"] if r["name"] == "x"], self.summary(s))

    def test_5202_a_failing_agent_gives_x_and_a_short_friendly_message_without_secrets(self):
        self.start_serve()
        d = self.dm("crash 3")
        self.wait_reaction(d, "x")
        texts = self.wait_for(lambda s: [t for t in self.thread_texts(s, d) if t.strip()],
                              "a message in the thread about the failure")
        self.quiet(1.0)
        s = self.slack.state()
        every = self.all_bot_text(s)
        for secret in SECRETS:
            self.assertNotIn(secret, every, "a secret reached Slack%s" % self.summary(s))
        for t in self.thread_texts(s, d):
            self.assertLess(len(t), 800, "the failure message must be short: %r" % t)
        self.assertTrue(texts)
        self.assertFalse([r for r in s["reaction_log"]
                          if r["name"] == "white_check_mark" and r["op"] == "add"],
                         "no check mark on a failed turn%s" % self.summary(s))

    def test_5203_answers_are_converted_to_mrkdwn(self):
        self.start_serve()
        d = self.dm("zq-5203 **bold** and ~~gone~~ a & b, 2 > 1")
        text = self.wait_answer(d, "zq-5203")
        self.assertIn("*bold*", text)
        self.assertNotIn("**bold**", text, "Markdown bold must become mrkdwn *bold*")
        self.assertIn("~gone~", text)
        self.assertNotIn("~~gone~~", text)
        self.assertIn("a &amp; b, 2 &gt; 1", text, "& and > are escaped exactly once")
        self.assertNotIn("&amp;amp;", text)

    def test_5204_a_long_answer_is_split_into_messages_of_at_most_3900_chars_nothing_lost(self):
        self.start_serve()
        d = self.dm("run: seq 1 3000")   # 13,893 characters
        self._check_chunks(d, 3000, 3900, min_msgs=4)

    def test_5205_MAX_RESPONSE_LENGTH_sets_the_chunk_size(self):
        self.start_serve(env={"MAX_RESPONSE_LENGTH": "1000"})
        d = self.dm("run: seq 1 1000")   # 3,892 characters
        self._check_chunks(d, 1000, 1000, min_msgs=4)

    def _check_chunks(self, d, n, limit, min_msgs):
        def complete(s):
            nums = []
            for m in self.bot_messages(s, d):
                nums += [int(x) for x in re.findall(r"^\s*(\d+)\s*$", m.get("text") or "",
                                                    re.M)]
            return nums if n in nums else None
        self.wait_for(complete, "all %d lines of the answer" % n)
        self.quiet(1.5)
        s = self.slack.state()
        msgs = self.bot_messages(s, d)
        nums = []
        chunks = 0
        for m in msgs:
            t = m.get("text") or ""
            found = [int(x) for x in re.findall(r"^\s*(\d+)\s*$", t, re.M)]
            if found:
                chunks += 1
                self.assertLessEqual(len(t), limit, "a message over %d chars (%d)"
                                     % (limit, len(t)))
            nums += found
        self.assertEqual(nums, list(range(1, n + 1)),
                         "every line exactly once, in order%s" % self.summary(s))
        self.assertGreaterEqual(chunks, min_msgs, self.summary(s))
        for p in s["posts"]:
            self.assertLessEqual(len(p["text"] or ""), limit)

    def test_5206_one_status_message_is_updated_at_most_every_2_s_and_cleaned_up(self):
        self.start_serve()
        d = self.dm("run: for i in 1 2 3 4 5; do echo zq-step$i; sleep 1; done")
        self.wait_answer(d, "zq-step5")
        self.quiet(2.5)
        s = self.slack.state()
        answer_t = min([p["t"] for p in s["posts"] if self.in_thread(p, d)
                        and "zq-step5" in p["text"]] +
                       [u["t"] for u in s["updates"] if self.in_thread(u, d)
                        and "zq-step5" in u["text"]])
        status = [p for p in s["posts"] if self.in_thread(p, d) and p["t"] < answer_t
                  and "zq-step5" not in p["text"]]
        self.assertEqual(len(status), 1, "one status message while working%s" % self.summary(s))
        st = status[0]
        ups = sorted([u for u in s["updates"] if u["channel"] == d["channel"]
                      and u["ts"] == st["ts"]], key=lambda u: u["t"])
        times = [st["t"]] + [u["t"] for u in ups]
        progress = times[:-1] if ups and ups[-1]["t"] >= answer_t - 1.0 else times
        for a, b in zip(progress, progress[1:]):
            self.assertGreaterEqual(b - a, 1.8, "status updated faster than every 2 s: %s%s"
                                    % ([round(t - times[0], 2) for t in times],
                                       self.summary(s)))
        deleted = [x for x in s["deletes"] if x["ts"] == st["ts"]]
        finalised = ups and ups[-1]["t"] >= answer_t - 1.0
        self.assertTrue(deleted or finalised,
                        "the status message must be deleted or finalised at the end%s"
                        % self.summary(s))
        others = [p for p in s["posts"] if p["channel"] == d["channel"]
                  and p["thread_ts"] != d["thread_ts"]]
        self.assertEqual(others, [], "everything stays in the thread%s" % self.summary(s))

    def test_5207_status_in_a_thread_shows_what_runs_with_the_elapsed_time(self):
        self.start_serve()
        d = self.dm("sleep 4")
        self.wait_reaction(d, "eyes")
        time.sleep(1.0)
        t0 = time.time()
        q = self.dm("status", thread_ts=d["ts"])

        def reply(s):
            new = [p["text"] for p in s["posts"] if self.in_thread(p, d) and p["t"] >= t0]
            new += [e["text"] for e in s["ephemerals"] if e["channel"] == d["channel"]
                    and e["t"] >= t0]
            return next((t for t in new if ELAPSED_RE.search(t or "")), None)
        text = self.wait_for(reply, "a reply to 'status' with the elapsed time", timeout=3.5)
        self.assertNotIn("echo: status", text)
        self.wait_answer(d, "slept")
        self.quiet(1.0)
        s = self.slack.state()
        self.assertNotIn("echo: status", "\n".join(self.thread_texts(s, d)),
                         "'status' is a command, not a prompt%s" % self.summary(s))
        self.assertTrue(q)

    def _abort(self, word):
        self.start_serve()
        tag = self.tag("hang")
        d = self.dm("hang %s" % tag)
        self.wait_for(lambda s: procs_matching("hang-" + tag), "the agent to start hanging")
        t0 = time.time()
        self.dm(word, thread_ts=d["ts"])
        left = self.wait_gone("hang-" + tag, timeout=10.0)
        self.assertEqual(left, [], "the agent must be killed by %r%s" % (word, self.summary()))

        def note(s):
            new = [p["text"] for p in s["posts"] if self.in_thread(p, d) and p["t"] >= t0]
            new += [u["text"] for u in s["updates"] if self.in_thread(u, d) and u["t"] >= t0]
            new += [e["text"] for e in s["ephemerals"] if e["channel"] == d["channel"]
                    and e["t"] >= t0]
            return next((t for t in new if re.search(r"stop|abort|cancel", t or "", re.I)),
                        None)
        self.wait_for(note, "a note in the thread that the turn was stopped", timeout=10)
        self.dm("zq-after-%s" % word, thread_ts=d["ts"])
        self.wait_answer(d, "zq-after-%s" % word)
        s = self.slack.state()
        self.assertNotIn("echo: %s" % word, "\n".join(self.thread_texts(s, d)),
                         "%r is a command, not a prompt" % word)

    def test_5208_abort_in_a_thread_kills_the_running_agent_and_says_so(self):
        self._abort("abort")

    def test_5209_stop_in_a_thread_kills_the_running_agent_and_says_so(self):
        self._abort("stop")

    def test_5210_messages_sent_while_a_turn_runs_are_queued_and_run_next_merged(self):
        self.start_serve()
        d = self.dm("sleep 3")
        self.wait_reaction(d, "eyes")
        self.dm("zq-second", thread_ts=d["ts"])
        self.dm("zq-third", thread_ts=d["ts"])
        self.wait_answer(d, "slept")
        text = self.wait_for(lambda s: next((t for t in self.thread_texts(s, d)
                                             if "zq-second" in t and "zq-third" in t), None),
                             "one answer to both queued messages", timeout=15)
        self.assertIn("(turn 2)", text, "queued messages become one next turn")
        self.quiet(1.5)
        s = self.slack.state()
        self.assertNotIn("(turn 3)", "\n".join(self.thread_texts(s, d)), self.summary(s))
        self.assertEqual(len(self.agent_calls()), 2, "two turns: %r" % self.agent_calls())

    def test_5211_quick_successive_messages_become_one_turn_with_DEBOUNCE_MS(self):
        self.start_serve(env={"DEBOUNCE_MS": "1500"})
        d = self.dm("zq-alpha")
        self.dm("zq-beta", thread_ts=d["ts"])
        self.dm("zq-gamma", thread_ts=d["ts"])
        text = self.wait_for(lambda s: next((t for t in self.thread_texts(s, d)
                                             if "zq-gamma" in t), None),
                             "the debounced answer", timeout=15)
        for w in ("zq-alpha", "zq-beta", "zq-gamma"):
            self.assertIn(w, text, "one prompt holds all three messages")
        self.assertIn("(turn 1)", text)
        self.quiet(2.0)
        s = self.slack.state()
        self.assertEqual(len(self.agent_calls()), 1, "one turn: %r" % self.agent_calls())
        self.assertNotIn("(turn 2)", "\n".join(self.thread_texts(s, d)), self.summary(s))


if __name__ == "__main__":
    unittest.main()

"""5700: `janebot serve` under faults of what it depends on: a Socket Mode connection that
drops and is refreshed over and over, Web API 429 and 5xx bursts, a Sprites API that fails
30 % of its calls and answers slowly, a slow LLM upstream. Every message is still
answered exactly once (or fails with a message the user can read), Retry-After is
respected, nothing is left behind, and one slow thread does not hold up the others."""
import json
import sqlite3
import sys
import threading
import time
import unittest

from jbtest import FAKES, needs_bwrap
from test_5000_serve_startup import BOT_USER, FakeSlackError, ServeCase

sys.path.insert(0, str(FAKES))


class FaultCase(ServeCase):
    def bot_texts(self, s, info):
        """Texts of the bot's messages now in info's thread (after updates/deletes)."""
        return [m.get("text") or "" for m in self.bot_messages(s, info)]

    def answered_once(self, infos, needle_of, extra=""):
        s = self.slack.state()
        for info in infos:
            got = [t for t in self.bot_texts(s, info) if needle_of(info) in t]
            self.assertEqual(len(got), 1, "%r answered once, not %d times%s%s"
                             % (needle_of(info), len(got), extra, self.summary(s)))
        return s


@needs_bwrap
class SocketFaults(FaultCase):
    def test_5701_drops_and_refresh_storms_every_message_answered_once(self):
        self.start_serve(env={"RATE_LIMIT_PER_MINUTE": "1000"})  # 24 messages of one user
        stop = threading.Event()
        storms = [0]

        def storm():
            i = 0
            while not stop.is_set():
                try:
                    if i % 2:
                        self.slack.drop()
                    else:
                        self.slack.disconnect("refresh_requested", close_after=0.3)
                    storms[0] += 1
                except FakeSlackError:
                    pass
                i += 1
                stop.wait(0.4)

        t = threading.Thread(target=storm, daemon=True)
        t.start()
        infos = []
        try:
            parents = []
            for i in range(16):  # four threads, four messages each
                parent = parents[i % 4]["ts"] if i >= 4 else None
                info = self.dm("zq5701 message %02d" % i, thread_ts=parent)
                info["needle"] = "zq5701 message %02d" % i
                infos.append(info)
                if i < 4:
                    parents.append(info)
                time.sleep(0.3)
        finally:
            stop.set()
            t.join(5)
        self.assertGreater(storms[0], 6, "the storm happened")
        for info in infos:
            self.wait_answer(info, info["needle"], timeout=20)
        self.quiet(3.0)  # redeliveries after the storm must not answer again
        s = self.answered_once(infos, lambda i: i["needle"])
        self.assertGreater(len(s["connections"]), 6, "serve reconnected through the storm")


@needs_bwrap
class WebApiFaults(FaultCase):
    def test_5702_429_and_5xx_bursts_answers_arrive_and_retry_after_is_respected(self):
        self.start_serve()
        self.slack.fail("chat.postMessage", count=3, mode=429, retry_after=2)
        self.slack.fail("reactions.add", count=2, mode=429, retry_after=1)
        a = self.dm("zq5702 during a 429 burst")
        self.wait_answer(a, "zq5702 during a 429 burst", timeout=20)
        self.slack.fail("chat.postMessage", count=3, mode=500)
        b = self.dm("zq5702 during a 500 burst")
        self.wait_answer(b, "zq5702 during a 500 burst", timeout=20)
        self.slack.fail("chat.update", count=4, mode=500)
        c = self.dm("zq5702 after the bursts")
        self.wait_answer(c, "zq5702 after the bursts", timeout=20)
        self.quiet(3.0)
        s = self.answered_once([a, b, c], lambda i: {
            a["ts"]: "zq5702 during a 429 burst", b["ts"]: "zq5702 during a 500 burst",
            c["ts"]: "zq5702 after the bursts"}[i["ts"]])
        self.assertEqual(s["early_retries"], [], "a call came back inside its Retry-After"
                         + self.summary(s))
        posts = [x for x in s["calls"] if x["method"] == "chat.postMessage"]
        self.assertGreaterEqual(len(posts), 6, "the failed calls were retried")


@needs_bwrap
class SpritesFaults(FaultCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()

    def known_sprites(self):
        with sqlite3.connect(str(self.state / "janebot.db")) as db:
            names = {r[0] for r in db.execute("SELECT name FROM sandbox_names")}
            try:
                names |= {r[0] for r in db.execute("SELECT name FROM sandbox_pool")}
            except sqlite3.Error:
                pass
        return names

    def test_5703_a_flaky_slow_sprites_api_answers_or_fails_clearly_and_leaks_nothing(self):
        self.fake.fail_random.seed(5703)
        self.fake.fail_ratio = 0.3
        self.fake.rest_delay = 0.3
        self.start_serve()
        infos = [self.dm("zq5703 thread %d" % i) for i in range(3)]

        def outcome(s, info):
            texts = self.thread_texts(s, info)
            if any("zq5703 thread" in t and "echo:" in t for t in texts):
                return "answered"
            if any("sprite" in t.lower() and ("cannot" in t or "could not" in t or
                                               "failed" in t) for t in texts):
                return "failed"
            return None
        for info in infos:
            self.wait_for(lambda s: outcome(s, info), "an answer or a clear failure in %s"
                          % info["thread_ts"], timeout=20)
        self.quiet(2.0)
        s = self.slack.state()
        outcomes = [outcome(s, i) for i in infos]
        self.assertIn("answered", outcomes, "with 30 %% of calls failing, a turn still "
                      "completes (the client retries)%s" % self.summary(s))
        calls = [c for c in self.fake.calls]
        self.assertGreater(len(calls), 5)
        self.stop_serve()
        live = {n for n, sp in self.fake.sprites.items() if sp is not None}
        unknown = live - self.known_sprites()
        self.assertEqual(unknown, set(), "sprites the store does not know (leaked): %s"
                         % sorted(unknown))


@needs_bwrap
class SlowLlm(FaultCase):
    def setUp(self):
        super().setUp()
        from llm_upstream import FakeUpstream
        self.up = FakeUpstream(self.tmp / "upstream.jsonl").start()
        self.addCleanup(self.up.stop)
        self.env.update({"ANTHROPIC_API_KEY": "sk-ant-api03-REALKEY-5704abcdef0123456789",
                         "JANEBOT_UPSTREAM_ANTHROPIC": self.up.url})

    @staticmethod
    def ask(tag, head_delay):
        body = {"model": "claude-sonnet-4-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": tag}],
                "fake": {"head_delay": head_delay}}
        return ("run: curl -sS -m 60 -H \"x-api-key: $ANTHROPIC_API_KEY\" "
                "-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' "
                "-d '%s' \"$ANTHROPIC_BASE_URL/v1/messages\"; echo; echo %s done"
                % (json.dumps(body), tag))

    def test_5704_a_slow_llm_upstream_does_not_hold_up_other_threads(self):
        self.start_serve()
        slow = self.dm(self.ask("zq5704slow", 9))
        time.sleep(1.0)
        t0 = time.monotonic()
        fast = self.dm(self.ask("zq5704fast", 0))
        got = self.wait_answer(fast, "zq5704fast done", timeout=15)
        took = time.monotonic() - t0
        self.assertIn("hi from fake", got, "the fast thread got its model answer")
        s = self.slack.state()
        self.assertFalse(any("zq5704slow done" in t for t in self.thread_texts(s, slow)),
                         "the slow request is still waiting on its upstream")
        self.assertLess(took, 7.0, "the fast thread waited %.1fs behind the slow one" % took)
        got = self.wait_answer(slow, "zq5704slow done", timeout=20)
        self.assertIn("hi from fake", got, "the slow request completes too")


if __name__ == "__main__":
    unittest.main()

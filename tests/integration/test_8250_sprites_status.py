"""8250: on the Sprites backend a stuck Slack does not cost a turn: the exec's WebSocket
loop only records progress, so while every chat.update hangs for 60 s a 60 s agent run
keeps its exec (answered pings, no drop, no second run) and its answer arrives as soon as
it ends. The agent is test_5470's scripted STEPS_AGENT."""
import unittest

from test_5470_serve_status_writer import StatusCase, use_steps_agent


class SpritesStatus(StatusCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()
        use_steps_agent(self)  # after the fake's own agent copy (the tmp dir is 0711 now)

    def test_8251_a_60_s_exec_survives_a_stuck_slack_and_answers_at_once(self):
        self.start_serve()
        self.slack.fail("chat.update", count=1000, mode="hang", seconds=60)
        d = self.dm("steps zq8251 12 5 0")  # a tool use every 5 s for 60 s
        msgs = {"zq8251": d}
        s = self.wait_long(lambda s: self.answers(s, msgs) and s, "the answer", timeout=100)
        self.assert_answered_in_time(s, msgs, "chat.update hangs for 60 s", 3.0)
        self.assertTrue([c for c in s["calls"] if c["method"] == "chat.update"
                         and c.get("held")], "chat.update was never held: the test did not "
                        "test a stuck Slack%s" % self.summary(s))
        runs = [e for e in self.fake.events
                if e["kind"] == "exec" and "steps-agent" in " ".join(map(str, e["cmd"]))]
        self.assertEqual(len(runs), 1, "the agent ran once, in one exec: %r%s"
                         % (runs, self.summary(s)))
        self.assertFalse([e for e in self.fake.events if e["kind"] in ("dropped", "signal")],
                         "no exec was dropped or killed: %r" % self.fake.events)


if __name__ == "__main__":
    unittest.main()

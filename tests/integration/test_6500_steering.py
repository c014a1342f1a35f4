"""6500: in-thread control of a running turn. Steering: a message sent in the thread while
its turn runs reaches an agent that takes stream-json input, and is queued for the next
turn otherwise; the status message says which. Stopping: a :x: reaction by the requester on the
message that started the turn, or on any of the bot's messages in its thread, stops it
like `abort`, and the answer says who; a :x: by someone else is ignored (logged); a
malformed reaction event is logged and everyone else is served."""
import time
import unittest

import json

from jbtest import FAKE_BIN, procs_matching
from test_5000_serve_startup import HUMAN, ServeCase

OTHER = "U0OTHER001"


class StopByReaction(ServeCase):
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true"}

    def hanging_turn(self, tag):
        """A turn whose agent runs until killed; returns its thread."""
        d = self.dm("hang %s" % tag)
        self.wait_for(lambda s: procs_matching("hang-" + tag), "the agent to start")
        return d

    def react(self, d, ts, user=HUMAN, reaction="x"):
        return self.slack.inject("reaction_added", channel=d["channel"], target_ts=ts, user=user,
                                 reaction=reaction)

    def wait_stopped_by(self, d, user, tag):
        text = self.wait_answer(d, "stopped by <@%s>" % user)
        self.assertEqual(self.wait_gone("hang-" + tag, timeout=5.0), [],
                         "the turn's processes must be gone%s" % self.summary())
        return text

    def test_6501_x_by_the_requester_on_their_message_stops_the_turn(self):
        self.start_serve()
        tag = self.tag("r6501")
        d = self.hanging_turn(tag)
        self.react(d, d["ts"])
        self.wait_stopped_by(d, HUMAN, tag)
        self.wait_reaction(d, "x")  # the turn's own end mark on the message
        self.dm("zq-6501 after", thread_ts=d["ts"])
        self.wait_answer(d, "zq-6501 after")

    def test_6502_x_on_a_bot_message_of_the_thread_stops_the_turn(self):
        self.start_serve()
        d = self.dm("zq-6502 first")
        self.wait_answer(d, "zq-6502 first")
        old = self.bot_messages(self.slack.state(), d)[0]  # an answer of an earlier turn
        tag = self.tag("r6502")
        self.dm("hang %s" % tag, thread_ts=d["ts"])
        self.wait_for(lambda s: procs_matching("hang-" + tag), "the agent to start")
        self.react(d, old["ts"])
        self.wait_stopped_by(d, HUMAN, tag)

    def test_6503_x_by_someone_else_is_ignored_and_logged(self):
        self.start_serve()
        tag = self.tag("r6503")
        d = self.hanging_turn(tag)
        self.react(d, d["ts"], user=OTHER)
        self.react(d, d["ts"], reaction="thumbsup")  # not a stop either
        self.wait_for(lambda s: "ignored: only %s" % HUMAN in self.serve_output(),
                      "a log line saying the :x: was ignored")
        self.quiet(1.5)
        self.assertTrue(procs_matching("hang-" + tag), "the turn must still run%s"
                        % self.summary())
        self.assertNotIn("stopped", "\n".join(self.thread_texts(self.slack.state(), d)))
        self.react(d, d["ts"])  # the requester can
        self.wait_stopped_by(d, HUMAN, tag)

    def test_6506_x_by_one_of_the_channels_approvers_stops_the_turn(self):
        (self.state / "janebot.yaml").write_text(
            "channels:\n  default: {approvers: [%s]}\n" % OTHER)
        self.start_serve()
        tag = self.tag("r6506")
        d = self.hanging_turn(tag)
        self.react(d, d["ts"], user="U0STRANGER9")  # neither requester nor approver
        self.wait_for(lambda s: "ignored: only %s" % HUMAN in self.serve_output(),
                      "a log line saying the :x: was ignored")
        self.assertTrue(procs_matching("hang-" + tag), "the turn must still run%s"
                        % self.summary())
        self.react(d, d["ts"], user=OTHER)
        self.wait_stopped_by(d, OTHER, tag)

    def test_6504_a_malformed_reaction_event_is_logged_and_the_bot_serves_on(self):
        self.start_serve()
        self.slack.inject("raw_event", event={"type": "reaction_added", "user": HUMAN,
                                              "reaction": "x", "item": "C0DEVCHAN1"})
        self.slack.inject("raw_event", event={"type": "reaction_added", "user": HUMAN,
                                              "reaction": "x",
                                              "item": {"type": "file", "file": "F1"}})
        self.wait_for(lambda s: "malformed reaction event" in self.serve_output(),
                      "a log line about the malformed reaction")
        d = self.dm("zq-6504 still here")
        self.wait_answer(d, "zq-6504 still here")
        self.assertEqual(self.serve_output().count("malformed reaction event"), 1,
                         "logged once" + self.summary())

    def test_6505_a_redelivered_x_stops_nothing_new(self):
        self.start_serve()
        tag = self.tag("r6505")
        d = self.hanging_turn(tag)
        r = self.react(d, d["ts"])
        self.wait_stopped_by(d, HUMAN, tag)
        tag2 = self.tag("r6505b")
        self.dm("hang %s" % tag2, thread_ts=d["ts"])
        self.wait_for(lambda s: procs_matching("hang-" + tag2), "the next turn's agent")
        self.slack.redeliver(r["event_ids"][0])
        self.quiet(1.5)
        self.assertTrue(procs_matching("hang-" + tag2), "a redelivered :x: must not stop a "
                        "later turn%s" % self.summary())
        self.dm("abort", thread_ts=d["ts"])
        self.wait_gone("hang-" + tag2, timeout=5.0)


class Steering(ServeCase):
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true"}

    def status_says(self, d, needle):
        return self.wait_for(lambda s: any(needle in t for t in self.thread_texts(s, d)),
                             "the status message to say %r" % needle)

    def wait_agent_started(self, needle):
        self.wait_for(lambda s: any(needle in (c.get("prompt") or "")
                                    for c in self.agent_calls()), "the agent to start")

    def test_6510_a_message_reaches_an_agent_that_takes_input(self):
        self.start_serve(env={"JANEBOT_AGENT_CMD_INPUT": "stream-json"})
        d = self.dm("steerwait 10 zq-6510")
        self.wait_agent_started("zq-6510")
        self.dm("zq-6510 also say banana", thread_ts=d["ts"])
        self.status_says(d, "passed to the running agent")
        self.wait_answer(d, "steered: zq-6510 also say banana")
        self.quiet(1.5)
        s = self.slack.state()
        self.assertEqual(self.count_final(s, d, "zq-6510 also say banana"), 1,
                         "the message is answered once, by the running turn%s" % self.summary(s))
        self.assertEqual(len(self.agent_calls()), 1, "no second run%s" % self.summary(s))
        self.dm("zq-6510 next", thread_ts=d["ts"])  # the conversation goes on as usual
        self.wait_answer(d, "echo: zq-6510 next")

    def test_6511_a_message_for_an_agent_without_input_is_queued_for_the_next_turn(self):
        self.start_serve()
        d = self.dm("sleep 3 zq-6511")
        self.wait_agent_started("zq-6511")
        self.dm("zq-6511 later", thread_ts=d["ts"])
        self.status_says(d, "queued for the next turn")
        self.wait_answer(d, "slept")
        self.wait_answer(d, "echo: zq-6511 later")

    def test_6512_a_message_arriving_as_the_run_ends_is_answered_in_the_next_turn(self):
        self.start_serve(env={"JANEBOT_AGENT_CMD_INPUT": "stream-json"})
        d = self.dm("steerwait 1 zq-6512")
        self.wait_answer(d, "no steering")
        # The run's answer is out (its input closed): a message now is not lost.
        self.dm("zq-6512 just after", thread_ts=d["ts"])
        self.wait_answer(d, "echo: zq-6512 just after")
        self.quiet(1.0)
        self.assertEqual(self.count_final(self.slack.state(), d, "zq-6512 just after"), 1,
                         "answered once" + self.summary())


class AmpInput(ServeCase):
    """Amp runs with --stream-json-input; a message while it works is a steering line (the
    fake CLI in tests/fakes/bin)."""
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true",
                 "JANEBOT_AGENT": "amp", "AMP_API_KEY": "amp-test-key-6513xyz",
                 "JANEBOT_AGENT_BIN": str(FAKE_BIN / "amp")}

    def test_6513_a_message_reaches_a_running_amp_as_a_steering_line(self):
        self.start_serve()
        d = self.dm("steerwait 10 zq-6513")
        self.wait_for(lambda s: list(self.state.glob("**/.fake-amp/calls.jsonl")),
                      "amp to start")
        self.dm("zq-6513 also say banana", thread_ts=d["ts"])
        self.wait_for(lambda s: any("passed to the running agent" in t
                                    for t in self.thread_texts(s, d)), "the status to say so")
        self.wait_answer(d, "steered: zq-6513 also say banana [steer=true]")
        self.dm("zq-6513 next", thread_ts=d["ts"])
        self.wait_answer(d, "argv ok: echo: zq-6513 next (turn 2)")
        calls = [json.loads(x) for p in self.state.glob("**/.fake-amp/calls.jsonl")
                 for x in p.read_text().splitlines()]
        self.assertEqual(len(calls), 2, calls)
        self.assertIn("--stream-json-input", calls[0]["argv"])


class ClaudeInput(ServeCase):
    """Claude Code runs with --input-format stream-json (the fake CLI in tests/fakes/bin)."""
    serve_env = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true",
                 "JANEBOT_AGENT": "claude", "ANTHROPIC_API_KEY": "sk-ant-test-key-123456",
                 "JANEBOT_AGENT_BIN": str(FAKE_BIN / "claude")}

    def control_requests(self):
        out = []
        for p in self.state.glob("**/.fake-claude/control.jsonl"):
            out += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        return out

    def test_6520_a_stop_sends_claude_the_interrupt_request_first(self):
        self.start_serve()
        d = self.dm("wait-for-interrupt zq-6520")
        # Once it has logged its call it is reading stdin (a slow start must not let the
        # 3 s grace pass before it could read the request).
        self.wait_for(lambda s: list(self.state.glob("**/.fake-claude/calls.jsonl")),
                      "the fake CLI to start")
        self.react(d)
        self.wait_answer(d, "stopped by <@%s>" % HUMAN)
        reqs = self.control_requests()
        self.assertEqual([r.get("request") for r in reqs], [{"subtype": "interrupt"}],
                         "one interrupt control request on stdin%s" % self.summary())

    def test_6521_a_claude_that_ignores_the_interrupt_is_killed_after_a_grace(self):
        self.start_serve()
        tag = self.tag("r6521")
        d = self.dm("ignore-interrupt %s" % tag)
        self.wait_for(lambda s: procs_matching("hang-" + tag), "the agent to start")
        self.dm("abort", thread_ts=d["ts"])
        self.wait_answer(d, "stopped by <@%s>" % HUMAN)
        self.assertEqual(self.wait_gone("hang-" + tag, timeout=5.0), [],
                         "the turn's processes must be gone%s" % self.summary())

    def test_6522_claude_runs_with_stream_json_input_and_answers(self):
        self.start_serve()
        d = self.dm("zq-6522 first")
        self.wait_answer(d, "argv ok: echo: zq-6522 first")
        argv = [c["argv"] for p in self.state.glob("**/.fake-claude/calls.jsonl")
                for c in map(json.loads, p.read_text().splitlines())]
        self.assertIn("--input-format", argv[0], "claude runs with stream-json input")

    def react(self, d, user=HUMAN):
        return self.slack.inject("reaction_added", channel=d["channel"], target_ts=d["ts"],
                                 user=user, reaction="x")


if __name__ == "__main__":
    unittest.main()

"""5460: the /janebot slash command (Socket Mode `slash_commands` envelopes): status, cancel
and help are answered in the ack, visible to the caller only; the allowlist applies."""
import os
import unittest

from test_5000_serve_startup import ServeCase

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                        "conformance", "slack")


def slash(text, user="U0ALICE01", channel="C0DEVCHAN1"):
    """The form fields Slack sends for /janebot (as in conformance/slack/slash_commands.json)."""
    return {"token": "unused", "team_id": "T0AB12CDE", "channel_id": channel,
            "channel_name": "dev", "user_id": user, "user_name": "alice",
            "command": "/janebot", "text": text, "api_app_id": "A0JANEBOT1",
            "response_url": "https://hooks.example.com/commands/1", "trigger_id": "1.2.3"}


class Slash(ServeCase):
    def ack_of(self, event_id):
        def found(s):
            envs = [e["envelope_id"] for e in s["envelopes"] if e["event_id"] == event_id]
            return next((a for a in s["acks"] if a["envelope_id"] in envs), None)
        return self.wait_for(found, "the ack of the slash command")

    def command(self, text, **kw):
        out = self.slack.inject("raw_payload", type="slash_commands", payload=slash(text, **kw),
                                accepts_response_payload=True)
        return self.ack_of(out["event_ids"][0])["payload"] or {}

    def test_5461_status_help_and_unknown_words_are_answered_in_the_ack(self):
        self.start_serve()
        st = self.command("status")
        self.assertEqual(st.get("response_type"), "ephemeral", st)
        self.assertIn("janebot is up. 0 turns running, 0 in this channel.", st.get("text", ""))
        h = self.command("")
        self.assertIn("/janebot status", h.get("text", ""))
        self.assertIn("mention @janebot", h.get("text", ""))
        u = self.command("frobnicate now")
        self.assertIn("Unknown command `frobnicate`", u.get("text", ""))

    def test_5462_cancel_stops_the_callers_running_turn_in_that_channel(self):
        self.start_serve()
        self.mention("hang zq-5462", channel="C0DEVCHAN1", user="U0ALICE01")
        self.wait_for(lambda s: self.command("status").get("text", "").find(
            "1 in this channel") >= 0, "the turn to run")
        other = self.command("cancel", user="U0BOB0002")
        self.assertIn("You have no turn running in this channel.", other.get("text", ""))
        mine = self.command("cancel")
        self.assertIn("Stopping 1 turn of yours in this channel.", mine.get("text", ""))
        self.wait_for(lambda s: "0 in this channel" in self.command("status").get("text", ""),
                      "the turn to stop")

    def test_5465_a_button_click_janebot_never_posted_stops_nothing(self):
        # janebot posts no buttons: a block_actions payload naming a running thread (any
        # user's, allowlisted or not) must not cancel its turn.
        self.start_serve()
        m = self.mention("hang zq-5465", channel="C0DEVCHAN1", user="U0ALICE01")
        self.wait_for(lambda s: self.command("status").get("text", "").find(
            "1 in this channel") >= 0, "the turn to run")
        key = "%s:%s" % (m["channel"], m["thread_ts"])
        click = {"type": "block_actions", "user": {"id": "U0MALLORY"},
                 "actions": [{"type": "button", "action_id": "cancel", "value": key}]}
        out = self.slack.inject("raw_payload", type="interactive", payload=click)
        self.ack_of(out["event_ids"][0])
        self.quiet(1.5)
        self.assertIn("1 in this channel", self.command("status").get("text", ""),
                      "the turn still runs")
        s = self.slack.state()
        self.assertFalse([p for p in s["posts"] if "Stopping" in (p.get("text") or "")],
                         self.summary(s))
        self.command("cancel")

    def test_5463_a_user_off_the_allowlist_is_refused(self):
        self.start_serve(env={"ALLOWED_USER_IDS": "U0BOB0002"})
        r = self.command("status")
        self.assertIn("not allowed", r.get("text", ""))

    @unittest.skipUnless(os.path.isdir(FIXTURES), "../shared/conformance is not beside the "
                         "project (a fresh clone): the real slash-command payload is not here")
    def test_5464_the_real_slash_command_payload_is_answered(self):
        self.start_serve()
        out = self.slack.inject("fixture", name="slash_commands.json")
        ack = self.ack_of(out["event_ids"][0])
        self.assertIn("janebot is up.", (ack["payload"] or {}).get("text", ""), ack)

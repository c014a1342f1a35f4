"""8200: `janebot serve` on the Sprites backend: files the agent leaves in the sprite's
outbox reach the Slack thread (uploaded once, then moved to ~/outbox/sent/); a message sent
while the agent runs reaches it through the exec's stdin."""
from test_5000_serve_startup import ServeCase


class SpritesServe(ServeCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()

    def test_8201_files_in_the_sprites_outbox_are_uploaded_once_and_moved_to_sent(self):
        self.start_serve()
        d = self.dm("write outbox/zq-8201.txt zq-8201 report body")
        up = self.wait_for(lambda s: next((u for u in s["uploads"]
                                           if u["name"] == "zq-8201.txt"), None),
                           "the upload of zq-8201.txt")
        self.assertEqual(up["content"], "zq-8201 report body", self.summary())
        self.assertEqual(up["thread_ts"], d["ts"], "the file goes into the thread")
        self.wait_answer(d, "wrote outbox/zq-8201.txt")
        sprite = [n for n in self.fake.sprites if n.startswith("jane-")][0]
        home = self.tmp / "sprites" / sprite
        self.wait_for(lambda _s: (home / "outbox" / "sent" / "zq-8201.txt").exists() and
                      not (home / "outbox" / "zq-8201.txt").exists(),
                      "zq-8201.txt to move to outbox/sent/", timeout=5)
        self.quiet(1.0)
        s = self.slack.state()
        self.assertEqual(len([u for u in s["uploads"] if u["name"] == "zq-8201.txt"]), 1,
                         "uploaded once%s" % self.summary(s))

    def test_8202_a_message_reaches_the_agent_running_in_a_sprite(self):
        # The sprite's exec carries a live stdin (stream 0): steering works there as locally.
        self.start_serve(env={"JANEBOT_AGENT_CMD_INPUT": "stream-json"})
        d = self.dm("steerwait 15 zq-8202")
        self.wait_for(lambda s: list((self.tmp / "sprites").glob("*/.fake-agent/calls.jsonl")),
                      "the agent to start in the sprite")
        self.dm("zq-8202 also say banana", thread_ts=d["ts"])
        self.wait_for(lambda s: any("passed to the running agent" in t
                                    for t in self.thread_texts(s, d)), "the status to say so")
        self.wait_answer(d, "steered: zq-8202 also say banana")

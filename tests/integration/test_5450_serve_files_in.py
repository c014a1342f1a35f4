"""5450: files users share in a Slack thread reach the agent's sandbox (~/inbox/): fetched
with the bot token from Slack's file URL when the turn runs, named in the prompt; files over
the size cap are skipped with a notice; a payload pointing elsewhere never gets the token."""
import http.server
import threading
import time

from jbtest import needs_bwrap
from test_5000_serve_startup import BOT_TOKEN, BOT_USER, CHANNEL, DM, HUMAN, ServeCase


class Recorder(http.server.BaseHTTPRequestHandler):
    """A tiny HTTP server standing for a hostile host: it records every request."""
    seen = None  # set per server

    def do_GET(self):
        self.server.seen.append({"path": self.path,
                                 "auth": self.headers.get("Authorization")})
        body = b"stolen"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class FilesInMixin:
    def share(self, text, files, channel=DM):
        # raw_text: the fake would escape the "<@U…>" of a mention otherwise
        return self.slack.inject("file_share", text=text, files=files, user=HUMAN,
                                 channel=channel, raw_text=True)

    def raw_file_share(self, text, files, ts):
        """A file_share DM whose files[] the test writes itself (sizes, URLs)."""
        e = {"type": "message", "subtype": "file_share", "text": text, "files": files,
             "user": HUMAN, "ts": ts, "channel": DM, "event_ts": ts, "channel_type": "im"}
        self.slack.inject("raw_event", event=e)
        return {"channel": DM, "ts": ts, "thread_ts": ts}

    def prompts(self):
        return [c.get("prompt") or "" for c in self.agent_calls()]


@needs_bwrap
class FilesIn(FilesInMixin, ServeCase):
    def test_5451_a_shared_file_is_in_the_sandbox_inbox_and_named_in_the_prompt(self):
        self.start_serve()
        d = self.share("<@%s> read inbox/zq-note.txt" % BOT_USER,
                       [{"name": "zq-note.txt", "content": "zq-5451 file body\n"}],
                       channel=CHANNEL)
        # the fake answers the download with Slack's sign-in page unless the bot token
        # came with it: the content arriving proves the token was sent to the fake
        self.wait_answer(d, "zq-5451 file body")
        p = [x for x in self.prompts() if "zq-note.txt" in x]
        self.assertTrue(p, "the agent ran%s" % self.summary())
        self.assertIn("[Files shared in this thread are in ~/inbox/: zq-note.txt (18 bytes)]",
                      p[0])
        self.assertNotIn(BOT_TOKEN, self.all_bot_text(self.slack.state()))

    def test_5452_two_files_with_one_name_both_arrive(self):
        self.start_serve()
        d = self.share("read inbox/same-2.txt",
                       [{"name": "same.txt", "content": "first\n"},
                        {"name": "../same.txt", "content": "zq-5452 second\n"}])
        self.wait_answer(d, "zq-5452 second")
        p = [x for x in self.prompts() if "same.txt" in x][0]
        self.assertIn("same.txt (6 bytes), same-2.txt (15 bytes)", p)

    def test_5453_a_file_over_the_cap_is_skipped_with_a_notice_and_the_turn_runs(self):
        self.start_serve()
        port = self.slack.api_url.split(":")[2].split("/")[0]
        big = {"id": "F0BIG", "name": "zq-huge.bin", "size": 30 << 20, "mode": "hosted",
               "mimetype": "application/octet-stream",
               "url_private_download": "http://127.0.0.1:%s/files-pri/T-F0BIG/download/x" % port}
        d = self.raw_file_share("zq-5453 look", [big], "1717179999.000100")
        self.wait_answer(d, "zq-huge.bin")
        self.wait_answer(d, "zq-5453 look (turn 1)")
        text = [t for t in self.thread_texts(self.slack.state(), d) if "zq-huge.bin" in t][0]
        self.assertIn("20.0 MiB", text)
        self.assertFalse([x for x in self.prompts() if "~/inbox/" in x],
                         "nothing was placed, so the prompt names no file")

    def test_5454_a_url_on_another_host_is_not_fetched_and_never_gets_the_token(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        srv.seen = []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        evil = "http://127.0.0.1:%d/files-pri/T-F0EVIL/download/loot.txt" % srv.server_port
        f = {"id": "F0EVIL", "name": "loot.txt", "size": 6, "mode": "hosted",
             "mimetype": "text/plain", "url_private_download": evil}
        self.start_serve()
        d = self.raw_file_share("zq-5454 hello", [f], "1717179999.000200")
        self.wait_answer(d, "loot.txt")
        self.wait_answer(d, "zq-5454 hello (turn 1)")
        time.sleep(0.5)
        self.assertEqual(srv.seen, [], "nothing may be requested from another host")
        log = self.serve_output()
        self.assertNotIn(BOT_TOKEN, log)
        self.assertNotIn("b0tT0kenS3cretValue", self.all_bot_text(self.slack.state()))


class FilesInSprites(FilesInMixin, ServeCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()

    def test_5455_a_shared_file_lands_in_the_sprites_inbox(self):
        self.start_serve()
        d = self.share("read inbox/zq-8.txt", [{"name": "zq-8.txt", "content": "zq-5455 body\n"}])
        self.wait_answer(d, "zq-5455 body")
        sprite = [n for n in self.fake.sprites if n.startswith("jane-")][0]
        f = self.tmp / "sprites" / sprite / "inbox" / "zq-8.txt"
        self.assertEqual(f.read_text(), "zq-5455 body\n")

"""6200: a channel's own agent and its additions to the egress allowlist, from the config
file: the channel's sandbox may reach a name the global list does not have, others may
not; the channel's agent runs its turns."""
import http.server
import threading
import unittest

from jbtest import FAKES, JanebotCase, needs_bwrap

FETCH = r'''
import urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://extra.example.com/x", timeout=10)
    print("status", r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print("status", e.code)
'''


class Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the origin"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class ChannelEgressAndAgent(JanebotCase):
    def setUp(self):
        super().setUp()
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.addCleanup(self.srv.shutdown)
        self.env["JANEBOT_EGRESS_TEST_HOSTS"] = "extra.example.com=127.0.0.1:%d" % \
            self.srv.server_address[1]
        self.cfg = self.tmp / "janebot.yaml"
        self.env["JANEBOT_CONFIG"] = str(self.cfg)

    @needs_bwrap
    def test_6201_a_channels_egress_names_are_reachable_only_from_its_sandboxes(self):
        self.cfg.write_text("channels:\n  C0EXTRA:\n    egress: [extra.example.com]\n")
        x = self.sbx("C0EXTRA:1700000000.000100", "/usr/bin/python3", "-c", FETCH)
        self.assertIn_("status 200 hello from the origin", x)
        x = self.sbx("C0OTHER:1700000000.000100", "/usr/bin/python3", "-c", FETCH)
        self.assertIn_("status 403", x)

    @needs_bwrap
    def test_6202_a_bad_channel_key_or_agent_names_file_line_and_key(self):
        self.cfg.write_text("channels:\n  C0EXTRA:\n    agent: gpt\n")
        r = self.run_jb(["config", "check"])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn_("channels.C0EXTRA.agent", r, "err")
        self.assertIn_("amp, claude or command", r, "err")

    @needs_bwrap
    def test_6203_a_channels_agent_runs_its_turns(self):
        self.cfg.write_text("channels:\n  default:\n    agent: claude\n")
        r = self.chat_ok(["zq-6203 hello"], thread="ag",
                         env={"JANEBOT_AGENT_BIN": str(FAKES / "bin" / "claude"),
                              "ANTHROPIC_API_KEY": "sk-ant-api03-zq6203testkeyvalue"})
        self.assertIn_("argv ok", r)
        s = self.run_jb(["sessions", "list"])
        self.assertIn_("claude", s)


if __name__ == "__main__":
    unittest.main()

"""5020: the Web API over https:// -- janebot's HTTP client checks the server's certificate
and name against the CAs the system trusts, and keeps its connections alive between calls.

A TLS front (a certificate for localhost signed by a CA made for the test) relays to a
plain pass-through Web API in front of the fake Slack, which counts the calls; the front
counts TLS handshakes. Certificates are made with the openssl command (the test skips
itself without it)."""
import shutil
import time
import unittest

from test_5000_serve_startup import ServeCase
from test_5010_serve_wss import (TlsFront, hashed_dir, localhost_is_loopback, tls_material,
                                 web_api_rewriting)


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
@unittest.skipUnless(localhost_is_loopback(), "needs localhost to resolve to 127.0.0.1 (/etc/hosts)")
class Https(ServeCase):
    def setUp(self):
        super().setUp()
        d = tls_material(self.tmp / "tls", "DNS:localhost")
        self.ca_dir = hashed_dir(d / "trusted", d / "ca.pem")
        self.other_dir = hashed_dir(d / "other-ca", d / "other.pem")
        # ws_port -1: the Socket Mode URL is passed on as the fake gives it (ws://).
        self.api = web_api_rewriting(self.slack.port, -1, -1)
        self.addCleanup(self.api.server_close)
        self.addCleanup(self.api.shutdown)
        self.front = TlsFront(d / "srv.pem", d / "srv.key", self.api.server_address[1])
        self.addCleanup(self.front.close)

    def output_with(self, needle, timeout=20):
        """serve's output once it holds needle (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while needle not in self.serve_output() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.serve_output()

    def api_url(self, host):
        return self.slack.api_url.replace("http://127.0.0.1:%d" % self.slack.port,
                                          "https://%s:%d" % (host, self.front.port))

    def test_5021_answers_go_over_https_on_connections_kept_alive(self):
        self.env["SLACK_API_URL"] = self.api_url("localhost")
        self.start_serve({"SSL_CERT_DIR": str(self.ca_dir), "SSL_CERT_FILE": None})
        for i in range(3):
            d = self.dm("zq-5021 ping %d" % i)
            self.wait_answer(d, "zq-5021 ping %d" % i)
        self.assertEqual(self.front.refused, [], self.summary())
        # auth.test, apps.connections.open, then per answer at least chat.postMessage:
        # more calls than TLS handshakes, because connections are reused.
        self.assertGreaterEqual(self.front.accepted, 1)
        self.assertLess(self.front.accepted, 5,
                        "%d TLS handshakes for 5+ Web API calls: connections are not kept "
                        "alive%s" % (self.front.accepted, self.summary()))

    def test_5022_a_certificate_from_a_ca_the_system_does_not_trust_is_refused(self):
        self.env["SLACK_API_URL"] = self.api_url("localhost")
        self.start_serve({"SSL_CERT_DIR": str(self.other_dir), "SSL_CERT_FILE": None},
                         wait_connected=False)
        self.wait_for(lambda s: self.front.refused, "serve to try the https server", timeout=20,
                      allow_exit=True)
        out = self.output_with("certificate verify failed")
        self.assertIn("certificate verify failed", out)
        self.assertIn("unknown ca", self.front.refused[0].lower())
        self.assertNotIn(self.env["SLACK_BOT_TOKEN"], out)
        self.assertEqual([c for c in self.slack.state()["connections"] if c["hello_at"]], [],
                         "no Socket Mode connection without a signed-in Web API")

    def test_5023_a_certificate_for_another_name_is_refused(self):
        # The certificate names localhost only; 127.0.0.1 reaches the same server.
        self.env["SLACK_API_URL"] = self.api_url("127.0.0.1")
        self.start_serve({"SSL_CERT_DIR": str(self.ca_dir), "SSL_CERT_FILE": None},
                         wait_connected=False)
        out = self.output_with("certificate verify failed")
        self.assertIn("certificate verify failed", out)
        self.assertEqual([c for c in self.slack.state()["connections"] if c["hello_at"]], [])


if __name__ == "__main__":
    unittest.main()

"""5010: Socket Mode over wss:// -- the server's certificate is checked against the CAs
the system trusts (OpenSSL's SSL_CERT_DIR hashed directory, or SSL_CERT_FILE), and a
certificate from any other CA is refused.

The fake Slack speaks plain ws://; here a TLS front (a certificate for localhost signed by
a CA made for the test) relays to it, and a pass-through Web API rewrites the URL that
apps.connections.open hands out to wss://localhost:<front>. Certificates are made with
the openssl command (the test skips itself without it)."""
import http.client
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import unittest

from test_5000_serve_startup import ServeCase

REFUSAL_WAIT = 4.0  # serve retries a failed connection after 1 s, doubling


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    """A self-signed CA in d/name.pem (key d/name.key)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=janebot test %s" % name, "-keyout", str(d / (name + ".key")),
            "-out", str(d / (name + ".pem")))


def tls_material(d, san):
    """In the new directory d: two CAs (ca, other) and srv.pem/srv.key, a certificate for
    CN=localhost with subjectAltName san, signed by ca. Returns d."""
    d.mkdir()
    make_ca(d, "ca")
    make_ca(d, "other")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "srv.key"), "-out", str(d / "srv.csr"))
    (d / "ext.cnf").write_text("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / "ext.cnf"), "-out", str(d / "srv.pem"))
    return d


def hashed_dir(d, ca):
    """A directory holding ca as OpenSSL's <subject hash>.0 link finds it."""
    d.mkdir()
    shutil.copy(str(ca), str(d / "ca.pem"))
    openssl("rehash", str(d))
    return d


class TlsFront:
    """TLS on 127.0.0.1:port with a localhost certificate, relayed to a plain port; counts
    completed and refused handshakes."""

    def __init__(self, cert, key, to_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.to_port = to_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.refused = 0, []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(10)
            try:
                t = self.ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.refused.append(str(e))
                c.close()
                continue
            t.settimeout(None)
            self.accepted += 1
            up = socket.create_connection(("127.0.0.1", self.to_port))
            for a, b in ((t, up), (up, t)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def web_api_rewriting(fake_port, ws_port, wss_port):
    """An HTTP server passing every Web API call to the fake, with the Socket Mode URL of
    apps.connections.open turned into wss://localhost:wss_port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            c = http.client.HTTPConnection("127.0.0.1", fake_port, timeout=10)
            c.request(self.command, self.path, body,
                      {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection")})
            r = c.getresponse()
            data = r.read()
            c.close()
            if self.path.endswith("apps.connections.open"):
                j = json.loads(data)
                if j.get("url"):
                    j["url"] = j["url"].replace("ws://127.0.0.1:%d" % ws_port,
                                                "wss://localhost:%d" % wss_port)
                data = json.dumps(j).encode()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def localhost_is_loopback():
    """The certificate names localhost, so the name must lead to the front's 127.0.0.1
    (a root without /etc/hosts resolves it through DNS, if at all)."""
    try:
        return any(a[4][0] == "127.0.0.1" for a in socket.getaddrinfo("localhost", 443))
    except OSError:
        return False


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
@unittest.skipUnless(localhost_is_loopback(), "needs localhost to resolve to 127.0.0.1 (/etc/hosts)")
class Wss(ServeCase):
    def setUp(self):
        super().setUp()
        d = tls_material(self.tmp / "tls", "DNS:localhost,IP:127.0.0.1")
        self.ca, self.ca_dir = d / "ca.pem", hashed_dir(d / "trusted", d / "ca.pem")
        self.other_dir = hashed_dir(d / "other-ca", d / "other.pem")
        self.front = TlsFront(d / "srv.pem", d / "srv.key", self.slack.ws_port)
        self.addCleanup(self.front.close)
        api = web_api_rewriting(self.slack.port, self.slack.ws_port, self.front.port)
        self.addCleanup(api.server_close)
        self.addCleanup(api.shutdown)
        self.env["SLACK_API_URL"] = self.slack.api_url.replace(
            ":%d" % self.slack.port, ":%d" % api.server_address[1])

    def test_5011_the_socket_connects_over_wss_to_a_server_the_ca_directory_vouches_for(self):
        self.start_serve({"SSL_CERT_DIR": str(self.ca_dir), "SSL_CERT_FILE": None})
        self.assertGreaterEqual(self.front.accepted, 1, "the connection went through TLS")
        self.assertEqual(self.front.refused, [], self.summary())

    def test_5012_a_certificate_from_a_ca_the_system_does_not_trust_is_refused(self):
        self.start_serve({"SSL_CERT_DIR": str(self.other_dir), "SSL_CERT_FILE": None},
                         wait_connected=False)
        self.quiet(REFUSAL_WAIT)
        self.assertEqual([c for c in self.slack.state()["connections"] if c["hello_at"]], [],
                         "no Socket Mode connection to a server of an unknown CA%s"
                         % self.summary())
        self.assertTrue(self.front.refused, "serve tried the server and refused it")
        self.assertIn("unknown ca", self.front.refused[0].lower())

    def test_5013_the_socket_connects_with_the_ca_in_a_bundle_file(self):
        self.start_serve({"SSL_CERT_FILE": str(self.ca), "SSL_CERT_DIR": str(self.other_dir)})
        self.assertGreaterEqual(self.front.accepted, 1, "the connection went through TLS")


if __name__ == "__main__":
    unittest.main()

"""4420: what a CONNECT tunnel may carry. A tunnel goes to port 443 only and carries
nothing until the client's first bytes are a complete TLS ClientHello whose server name
(SNI) is the name the tunnel was allowed for; plain HTTP goes through forwarding only,
where the Host header is checked. Each test plays the attacker inside the sandbox against
an HTTPS server (allowed.test) and a plain HTTP server (plain.test) on the host's
127.0.0.1. A tunnel the proxy refuses ends with a TLS "access denied" alert (or, for a
client that never spoke TLS, nothing) and EOF, before any byte reaches the server; a
ClientHello that reached the server is answered by it (a ServerHello or its own alert)."""
import unittest

from sectest import needs_bwrap
from test_4400_network import ALLOW, TLS_GET, NetCase

# What the proxy sends before closing a tunnel whose ClientHello it refused.
ACCESS_DENIED = "15030300020231"

# Raw ClientHellos from Python's own TLS stack, and ways to bend them.
CRAFT = TLS_GET + r'''
def start_hello(name, cadata=None):
    """An SSLObject that has just produced its ClientHello: (obj, in, out, record)."""
    if cadata:
        ctx = ssl.create_default_context(cadata=cadata)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, outg, outg.read()
def hello(name):
    return start_hello(name)[3]
def reframe(rec, sizes):
    """The handshake bytes of rec re-cut into records of these sizes (the rest last)."""
    payload, out, i = rec[5:], b"", 0
    for n in list(sizes) + [len(payload)]:
        part = payload[i:i + n]
        if part:
            out += rec[:3] + len(part).to_bytes(2, "big") + part
        i += n
    return out
def one_record(payload, head=b"\x16\x03\x01"):
    return head + len(payload).to_bytes(2, "big") + payload
def with_ext(rec, ext_type, data):
    """rec (one record, one ClientHello) with one more extension at the end."""
    body = bytearray(rec[9:])
    p = 34
    p += 1 + body[p]
    p += 2 + int.from_bytes(body[p:p + 2], "big")
    p += 1 + body[p]
    ext = ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
    body[p:p + 2] = (int.from_bytes(body[p:p + 2], "big") + len(ext)).to_bytes(2, "big")
    body += ext
    return one_record(b"\x01" + len(body).to_bytes(3, "big") + bytes(body), rec[:3])
def sni(name):
    n = name.encode()
    return (len(n) + 3).to_bytes(2, "big") + b"\x00" + len(n).to_bytes(2, "big") + n
def open_tunnel(authority, timeout=5.0):
    s = socket.create_connection(PROXY, timeout=timeout)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
    st, hdrs, rest, _ = _read_head(s, time.monotonic() + timeout)
    return s, st
def through(authority, chunks, gap=0.05, timeout=4.0):
    """CONNECT, each chunk as a TCP segment of its own, then what comes back until EOF."""
    s, st = open_tunnel(authority)
    if st != 200:
        s.close()
        return {"status": st}
    try:
        for i, c in enumerate(chunks):
            if i:
                time.sleep(gap)
            s.sendall(c)
    except OSError as e:
        return {"status": st, "send": ename(e.errno)}
    got, eof, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            eof = True
            break
        if not c:
            eof = True
            break
        got += c
    s.close()
    return {"status": st, "got": got[:16].hex(), "n": len(got), "eof": eof}
def finish_get(s, obj, inc, outg, path, timeout=8.0):
    """Go on with obj's handshake over s, then GET path: the response text or the error."""
    s.settimeout(timeout)
    def flush():
        data = outg.read()
        if data:
            s.sendall(data)
    def feed():
        c = s.recv(65536)
        if not c:
            raise ConnectionError("EOF from the tunnel")
        inc.write(c)
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                feed()
        obj.write(("GET %s HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n"
                   % path).encode())
        flush()
        resp = b""
        while True:
            try:
                d = obj.read(65536)
                if not d:
                    break
                resp += d
            except ssl.SSLWantReadError:
                try:
                    feed()
                except ConnectionError:
                    break
            except ssl.SSLZeroReturnError:
                break
        return resp.decode(errors="replace")
    except Exception as e:
        return "error: %s: %s" % (type(e).__name__, e)
def fragmented_get(authority, name, path, cadata, cut):
    """A verified HTTPS GET whose ClientHello goes out as cut(record) TCP segments."""
    obj, inc, outg, rec = start_hello(name, cadata)
    s, st = open_tunnel(authority)
    if st != 200:
        return {"status": st}
    for i, c in enumerate(cut(rec)):
        if i:
            time.sleep(0.05)
        s.sendall(c)
    r = finish_get(s, obj, inc, outg, path)
    s.close()
    return {"status": st, "resp": r}
'''


class TunnelCase(NetCase):
    """allowed.test is an HTTPS server, plain.test a plain HTTP one (self.srv)."""

    def setUp(self):
        super().setUp()
        self.tls = self.host_server(tls_name="allowed.test")
        self.env.update({"JANEBOT_EGRESS_ALLOW": ALLOW + ",plain.test",
                         "JANEBOT_EGRESS_TEST_HOSTS": "allowed.test=127.0.0.1:%d,"
                         "plain.test=127.0.0.1:%d" % (self.tls.port, self.srv.port)})

    def tunnel_probe(self, key, code, **kw):
        return self.probe(key, CRAFT + ("CA = %r\n" % self.tls.cert_pem) + code, **kw)

    def assertRefused(self, res, what, r, alert=True):
        self.assertIsInstance(res, dict, "%s: no result%s" % (what, r))
        self.assertEqual(res.get("status"), 200, "%s: CONNECT itself is allowed%s" % (what, r))
        self.assertTrue(res.get("eof"), "%s: the tunnel should be closed: %r%s" % (what, res, r))
        want = ACCESS_DENIED if alert else ""
        self.assertEqual(res.get("got"), want,
                         "%s: %s, then EOF, expected; got %r (bytes from the server mean the "
                         "ClientHello reached it)%s" % (what, want or "nothing", res, r))


@needs_bwrap
class Tunnel(TunnelCase):
    def test_4421_a_silent_client_is_closed_and_never_gets_an_unchecked_tunnel(self):
        # The attack: CONNECT to an allowed name, say nothing until the SNI check gives up,
        # then speak TLS for any name to the allowed host's address.
        r = self.tunnel_probe("chat:silent", r'''
import threading
res = {}
def run(k, f, *a, **kw):
    res[k] = f(*a, **kw)
jobs = [threading.Thread(target=run, args=a, kwargs=kw) for a, kw in (
    (("late", tls_get, "allowed.test:443", "other.test", "/late"), {"wait": 11.5}),
    (("late_same", tls_get, "allowed.test:443", "allowed.test", "/late-same", CA), {"wait": 11.5}),
    (("stall", through, "allowed.test:443", [hello("other.test")[:60]]), {"timeout": 13}),
    (("slow_ok", tls_get, "allowed.test:443", "allowed.test", "/slow-ok", CA), {"wait": 3}),
)]
t0 = time.monotonic()
for j in jobs:
    j.start()
for j in jobs:
    j.join()
for k, v in res.items():
    out(k, v)
out("secs", round(time.monotonic() - t0, 1))
''', timeout=60)
        for k in ("late", "late_same"):
            with self.subTest(kind=k):
                res = r.vals.get(k)
                self.assertIsInstance(res, dict, r)
                self.assertEqual(res.get("status"), 200, r)
                self.assertNotEqual(res.get("tls"), "ok",
                                    "TLS after 11.5 s of silence went through%s" % r)
        stall = r.vals.get("stall")
        self.assertRefused(stall, "half a ClientHello, then silence", r, alert=False)
        self.assertEqual(r.vals["slow_ok"].get("tls"), "ok",
                         "a ClientHello after 3 s of silence is in time%s" % r)
        self.assertEqual(r.vals["slow_ok"].get("tunnel_status"), 200, r)
        self.assertEqual(self.tls.paths(), ["/slow-ok"], "only the checked tunnel gets through")
        self.assertIn("no complete TLS ClientHello within 10 s", r.err, r)
        self.normal_turn_still_works()

    def test_4422_connect_to_port_80_is_refused_and_plain_http_goes_through_forwarding_only(self):
        r = self.tunnel_probe("chat:port80", r'''
out("c80", connect("plain.test:80", then=b"GET /via-80 HTTP/1.1\r\nHost: evil.example\r\n\r\n"))
out("c80_tls_host", connect("allowed.test:80"))
out("fwd", forward("http://plain.test/fwd-ok", "plain.test"))
out("fwd443", forward("http://plain.test:443/fwd-443", "plain.test:443"))
out("raw443", through("plain.test:443", [b"GET /raw-443 HTTP/1.1\r\nHost: evil.example\r\n\r\n"]))
out("pipelined", http_via(PROXY,
    b"CONNECT plain.test:443 HTTP/1.1\r\nHost: plain.test:443\r\n\r\n"
    b"GET /pipelined HTTP/1.1\r\nHost: plain.test\r\n\r\n"))
out("reconnect", through("allowed.test:443",
    [b"CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n" + hello("other.test")]))
''')
        for k in ("c80", "c80_tls_host"):
            with self.subTest(kind=k):
                res = r.vals.get(k)
                self.assertStatus(res, 403, "CONNECT to port 80", r)
                body = res.get("body", "")
                self.assertIn("port 443 only", body, "the 403 should say why%s" % r)
                self.assertIn("GET http://", body, "and how to send plain HTTP%s" % r)
        self.assertStatus(r.vals.get("fwd"), 200, "GET http://plain.test/ (forwarding)", r)
        self.assertStatus(r.vals.get("fwd443"), 403, "GET http://plain.test:443/", r)
        self.assertRefused(r.vals.get("raw443"), "plain HTTP inside CONNECT :443", r, alert=False)
        self.assertRefused(r.vals.get("reconnect"), "a second CONNECT inside the tunnel", r,
                           alert=False)
        self.assertEqual(self.srv.paths(), ["/fwd-ok"],
                         "only the forwarded request may reach the plain server")
        self.assertEqual(self.tls.paths(), [])
        self.normal_turn_still_works()

    def test_4423_a_clienthello_that_does_not_name_the_host_exactly_is_refused(self):
        r = self.tunnel_probe("chat:sni", r'''
import os as _os
ok = hello("allowed.test")
bare = hello(None)
cases = {
    "other_name": [hello("other.test")],
    "no_sni": [bare],
    "trailing_dot": [with_ext(bare, 0, sni("allowed.test."))],
    "ipv4_sni": [with_ext(bare, 0, sni("127.0.0.1"))],
    "ipv6_sni": [with_ext(bare, 0, sni("::1"))],
    "two_sni": [with_ext(ok, 0, sni("other.test"))],
    "ech": [with_ext(ok, 0xfe0d, b"\x00\x00\x01\x00\x01\x07" + _os.urandom(64))],
    "two_messages": [one_record(ok[5:] + hello("other.test")[5:])],
    "junk_after_hello": [one_record(ok[5:] + b"\x00\x00\x00\x00")],
    "fragmented_other": [reframe(hello("other.test"), [40, 60])],
    "empty_record_first": [one_record(b"") + ok],
    "app_data_first": [one_record(b"x" * 32, b"\x17\x03\x03") + ok],
    "oversized": [one_record(b"\x01\x01\x00\x00" + b"\x00" * 200)],
}
for k, chunks in cases.items():
    out(k, through("allowed.test:443", chunks))
''')
        for k in ("other_name", "no_sni", "trailing_dot", "ipv4_sni", "ipv6_sni", "two_sni", "ech",
                  "two_messages", "junk_after_hello", "fragmented_other", "empty_record_first",
                  "oversized"):
            with self.subTest(kind=k):
                self.assertRefused(r.vals.get(k), k, r)
        self.assertRefused(r.vals.get("app_data_first"), "application data first", r,
                           alert=False)
        for why in ("the TLS ClientHello names no server", "the TLS ClientHello is encrypted (ECH)",
                    "the TLS server name is other.test",
                    "the TLS server name is allowed.test."):
            self.assertIn("closed tunnel to allowed.test: " + why, r.err,
                          "the log should say why%s" % r)
        self.assertEqual(self.tls.paths(), [])
        self.normal_turn_still_works()

    def test_4424_a_clienthello_in_several_records_or_segments_and_any_case_gets_through(self):
        r = self.tunnel_probe("chat:frag", r'''
out("records", fragmented_get("allowed.test:443", "allowed.test", "/records", CA,
                              lambda rec: [reframe(rec, [1, 3, 100, 200])]))
out("records_segments", fragmented_get("allowed.test:443", "allowed.test", "/records-segments", CA,
    lambda rec: [bytes([b]) for b in reframe(rec, [150])[:7]] + [reframe(rec, [150])[7:]]))
out("segments", fragmented_get("allowed.test:443", "allowed.test", "/segments", CA,
                               lambda rec: [rec[:3], rec[3:9], rec[9:300], rec[300:]]))
out("upper_sni", tls_get("allowed.test:443", "ALLOWED.Test", "/upper-sni", CA))
out("upper_connect", tls_get("ALLOWED.TEST.:443", "allowed.test", "/upper-connect", CA))
''')
        for k in ("records", "records_segments", "segments"):
            with self.subTest(kind=k):
                res = r.vals.get(k)
                self.assertIsInstance(res, dict, r)
                self.assertIn("HTTP/1.1 200", res.get("resp", ""), "%s: %r%s" % (k, res, r))
                self.assertIn(self.tls.body.decode(), res.get("resp", ""), r)
        for k in ("upper_sni", "upper_connect"):
            with self.subTest(kind=k):
                self.assertEqual(r.vals.get(k, {}).get("tunnel_status"), 200, r)
        self.assertEqual(sorted(self.tls.paths()),
                         sorted(["/records", "/records-segments", "/segments", "/upper-sni",
                                 "/upper-connect"]))
        self.normal_turn_still_works()

    def test_4425_a_forward_connection_carries_one_request_only(self):
        # After the one checked request, nothing more on that connection reaches the origin:
        # neither a pipelined request for another Host nor one sent after the answer.
        r = self.tunnel_probe("chat:keepalive", r'''
first = b"GET http://plain.test/ka-1 HTTP/1.1\r\nHost: plain.test\r\n\r\n"
second = (b"GET http://plain.test/ka-2 HTTP/1.1\r\nHost: evil.example\r\n\r\n"
          b"GET /ka-3 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
out("pipelined", http_via(PROXY, first + second))
s = socket.create_connection(PROXY, timeout=5)
s.sendall(first.replace(b"ka-1", b"ka-4"))
st, hdrs, rest, _ = _read_head(s, time.monotonic() + 5)
body = _read_body(s, hdrs, rest, time.monotonic() + 5)
out("first", st)
out("again", trycall(lambda: s.sendall(second.replace(b"ka-2", b"ka-5").replace(b"ka-3", b"ka-6"))))
s.settimeout(3)
out("after", trycall(lambda: s.recv(4096).decode(errors="replace")))
''')
        self.assertStatus(r.vals.get("pipelined"), 200, "the first pipelined request", r)
        self.assertEqual(r.vals.get("first"), 200, r)
        self.assertIn(r.vals.get("after"), ("", "ECONNRESET"),
                      "nothing more is answered on the connection%s" % r)
        self.assertEqual(sorted(self.srv.paths()), ["/ka-1", "/ka-4"], self.srv.requests)
        self.assertEqual({h for _, _, h in self.srv.requests}, {"plain.test"})
        self.normal_turn_still_works()


    def test_4426_the_origin_sees_the_host_name_the_policy_checked(self):
        # A Host header that matches only after normalising (case, a trailing dot) is not
        # passed on as spelled: to a front end "name." can be another virtual host.
        r = self.tunnel_probe("chat:hostname", r'''
out("dot", forward("http://plain.test./dot", "PLAIN.Test."))
out("case", forward("http://PLAIN.TEST/case", "Plain.Test"))
''')
        for k in ("dot", "case"):
            with self.subTest(kind=k):
                self.assertStatus(r.vals.get(k), 200, k, r)
        self.assertEqual(sorted(self.srv.requests),
                         [("GET", "/case", "plain.test"), ("GET", "/dot", "plain.test")])
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

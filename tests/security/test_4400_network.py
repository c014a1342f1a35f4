"""4400: network egress. The sandbox has only its own loopback; the only way out is the
egress proxy at 127.0.0.1:3128 inside, which allows JANEBOT_EGRESS_ALLOW names only.
JANEBOT_EGRESS_TEST_HOSTS maps the test names to an HTTP server this test runs on the
host's 127.0.0.1, so nothing here leaves the machine: a probe refuses to try a direct
connection to a public address unless the sandbox has no interface but `lo`."""
import re
import unittest

from sectest import SecCase, needs_bwrap

ALLOW = "allowed.test,*.wild.test"

LO_ONLY = r'''
def interfaces():
    names = []
    for line in open("/proc/net/dev").read().splitlines()[2:]:
        names.append(line.split(":", 1)[0].strip())
    return sorted(names)
IFACES = interfaces()
out("interfaces", IFACES)
LO = IFACES == ["lo"]
'''

URLLIB_GET = r'''
import urllib.request, urllib.error
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return {"status": r.status, "body": r.read().decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")}
    except Exception as e:
        return {"status": None, "error": type(e).__name__ + ": " + str(e)}
'''

# HTTPS through a CONNECT tunnel, as a client would do it: the TLS handshake names
# server_name (SNI) and, with cadata, the certificate is verified for it.
TLS_GET = r'''
import ssl
def tls_get(authority, server_name, path, cadata=None, wait=0.0, timeout=8.0):
    deadline = time.monotonic() + wait + timeout
    try:
        s = socket.create_connection(PROXY, timeout=timeout)
    except OSError as e:
        return {"status": None, "error": ename(e.errno) if e.errno else str(e)}
    try:
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
        st, hdrs, rest, _ = _read_head(s, deadline)
        res = {"status": st}
        if st != 200:
            res["body"] = _read_body(s, hdrs, rest, deadline)
            return res
        time.sleep(wait)
        if cadata:
            ctx = ssl.create_default_context(cadata=cadata)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        s.settimeout(max(0.05, deadline - time.monotonic()))
        t = ctx.wrap_socket(s, server_hostname=server_name)
        t.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, server_name)).encode())
        st2, h2, rest2, _ = _read_head(t, deadline)
        res.update(tls="ok", tunnel_status=st2, tunnel_body=_read_body(t, h2, rest2, deadline))
        return res
    except Exception as e:
        res["tls"] = type(e).__name__ + ": " + str(e)
        return res
    finally:
        s.close()
'''


class NetCase(SecCase):
    def setUp(self):
        super().setUp()
        self.srv = self.host_server()
        self.env.update({"JANEBOT_EGRESS_ALLOW": ALLOW,
                         "JANEBOT_EGRESS_TEST_HOSTS": "allowed.test=127.0.0.1:%d" % self.srv.port})

    def net(self, key, code, **kw):
        return self.probe(key, LO_ONLY + code, **kw)

    def assertStatus(self, res, want, what, r):
        self.assertIsInstance(res, dict, "%s: no result%s" % (what, r))
        self.assertEqual(res.get("status"), want, "%s: %r%s" % (what, res, r))


@needs_bwrap
class Direct(NetCase):
    def test_4401_direct_connections_fail_fast_and_the_hosts_loopback_is_not_reachable(self):
        r = self.net("chat:direct", r'''
P = %d
def tcp(addr, fam=socket.AF_INET):
    t0 = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        res = "connected"
    except OSError as e:
        res = ename(e.errno) if e.errno else type(e).__name__
    finally:
        s.close()
    return [res, round(time.monotonic() - t0, 2)]
out("host_loopback", tcp(("127.0.0.1", P)))
if LO:
    out("public_v4", tcp(("1.1.1.1", 443)))
    out("metadata", tcp(("169.254.169.254", 80)))
    out("public_v6", tcp(("2606:4700:4700::1111", 443, 0, 0), socket.AF_INET6))
''' % self.srv.port)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.vals.get("interfaces"), ["lo"], "the sandbox must have only lo%s" % r)
        self.assertEqual(r.vals["host_loopback"][0], "ECONNREFUSED",
                         "the host's 127.0.0.1:%d reached from inside%s" % (self.srv.port, r))
        for k in ("public_v4", "metadata", "public_v6"):
            with self.subTest(dest=k):
                res, secs = r.vals[k]
                self.assertIn(res, ("ENETUNREACH", "EHOSTUNREACH", "EACCES", "EPERM"), r)
                self.assertLess(secs, 1.0, "a direct connection should fail at once%s" % r)
        self.assertEqual(self.srv.requests, [], "the host server got a request")
        self.normal_turn_still_works()

    def test_4402_dns_lookups_fail_inside(self):
        r = self.net("chat:dns", r'''
out("resolv", trycall(lambda: open("/etc/resolv.conf").read()))
if LO:
    t0 = time.monotonic()
    out("getaddrinfo", trycall(lambda: socket.getaddrinfo("example.com", 443) and "resolved"))
    out("secs", round(time.monotonic() - t0, 2))
''')
        self.assertEqual(r.vals.get("interfaces"), ["lo"], r)
        servers = re.findall(r"(?m)^\s*nameserver\s+(\S+)", str(r.vals.get("resolv", "")))
        self.assertTrue(all(s.startswith("127.") or s == "::1" for s in servers),
                        "resolv.conf names an outside resolver%s" % r)
        self.assertNotEqual(r.vals.get("getaddrinfo"), "resolved", r)
        self.assertLess(r.vals.get("secs", 99), 5, "a lookup should fail fast%s" % r)
        g = self.sbx("chat:dns", "sh", "-c", "timeout 10 getent hosts example.com")
        self.assertNotEqual(g.rc, 0, g)
        self.assertEqual(g.out.strip(), "", g)
        self.normal_turn_still_works()


@needs_bwrap
class Proxy(NetCase):
    def test_4403_an_allowed_name_is_fetched_through_the_proxy_in_exec_and_in_a_turn(self):
        code = URLLIB_GET + r'''
out("proxy_env", os.environ.get("http_proxy"))
out("get", get("http://allowed.test/p-%s"))
'''
        r = self.probe("chat:fwd", code % "exec")
        self.assertStatus(r.vals.get("get"), 200, "GET http://allowed.test/ in exec", r)
        self.assertEqual(r.vals["get"].get("body"), self.srv.body.decode(), r)
        t = self.turn_probe("fwd", code % "turn")
        self.assertStatus(t.vals.get("get"), 200, "GET http://allowed.test/ in a turn", t)
        paths = self.srv.paths()
        self.assertTrue(any(p.endswith("/p-exec") for p in paths), paths)
        self.assertTrue(any(p.endswith("/p-turn") for p in paths), paths)
        hosts = {h.split(":")[0].lower() for _, _, h in self.srv.requests}
        self.assertEqual(hosts, {"allowed.test"}, "Host header seen upstream: %s" % hosts)
        self.normal_turn_still_works()

    def test_4404_connect_to_an_allowed_name_opens_a_tunnel_to_it(self):
        tls = self.host_server(tls_name="allowed.test")
        r = self.probe("chat:conn", TLS_GET + r'''
out("connect", tls_get("allowed.test:443", "allowed.test", "/tunnel-x", %r))
''' % tls.cert_pem, env={"JANEBOT_EGRESS_TEST_HOSTS": "allowed.test=127.0.0.1:%d" % tls.port})
        c = r.vals.get("connect")
        self.assertStatus(c, 200, "CONNECT allowed.test:443", r)
        self.assertEqual(c.get("tls"), "ok", "the TLS handshake through the tunnel%s" % r)
        self.assertEqual(c.get("tunnel_status"), 200, r)
        self.assertEqual(c.get("tunnel_body"), tls.body.decode(), r)
        self.assertIn("/tunnel-x", tls.paths())
        self.normal_turn_still_works()

    def test_4405_a_name_not_on_the_allowlist_gets_a_403_that_says_why(self):
        r = self.probe("chat:deny", r'''
out("connect", connect("notallowed.test:443"))
out("forward", forward("http://notallowed.test/x", "notallowed.test"))
out("connect_real", connect("github.com:443"))
''')
        for k, host in (("connect", "notallowed.test"), ("forward", "notallowed.test"),
                        ("connect_real", "github.com")):
            with self.subTest(kind=k):
                res = r.vals.get(k)
                self.assertStatus(res, 403, k, r)
                self.assertIn(host, res.get("body", ""), "the 403 should name the host%s" % r)
                self.assertIn("JANEBOT_EGRESS_ALLOW", res.get("body", ""), r)
        self.assertEqual(self.srv.requests, [])
        self.normal_turn_still_works()

    def test_4406_ip_literals_in_every_spelling_are_refused(self):
        lits = ["10.0.0.1", "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1",
                "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254", "0.0.0.0",
                "127.0.0.1:%d" % self.srv.port]
        r = self.probe("chat:lit", r'''
for i, h in enumerate(%r):
    auth = h if (h.count(":") == 1 and not h.startswith("[")) or h.endswith("]:443") else h + ":443"
    out("connect_%%d" %% i, connect(auth))
    out("forward_%%d" %% i, forward("http://%%s/lit" %% h, h))
''' % lits)
        for i, h in enumerate(lits):
            for kind in ("connect", "forward"):
                with self.subTest(literal=h, kind=kind):
                    self.assertStatus(r.vals.get("%s_%d" % (kind, i)), 403, "%s %s" % (kind, h), r)
        self.assertEqual(self.srv.requests, [], "an IP literal reached the host server")
        self.normal_turn_still_works()

    def test_4407_allowlist_matching_respects_label_boundaries_case_and_trailing_dot(self):
        r = self.probe("chat:match", r'''
for h in ("evilallowed.test", "allowed.test.evil.example", "xwild.test", "wild.test.evil.example"):
    out("c_" + h, connect(h + ":443"))
    out("f_" + h, forward("http://%s/m" % h, h))
out("c_upper", connect("ALLOWED.TEST.:443", then=b"GET /upper HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n"))
out("f_upper", forward("http://ALLOWED.TEST./upper2", "ALLOWED.TEST."))
''')
        for h in ("evilallowed.test", "allowed.test.evil.example", "xwild.test",
                  "wild.test.evil.example"):
            for kind in ("c", "f"):
                with self.subTest(host=h, kind=kind):
                    self.assertStatus(r.vals.get("%s_%s" % (kind, h)), 403, h, r)
        self.assertStatus(r.vals.get("c_upper"), 200, "CONNECT ALLOWED.TEST.:443", r)
        self.assertStatus(r.vals.get("f_upper"), 200, "GET http://ALLOWED.TEST./", r)
        self.assertNotIn("/m", [p[-2:] for p in self.srv.paths()])
        # The wildcard: a subdomain of *.wild.test, mapped to the same host server.
        w = self.probe("chat:match", r'''
out("wild", forward("http://x.wild.test/wild", "x.wild.test"))
''', env={"JANEBOT_EGRESS_TEST_HOSTS": "x.wild.test=127.0.0.1:%d" % self.srv.port})
        self.assertStatus(w.vals.get("wild"), 200, "GET http://x.wild.test/ (*.wild.test)", w)
        self.normal_turn_still_works()

    def test_4408_an_allowed_name_that_resolves_to_loopback_is_refused(self):
        self.env["JANEBOT_EGRESS_ALLOW"] = ALLOW + ",localhost"
        r = self.probe("chat:lo", r'''
out("connect", connect("localhost:443"))
out("forward", forward("http://localhost/x", "localhost"))
out("connect_dot", connect("localhost.:443"))
''')
        for k in ("connect", "forward", "connect_dot"):
            with self.subTest(kind=k):
                self.assertStatus(r.vals.get(k), 403, k, r)
        self.normal_turn_still_works()

    def test_4409_ports_other_than_the_web_ports_are_refused(self):
        r = self.probe("chat:port", r'''
out("c22", connect("allowed.test:22"))
out("c25", connect("allowed.test:25"))
out("f22", forward("http://allowed.test:22/x", "allowed.test:22"))
out("c_bad", connect("allowed.test:443:22"))
out("c_user", connect("user@allowed.test:443"))
''')
        for k in ("c22", "c25", "f22"):
            with self.subTest(kind=k):
                self.assertStatus(r.vals.get(k), 403, k, r)
        for k in ("c_bad", "c_user"):
            with self.subTest(kind=k):
                self.assertIn(r.vals.get(k, {}).get("status"), (400, 403), r)
        self.assertEqual(self.srv.requests, [])
        self.normal_turn_still_works()

    def test_4410_a_forward_request_whose_host_header_differs_is_refused(self):
        r = self.probe("chat:hh", r'''
out("mismatch", forward("http://allowed.test/hh", "evil.example"))
out("mismatch2", forward("http://allowed.test/hh2", "127.0.0.1:%d"))
''' % self.srv.port)
        self.assertStatus(r.vals.get("mismatch"), 403, "Host: evil.example", r)
        self.assertStatus(r.vals.get("mismatch2"), 403, "Host: 127.0.0.1", r)
        self.assertFalse([p for p in self.srv.paths() if "/hh" in p], self.srv.requests)
        self.normal_turn_still_works()

    def test_4411_a_flood_of_connections_gets_503s_and_the_proxy_keeps_serving(self):
        r = self.probe("chat:flood", r'''
socks, statuses = [], []
for i in range(40):
    try:
        s = socket.create_connection(PROXY, timeout=3)
        s.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
        socks.append(s)
    except OSError as e:
        statuses.append("connect:" + ename(e.errno))
deadline = time.monotonic() + 8
pending = {s: b"" for s in socks}
while pending and time.monotonic() < deadline:
    rd, _, _ = select.select(list(pending), [], [], 0.2)
    for s in rd:
        try:
            c = s.recv(4096)
        except OSError:
            c = b""
        pending[s] += c
        if not c or b"\r\n" in pending[s]:
            line = pending.pop(s).split(b"\r\n")[0].decode(errors="replace")
            statuses.append(line.split()[1] if line.startswith("HTTP/") and len(line.split()) > 1 else "closed")
statuses += ["no-answer"] * len(pending)
out("statuses", statuses)
for s in socks:
    s.close()
time.sleep(0.5)
out("after", forward("http://allowed.test/after-flood", "allowed.test"))
''', timeout=60)
        st = r.vals.get("statuses", [])
        self.assertEqual(len(st), 40, r)
        self.assertIn("503", st, "no 503 for 40 concurrent connections%s" % r)
        self.assertIn("200", st, "the first connections should be served%s" % r)
        self.assertStatus(r.vals.get("after"), 200, "a request after the flood", r)
        again = self.probe("chat:flood2", "out('get', forward('http://allowed.test/next', 'allowed.test'))")
        self.assertStatus(again.vals.get("get"), 200, "another sandbox after the flood", again)
        self.normal_turn_still_works()

    def test_4413_the_proxy_listener_inside_cannot_be_taken_or_shadowed(self):
        # The sandbox's first process hands its 127.0.0.1:3128 listener to the host and
        # keeps no copy: nothing inside may hold it (to accept the sandbox's own clients
        # before the proxy does), bind the port again, or reach the Unix socket it came over.
        r = self.probe("chat:listener", r'''
def listening_inodes(port):
    found = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1].endswith(":%04X" % port) and f[3] == "0A":
            found.append(f[9])
    return found
inodes = listening_inodes(3128)
out("listening", len(inodes))
holders = []
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        for fd in os.listdir("/proc/%s/fd" % d):
            t = os.readlink("/proc/%s/fd/%s" % (d, fd))
            if any(t == "socket:[%s]" % i for i in inodes):
                holders.append(d)
    except OSError:
        pass
out("holders", holders)
def bind(addr, reuse):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((addr, 3128))
        s.listen(8)
        return "bound"
    except OSError as e:
        return ename(e.errno)
    finally:
        s.close()
out("bind", [bind("127.0.0.1", 0), bind("127.0.0.1", 1), bind("0.0.0.0", 1)])
out("unix", trycall(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()))
out("after", forward("http://allowed.test/after", "allowed.test"))
''')
        self.assertEqual(r.vals.get("listening"), 1, "one listener on 3128 inside%s" % r)
        self.assertEqual(r.vals.get("holders"), [], "a process inside holds the listener%s" % r)
        self.assertEqual(r.vals.get("bind"), ["EADDRINUSE"] * 3, r)
        self.assertNotEqual(r.vals.get("unix"), "ok", "AF_UNIX sockets must be denied%s" % r)
        self.assertStatus(r.vals.get("after"), 200, "the proxy still serves", r)
        self.normal_turn_still_works()

    def test_4412_test_host_mappings_are_warned_about_at_start(self):
        r = self.chat_ok(["hello"], thread="warn")
        self.assertRegex(r.err, r"(?i)warn.*JANEBOT_EGRESS_TEST_HOSTS",
                         "a start-up warning naming JANEBOT_EGRESS_TEST_HOSTS expected%s" % r)
        q = self.chat_ok(["hello"], thread="warn", env={"JANEBOT_EGRESS_TEST_HOSTS": None})
        self.assertNotIn("JANEBOT_EGRESS_TEST_HOSTS", q.err, q)
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

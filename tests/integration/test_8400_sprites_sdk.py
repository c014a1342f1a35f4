"""8400: the official Sprites SDK (@fly/sprites, pinned below) against the project's fake
Sprites API (tests/fakes/sprites.py) on 127.0.0.1, so the fake speaks what the SDK expects
(and janebot, tested against the fake, what the service speaks): create, get, list, exec
(stdout, stderr, exit codes, stdin, env, cwd, kill), network policy, checkpoint create,
list and get, restore (asynchronous), delete, and a structured 429.

The SDK needs Node.js >= 24: npm_pinned.node() installs one from npm, and the SDK comes
through npm_pinned.install(); the test skips, saying why, only when npm cannot install
them. The client is tests/integration/clients/sprites-sdk.mjs (one JSON line per call).
"""
import json
import os
import subprocess
import time

import npm_pinned
from jbtest import SPRITES_TOKEN, SYS_PATH, JanebotCase

VERSION = "0.1.0"
PACKAGE = "@fly/sprites@" + VERSION
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients", "sprites-sdk.mjs")


def sdk_dir(where):
    return where / "node_modules" / "@fly" / "sprites"


def sdk_works(where):
    pkg = json.loads((sdk_dir(where) / "package.json").read_text())
    return pkg.get("version") == VERSION and (sdk_dir(where) / "dist" / "index.js").is_file()


class SpritesSDK(JanebotCase):
    def setUp(self):
        super().setUp()
        self.node, why = npm_pinned.node()
        if why:
            self.skipTest("Node.js 24 for @fly/sprites unavailable: " + why)
        where, why = npm_pinned.install([PACKAGE], sdk_works)
        if why:
            self.skipTest("@fly/sprites unavailable: " + why)
        self.sdk = sdk_dir(where)
        self.fake = self.use_fake_sprites()

    def run_client(self, name, timeout=120):
        env = {"PATH": SYS_PATH, "HOME": str(self.tmp), "SPRITES_SDK": str(self.sdk),
               "SPRITES_API_URL": self.fake.url, "SPRITES_TOKEN": SPRITES_TOKEN,
               "SPRITE_NAME": name, "HOME_MARK": "sdk-mark"}
        t0 = time.monotonic()
        p = subprocess.run([str(self.node), CLIENT], env=env, capture_output=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        self.elapsed = time.monotonic() - t0
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "client: %s\n%s" % (out, p.stderr.decode()))
        calls = {}
        for line in out.splitlines():
            c = json.loads(line)
            calls[c["call"]] = c
        return calls

    def test_8401_the_sdk_works_against_the_fake(self):
        self.fake.restore_delay = 1.5
        name = "sdk-8401"
        c = self.run_client(name)
        summary = json.dumps(c, indent=1)

        def ok(call, **want):
            self.assertIn(call, c, summary)
            self.assertTrue(c[call]["ok"], "%s: %s" % (call, c[call]))
            for k, v in want.items():
                self.assertEqual(c[call].get(k), v, "%s.%s: %s" % (call, k, c[call]))
            return c[call]

        def failed(call, **want):
            self.assertIn(call, c, summary)
            self.assertFalse(c[call]["ok"], "%s: %s" % (call, c[call]))
            for k, v in want.items():
                self.assertEqual(c[call].get(k), v, "%s.%s: %s" % (call, k, c[call]))
            return c[call]

        ok("createSprite", name=name, status="cold", created=True)
        failed("createSprite again", status=400)
        ok("getSprite", name=name, org="fake-org")
        ok("listSprites", names=[name], hasMore=False)
        ok("listAllSprites", names=[name])
        # exec: a bare exit frame is 0 for the SDK; a status byte is the code.
        self.assertEqual(ok("execFile exit 0")["value"],
                         {"stdout": "out\n", "stderr": "err\n", "exitCode": 0})
        failed("execFile exit 3", exitCode=3, stdout="out\n", stderr="err\n")
        self.assertEqual(ok("exec")["value"]["stdout"], "a b\n")
        self.assertEqual(ok("execFile env and cwd")["value"]["stdout"], "hi there\n")
        ok("spawn with stdin", exitCode=0, stdout="line one\nline two\n", stderr="done\n")
        k = ok("kill", exitCode=137)
        self.assertLess(k["ms"], 5000, k)
        self.assertEqual(failed("execFile missing")["exitCode"], 127)
        # policy: POST answers 204, GET gives the rules back, a bad rule is a 400.
        ok("updateNetworkPolicy")
        got = ok("getNetworkPolicy")["value"]
        self.assertEqual(got["rules"], [{"action": "allow", "domain": "example.com"},
                                        {"action": "allow", "domain": "*.example.com"},
                                        {"include": "defaults"},
                                        {"action": "deny", "domain": "*"}])
        self.assertIn("Invalid policy", failed("updateNetworkPolicy invalid")["error"])
        # checkpoints: an NDJSON stream, a bare array, one by id.
        msgs = ok("createCheckpoint")["value"]
        self.assertEqual([m["type"] for m in msgs][-1], "complete", msgs)
        self.assertTrue(all("time" in m for m in msgs), msgs)
        cps = ok("listCheckpoints")["value"]
        mine = [cp for cp in cps if cp["comment"] == "sdk checkpoint"]
        self.assertEqual(len(mine), 1, cps)
        self.assertTrue(mine[0]["createTime"], cps)
        ok("getCheckpoint", id=mine[0]["id"], comment="sdk checkpoint")
        self.assertIn("Checkpoint not found", failed("getCheckpoint missing")["error"])
        # restore: the stream completes, then the sprite restarts; execs come back.
        msgs = ok("restoreCheckpoint")["value"]
        self.assertEqual(msgs[-1]["type"], "complete", msgs)
        back = ok("exec after restore")["value"]
        self.assertEqual(back["stdout"].splitlines()[0], "before", back)
        self.assertNotIn("junk", back["stdout"], back)
        self.assertIn("sdk-mark", back["stdout"], "the file written in cwd is in the home")
        self.assertGreater(back["tries"], 1, "the restore was asynchronous: %s" % back)
        self.assertIn("404", failed("restoreCheckpoint missing")["error"])
        ok("deleteSprite")
        failed("getSprite deleted", status=404)
        failed("execFile deleted")
        self.assertNotIn(name, self.fake.sprites)
        # Every call carried the token in the Authorization header, and only there.
        for call in self.fake.calls:
            self.assertTrue(call["auth_ok"], call)
            self.assertNotIn(SPRITES_TOKEN, call["raw_path"])
        # The SDK closes the socket at the exit frame: 12 execs, far from 12 x 5 s.
        self.assertLess(self.elapsed, 40, "the client waited for the server's close")

    def test_8402_a_rate_limit_is_a_structured_api_error(self):
        self.fake.rate_limit_next, self.fake.retry_after = 1, 7
        c = self.run_client("sdk-8402")
        r = c["createSprite"]
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["status"], r["code"], r["retryAfter"], r["rateLimited"]),
                         (429, "sprite_creation_rate_limited", 7, True), r)
        self.assertIn("rate limit", r["error"].lower(), r)

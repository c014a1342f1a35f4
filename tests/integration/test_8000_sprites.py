"""8000: the Sprites backend (JANEBOT_SANDBOX=sprites) against tests/fakes/sprites.py:
exec over the WebSocket protocol, per-thread sprites, network policy first, the token
only in the Authorization header, recovery of a vanished sprite, a dropped exec that is
reported and not re-run, REST retries (Retry-After), deadlines, `sandbox list|rm`, `chat`,
the bare exit frame."""
import time
from email.utils import formatdate

from jbtest import JanebotCase, sandbox_name


class Sprites(JanebotCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()

    def events(self, name, kinds=("create", "policy", "exec", "delete")):
        return [e["kind"] for e in self.fake.events if e["name"] == name and e["kind"] in kinds]

    def test_8001_exec_streams_output_stdin_and_exit_codes(self):
        r = self.sbx("t1", "sh", "-c", "echo out; cat; echo err >&2; exit 3", input="from-stdin\n")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.out, "out\nfrom-stdin\n", r)
        self.assertIn("err", r.err, r)
        ok = self.sbx("t1", "true")
        self.assertEqual(ok.rc, 0, ok)
        sig = self.sbx("t1", "sh", "-c", "kill -9 $$")
        self.assertEqual(sig.rc, 137, sig)
        big = self.sbx("t1", "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x")
        self.assertEqual((big.rc, len(big.out)), (0, 300000), big.err)

    def test_8002_one_sprite_per_thread_created_on_first_use_then_reused(self):
        for key in ("chat:a", "chat:b", "chat:a"):
            r = self.sbx(key, "true")
            self.assertEqual(r.rc, 0, r)
        a, b = sandbox_name("chat:a"), sandbox_name("chat:b")
        self.assertEqual(sorted(self.fake.sprites), sorted([a, b]))
        self.assertEqual(self.events(a, ("create",)), ["create"])
        self.assertEqual(self.events(b, ("create",)), ["create"])

    def test_8003_network_policy_is_set_before_the_first_exec(self):
        r = self.sbx("pol", "true", env={"JANEBOT_EGRESS_ALLOW": "github.com, *.example.com:443"})
        self.assertEqual(r.rc, 0, r)
        name = sandbox_name("pol")
        ev = self.events(name)
        self.assertEqual(ev[:2], ["create", "policy"], ev)
        self.assertLess(ev.index("policy"), ev.index("exec"), ev)
        rules = self.fake.sprites[name]["policy"]["rules"]
        self.assertEqual(rules, [{"action": "allow", "domain": "github.com"},
                                 {"action": "allow", "domain": "*.example.com"},
                                 {"action": "deny", "domain": "*"}])
        self.sbx("pol2", "true")
        rules = self.fake.sprites[sandbox_name("pol2")]["policy"]["rules"]
        self.assertIn({"action": "allow", "domain": "api.anthropic.com"}, rules)
        self.assertEqual(rules[-1], {"action": "deny", "domain": "*"})

    def test_8004_the_token_is_only_in_the_authorization_header(self):
        r = self.sbx("tok", "env", env={"JANEBOT_LOG_LEVEL": "debug"})
        self.assertEqual(r.rc, 0, r)
        c = self.chat_ok(["env"], thread="tok2", env={"JANEBOT_LOG_LEVEL": "debug"})
        self.assertTrue(self.fake.calls)
        for call in self.fake.calls:
            self.assertTrue(call["auth_ok"], call)
            self.assertNotIn("SPRITESSECRET", call["raw_path"], call)
            self.assertNotIn("SPRITESSECRET", repr(call["headers"]), call)
        for e in self.fake.events:
            self.assertNotIn("SPRITESSECRET", repr(e), e)
        self.assertNotIn_("SPRITESSECRET", r)
        self.assertNotIn_("SPRITESSECRET", c)
        self.assertNotIn("SPRITES_TOKEN", r.out.split("\n"), r)

    def test_8005_a_vanished_sprite_is_recreated(self):
        self.chat_ok(["hello"], thread="v")
        name = sandbox_name("chat:v")
        del self.fake.sprites[name]  # gone behind our back (files too: a new VM)
        self.fake.quirk_500 = True  # and the API says so with the 500 quirk
        r = self.chat_ok(["again"], thread="v")
        self.assertIn_("echo: again", r)
        self.assertEqual(self.events(name, ("create",)), ["create", "create"])
        x = self.sbx("v", "true")
        self.assertEqual(x.rc, 0, x)

    def test_8006_a_dropped_exec_is_a_failure_and_is_not_rerun(self):
        self.sbx("d", "true")
        self.fake.drop_exec = "echo first"
        t0 = time.monotonic()
        r = self.sbx("d", "sh", "-c", "echo run >> $HOME/runs; echo first; sleep 1; echo second")
        self.assertNotEqual(r.rc, 0, r)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertIn("dropped", r.err, r)
        self.assertNotIn("second", r.out, r)
        name = sandbox_name("d")
        runs_of = [e for e in self.fake.events if e["kind"] == "exec" and "echo first" in " ".join(e["cmd"])]
        self.assertEqual(len(runs_of), 1, self.fake.events)
        time.sleep(1.5)
        runs = (self.tmp / "sprites" / name / "runs").read_text()
        self.assertEqual(runs, "run\n")

    def test_8007_rest_5xx_bursts_are_retried(self):
        self.fake.fail_next = 2
        r = self.sbx("retry", "echo", "ok")
        self.assertEqual((r.rc, r.out), (0, "ok\n"), r)
        self.assertIn("retrying", r.err, r)

    def test_8008_deadline_stops_the_command(self):
        t0 = time.monotonic()
        r = self.sbx("slow", "sleep", "30", env={"JANEBOT_TURN_TIMEOUT": "2"})
        self.assertLess(time.monotonic() - t0, 10, r)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.rc, 137, r)
        self.assertIn("SIGKILL", [e.get("signal") for e in self.fake.events], self.fake.events)

    def test_8009_list_and_rm_use_the_api(self):
        self.sbx("l1", "true")
        self.sbx("l2", "true")
        ls = self.run_jb(["sandbox", "list"])
        self.assertEqual(ls.rc, 0, ls)
        for key in ("l1", "l2"):
            line = self.line_with(ls, sandbox_name(key))
            self.assertIn("sprites", line)
            self.assertIn(key, line)
        rm = self.run_jb(["sandbox", "rm", "l1"])
        self.assertEqual(rm.rc, 0, rm)
        self.assertNotIn(sandbox_name("l1"), self.fake.sprites)
        self.assertEqual(self.events(sandbox_name("l1"), ("delete",)), ["delete"])
        ls2 = self.run_jb(["sandbox", "list"])
        self.assertNotIn(sandbox_name("l1"), ls2.out, ls2)
        again = self.run_jb(["sandbox", "rm", "l1"])
        self.assertNotEqual(again.rc, 0, again)

    def test_8010_chat_turns_run_in_the_sprite_and_resume(self):
        r = self.chat_ok(["hello", "more"], thread="c")
        self.assertIn_("echo: hello (turn 1)", r)
        self.assertIn_("echo: more (turn 2)", r)
        self.assertTrue((self.tmp / "sprites" / sandbox_name("chat:c") / ".fake-agent").is_dir())

    def test_8011_sprites_is_chosen_when_only_a_token_is_set(self):
        r = self.sbx("auto", "true", env={"JANEBOT_SANDBOX": None})
        self.assertEqual(r.rc, 0, r)
        self.assertIn(sandbox_name("auto"), self.fake.sprites)
        bad = self.sbx("x", "true", env={"SPRITES_TOKEN": None})
        self.assertNotEqual(bad.rc, 0, bad)
        self.assertIn("SPRITES_TOKEN", bad.err, bad)

    def test_8012_a_wrong_token_is_reported_clearly(self):
        r = self.sbx("w", "true", env={"SPRITES_TOKEN": "org/wrong/token-123456"})
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("401", r.err, r)
        self.assertNotIn_("token-123456", r)

    def test_8013_a_bare_exit_frame_is_exit_0(self):
        # The service may end a command that exited 0 with the frame [3] and no status byte;
        # both SDKs read it as 0.
        self.assertTrue(self.fake.bare_exit)
        r = self.sbx("bare", "sh", "-c", "echo fine")
        self.assertEqual((r.rc, r.out), (0, "fine\n"), r)
        self.assertNotIn("dropped", r.err, r)
        exits = [e for e in self.fake.events if e["kind"] == "exit"
                 and e["name"] == sandbox_name("bare")]
        self.assertTrue(exits and all(e["bare"] for e in exits), exits)
        c = self.chat_ok(["hello"], thread="bare")
        self.assertIn_("echo: hello (turn 1)", c)
        self.fake.bare_exit = False  # and the long form [3, 0] still is
        self.assertEqual(self.sbx("bare", "true").rc, 0)

    def test_8014_retry_after_headers_set_the_wait(self):
        self.assertEqual(self.sbx("ra", "true").rc, 0)
        self.fake.fail_next, self.fake.fail_retry_after = 1, "2"
        t0 = time.monotonic()
        r = self.sbx("ra", "echo", "ok")
        self.assertEqual((r.rc, r.out), (0, "ok\n"), r)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0, r)
        self.assertIn("retrying in 2", r.err, r)
        # An HTTP date: 3 s from now (whole seconds), so at least 2 s.
        self.fake.fail_next = 1
        self.fake.fail_retry_after = formatdate(time.time() + 3, usegmt=True)
        t0 = time.monotonic()
        r = self.sbx("ra", "echo", "ok")
        self.assertEqual((r.rc, r.out), (0, "ok\n"), r)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0, r)
        # Longer than the call may take: not waited for, and said plainly.
        self.fake.fail_next, self.fake.fail_retry_after = 1, "600"
        t0 = time.monotonic()
        r = self.sbx("ra", "echo", "ok")
        self.assertLess(time.monotonic() - t0, 20, r)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("asks to wait 600 s (Retry-After)", r.err, r)

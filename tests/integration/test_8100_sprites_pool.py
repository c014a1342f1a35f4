"""8100: the Sprites backend's warm pool, golden checkpoints, reset, gc, health bound,
rate limits, non-root agent and turn audit, against tests/fakes/sprites.py."""
import json
import os
import sqlite3
import subprocess
import time
import urllib.request

from jbtest import AGENT, BIN, SPRITES_TOKEN, JanebotCase, default_signals, sandbox_name



class SpritesPool(JanebotCase):
    def setUp(self):
        super().setUp()
        self.fake = self.use_fake_sprites()

    def kinds(self, name, kinds):
        return [e["kind"] for e in self.fake.events if e["name"] == name and e["kind"] in kinds]

    def ready_pool(self):
        with self.fake.lock:
            names = [n for n in self.fake.sprites if n.startswith("jane-pool-")]
        return [n for n in names if any(c["comment"].startswith("janebot-golden")
                                         for c in self.fake.checkpoints(n))]

    def wait_for(self, cond, timeout=30.0, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out waiting for %s; fake events: %s" % (what, self.fake.events[-20:]))

    def start_chat(self, thread, env=None):
        p = subprocess.Popen([str(BIN), "chat", "--thread", thread], cwd=str(self.cwd),
                             env=self.merged_env(env), stdin=subprocess.PIPE,  # answers: at exit
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=default_signals)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    def test_8101_a_new_thread_claims_a_warm_sprite_and_the_pool_refills(self):
        self.fake.create_delay = 0.3
        p = self.start_chat("p", env={"JANEBOT_SPRITES_POOL": "2"})
        first = self.wait_for(lambda: len(self.ready_pool()) >= 2 and self.ready_pool(),
                              what="two warm sprites")
        p.stdin.write(b"hello\n")
        p.stdin.flush()

        def claimed():
            return [e["name"] for e in self.fake.events if e["kind"] == "exec"
                    and e["name"].startswith("jane-pool-") and "agent" in " ".join(e["cmd"])]
        used = self.wait_for(claimed, what="the turn to run in a pool sprite")
        self.assertIn(used[0], first)
        # The pool is topped up to 2 warm sprites besides the claimed one.
        self.wait_for(lambda: len([n for n in self.ready_pool() if n != used[0]]) >= 2,
                      what="the pool to refill")
        out, err = p.communicate(b"", timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(b"echo: hello (turn 1)", out, err)
        self.assertIn("takes warm sprite %s" % used[0], err.decode())
        # The thread ran in a pool sprite: its own name was never created.
        self.assertEqual(self.kinds(sandbox_name("chat:p"), ("create",)), [])
        ls = self.run_jb(["sandbox", "list"])
        line = self.line_with(ls, used[0])
        self.assertIn("chat:p", line)
        self.assertIn("sprites", line)
        for name in self.ready_pool():
            if name != used[0]:
                self.assertNotIn(name, ls.out, "unclaimed pool sprites are not threads")
        # The next turn of the thread goes to the same sprite, from another process.
        r = self.chat_ok(["again"], thread="p")
        self.assertIn_("echo: again (turn 2)", r)

    def test_8102_reset_restores_the_golden_checkpoint(self):
        env = {"JANEBOT_SPRITES_SETUP": "echo golden > $HOME/setup-marker"}
        r = self.sbx("g", "sh", "-c", "cat ~/setup-marker; echo junk > ~/junk", env=env)
        self.assertEqual((r.rc, r.out), (0, "golden\n"), r)
        name = sandbox_name("g")
        cps = self.fake.checkpoints(name)
        self.assertEqual(len(cps), 1, cps)
        self.assertTrue(cps[0]["comment"].startswith("janebot-golden "), cps)
        reset = self.run_jb(["sandbox", "reset", "g"], env=env)
        self.assertEqual(reset.rc, 0, reset)
        self.assertIn("reset the sandbox of g", reset.out)
        self.assertEqual(self.kinds(name, ("restore",)), ["restore"])
        ls = self.sbx("g", "sh", "-c", "ls ~", env=env)
        self.assertIn("setup-marker", ls.out, ls)
        self.assertNotIn("junk", ls.out, ls)
        none = self.run_jb(["sandbox", "reset", "never-used"])
        self.assertNotEqual(none.rc, 0, none)
        self.assertIn("no sprite serves never-used", none.err)

    def test_8103_a_failed_setup_is_reported_and_nothing_runs(self):
        r = self.sbx("f", "echo", "should-not-run",
                     env={"JANEBOT_SPRITES_SETUP": "echo broken >&2; exit 3"})
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("set-up (JANEBOT_SPRITES_SETUP) failed", r.err)
        self.assertIn("broken", r.err)
        self.assertNotIn("should-not-run", r.out)

    def test_8104_sprites_golden_builds_and_checkpoints_the_reference(self):
        env = {"JANEBOT_SPRITES_SETUP": "echo installed > $HOME/tool"}
        g = self.run_jb(["sprites", "golden"], env=env)
        self.assertEqual(g.rc, 0, g)
        self.assertIn("jane-golden", g.out)
        cps = self.fake.checkpoints("jane-golden")
        self.assertEqual(len(cps), 1, cps)
        self.assertIn(cps[0]["id"], g.out)
        self.assertEqual((self.tmp / "sprites" / "jane-golden" / "tool").read_text(), "installed\n")
        again = self.run_jb(["sprites", "golden"], env=env)  # from a clean sprite each time
        self.assertEqual(again.rc, 0, again)
        self.assertEqual(self.kinds("jane-golden", ("create", "delete")),
                         ["create", "delete", "create"])
        h = self.run_jb(["sprites", "golden", "--help"])
        self.assertIn("cannot start from, or restore, another", h.out)
        local = self.run_jb(["sprites", "golden"], env={"JANEBOT_SANDBOX": "local"})
        self.assertNotEqual(local.rc, 0, local)
        self.assertIn("no golden image", local.err)

    def test_8105_gc_removes_idle_thread_sprites_but_not_the_pool(self):
        self.assertEqual(self.sbx("idle", "true").rc, 0)
        pool = "jane-pool-0123456789ab"  # a warm sprite nobody claimed
        self.assertEqual(self.sbx("other", "true").rc, 0)
        req = urllib.request.Request(self.fake.url + "/v1/sprites", method="POST",
                                     data=json.dumps({"name": pool}).encode(),
                                     headers={"Authorization": "Bearer " + SPRITES_TOKEN,
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        time.sleep(1.1)
        gc = self.run_jb(["sandbox", "gc", "--idle", "0"])
        self.assertEqual(gc.rc, 0, gc)
        self.assertIn("removed 2 sandbox(es)", gc.out)
        self.assertNotIn(sandbox_name("idle"), self.fake.sprites)
        self.assertIn(pool, self.fake.sprites)

    def test_8106_a_sprite_that_does_not_answer_is_reported_within_the_bound(self):
        self.assertEqual(self.sbx("h", "true").rc, 0)
        self.fake.exec_delay = 8
        t0 = time.monotonic()
        r = self.chat(["hi"], thread="h2", env={"JANEBOT_SPRITES_HEALTH_TIMEOUT": "1"})
        self.assertLess(time.monotonic() - t0, 7, r)
        self.assertIn("did not answer within 1 s", r.both, r)

    def test_8107_rate_limits_wait_for_retry_after(self):
        self.fake.rate_limit_next = 1
        self.fake.retry_after = 1
        t0 = time.monotonic()
        r = self.sbx("rl", "echo", "ok")
        self.assertEqual((r.rc, r.out), (0, "ok\n"), r)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        self.assertIn("rate limited (429)", r.err)

    def test_8108_the_agent_does_not_run_as_root(self):
        r = self.sbx("u", "id", "-u")
        self.assertEqual(r.rc, 0, r)
        want = "1000" if os.geteuid() == 0 else str(os.geteuid())
        self.assertEqual(r.out.strip(), want, r)

    def test_8109_each_turn_is_audited_with_its_sprite_and_exec_time(self):
        self.chat_ok(["one"], thread="au")
        db = sqlite3.connect(str(self.state / "janebot.db"))
        rows = db.execute("SELECT sandbox, backend, exec_ms, outcome FROM turns"
                          " WHERE thread_key = 'chat:au'").fetchall()
        db.close()
        self.assertEqual(len(rows), 1, rows)
        sandbox, backend, exec_ms, outcome = rows[0]
        self.assertEqual((sandbox, backend, outcome), (sandbox_name("chat:au"), "sprites", "ok"))
        self.assertGreater(exec_ms, 0)
        t = self.run_jb(["turns", "--limit", "5", "chat:au"])
        self.assertEqual(t.rc, 0, t)
        line = self.line_with(t, "chat:au")
        for word in ("sprites", sandbox_name("chat:au"), " ok ", " %d " % exec_ms):
            self.assertIn(word, line, t)
        bad = self.run_jb(["turns", "--limit", "0"])
        self.assertEqual(bad.rc, 2, bad)

    def test_8110_the_command_agent_is_a_path_inside_the_sprite_installed_by_the_setup(self):
        inside = self.tmp / "in-sprite" / "agent"  # not there until the set-up makes it
        # Outside the home (a root directory, like /usr/local/bin): the set-up runs as the
        # sprite's user and says sudo for it.
        env = {"JANEBOT_AGENT_CMD": str(inside),
               "JANEBOT_SPRITES_SETUP": "sudo mkdir -p %s && sudo cp %s %s && "
                                        "sudo chmod 755 %s %s"
                                        % (inside.parent, AGENT, inside, inside.parent, inside)}
        self.assertFalse(inside.exists())
        r = self.chat_ok(["hello"], thread="cmd", env=env)
        self.assertIn_("echo: hello (turn 1)", r)
        local = self.run_jb(["config", "check"], env=dict(env, JANEBOT_SANDBOX="local",
                                                           JANEBOT_AGENT_CMD="/nonexistent/agent"))
        self.assertNotEqual(local.rc, 0, "the local backend needs the agent on this host")
        rel = self.run_jb(["config", "check"], env={"JANEBOT_AGENT_CMD": "bin/agent"})
        self.assertNotEqual(rel.rc, 0, rel)
        self.assertIn("absolute path inside the sprite", rel.err)

    def test_8111_a_channels_egress_names_reach_only_its_sprites(self):
        cfg = self.tmp / "janebot.yaml"
        cfg.write_text("channels:\n  C0EXTRA:\n    egress: [extra.example.com]\n")
        env = {"JANEBOT_CONFIG": str(cfg)}
        for key in ("C0EXTRA:1700000000.000100", "C0OTHER:1700000000.000100"):
            self.assertEqual(self.sbx(key, "true", env=env).rc, 0)
        allow = {"action": "allow", "domain": "extra.example.com"}
        extra = self.fake.sprites[sandbox_name("C0EXTRA:1700000000.000100")]["policy"]["rules"]
        other = self.fake.sprites[sandbox_name("C0OTHER:1700000000.000100")]["policy"]["rules"]
        self.assertIn(allow, extra)
        self.assertEqual(extra[-1], {"action": "deny", "domain": "*"})
        self.assertNotIn(allow, other)

    def test_8112_a_threads_sprite_made_before_janebot_kept_names_is_taken_as_it_is(self):
        name = sandbox_name("old")
        req = urllib.request.Request(self.fake.url + "/v1/sprites", method="POST",
                                     data=json.dumps({"name": name}).encode(),
                                     headers={"Authorization": "Bearer " + SPRITES_TOKEN,
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        r = self.sbx("old", "echo", "kept")
        self.assertEqual((r.rc, r.out), (0, "kept\n"), r)
        self.assertEqual(self.kinds(name, ("create", "policy", "checkpoint", "exec"))[:3],
                         ["create", "policy", "exec"], "no second create, no set-up")

    def golden_of(self, key):
        db = sqlite3.connect(str(self.state / "janebot.db"))
        row = db.execute("SELECT name, golden FROM sandbox_names WHERE thread_key = ?",
                         (key,)).fetchone()
        db.close()
        return row

    def test_8113_a_reset_waits_for_the_asynchronous_restore(self):
        env = {"JANEBOT_SPRITES_SETUP": "echo golden > $HOME/setup-marker"}
        r = self.sbx("ar", "sh", "-c", "echo junk > ~/junk", env=env)
        self.assertEqual(r.rc, 0, r)
        name = sandbox_name("ar")
        self.fake.restore_delay = 2.5
        env2 = dict(env, JANEBOT_EGRESS_ALLOW="after-reset.example.com")
        t0 = time.monotonic()
        reset = self.run_jb(["sandbox", "reset", "ar"], env=env2)
        self.assertEqual(reset.rc, 0, reset)
        self.assertGreaterEqual(time.monotonic() - t0, 2.5, "the reset did not wait")
        restore = [c for c in self.fake.calls if c["path"].endswith("/restore")]
        self.assertEqual(len(restore), 1, restore)
        self.assertEqual(restore[0]["headers"].get("Content-Length"), "0", restore)
        # The policy of today is set after the restore took effect, not overwritten by it.
        kinds = self.kinds(name, ("restore", "policy"))
        self.assertEqual(kinds[-2:], ["restore", "policy"], kinds)
        self.assertEqual(self.fake.sprites[name]["policy"]["rules"][0],
                         {"action": "allow", "domain": "after-reset.example.com"})
        ls = self.sbx("ar", "sh", "-c", "ls ~", env=env2)
        self.assertEqual(ls.rc, 0, ls)
        self.assertIn("setup-marker", ls.out, ls)
        self.assertNotIn("junk", ls.out, ls)
        self.assertNotIn("janebot-restore", ls.out, "the marker went with the restore")

    def test_8114_a_lost_checkpoint_answer_is_looked_up_not_sent_again(self):
        env = {"JANEBOT_SPRITES_SETUP": "echo golden > $HOME/setup-marker"}
        for key, how in (("l502", "502"), ("ldrop", "drop"), ("l503", "503")):
            self.fake.lose_answer = ("checkpoint", how)
            r = self.sbx(key, "true", env=env)
            self.assertEqual(r.rc, 0, r)
            self.assertIsNone(self.fake.lose_answer, "the switch was used")
            name = sandbox_name(key)
            cps = self.fake.checkpoints(name)
            self.assertEqual(len(cps), 1, "%s: %s" % (how, cps))
            self.assertEqual(self.golden_of(key), (name, cps[0]["id"]))
            if how == "503":  # refused before anything was done: sent again
                self.assertIn("it was not made, sending it again", r.err, r)

    def test_8115_a_lost_restore_answer_is_looked_up_not_sent_again(self):
        env = {"JANEBOT_SPRITES_SETUP": "echo golden > $HOME/setup-marker"}
        for key, how in (("r502", "502"), ("rdrop", "drop"), ("r503", "503")):
            r = self.sbx(key, "sh", "-c", "echo junk > ~/junk", env=env)
            self.assertEqual(r.rc, 0, r)
            name = sandbox_name(key)
            self.fake.lose_answer = ("restore", how)
            reset = self.run_jb(["sandbox", "reset", key], env=env)
            self.assertEqual(reset.rc, 0, "%s%s" % (how, reset))
            self.assertIsNone(self.fake.lose_answer, "the switch was used")
            self.assertEqual(self.kinds(name, ("restore_started",)), ["restore_started"], how)
            self.assertFalse((self.tmp / "sprites" / name / "junk").exists(), how)
            if how == "503":
                self.assertIn("sending it again", reset.err, reset)

    def test_8116_the_checkpoint_id_is_looked_up_not_read_from_the_text(self):
        self.fake.checkpoint_text = "Checkpoint created successfully"
        env = {"JANEBOT_SPRITES_SETUP": "echo golden > $HOME/setup-marker"}
        r = self.sbx("id", "sh", "-c", "echo junk > ~/junk", env=env)
        self.assertEqual(r.rc, 0, r)
        name = sandbox_name("id")
        cps = self.fake.checkpoints(name)
        self.assertEqual(self.golden_of("id"), (name, cps[0]["id"]))
        reset = self.run_jb(["sandbox", "reset", "id"], env=env)
        self.assertEqual(reset.rc, 0, reset)
        self.assertFalse((self.tmp / "sprites" / name / "junk").exists())

    def test_8117_the_agent_owns_what_the_setup_wrote_in_its_home(self):
        # The set-up runs as the sprite's user (root only by sudo); the agent too. Whether
        # the service's exec runs as that user (the default) or as root.
        setup = ("mkdir -p $HOME/.tool && echo conf > $HOME/.tool/conf && echo v1 > $HOME/notes"
                 " && sudo touch $HOME/by-root")
        for key, as_root in (("own", False), ("own-root", True)):
            self.fake.exec_as_root = as_root
            env = {"JANEBOT_SPRITES_SETUP": setup if not as_root else setup.split(" && sudo")[0]}
            r = self.sbx(key, "sh", "-c", "id -u; stat -c %u ~/.tool ~/.tool/conf ~/notes; "
                         "echo more >> ~/notes && echo new > ~/.tool/conf && rm ~/.tool/conf "
                         "&& echo edited", env=env)
            self.assertEqual(r.rc, 0, r)
            lines = r.out.split()
            self.assertEqual(lines[1:4], [lines[0]] * 3, "%s: %s" % (key, r.out))
            self.assertEqual(lines[-1], "edited", r)
            if os.geteuid() == 0:
                self.assertEqual(lines[0], "1000", r)
                if not as_root:  # and sudo did make root its owner
                    by_root = self.tmp / "sprites" / sandbox_name(key) / "by-root"
                    self.assertEqual(by_root.stat().st_uid, 0)

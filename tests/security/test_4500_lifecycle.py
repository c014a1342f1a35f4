"""4500: sandbox lifecycle: `janebot sandbox gc --idle DAYS` removes sandboxes idle for
longer than DAYS with their sessions, keeps newer ones, validates its argument, and never
follows symlinks out of a home it deletes."""
import os
import time
import unittest

from sectest import SecCase, needs_bwrap, sandbox_name

DAY = 86400


@needs_bwrap
class Gc(SecCase):
    def age(self, key, days):
        lu = self.state / "sandboxes" / sandbox_name(key) / "last_used"
        self.assertTrue(lu.exists(), "%s expected after a turn" % lu)
        t = time.time() - days * DAY
        os.utime(lu, (t, t))

    def test_4501_gc_removes_sandboxes_idle_longer_than_the_limit_with_their_sessions(self):
        for t in ("old", "new", "mid"):
            self.chat_ok(["hello " + t], thread=t)
        self.age("chat:old", 10)
        self.age("chat:mid", 2)
        s0 = self.run_jb(["sessions", "list"], timeout=30)
        self.assertIn("chat:old", s0.out, s0)
        g = self.run_jb(["sandbox", "gc", "--idle", "3"], timeout=30)
        self.assertEqual(g.rc, 0, g)
        self.assertFalse(self.home_of("chat:old").exists(), "old home still there%s" % g)
        self.assertFalse((self.state / "sandboxes" / sandbox_name("chat:old")).exists(), g)
        for keep in ("chat:new", "chat:mid"):
            self.assertTrue(self.home_of(keep).is_dir(), "%s removed too early%s" % (keep, g))
        ls = self.run_jb(["sandbox", "list"], timeout=30)
        self.assertNotIn(sandbox_name("chat:old"), ls.out, ls)
        self.assertIn(sandbox_name("chat:new"), ls.out, ls)
        self.assertIn(sandbox_name("chat:mid"), ls.out, ls)
        s = self.run_jb(["sessions", "list"], timeout=30)
        self.assertEqual(s.rc, 0, s)
        self.assertNotIn("chat:old", s.out, "the session of a collected sandbox remains%s" % s)
        self.assertIn("chat:new", s.out, s)
        # The collected thread starts over; the kept one continues its conversation.
        again = self.chat_ok(["hi again"], thread="old")
        self.assertIn_("echo: hi again (turn 1)", again)
        cont = self.chat_ok(["hi again"], thread="new")
        self.assertIn_("echo: hi again (turn 2)", cont)
        self.normal_turn_still_works()

    def test_4502_gc_needs_a_non_negative_integer_idle_argument(self):
        self.chat_ok(["hello"], thread="keep")
        for args in ([], ["--idle"], ["--idle", "-1"], ["--idle", "abc"], ["--idle", "1.5"],
                     ["--idle", ""], ["--idle", "3x"], ["--idle", "99999999999999999999999"],
                     ["--idle", "3", "extra"], ["--bogus", "3"]):
            with self.subTest(args=args):
                r = self.run_jb(["sandbox", "gc"] + args, timeout=30)
                self.assertEqual(r.rc, 2, "usage error expected%s" % r)
                self.assertRegex(r.err.lower(), r"usage|--idle", r)
        self.assertTrue(self.home_of("chat:keep").is_dir(), "a bad gc call removed a sandbox")
        ok = self.run_jb(["sandbox", "gc", "--idle", "0"], timeout=30)
        self.assertEqual(ok.rc, 0, ok)
        self.normal_turn_still_works()

    def test_4503_gc_does_not_follow_symlinks_out_of_a_home_it_removes(self):
        victim = self.tmp / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("keep me")
        self.chat_ok(["hello"], thread="gcsym")
        x = self.sbx("chat:gcsym", "sh", "-c",
                     "ln -s %s evil_dir; ln -s %s/keep.txt evil_file; ln -s %s evil_state; "
                     "mkdir -p a/b; ln -s ../../.. a/b/up; echo planted"
                     % (victim, victim, self.state))
        self.assertIn("planted", x.out, x)
        self.age("chat:gcsym", 30)
        g = self.run_jb(["sandbox", "gc", "--idle", "7"], timeout=30)
        self.assertEqual(g.rc, 0, g)
        self.assertFalse(self.home_of("chat:gcsym").exists(), g)
        self.assertEqual((victim / "keep.txt").read_text(), "keep me", "gc followed a symlink")
        self.assertTrue((self.state / "janebot.db").is_file(), "gc followed a symlink")
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

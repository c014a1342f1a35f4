"""1000: `janebot chat`: answers, resume across turns and restarts, threads, sessions."""
import os
import pwd
import re
import signal
import subprocess
import time
import unittest

from jbtest import (BIN, JanebotCase, default_signals, needs_bwrap, procs_matching,
                    sandbox_name)


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* janebot (debug|info|warn|error)\b")


def non_log_lines(text):
    """Lines that are not janebot's own timestamped log lines (i.e. progress)."""
    lines = [l.strip("\r ") for l in text.replace("\r", "\n").split("\n")]
    return [l for l in lines if l and not LOG_LINE.match(l)]


@needs_bwrap
class Chat(JanebotCase):
    def test_1001_a_message_is_answered_on_stdout(self):
        r = self.chat_ok(["hello world"])
        self.assertIn_("echo: hello world (turn 1)", r)

    def test_1002_three_messages_in_one_chat_are_answered_in_order_resuming_one_conversation(self):
        r = self.chat_ok(["first", "second", "third"], thread="t3")
        self.assertInOrder(r, ["echo: first (turn 1)", "echo: second (turn 2)",
                               "echo: third (turn 3)"])

    def test_1003_a_second_chat_process_continues_the_conversation_and_sessions_list_shows_it(self):
        r1 = self.chat_ok(["one", "two"], thread="keep")
        self.assertInOrder(r1, ["echo: one (turn 1)", "echo: two (turn 2)"])
        r2 = self.chat_ok(["three"], thread="keep")
        self.assertIn_("echo: three (turn 3)", r2)
        sids = self.session_ids("chat:keep")
        self.assertEqual(len(sids), 1, "one agent conversation expected, got %r" % sids)
        s = self.run_jb(["sessions", "list"], timeout=20)
        self.assertEqual(s.rc, 0, s)
        line = self.line_with(s, "chat:keep")
        self.assertIn(sids[0], line, "session id in sessions list%s" % s)
        self.assertIn("command", line, "agent name in sessions list%s" % s)
        self.assertRegex(line, r"(^|\s)3(\s|$)", "3 turns in sessions list%s" % s)

    def test_1004_threads_are_separate_conversations(self):
        ra = self.chat_ok(["alpha"], thread="a")
        rb = self.chat_ok(["beta"], thread="b")
        ra2 = self.chat_ok(["gamma"], thread="a")
        self.assertIn_("echo: alpha (turn 1)", ra)
        self.assertIn_("echo: beta (turn 1)", rb)
        self.assertIn_("echo: gamma (turn 2)", ra2)

    def test_1005_the_default_thread_is_chat_default(self):
        self.chat_ok(["hello"])
        self.assertTrue(self.home_of("chat:default").is_dir(),
                        "expected home of %s" % sandbox_name("chat:default"))
        s = self.run_jb(["sessions", "list"], timeout=20)
        self.assertIn_("chat:default", s)
        r = self.chat_ok(["again"], thread="default")
        self.assertIn_("echo: again (turn 2)", r)

    def test_1006_a_user_can_be_named(self):
        r = self.chat_ok(["hi from bob"], user="U0BOB")
        self.assertIn_("echo: hi from bob (turn 1)", r)

    def test_1007_at_end_of_input_chat_waits_for_the_answer_in_flight(self):
        r = self.chat_ok(["sleep 2"])
        self.assertIn_("slept", r)
        self.assertGreaterEqual(r.secs, 2.0, r)

    def test_1008_empty_input_exits_0(self):
        r = self.chat_ok([])
        self.assertNotIn("echo:", r.out)

    def test_1009_tool_progress_never_goes_to_stdout_or_to_a_non_terminal_stderr(self):
        r = self.chat_ok(["run: echo zq-marker-$((6*7))"])
        self.assertIn_("zq-marker-42", r)
        self.assertNotIn_("echo zq-marker", r, "out")
        self.assertNotIn_("echo zq-marker", r, "err")
        self.assertEqual(non_log_lines(r.err), [], "progress on a non-terminal stderr%s" % r)

    def test_1010_progress_goes_to_stderr_when_it_is_a_terminal(self):
        r = self.chat_ok(["run: sleep 1; echo zq-tty-$((6*7))"], stderr_tty=True)
        self.assertIn_("zq-tty-42", r)
        self.assertTrue(non_log_lines(r.err), "progress expected on the terminal%s" % r)
        self.assertNotIn_("working on", r, "out")

    def test_1011_two_chats_on_different_threads_run_at_the_same_time(self):
        procs = []
        t0 = time.monotonic()
        for name in ("left", "right"):
            p = subprocess.Popen([str(BIN), "chat", "--thread", name], cwd=str(self.cwd),
                                 env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True,
                                 preexec_fn=default_signals)
            procs.append((name, p))
        outs = {}
        for name, p in procs:
            try:
                out, err = p.communicate(("sleep 2\nhello %s\n" % name).encode(), timeout=60)
            except subprocess.TimeoutExpired:
                for _, q in procs:
                    q.kill()
                self.fail("concurrent chat %s did not finish" % name)
            outs[name] = (p.returncode, out.decode(), err.decode())
        wall = time.monotonic() - t0
        for name in ("left", "right"):
            rc, out, err = outs[name]
            self.assertEqual(rc, 0, "%s: %s %s" % (name, out, err))
            self.assertIn("slept", out, "%s: %s %s" % (name, out, err))
            self.assertIn("echo: hello %s (turn 2)" % name, out, "%s: %s %s" % (name, out, err))
        self.assertLess(wall, 30, "two 2 s turns took %.1fs" % wall)

    def test_1012_text_survives_unicode_quotes_and_shell_characters(self):
        msg = "héllo ✓ 🙂 'single' \"double\" $HOME `id` ; rm -rf / --flag"
        r = self.chat_ok([msg])
        self.assertIn_("echo: %s (turn 1)" % msg, r)

    def test_1013_a_message_that_looks_like_a_flag_is_just_text(self):
        r = self.chat_ok(["--help"])
        self.assertIn_("echo: --help (turn 1)", r)

    def test_1014_the_agent_gets_the_prompt_on_stdin_and_the_resume_id_from_the_second_turn_on(self):
        import json
        self.chat_ok(["one", "two"], thread="ids")
        calls = [json.loads(l) for l in
                 (self.home_of("chat:ids") / ".fake-agent" / "calls.jsonl").read_text().splitlines()]
        self.assertEqual(len(calls), 2, calls)
        self.assertIsNone(calls[0]["resume"], calls)
        self.assertTrue(calls[0]["prompt"].endswith("one"), calls)
        self.assertEqual(calls[1]["resume"], calls[0]["session_id"], calls)
        self.assertEqual(calls[0]["cwd"], "/home/agent", calls)

    def test_1015_sessions_list_shows_every_thread_with_its_turns(self):
        self.chat_ok(["a1"], thread="s1")
        self.chat_ok(["b1", "b2"], thread="s2")
        s = self.run_jb(["sessions", "list"], timeout=20)
        self.assertEqual(s.rc, 0, s)
        l1, l2 = self.line_with(s, "chat:s1"), self.line_with(s, "chat:s2")
        self.assertRegex(l1, r"(^|\s)1(\s|$)", s)
        self.assertRegex(l2, r"(^|\s)2(\s|$)", s)
        self.assertIn(self.session_ids("chat:s2")[0], l2, s)
        self.assertGreaterEqual(len(l2.split()), 5, "key, agent, id, turns, last active%s" % s)

    def test_1016_sessions_list_on_a_fresh_state_dir_is_empty_and_exits_0(self):
        s = self.run_jb(["sessions", "list"], timeout=20)
        self.assertEqual(s.rc, 0, s)
        self.assertNotIn("chat:", s.out, s)

    def test_1017_the_agent_is_told_its_thread_key_and_user_the_login_name_by_default(self):
        login = pwd.getpwuid(os.getuid()).pw_name
        r = self.chat_ok(["getenv JANEBOT_THREAD_KEY", "getenv JANEBOT_USER"], thread="who")
        self.assertIn_("JANEBOT_THREAD_KEY=chat:who", r)
        self.assertIn_("JANEBOT_USER=%s\n" % login, r)
        r = self.chat_ok(["getenv JANEBOT_USER"], thread="who", user="U0ALICE")
        self.assertIn_("JANEBOT_USER=U0ALICE", r)

    def test_1018_a_last_line_without_a_newline_is_still_a_message(self):
        r = self.run_jb(["chat"], input="first\nlast words")
        self.assertEqual(r.rc, 0, r)
        self.assertInOrder(r, ["echo: first (turn 1)", "echo: last words (turn 2)"])

    def test_1019_a_long_answer_arrives_whole(self):
        r = self.chat_ok(["run: seq 1 30000"])
        self.assertIn_("\n29999\n30000", r)
        self.assertIn_("1\n2\n3\n", r)

    def test_1020_odd_thread_names_stay_inside_the_state_dir(self):
        for name in ("../../escape", "a b/c", "x" * 300):
            with self.subTest(name=name[:20]):
                r = self.chat_ok(["write f.txt hi"], thread=name)
                self.assertIn_("wrote f.txt", r)
                self.assertTrue((self.home_of("chat:" + name) / "f.txt").is_file(), r)
        entries = sorted(os.listdir(self.state / "sandboxes"))
        self.assertEqual(len(entries), 3, entries)
        self.assertTrue(all(e.startswith("jane-") for e in entries), entries)
        self.assertFalse((self.tmp / "escape").exists())

    def interrupt_mid_turn(self, sig):
        tag = self.tag("hang")
        p = subprocess.Popen([str(BIN), "chat", "--thread", "int-%d" % sig], cwd=str(self.cwd),
                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=default_signals)
        p.stdin.write(("hang %s\n" % tag).encode())
        p.stdin.flush()
        end = time.monotonic() + 20
        while time.monotonic() < end and not procs_matching("hang-" + tag):
            time.sleep(0.1)
        if not procs_matching("hang-" + tag):
            p.kill()
            out, err = p.communicate()
            self.fail("the hanging turn never started: %s %s" % (out, err))
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("janebot chat ignored signal %d: %s %s" % (sig, out, err))
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), tag

    def test_1021_interrupting_chat_mid_turn_stops_the_turn(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig.name):
                rc, out, err, tag = self.interrupt_mid_turn(sig)
                self.assertEqual(self.wait_gone("hang-" + tag, 5), [],
                                 "turn processes survived %s: %s" % (sig.name, err))
                self.assertNotRegex(err, r"ERROR: AddressSanitizer|runtime error: ")

    def test_1022_a_killed_janebot_leaves_no_sandboxed_process_behind(self):
        rc, out, err, tag = self.interrupt_mid_turn(signal.SIGKILL)
        self.assertEqual(self.wait_gone("hang-" + tag, 5), [],
                         "turn processes survived SIGKILL of janebot")

    def test_1023_a_message_cut_off_by_a_killed_janebot_is_answered_by_the_next_chat(self):
        tag = self.tag("resumed")
        p = subprocess.Popen([str(BIN), "chat", "--thread", "cut"], cwd=str(self.cwd),
                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=default_signals)
        p.stdin.write(("run: sleep 2; echo %s\n" % tag).encode())
        p.stdin.flush()
        end = time.monotonic() + 20
        while time.monotonic() < end and not procs_matching(tag):
            time.sleep(0.05)
        p.kill()
        p.communicate()
        self.assertEqual(self.wait_gone(tag, 5), [])
        r = self.chat_ok([], thread="cut")
        self.assertIn_(tag, r)


if __name__ == "__main__":
    unittest.main()

"""5600: `janebot serve` stops gracefully on SIGTERM: it takes no new event (the socket
closes without acking it, so Slack sends it again), lets running turns finish and post
their answers within JANEBOT_STOP_GRACE, leaves the rest pending for the next start, and
exits 0; a second SIGTERM during the grace stops at once; SIGHUP still reloads."""
import os
import signal
import time

from jbtest import AGENT, needs_bwrap
from test_5000_serve_startup import ServeCase

HOST = {"JANEBOT_SANDBOX": "host", "ALLOW_LOCAL_EXECUTION": "true"}


class StopCase(ServeCase):
    def sigterm(self, sig=signal.SIGTERM):
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        return t0

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except Exception:
            self.fail("janebot serve did not exit within %.0f s of SIGTERM%s"
                      % (timeout, self.summary()))

    def log_text(self):
        return self.serve_log.read_bytes().decode(errors="replace")


@needs_bwrap
class StopLocal(StopCase):
    def test_5601_a_running_turn_is_answered_after_SIGTERM_and_new_events_are_not_acked(self):
        self.start_serve()
        d = self.dm("sleep 2")
        self.wait_reaction(d, "eyes")  # the turn runs
        self.sigterm()
        # Socket Mode closes at once: an event sent now must not be acknowledged.
        self.wait_for(lambda s: s["connections"] and not any(c["open"]
                                                             for c in s["connections"]),
                      "the Socket Mode connection to close after SIGTERM", timeout=5,
                      allow_exit=True)
        late = self.dm("zq-5601 sent after the stop")
        rc = self.wait_exit(20)
        self.assertEqual(rc, 0, "a graceful stop exits 0%s" % self.summary())
        s = self.slack.state()
        self.assertEqual(self.count_final(s, d, "slept"), 1,
                         "the running turn's answer must be posted before the exit%s"
                         % self.summary(s))
        self.assertEqual([m.get("text") for m in self.bot_messages(s, d)], ["slept"],
                         "the answer, and no status message left behind%s" % self.summary(s))
        late_env = [e for e in s["envelopes"] if e["event_id"] in late["event_ids"]]
        self.assertFalse([e for e in late_env if e["acked_at"]],
                         "an event sent after SIGTERM must not be acked%s" % self.summary(s))
        log = self.log_text()
        self.assertIn("stopping (signal 15): 1 turn running, waiting up to 60 s", log)
        self.assertIn("stopped: 1 turn finished, 0 left for the next start", log)


class StopHost(StopCase):
    serve_env = HOST

    def test_5602_a_turn_past_the_grace_is_left_and_answered_after_the_restart(self):
        tag = self.tag("stop")
        marker, pidfile = self.tmp / ("ran-" + tag), self.tmp / ("pid-" + tag)
        script = self.tmp / ("agent-%s.sh" % tag)
        # First run: a turn that needs 30 s. Any later run answers at once.
        script.write_text(
            "#!/bin/sh\n"
            "if [ ! -e %(m)s ]; then\n"
            "  : > %(m)s; echo $$ > %(p)s\n"
            "  exec %(a)s <<EOF\nsleep 30\nEOF\n"
            "fi\n"
            "exec %(a)s <<EOF\nzq-5602 after the restart\nEOF\n"
            % {"m": marker, "p": pidfile, "a": AGENT})
        os.chmod(script, 0o755)
        env = {"JANEBOT_AGENT_CMD": str(script), "JANEBOT_STOP_GRACE": "1"}
        self.start_serve(env=env)
        d = self.dm("zq-5602 slow")
        # The shell creates the file before it writes the pid into it.
        self.wait_for(lambda s: pidfile.exists() and pidfile.read_text().strip(),
                      "the slow agent to start")
        pid = int(pidfile.read_text())
        t0 = self.sigterm()
        rc = self.wait_exit(10)
        secs = time.monotonic() - t0
        self.assertEqual(rc, 0, "a graceful stop exits 0%s" % self.summary())
        self.assertGreaterEqual(secs, 0.9, "the running turn must get its 1 s of grace%s"
                                % self.summary())
        self.assertLess(secs, 3.5, "the stop must end soon after the 1 s grace%s"
                        % self.summary())
        self.assertIn("stopped: 0 turns finished, 1 left for the next start", self.log_text())
        s = self.slack.state()
        self.assertFalse([t for t in self.thread_texts(s, d) if "slept" in t or "zq-5602 after"
                          in t], "nothing may be answered before the restart%s"
                         % self.summary(s))
        end = time.monotonic() + 3
        while time.monotonic() < end and os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)
        self.assertFalse(os.path.exists("/proc/%d" % pid),
                         "the agent of the turn left must be killed%s" % self.summary())
        self.start_serve(env=env)
        self.wait_answer(d, "zq-5602 after the restart")

    def test_5603_a_second_SIGTERM_stops_at_once_and_SIGHUP_still_reloads(self):
        self.start_serve()
        d = self.dm("sleep 30")
        self.wait_reaction(d, "eyes")
        self.sigterm()
        time.sleep(0.7)
        self.assertIsNone(self.proc.poll(), "serve must wait for the running turn%s"
                          % self.summary())
        self.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 5
        while "configuration reloaded" not in self.log_text() and time.monotonic() < end:
            time.sleep(0.05)
        self.assertIn("configuration reloaded", self.log_text(),
                      "SIGHUP must still reload during the grace%s" % self.summary())
        self.assertIsNone(self.proc.poll(), "SIGHUP must not end the grace%s" % self.summary())
        t0 = self.sigterm()
        rc = self.wait_exit(5)
        self.assertEqual(rc, 0, "the second SIGTERM exits 0 too%s" % self.summary())
        self.assertLess(time.monotonic() - t0, 2.0, "the second SIGTERM stops at once%s"
                        % self.summary())
        log = self.log_text()
        self.assertIn("stopping at once", log)
        self.assertIn("stopped: 0 turns finished, 1 left for the next start", log)

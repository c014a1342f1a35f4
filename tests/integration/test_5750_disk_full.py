"""5750: the state directory's disk fills up under `janebot serve` (a small tmpfs mounted
as the state dir; root only).

What a user should see: a message that cannot even be stored is not acknowledged, so
Slack sends it again; the user is told once in the thread that it could not be taken and
that it will be picked up when Slack sends it again. The log says so once, not once per
event. Nothing in the database is corrupted, and when space returns the bot is back by
itself: the redelivered message and a new one are both answered, each exactly once."""
import os
import sqlite3
import subprocess
import time
import unittest

from jbtest import needs_bwrap
from test_5000_serve_startup import ServeCase

TMPFS_SIZE = "48m"
NOTICE = "could not take this message"
LOG_LINE = "cannot store events"


def fill(path):
    """Write path until the file system is full; return the bytes written."""
    n = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
        try:  # the last partial megabyte too
            while f.write(b"\0" * 4096):
                n += 4096
        except OSError:
            pass
    return n


@needs_bwrap
class DiskFull(ServeCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs as the state dir needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % TMPFS_SIZE,
                            "tmpfs", str(self.state)], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.strip())
        # unmounted by the harness's cleanup (unmount_under(self.tmp)), after serve stops
        self.filler = self.state / "filler"

    def acked(self, info):
        s = self.slack.state()
        return [e for e in s["envelopes"] if e["event_id"] in info["event_ids"]
                and e["acked_at"]]

    def answers(self, s, info, needle):
        return [p for p in s["posts"] if self.in_thread(p, info) and needle in p["text"]]

    def test_5751_disk_full_leaves_the_event_unacked_tells_once_and_recovers(self):
        self.slack.call("config", {"max_retries": 20})
        self.start_serve()
        first = self.dm("zq5751 before")
        self.wait_answer(first, "zq5751 before")
        self.wait_reaction(first, "white_check_mark")  # the turn has ended and is stored
        self.quiet(1.0)
        log_before = len(self.serve_log.read_text(errors="replace").splitlines())
        self.assertGreater(fill(self.filler), 0)

        full = self.dm("zq5751 while full")
        full2 = self.dm("zq5751 also while full")
        self.wait_for(lambda s: self.answers(s, full, NOTICE) and self.answers(s, full2, NOTICE),
                      "a notice in each thread that the message could not be taken")
        # Slack redelivers what is not acked (every 3 s): still unacked, still unanswered,
        # and neither the notice nor the log line repeats.
        self.wait_for(lambda s: sum(1 for e in s["envelopes"]
                                    if e["event_id"] in full["event_ids"]) >= 3,
                      "Slack to redeliver the unacked event twice", timeout=12)
        self.assertEqual(self.acked(full), [], "an event that could not be stored was acked"
                         + self.summary())
        s = self.slack.state()
        self.assertEqual(len(self.answers(s, full, NOTICE)), 1,
                         "one notice per post, not one per redelivery" + self.summary(s))
        log = self.serve_log.read_text(errors="replace")
        self.assertEqual(log.count(LOG_LINE), 1, "one log line while the disk is full:\n" + log)
        noisy = [ln for ln in log.splitlines()[log_before:]
                 if " warn: " in ln or " error: " in ln]
        self.assertEqual(len(noisy), 1, "the full disk is one warning or error in the log, "
                         "not one per event or redelivery:\n" + "\n".join(noisy))
        self.assertNotIn("zq5751 while full (turn", "\n".join(self.thread_texts(s, full)))

        os.unlink(self.filler)
        self.wait_answer(full, "zq5751 while full", timeout=20)
        self.wait_answer(full2, "zq5751 also while full", timeout=20)
        after = self.dm("zq5751 after")
        self.wait_answer(after, "zq5751 after")
        self.quiet(4.0)
        s = self.slack.state()
        for info, text in ((full, "zq5751 while full"), (full2, "zq5751 also while full"),
                           (after, "zq5751 after"), (first, "zq5751 before")):
            got = [p for p in s["posts"] if self.in_thread(p, info) and text in p["text"]
                   and NOTICE not in p["text"]]
            self.assertEqual(len(got), 1, "%r answered once%s" % (text, self.summary(s)))
        log = self.serve_log.read_text(errors="replace")
        self.assertIn("storing events again", log)
        self.stop_serve()
        with sqlite3.connect(str(self.state / "janebot.db")) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")


if __name__ == "__main__":
    unittest.main()

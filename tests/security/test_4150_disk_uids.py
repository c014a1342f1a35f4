"""4150: a real disk quota and a uid of its own for every sandbox (janebot as root).

Each home is an ext4 file system of its own (an image of JANEBOT_SANDBOX_DISK_MB, loop-
mounted), so the kernel refuses what a walk of the home could not see: bytes in files
unlinked but held open, inodes (many empty files) and files in a folder of mode 000.
Every sandbox gets its own host uid from the database, so two threads whose names start
with the same four hex digits (the old hashed uid) no longer share one. The homes are
mounted while the sandbox exists, reused after a crash, resized with the setting, emptied
by `sandbox reset` and gone after `sandbox rm`.

As a normal user janebot has neither (the quota is a walk and the sandboxes share its
uid): these tests are skipped then, with the reason."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from sectest import BIN, SecCase, needs_bwrap, sandbox_name
from jbtest import mounts_under, procs_matching  # noqa: E402 (sectest puts it on the path)

MiB = 1 << 20
QUOTA_MB = 16
TOOLS = "/usr/sbin:/sbin:/usr/bin:/bin"


def images_problem():
    if os.geteuid() != 0:
        return ("needs root: as a normal user janebot's disk quota is a walk of the home and "
                "sandboxes share its uid")
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control here: homes cannot be disk images"
    if not shutil.which("mkfs.ext4", path=TOOLS):
        return "mkfs.ext4 is not installed (e2fsprogs)"
    return None


needs_images = unittest.skipIf(images_problem() is not None, images_problem() or "")

UNLINKED = r'''
total, err, held = 0, None, []
chunk = b"u" * MiB
try:
    while total < 64 * MiB:
        fd = os.open("/home/agent/held-%d" % len(held), os.O_CREAT | os.O_WRONLY, 0o600)
        os.unlink("/home/agent/held-%d" % len(held))
        held.append(fd)
        for _ in range(4):
            total += os.write(fd, chunk)
except OSError as e:
    err = ename(e.errno)
out("written", total)
out("error", err)
'''.replace("MiB", str(MiB))

INODES = r'''
n, err = 0, None
try:
    while n < 20000:
        os.close(os.open("/home/agent/e%d" % n, os.O_CREAT | os.O_WRONLY, 0o600))
        n += 1
except OSError as e:
    err = ename(e.errno)
out("created", n)
out("error", err)
'''

LOCKED = r'''
written, err = [0], None
def fill(path, limit):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while written[0] < limit:
            written[0] += os.write(fd, b"c" * MiB)
    finally:
        os.close(fd)
try:
    os.mkdir("/home/agent/locked")
    fill("/home/agent/locked/big", 10 * MiB)
    os.chmod("/home/agent/locked", 0)
    fill("/home/agent/more", 64 * MiB)
except OSError as e:
    err = ename(e.errno)
out("written", written[0])
out("error", err)
'''.replace("MiB", str(MiB))

STATFS = r'''
st = os.statvfs("/home/agent")
out("size", st.f_blocks * st.f_frsize)
out("free", st.f_bavail * st.f_frsize)
out("files", st.f_files)
out("ffree", st.f_ffree)
out("entries", sorted(os.listdir("/home/agent")))
'''


def loops_holding(path_part):
    """Loop devices whose backing file's path contains path_part."""
    found = []
    for d in os.listdir("/sys/block"):
        try:
            with open("/sys/block/%s/loop/backing_file" % d) as f:
                if path_part in f.read():
                    found.append(d)
        except OSError:
            pass
    return found


def no_loop_holds(test, path_part, timeout=10.0):
    """The kernel lets go of a loop device a moment after its last mount goes."""
    deadline = time.monotonic() + timeout
    while loops_holding(path_part) and time.monotonic() < deadline:
        time.sleep(0.05)
    test.assertEqual(loops_holding(path_part), [], "a loop device still holds the image")


def colliding_keys():
    """Two thread keys whose sandbox names share the four hex digits the old uid came from."""
    seen = {}
    for i in range(100000):
        key = "chat:uid-%d" % i
        h = sandbox_name(key)[5:9]
        if h in seen:
            return seen[h], key
        seen[h] = key
    raise AssertionError("no collision found")


class ImageCase(SecCase):
    """Helpers; every test runs with a small quota."""

    def setUp(self):
        super().setUp()
        self.env["JANEBOT_SANDBOX_DISK_MB"] = str(QUOTA_MB)

    def sandbox_dir(self, key):
        return self.state / "sandboxes" / sandbox_name(key)

    def assertOwnFileSystem(self, key, mb=QUOTA_MB):
        r = self.probe(key, STATFS)
        self.assertEqual(r.rc, 0, r)
        self.assertLessEqual(r.vals.get("size", 1 << 62), mb * MiB,
                             "the home is not a file system of %d MiB%s" % (mb, r))
        self.assertLessEqual(r.vals.get("files", 1 << 62), mb * MiB // 16384,
                             "the home's inodes are not bounded (one per 16 KiB)%s" % r)
        return r

    def hold(self, key, tag, secs=30):
        """janebot sandbox exec KEY sleeping; returns (janebot's Popen, host pid of the
        sleeper) once the sleeper runs."""
        p = subprocess.Popen([str(BIN), "sandbox", "exec", key, "--", "sh", "-c",
                              "sleep %d; : %s" % (secs, tag)], env=self.merged_env(),
                             cwd=str(self.cwd), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.addCleanup(self.stop, p)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = [pid for pid, cmd in procs_matching(tag) if cmd.startswith("sh -c")]
            if pids:
                return p, pids[0]
            if p.poll() is not None:
                self.fail("sandbox exec ended early: %s" % p.stderr.read().decode())
            time.sleep(0.05)
        self.fail("the sandboxed process never started")

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except OSError:
                pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        if p.stderr:
            p.stderr.close()



@needs_bwrap
@needs_images
class DiskQuota(ImageCase):
    def test_4151_files_unlinked_but_held_open_cannot_pass_the_quota(self):
        r = self.probe("chat:unlinked", UNLINKED, timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.vals.get("error"), "ENOSPC",
                         "writing 64 MiB into unlinked open files under a %d MiB quota should "
                         "end in ENOSPC%s" % (QUOTA_MB, r))
        self.assertLessEqual(r.vals["written"], QUOTA_MB * MiB, r)
        img = self.sandbox_dir("chat:unlinked") / "home.img"
        st = os.stat(img)
        self.assertEqual(st.st_size, QUOTA_MB * MiB, "the image is the quota's size")
        self.assertLessEqual(st.st_blocks * 512, QUOTA_MB * MiB,
                             "the host holds no more than the quota for this home")
        self.normal_turn_still_works()

    def test_4152_many_empty_files_are_refused_past_the_inode_limit_and_the_user_is_told(self):
        r = self.turn_probe("inodes", INODES, timeout=90)
        self.assertEqual(r.vals.get("error"), "ENOSPC",
                         "20,000 empty files under a %d MiB quota should end in ENOSPC%s"
                         % (QUOTA_MB, r))
        self.assertLessEqual(r.vals["created"], QUOTA_MB * MiB // 16384, r)
        self.assertIn("sandbox is full", r.both, "the user should be told%s" % r)
        self.assertIn("JANEBOT_SANDBOX_DISK_MB", r.both, r)
        # Deleting files makes room again: the next turn can write.
        d = self.sbx("chat:inodes", "sh", "-c", "rm -f ~/e*; touch ~/again && echo made",
                     timeout=60)
        self.assertIn("made", d.out, d)
        self.normal_turn_still_works()

    def test_4153_a_folder_of_mode_000_still_counts(self):
        r = self.probe("chat:locked", LOCKED, timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.vals.get("error"), "ENOSPC",
                         "writing past the quota with 10 MiB hidden in a mode 000 folder "
                         "should end in ENOSPC%s" % r)
        self.assertLessEqual(r.vals["written"], QUOTA_MB * MiB, r)
        self.normal_turn_still_works()

    def test_4154_reset_gives_an_empty_home_with_its_whole_quota(self):
        r = self.probe("chat:reset", INODES + "open('/home/agent/e0', 'w').write('x')\n",
                       timeout=60)
        self.assertEqual(r.vals.get("error"), "ENOSPC", r)
        x = self.run_jb(["sandbox", "reset", "chat:reset"], timeout=30)
        self.assertEqual(x.rc, 0, x)
        self.assertFalse(mounts_under(self.state), "reset unmounts the old image")
        self.assertFalse((self.sandbox_dir("chat:reset") / "home.img").exists())
        s = self.assertOwnFileSystem("chat:reset")
        self.assertEqual(s.vals.get("entries"), [], "the home after reset is not empty%s" % s)
        self.assertGreaterEqual(s.vals.get("ffree", 0), 1000, s)
        self.assertGreaterEqual(s.vals.get("free", 0), 12 * MiB, s)
        self.normal_turn_still_works()

    def test_4155_rm_leaves_no_mount_no_loop_device_and_no_image(self):
        self.assertOwnFileSystem("chat:rm")
        d = self.sandbox_dir("chat:rm")
        self.assertTrue((d / "home.img").exists())
        self.assertTrue(os.path.ismount(d / "home"), "the home stays mounted while it exists")
        # Another sandbox running meanwhile does not hold the removed home's file system.
        p, _ = self.hold("chat:rm-other", self.tag("other"))
        x = self.run_jb(["sandbox", "rm", "chat:rm"], timeout=30)
        self.assertEqual(x.rc, 0, x)
        self.assertFalse(d.exists(), "the sandbox's directory remains%s" % x)
        self.assertEqual(mounts_under(self.state),
                         [str(self.sandbox_dir("chat:rm-other") / "home")], x)
        no_loop_holds(self, str(d))
        self.assertIsNone(p.poll(), "the other sandbox still runs")
        self.stop(p)
        self.normal_turn_still_works()

    def test_4156_a_mount_left_by_a_crash_is_reused_then_removed_with_the_sandbox(self):
        w = self.sbx("chat:crash", "sh", "-c", "echo before-crash > ~/kept", timeout=60)
        self.assertEqual(w.rc, 0, w)
        p, _ = self.hold("chat:crash", self.tag("crash"))
        home = self.sandbox_dir("chat:crash") / "home"
        self.assertTrue(os.path.ismount(home), "the home is mounted while in use")
        self.stop(p, signal.SIGKILL)
        self.assertTrue(os.path.ismount(home), "kill -9 leaves the mount (as a crash would)")
        r = self.sbx("chat:crash", "cat", "/home/agent/kept", timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("before-crash", r.out, r)
        self.assertEqual(mounts_under(self.state), [str(home)], "reused, not mounted twice")
        self.assertEqual(len(loops_holding(str(self.sandbox_dir("chat:crash")))), 1,
                         "one loop device for the image")
        x = self.run_jb(["sandbox", "rm", "chat:crash"], timeout=30)
        self.assertEqual(x.rc, 0, x)
        self.assertFalse(mounts_under(self.state), x)
        no_loop_holds(self, str(self.sandbox_dir("chat:crash")))
        self.normal_turn_still_works()

    def test_4157_the_setting_resizes_a_home_and_never_below_its_files(self):
        self.assertOwnFileSystem("chat:size", QUOTA_MB)
        # Another sandbox runs meanwhile: it must not hold this home's file system, or the
        # home could not be unmounted and resized (without CAP_SYS_RESOURCE, as here).
        p, _ = self.hold("chat:size-other", self.tag("other"))
        self.env["JANEBOT_SANDBOX_DISK_MB"] = "32"
        big = self.assertOwnFileSystem("chat:size", 32)
        self.assertGreater(big.vals["size"], QUOTA_MB * MiB, "grown to 32 MiB%s" % big)
        self.assertIsNone(p.poll(), "the other sandbox still runs")
        self.stop(p)
        w = self.sbx("chat:size", "sh", "-c", "head -c 12000000 /dev/zero > ~/twelve", timeout=60)
        self.assertEqual(w.rc, 0, w)
        self.env["JANEBOT_SANDBOX_DISK_MB"] = "8"
        kept = self.probe("chat:size", STATFS)
        self.assertGreater(kept.vals["size"], 12 * MiB, "never shrunk below its files%s" % kept)
        self.assertIn("keeps its 32 MiB", kept.err, "the log says why%s" % kept)
        self.sbx("chat:size", "rm", "/home/agent/twelve", timeout=60)
        self.assertOwnFileSystem("chat:size", 8)
        self.normal_turn_still_works()

    def test_4158_an_old_plain_home_is_moved_into_its_image(self):
        key = "chat:old-home"
        d = self.sandbox_dir(key)
        (d / "home" / "sub").mkdir(parents=True)
        (d / "thread_key").write_text(key)
        (d / "home" / "sub" / "notes.txt").write_text("from before")
        (d / "home" / "locked").mkdir()
        (d / "home" / "locked" / "f").write_text("hidden")
        os.chmod(d / "home" / "locked", 0)
        outside = self.tmp / "host-file"
        outside.write_text("host")
        os.symlink(outside, d / "home" / "link")
        hashed = 1000000 + int(sandbox_name(key)[5:9], 16)
        for root, dirs, files in os.walk(d / "home"):
            for n in dirs + files + [""]:
                os.lchown(os.path.join(root, n), hashed, hashed)
        r = self.sbx(key, "sh", "-c", "cat ~/sub/notes.txt; readlink ~/link; chmod 700 ~/locked;"
                     " cat ~/locked/f; stat -c %u ~/sub/notes.txt", timeout=60)
        self.assertEqual(r.rc, 0, r)
        for want in ("from before", str(outside), "hidden", "1000"):
            self.assertIn(want, r.out, r)
        self.assertOwnFileSystem(key)
        self.assertFalse((d / "home.old").exists(), "the old copy is removed")
        self.assertEqual(outside.read_text(), "host")
        self.normal_turn_still_works()



@needs_bwrap
@needs_images
class Uids(ImageCase):
    def host_uid(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
        self.fail("no Uid line")

    def test_4160_two_sandboxes_never_share_a_host_uid(self):
        a, b = colliding_keys()
        pa, sa = self.hold(a, self.tag("uid"))
        pb, sb = self.hold(b, self.tag("uid"))
        ua, ub = self.host_uid(sa), self.host_uid(sb)
        self.assertNotEqual(ua, ub, "%s and %s run as the same host uid %d" % (a, b, ua))
        for key, uid in ((a, ua), (b, ub)):
            self.assertGreaterEqual(uid, 1000000, "JANEBOT_SANDBOX_UID_BASE and above")
            home = self.sandbox_dir(key) / "home"
            self.assertEqual(os.stat(home).st_uid, uid, "the home belongs to its sandbox's uid")
        self.stop(pa)
        self.stop(pb)
        # A removed sandbox's uid goes back to the pool: the next new sandbox gets it,
        # never the uid of one still there.
        x = self.run_jb(["sandbox", "rm", a], timeout=30)
        self.assertEqual(x.rc, 0, x)
        pc, sc = self.hold("chat:uid-next", self.tag("uid"))
        uc = self.host_uid(sc)
        self.assertEqual(uc, ua, "the freed uid is handed out again")
        self.assertNotEqual(uc, ub)
        self.stop(pc)
        self.normal_turn_still_works()


@needs_bwrap
class Doctor(SecCase):
    def test_4159_doctor_says_which_disk_quota_and_uid_mapping_are_in_force(self):
        self.env["JANEBOT_SANDBOX_DISK_MB"] = str(QUOTA_MB)
        r = self.run_jb(["doctor"], timeout=60)
        quota = [l for l in r.out.splitlines() if "disk quota" in l]
        uids = [l for l in r.out.splitlines() if "sandbox uids" in l]
        self.assertTrue(quota and uids, r)
        if images_problem() is None:
            self.assertIn("ext4 image per home (bytes and inodes)", quota[0], r)
            self.assertIn("%d MiB and 1024 files" % QUOTA_MB, quota[0], r)
            self.assertIn("its own unprivileged host uid", uids[0], r)
            self.assertFalse(mounts_under(self.state), "the probe leaves nothing mounted")
        else:
            self.assertIn("walk of the home (approximate; run as root for a real limit)",
                          quota[0], r)
            if os.geteuid() != 0:
                self.assertIn("sandboxes share janebot's uid %d" % os.geteuid(), uids[0], r)

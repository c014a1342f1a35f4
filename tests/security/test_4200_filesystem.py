"""4200: what the sandbox can see of the host's files and processes, and what the host
does with what the sandbox leaves in its home (symlinks, scripts).

Symlinks planted by these tests point only at files and directories the test itself
owns (under its temporary directory), never at /etc or other system paths: if the
product did follow them on `sandbox rm`, the damage stays inside the test's own tree."""
import hashlib
import os
import re
import subprocess
import unittest

from sectest import AGENT, BIN, SecCase, host_alive, needs_bwrap, sandbox_name

# What `ls /` may show inside: the system dirs and the top directory of the agent command
# (which is bound read-only at its absolute path).
ROOT_OK = {"bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "proc", "sbin",
           "tmp", "usr", "run", "var", "sys"}
DEV_OK = {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout",
          "stderr", "pts", "ptmx", "shm", "core"}
# Character devices allowed (major, minor): null zero full random urandom tty ptmx
DEV_NODES_OK = {(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)}


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_bwrap
class Visibility(SecCase):
    def test_4201_another_threads_home_is_unreachable_by_path_or_by_dot_dot(self):
        self.chat_ok(["write secret.txt top-secret-of-a"], thread="a")
        host_path = self.home_of("chat:a") / "secret.txt"
        self.assertTrue(host_path.is_file())
        r = self.probe("chat:b", r'''
HP = %r
out("ls_home", sorted(os.listdir("/home")))
out("ls_dotdot", sorted(os.listdir("/home/agent/..")))
out("ls_dotdotdot", sorted(os.listdir("/home/agent/../..")))
out("open_host_path", trycall(lambda: open(HP).read()))
out("stat_host_state", trycall(lambda: os.stat(%r) and "exists"))
hits = []
for base in ("/home", "/tmp", "/run", "/var", "/srv", "/mnt", "/opt", "/root", "/media"):
    for d, dirs, files in os.walk(base):
        if "secret.txt" in files:
            hits.append(os.path.join(d, "secret.txt"))
out("hits", hits)
''' % (str(host_path), str(self.state / "sandboxes")))
        v = r.vals
        self.assertEqual(v.get("ls_home"), ["agent"], r)
        self.assertEqual(v.get("ls_dotdot"), ["agent"], r)
        self.assertNotIn(sandbox_name("chat:a"), str(v.get("ls_dotdotdot")), r)
        self.assertEqual(v.get("open_host_path"), "ENOENT", r)
        self.assertEqual(v.get("stat_host_state"), "ENOENT", r)
        self.assertEqual(v.get("hits"), [], r)
        t = self.chat_ok(["run: ls -la /home/agent/..; cat %s; cd /home/agent/../.. && ls"
                          % host_path], thread="b")
        self.assertNotIn("top-secret-of-a", t.out, t)
        self.assertNotIn(sandbox_name("chat:a"), t.out, t)
        self.normal_turn_still_works()

    def test_4202_state_dir_database_and_env_files_are_nowhere_inside(self):
        (self.cwd / ".env").write_text("JANEBOT_LOG_LEVEL=info\n")
        (self.state / ".env").write_text("JANEBOT_LOG_LEVEL=info\n")
        self.chat_ok(["hello"], thread="sd")
        r = self.probe("chat:sd", r'''
found = []
for d, dirs, files in os.walk("/"):
    if d == "/" :
        dirs[:] = [x for x in dirs if x not in ("proc", "sys", "usr", "dev")]
    for f in files:
        if f in ("janebot.db", "janebot.db-wal", ".env") or f.endswith(".db"):
            found.append(os.path.join(d, f))
out("found", found)
out("state", trycall(lambda: os.listdir(%r)))
out("cwd", trycall(lambda: os.listdir(%r)))
''' % (str(self.state), str(self.cwd)))
        self.assertEqual(r.vals.get("found"), [], r)
        self.assertEqual(r.vals.get("state"), "ENOENT", r)
        self.assertEqual(r.vals.get("cwd"), "ENOENT", r)
        self.normal_turn_still_works()

    def test_4203_proc_shows_only_sandbox_processes_and_host_pids_cannot_be_signalled(self):
        victim = subprocess.Popen(["sleep", "60"])
        self.addCleanup(lambda: (victim.kill(), victim.wait()))
        code = r'''
V = %d
pids = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
cmds = []
for p in pids:
    try:
        cmds.append(open("/proc/%%d/cmdline" %% p, "rb").read().replace(b"\0", b" ").decode(errors="replace"))
    except OSError:
        pass
out("pids", pids)
out("cmds", cmds)
out("kill_host", trycall(os.kill, V, 9))
out("kill_host_0", trycall(os.kill, V, 0))
''' % victim.pid
        for how, r in (("sandbox exec", self.probe("chat:proc", code)),
                       ("agent turn", self.turn_probe("proc", code))):
            with self.subTest(how=how):
                v = r.vals
                self.assertLessEqual(len(v.get("pids", [])), 12, "%s: too many pids%s" % (how, r))
                self.assertNotIn(victim.pid, v.get("pids", []), r)
                self.assertEqual(v.get("kill_host"), "ESRCH", r)
                self.assertEqual(v.get("kill_host_0"), "ESRCH", r)
                joined = " ".join(v.get("cmds", []))
                # (bwrap itself is the sandbox's pid 1; its argv may name host paths)
                for needle in (str(BIN), "sleep 60"):
                    self.assertNotIn(needle, joined, "%s: host process visible%s" % (how, r))
        self.assertTrue(host_alive(victim.pid) and victim.poll() is None,
                        "the host process was killed from inside")
        ps = self.sbx("chat:proc", "sh", "-c", "ps -e -o pid=,args= 2>/dev/null || true")
        self.assertNotIn("sleep 60", ps.out, ps)
        self.assertNotIn(str(BIN), ps.out, ps)
        pids = [int(l.split()[0]) for l in ps.out.splitlines() if l.strip()]
        self.assertTrue(pids and max(pids) < 1000, "ps shows host-sized pids%s" % ps)
        self.normal_turn_still_works()

    def test_4204_sys_is_empty_and_dev_holds_only_the_harmless_devices(self):
        r = self.probe("chat:dev", r'''
import stat
out("sys", trycall(lambda: sorted(os.listdir("/sys"))))
out("dev", sorted(os.listdir("/dev")))
nodes = []
for d, dirs, files in os.walk("/dev"):
    for f in files + dirs:
        p = os.path.join(d, f)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            nodes.append(["blk", p, os.major(st.st_rdev), os.minor(st.st_rdev)])
        elif stat.S_ISCHR(st.st_mode):
            nodes.append(["chr", p, os.major(st.st_rdev), os.minor(st.st_rdev)])
out("nodes", nodes)
out("kmsg", trycall(lambda: open("/dev/kmsg", "rb").read(10)))
out("core", trycall(lambda: open("/dev/core", "rb").read(10)))
out("mem", trycall(lambda: open("/dev/mem", "rb").read(10)))
''')
        v = r.vals
        self.assertIn(v.get("sys"), ("ENOENT", []), "/sys must be absent or empty%s" % r)
        extra = set(v.get("dev", ["?"])) - DEV_OK
        self.assertEqual(extra, set(), "unexpected entries in /dev%s" % r)
        for kind, path, maj, mnr in v.get("nodes", []):
            with self.subTest(node=path):
                self.assertEqual(kind, "chr", "block device %s inside%s" % (path, r))
                if not path.startswith("/dev/pts/"):
                    self.assertIn((maj, mnr), DEV_NODES_OK, "device %s %d:%d%s"
                                  % (path, maj, mnr, r))
        for k in ("kmsg", "core", "mem"):
            self.assertIsInstance(v.get(k), str, r)
            self.assertRegex(v.get(k), r"^E[A-Z]+$", "/dev/%s readable%s" % (k, r))
        d = self.sbx("chat:dev", "sh", "-c", "dmesg")
        self.assertNotEqual(d.rc, 0, "dmesg worked inside%s" % d)
        self.normal_turn_still_works()

    def test_4205_a_symlink_to_slash_shows_the_sandbox_root_not_the_hosts(self):
        agent_top = AGENT.parts[1]
        t = self.chat_ok(["run: ln -sfn / x; ls x/"], thread="root")
        entries = set(t.out.split())
        self.assertTrue({"usr", "home", "tmp"} <= entries, t)
        self.assertEqual(entries - ROOT_OK - {agent_top}, set(), "host dirs visible%s" % t)
        repo = AGENT.parents[2]
        r = self.probe("chat:root", r'''
for name, p in %r:
    out(name, os.path.lexists("/home/agent/x" + p))
out("agent_dir", sorted(os.listdir("/home/agent/x" + %r)))
''' % ([("repo_src", str(repo / "src")), ("repo_makefile", str(repo / "Makefile")),
        ("repo_git", str(repo / ".git")), ("test_tmp", str(self.tmp)),
        ("shadow", "/etc/shadow"), ("sudoers", "/etc/sudoers"), ("ssh", "/etc/ssh"),
        ("root", "/root"), ("docker_sock", "/run/docker.sock"),
        ("dbus", "/run/dbus")], str(AGENT.parent)))
        keys = ["repo_src", "repo_makefile", "repo_git", "test_tmp", "shadow", "sudoers",
                "ssh", "root", "docker_sock", "dbus"]
        if agent_top == "root":
            # The agent command is shown at its own path, so /root exists inside when the
            # checkout lives under /root: it may hold that path and nothing else.
            keys.remove("root")
            r2 = self.probe("chat:root", 'out("root", sorted(os.listdir("/home/agent/x/root")))')
            self.assertEqual(r2.vals.get("root"), [AGENT.parts[2]], "/root holds more%s" % r2)
        for k in keys:
            with self.subTest(path=k):
                self.assertIs(r.vals.get(k), False, "%s visible inside%s" % (k, r))
        self.assertEqual(set(r.vals.get("agent_dir", [])) - {AGENT.name}, set(),
                         "only the agent command should be shown from its directory%s" % r)
        self.normal_turn_still_works()

    def test_4206_setuid_binaries_give_no_privileges(self):
        x = self.sbx("chat:suid", "sh", "-c",
                     "su -c 'id -u' root </dev/null; echo su=$?; "
                     "sudo -n id -u </dev/null; echo sudo=$?; "
                     "mkdir -p /tmp/m; mount -t tmpfs x /tmp/m; echo mount=$?; "
                     "umount /tmp; echo umount=$?; id -u; "
                     "grep -E ' /usr ' /proc/self/mountinfo", timeout=30)
        self.assertEqual(x.rc, 0, x)
        for tool in ("su", "sudo", "mount", "umount"):
            m = re.search(r"^%s=(\d+)$" % tool, x.out, re.M)
            self.assertTrue(m, x)
            self.assertNotEqual(m.group(1), "0", "%s succeeded inside%s" % (tool, x))
        self.assertNotRegex(x.out, r"(?m)^0$", "something ran as uid 0%s" % x)
        self.assertIn("1000", x.out.split(), x)
        usr = [l for l in x.out.splitlines() if " /usr " in l]
        self.assertTrue(usr, x)
        self.assertTrue(all("nosuid" in l and re.search(r"\bro\b", l) for l in usr),
                        "/usr must be mounted ro,nosuid%s" % x)
        self.normal_turn_still_works()


@needs_bwrap
class HostActions(SecCase):
    def plant_links(self, key):
        victim = self.tmp / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("keep me")
        with open(victim / "big.bin", "wb") as f:
            f.write(os.urandom(1 << 20) * 6)
        before = {p.name: (sha(p), p.stat().st_mtime_ns) for p in victim.iterdir()}
        state_db = self.state / "janebot.db"
        x = self.sbx(key, "sh", "-c",
                     "ln -s {v} evil_dir; ln -s {v}/keep.txt evil_file; "
                     "ln -s {s} evil_state; ln -s {db} evil_db; mkdir -p sub/deeper; "
                     "ln -s {v} sub/deeper/link; ln -s ../../.. sub/deeper/up; "
                     "ln -s {v}/keep.txt .bashrc; echo planted"
                     .format(v=victim, s=self.state, db=state_db))
        self.assertIn("planted", x.out, x)
        return victim, before

    def assertUntouched(self, victim, before, when):
        self.assertTrue(victim.is_dir(), "victim dir gone after %s" % when)
        now = {p.name: (sha(p), p.stat().st_mtime_ns) for p in victim.iterdir()}
        self.assertEqual(now, before, "victim files changed after %s" % when)
        self.assertTrue((self.state / "janebot.db").is_file(), "janebot.db gone after %s" % when)

    def test_4207_symlinks_planted_in_a_home_are_not_followed_by_list_or_rm(self):
        self.chat_ok(["hello"], thread="sym")
        victim, before = self.plant_links("chat:sym")
        ls = self.run_jb(["sandbox", "list"], timeout=30)
        self.assertEqual(ls.rc, 0, ls)
        self.assertUntouched(victim, before, "sandbox list")
        line = self.line_with(ls, sandbox_name("chat:sym"))
        m = re.search(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|[kKMG]|B)\b", line.split("chat:sym", 1)[1])
        if m:
            mult = {"B": 1, "K": 1024, "k": 1000, "M": 1 << 20, "G": 1 << 30}[m.group(2)[0]]
            self.assertLess(float(m.group(1)) * mult, 5 << 20,
                            "the size counts the 6 MB file behind a symlink%s" % ls)
        s = self.run_jb(["sessions", "list"], timeout=30)
        self.assertEqual(s.rc, 0, s)
        rm = self.run_jb(["sandbox", "rm", "chat:sym"], timeout=30)
        self.assertEqual(rm.rc, 0, rm)
        self.assertUntouched(victim, before, "sandbox rm")
        self.assertFalse(self.home_of("chat:sym").exists(), rm)
        self.normal_turn_still_works()

    def test_4208_files_left_in_a_home_never_run_on_the_host(self):
        self.chat_ok(["hello"], thread="trap")
        marker = self.tmp / "pwned"
        payload = "#!/bin/sh\necho ran >> %s\n" % marker
        agent_sum = sha(AGENT)
        x = self.sbx("chat:trap", "sh", "-c", r'''
set -e
p=$(cat)
for f in .bashrc .profile .bash_profile .bash_logout .zshrc .envrc .pythonrc.py \
         bin/du bin/rm bin/sh bin/bash bin/bwrap bin/python3 bin/git bin/find bin/sqlite3 \
         .local/bin/du .local/bin/rm .local/bin/sh .local/bin/python3 .local/bin/bwrap \
         .git/hooks/post-checkout .git/hooks/pre-commit .fake-agent/hook; do
  mkdir -p "$(dirname "$f")"; printf '%s' "$p" > "$f"; chmod +x "$f"
done
printf '[core]\n\tfsmonitor = %s\n\thooksPath = /home/agent/.git/hooks\n' "$HOME/bin/sh" > .gitconfig
printf 'import os\nos.system("sh %s")\n' "$HOME/bin/sh" > usercustomize.py
echo planted
''', input=payload)
        self.assertIn("planted", x.out, x)
        w = self.sbx("chat:trap", "sh", "-c", "echo hacked > %s; echo hacked >> %s"
                     % (AGENT, AGENT))
        self.assertNotEqual(w.rc, 0, "the agent command is writable inside%s" % w)
        self.assertEqual(sha(AGENT), agent_sum, "the agent command was changed from inside")
        # Host-side actions that touch the home: a turn, exec, list, sessions, doctor, rm.
        self.chat_ok(["run: sh -c true; bash -lc true 2>/dev/null; true"], thread="trap")
        self.sbx("chat:trap", "true")
        self.run_jb(["sandbox", "list"], timeout=30)
        self.run_jb(["sessions", "list"], timeout=30)
        self.run_jb(["doctor"], timeout=30)
        self.run_jb(["sandbox", "rm", "chat:trap"], timeout=30)
        self.assertFalse(marker.exists(), "a file from the sandbox home ran on the host: %s"
                         % (marker.read_text() if marker.exists() else ""))
        self.normal_turn_still_works()


if __name__ == "__main__":
    unittest.main()

/* tests/unit/test_mounts.c -- sandbox/mounts.c: which host mounts a root exec's staging
 * namespace detaches before bwrap runs, from a mount table given as text (the format of
 * /proc/self/mountinfo, escapes included). */
#include <criterion/criterion.h>
#include <string.h>

#include "sandbox/backend.h"

/* A host's table: /sys with submounts, a separate /usr/local, /dev with its own
 * submounts, /run, two homes under the state root (one of them under /usr), a mount
 * point with a space, and one mounted twice. */
static const char table[] =
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "23 22 0:21 / /proc rw,nosuid - proc proc rw\n"
    "24 23 0:40 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw\n"
    "25 22 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
    "26 25 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    "27 26 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "28 22 0:5 / /dev rw,nosuid - devtmpfs udev rw\n"
    "29 28 0:25 / /dev/pts rw - devpts devpts rw\n"
    "30 28 0:26 / /dev/shm rw - tmpfs tmpfs rw\n"
    "31 22 0:27 / /run rw - tmpfs tmpfs rw\n"
    "32 22 254:1 / /usr/local rw - ext4 /dev/vdb rw\n"
    "33 22 7:0 / /var/lib/janebot/sandboxes/jane-aaaaaaaaaaaa/home rw - ext4 /dev/loop0 rw\n"
    "34 22 7:1 / /var/lib/janebot/sandboxes/jane-bbbbbbbbbbbb/home rw - ext4 /dev/loop1 rw\n"
    "35 22 0:30 / /mnt/my\\040disk rw - tmpfs tmpfs rw\n"
    "36 22 0:31 / /media rw - tmpfs tmpfs rw\n"
    "37 36 0:32 / /media rw - tmpfs tmpfs rw\n"
    "38 31 0:33 / /run/user/1000 rw - tmpfs tmpfs rw\n";

static const char *const needed[] = {"/usr",
                                     "/etc/ssl",
                                     "/dev/null",
                                     "/dev/tty",
                                     "/usr/bin/bwrap",
                                     "/proc",
                                     "/run/janebot-stage/jane-aaaaaaaaaaaa.1.0"};

static struct jb_strv detach_of(const char *text, const char *state_root)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(f);
    struct jb_strv out = JB_STRV_INIT;
    struct jb_err err = {0};
    cr_assert_eq(mounts_to_detach(f, needed, JB_ARRAY_LEN(needed), state_root, &out, &err), 0, "%s",
                 err.msg);
    fclose(f);
    return out;
}

static int listed(const struct jb_strv *v, const char *point)
{
    int n = 0;
    for (size_t i = 0; i < v->n; i++)
        n += !strcmp(v->v[i], point);
    return n;
}

Test(mounts, only_what_bwrap_takes_nothing_from_is_detached_topmost_first)
{
    struct jb_strv out = detach_of(table, "/var/lib/janebot");
    /* kept: the root, the mounts on the way to a needed path and those below one */
    const char *const kept[] = {"/",    "/proc", "/proc/sys/fs/binfmt_misc",
                                "/dev", "/run",  "/usr/local"};
    for (size_t i = 0; i < JB_ARRAY_LEN(kept); i++)
        cr_expect_eq(listed(&out, kept[i]), 0, "%s was detached", kept[i]);
    /* detached, once each, and never a mount below one already detached */
    const char *const gone[] = {"/sys",
                                "/dev/pts",
                                "/dev/shm",
                                "/var/lib/janebot/sandboxes/jane-aaaaaaaaaaaa/home",
                                "/var/lib/janebot/sandboxes/jane-bbbbbbbbbbbb/home",
                                "/mnt/my disk",
                                "/run/user/1000"};
    for (size_t i = 0; i < JB_ARRAY_LEN(gone); i++)
        cr_expect_eq(listed(&out, gone[i]), 1, "%s is listed %d times", gone[i],
                     listed(&out, gone[i]));
    cr_expect_eq(listed(&out, "/sys/fs/cgroup"), 0, "below /sys: goes with it");
    cr_expect_eq(listed(&out, "/sys/fs/cgroup/memory"), 0);
    cr_expect_eq(listed(&out, "/media"), 2, "mounted twice: one unmount each");
    cr_expect_eq(out.n, JB_ARRAY_LEN(gone) + 2);
    jb_strv_free(&out);
}

Test(mounts, homes_under_the_state_root_go_even_below_a_needed_path)
{
    static const char t[] = "1 0 8:1 / / rw - ext4 /dev/sda rw\n"
                            "2 1 8:2 / /usr rw - ext4 /dev/sdb rw\n"
                            "3 2 7:0 / /usr/janebot/sandboxes/jane-cccccccccccc/home rw - ext4 "
                            "/dev/loop0 rw\n"
                            "4 2 8:3 / /usr/share rw - ext4 /dev/sdc rw\n";
    struct jb_strv out = detach_of(t, "/usr/janebot");
    cr_assert_eq(out.n, 1);
    cr_expect_str_eq(out.v[0], "/usr/janebot/sandboxes/jane-cccccccccccc/home");
    jb_strv_free(&out);
    /* without a state root nothing below a needed path goes */
    out = detach_of(t, NULL);
    cr_expect_eq(out.n, 0);
    jb_strv_free(&out);
}

Test(mounts, a_prefix_is_not_a_parent)
{
    /* "/usrx" and "/procfs" only share a prefix with needed paths */
    static const char t[] = "1 0 8:1 / / rw - ext4 /dev/sda rw\n"
                            "2 1 8:2 / /usrx rw - ext4 /dev/sdb rw\n"
                            "3 1 0:3 / /procfs rw - tmpfs tmpfs rw\n"
                            "4 1 0:4 / /run/janebot-stage/jane-aaaaaaaaaaaa.1.00 rw - tmpfs t rw\n";
    struct jb_strv out = detach_of(t, "/");
    cr_expect_eq(out.n, 3);
    cr_expect_eq(listed(&out, "/usrx"), 1);
    cr_expect_eq(listed(&out, "/procfs"), 1);
    cr_expect_eq(listed(&out, "/run/janebot-stage/jane-aaaaaaaaaaaa.1.00"), 1);
    cr_expect_eq(listed(&out, "/"), 0, "the root stays, whatever the state root");
    jb_strv_free(&out);
}

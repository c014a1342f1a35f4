/* tests/unit/test_diskimg_copy.c -- sandbox/diskimg-copy.c: an old home's files copied
 * into its disk image by fd: contents, folders (a mode 000 one included), links copied as
 * links and never followed, pipes, and set-uid bits dropped. Needs no root (the owner is
 * the test's own uid). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/backend.h"

static char dir[PATH_MAX];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-copy-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/from/locked", dir);
    chmod(p, 0700);
    snprintf(p, sizeof p, "%s/to/locked", dir);
    chmod(p, 0700);
    jb_rm_rf(dir, NULL);
}

TestSuite(diskimg_copy, .init = setup, .fini = teardown);

static void put(const char *rel, const char *text, mode_t mode)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, mode);
    cr_assert_geq(fd, 0, "%s", p);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(p, mode);
}

static void mk(const char *rel)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    cr_assert_eq(mkdir(p, 0755), 0, "%s", p);
}

static char *slurp(const char *rel)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *s = NULL;
    size_t n;
    cr_assert_eq(jb_read_file(p, 4096, &s, &n, NULL), 0, "%s", p);
    return s;
}

Test(diskimg_copy, copies_the_tree_by_fd_without_following_links)
{
    int root = geteuid() == 0; /* only root reads a folder of mode 000 (as janebot does) */
    mk("from"), mk("to"), mk("from/a"), mk("from/a/b"), mk("from/locked");
    put("from/a/b/deep.txt", "deep", 0644);
    put("from/run.sh", "#!/bin/sh\n", 04755);
    put("from/locked/secret", "kept", 0600);
    put("outside", "host file", 0600);
    char p[PATH_MAX + 64], target[PATH_MAX + 64];
    snprintf(target, sizeof target, "%s/outside", dir);
    snprintf(p, sizeof p, "%s/from/link", dir);
    cr_assert_eq(symlink(target, p), 0);
    snprintf(p, sizeof p, "%s/from/pipe", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    snprintf(p, sizeof p, "%s/from/locked", dir);
    if (root) chmod(p, 0);

    char f[PATH_MAX + 8], t[PATH_MAX + 8];
    snprintf(f, sizeof f, "%s/from", dir);
    snprintf(t, sizeof t, "%s/to", dir);
    int from = open(f, O_RDONLY | O_DIRECTORY), to = open(t, O_RDONLY | O_DIRECTORY);
    struct jb_err err = {0};
    int rc = diskimg_copy_tree(from, to, geteuid(), &err);
    close(from), close(to);
    cr_assert_eq(rc, 0, "%s", err.msg);

    jb_autofree char *deep = slurp("to/a/b/deep.txt");
    cr_assert_str_eq(deep, "deep");
    char got[PATH_MAX];
    snprintf(p, sizeof p, "%s/to/link", dir);
    ssize_t n = readlink(p, got, sizeof got - 1);
    cr_assert_gt(n, 0, "the link is copied as a link");
    got[n] = '\0';
    cr_assert_str_eq(got, target);
    struct stat st;
    snprintf(p, sizeof p, "%s/to/pipe", dir);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    snprintf(p, sizeof p, "%s/to/run.sh", dir);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0755, "no set-uid bit: %o", st.st_mode & 07777);
    snprintf(p, sizeof p, "%s/to/locked", dir);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, root ? 0 : 0755, "the folder keeps its mode");
    chmod(p, 0700);
    jb_autofree char *secret = slurp("to/locked/secret");
    cr_assert_str_eq(secret, "kept", "and its files are copied");
    jb_autofree char *outside = slurp("outside");
    cr_assert_str_eq(outside, "host file");
}

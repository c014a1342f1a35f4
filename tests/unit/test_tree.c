/* tests/unit/test_tree.c -- util/tree.c: removing, measuring, chowning and searching trees
 * that someone else changes during the walk (a sandbox's home): never through a symlink,
 * never across a mount, whatever the modes and the depth. Tests that need root (mounts in
 * a private mount namespace of the test's own process, chown) are skipped otherwise;
 * those about a normal user's view run in a child as uid 65534 when the tests run as root. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/util.h"
#include "time-limit.h"

static char tmpdir[PATH_MAX];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/janebot-tree-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
    cr_assert_eq(chmod(tmpdir, 0711), 0); /* uid 65534 reaches its own folder inside */
}

static void teardown(void)
{
    struct jb_err err = {0};
    cr_expect_eq(jb_rm_rf(tmpdir, &err), 0, "rm -rf %s: %s", tmpdir, err.msg);
}

TestSuite(tree, .init = setup, .fini = teardown);

static const char *at(char *buf, const char *rel)
{
    int w = snprintf(buf, PATH_MAX, "%s/%s", tmpdir, rel);
    cr_assert(w > 0 && w < PATH_MAX, "path too long");
    return buf;
}

static void mkdirs(const char *rel)
{
    char p[PATH_MAX];
    struct jb_err err = {0};
    cr_assert_eq(jb_mkdir_p(at(p, rel), 0755, &err), 0, "%s", err.msg);
}

static void put(const char *rel, size_t bytes, mode_t mode)
{
    char p[PATH_MAX];
    int fd = open(at(p, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    for (size_t done = 0; done < bytes; done += sizeof chunk)
        cr_assert_eq(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);
    cr_assert_eq(chmod(p, mode), 0);
}

static mode_t mode_of(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    cr_assert_eq(lstat(at(p, rel), &st), 0, "%s: %s", p, strerror(errno));
    return st.st_mode & 07777;
}

static int exists(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    return lstat(at(p, rel), &st) == 0;
}

/* ---- a normal user's view: run fn in a child, as uid 65534 when we are root ---- */

#define CHILD_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static void as_owner(const char *rel, void (*fn)(const char *dir))
{
    char dir[PATH_MAX];
    mkdirs(rel);
    at(dir, rel);
    int root = geteuid() == 0;
    if (root) cr_assert_eq(chown(dir, 65534, 65534), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (root && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                     setresuid(65534, 65534, 65534) < 0))
            _exit(2);
        fn(dir);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the owner's check failed (%d)",
              status);
}

static void child_put(const char *dir, const char *rel, size_t bytes)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHILD_CHECK(fd >= 0, "create %s: %s", p, strerror(errno));
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    for (size_t done = 0; done < bytes; done += sizeof chunk)
        CHILD_CHECK(write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk, "write");
    close(fd);
}

static void child_mkdir(const char *dir, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    CHILD_CHECK(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
}

static void child_chmod(const char *dir, const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    CHILD_CHECK(chmod(p, mode) == 0, "chmod %s: %s", p, strerror(errno));
}

/* ---- removal ---- */

/* home/{ro 0500/sub/f, locked 000/inner 000/f}, the home itself 0500. */
static void make_locked_tree(const char *dir)
{
    child_mkdir(dir, "home");
    child_mkdir(dir, "home/ro");
    child_mkdir(dir, "home/ro/sub");
    child_put(dir, "home/ro/sub/f", 4096);
    child_mkdir(dir, "home/locked");
    child_mkdir(dir, "home/locked/inner");
    child_put(dir, "home/locked/inner/f", 4096);
    child_chmod(dir, "home/ro", 0500);
    child_chmod(dir, "home/locked/inner", 0);
    child_chmod(dir, "home/locked", 0);
    child_chmod(dir, "home", 0500);
}

static void owner_removes_locked_tree(const char *dir)
{
    make_locked_tree(dir);
    char home[PATH_MAX];
    snprintf(home, sizeof home, "%s/home", dir);
    struct jb_err err = {0};
    CHILD_CHECK(jb_rm_rf(home, &err) == 0, "rm: %s", err.msg);
    CHILD_CHECK(access(home, F_OK) < 0 && errno == ENOENT, "the home is still there");
}

Test(tree, rm_rf_removes_dirs_made_unreadable_or_read_only)
{
    as_owner("user", owner_removes_locked_tree); /* through the fd, by their owner */
    if (geteuid() != 0) return;
    char dir[PATH_MAX];
    mkdirs("asroot");
    make_locked_tree(at(dir, "asroot")); /* root needs no bits: none are changed */
    struct jb_err err = {0};
    cr_assert_eq(jb_rm_rf(at(dir, "asroot/home"), &err), 0, "%s", err.msg);
    cr_assert(!exists("asroot/home"));
}

/* A process of the sandbox keeps swapping each directory of the home for a symlink to a
 * host directory (or file) with the same names in it, while janebot removes the home. */
struct swapper {
    char home[PATH_MAX];
    char target[2][PATH_MAX];
    atomic_int stop;
};

static void *swap_loop(void *ud)
{
    struct swapper *s = ud;
    char d[PATH_MAX + 8], real[PATH_MAX + 16];
    while (!atomic_load(&s->stop)) {
        for (int i = 0; i < 2; i++) {
            snprintf(d, sizeof d, "%s/d%d", s->home, i);
            snprintf(real, sizeof real, "%s/d%d.real", s->home, i);
            if (rename(d, real) < 0) continue;
            if (symlink(s->target[i], d) == 0) {
                sched_yield();
                unlink(d);
            }
            rename(real, d);
        }
    }
    return NULL;
}

static void make_victim_home(void)
{
    char name[64];
    mkdirs("home");
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "home/d%d", i);
        mkdirs(name);
        for (int f = 0; f < 100; f++) {
            snprintf(name, sizeof name, "home/d%d/f%03d", i, f);
            put(name, 0, 0644);
        }
        snprintf(name, sizeof name, "home/d%d", i);
        char p[PATH_MAX];
        cr_assert_eq(chmod(at(p, name), 0077), 0); /* owner bits missing: old code chmod()ed */
    }
}

static void assert_canaries(int round)
{
    char name[64];
    for (int f = 0; f < 100; f++) {
        snprintf(name, sizeof name, "canary/f%03d", f);
        cr_assert(exists(name), "round %d: %s was removed through a symlink", round, name);
        cr_assert_eq(mode_of(name), 0600, "round %d: %s changed mode", round, name);
    }
    cr_assert_eq(mode_of("canary"), 0750, "round %d: the canary dir changed mode", round);
    cr_assert_eq(mode_of("secret"), 0600, "round %d: the secret file changed mode", round);
}

Test(tree, rm_rf_never_follows_a_dir_swapped_for_a_symlink)
{
    time_limit(120);
    char name[64];
    mkdirs("canary");
    for (int f = 0; f < 100; f++) {
        snprintf(name, sizeof name, "canary/f%03d", f);
        put(name, 0, 0600);
    }
    put("secret", 0, 0600);
    struct swapper s;
    at(s.home, "home");
    at(s.target[0], "canary");
    at(s.target[1], "secret");
    char canary[PATH_MAX];
    cr_assert_eq(chmod(at(canary, "canary"), 0750), 0);
    for (int round = 0; round < 40; round++) {
        make_victim_home();
        atomic_store(&s.stop, 0);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, swap_loop, &s), 0);
        struct jb_err err = {0};
        jb_rm_rf(s.home, &err); /* may fail while the tree keeps changing */
        atomic_store(&s.stop, 1);
        pthread_join(th, NULL);
        assert_canaries(round);
        cr_assert_eq(jb_rm_rf(s.home, &err), 0, "round %d: %s", round, err.msg);
    }
}

/* Root only: a private mount namespace for this test's process. */
static void private_mounts(void)
{
    if (geteuid() != 0) cr_skip_test("needs root (mounts)");
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        cr_skip_test("no mount namespace here: %s", strerror(errno));
}

static void bind(const char *src_rel, const char *dst_rel)
{
    char s[PATH_MAX], d[PATH_MAX];
    cr_assert_eq(mount(at(s, src_rel), at(d, dst_rel), NULL, MS_BIND, NULL), 0, "%s",
                 strerror(errno));
}

Test(tree, rm_rf_never_crosses_a_mount_and_refuses_one_at_the_top)
{
    private_mounts();
    mkdirs("host/sub");
    put("host/keep", 4096, 0600);
    put("host/sub/keep", 4096, 0600);
    mkdirs("t/a/m");
    put("t/a/f", 4096, 0644);
    bind("host", "t/a/m"); /* same file system: only the mount id tells */
    struct jb_err err = {0};
    char p[PATH_MAX];
    cr_assert_eq(jb_rm_rf(at(p, "t"), &err), -1, "a mount below is not removed");
    cr_assert_not_null(strstr(err.msg, "a/m"), "%s", err.msg);
    cr_assert(exists("host/keep") && exists("host/sub/keep"), "removed across a mount");
    cr_assert(!exists("t/a/f"), "the rest is removed");

    err = (struct jb_err){0};
    cr_assert_eq(jb_rm_rf(at(p, "t/a/m"), &err), -1);
    cr_assert_eq(err.code, JB_EDENIED);
    cr_assert_not_null(strstr(err.msg, "mount point"), "%s", err.msg);
    cr_assert(exists("host/keep") && exists("host/sub/keep"));
    cr_assert_eq(umount(at(p, "t/a/m")), 0);
    cr_assert_eq(jb_rm_rf(at(p, "t"), &err), 0, "%s", err.msg);
}

Test(tree, a_deep_tree_needs_few_fds)
{
    struct rlimit rl = {64, 64};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    mkdirs("deep");
    char p[PATH_MAX];
    int fd = open(at(p, "deep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < 1500; i++) { /* deeper than PATH_MAX allows by name */
        cr_assert_eq(mkdirat(fd, "dd", 0755), 0, "level %d: %s", i, strerror(errno));
        int next = openat(fd, "dd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(next, 0);
        close(fd);
        fd = next;
    }
    int f = openat(fd, "data", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    char chunk[65536] = {0};
    cr_assert_eq(write(f, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(f);
    close(fd);
    /* The only data is at the bottom: counting it proves the walk got there. Directories
     * add their blocks where the filesystem gives them any (tmpfs gives none). */
    cr_assert_geq(jb_disk_usage(at(p, "deep")), 65536);
    struct jb_err err = {0};
    cr_assert_eq(jb_rm_rf(at(p, "deep"), &err), 0, "%s", err.msg);
    cr_assert(!exists("deep"));
}

/* ---- size ---- */

static void owner_measures_locked_dir(const char *dir)
{
    child_mkdir(dir, "home");
    child_mkdir(dir, "home/locked");
    child_mkdir(dir, "home/locked/inner");
    child_put(dir, "home/locked/inner/big", 1 << 20);
    child_chmod(dir, "home/locked/inner", 0100);
    child_chmod(dir, "home/locked", 0);
    char home[PATH_MAX], locked[PATH_MAX], inner[PATH_MAX];
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(locked, sizeof locked, "%s/home/locked", dir);
    snprintf(inner, sizeof inner, "%s/home/locked/inner", dir);
    long long used = jb_disk_usage(home);
    CHILD_CHECK(used >= 1 << 20, "a chmod 000 folder hid %lld bytes", (1LL << 20) - used);
    struct stat st;
    CHILD_CHECK(stat(locked, &st) == 0 && (st.st_mode & 07777) == 0, "mode not put back: %o",
                st.st_mode & 07777);
    child_chmod(dir, "home/locked", 0700);
    CHILD_CHECK(stat(inner, &st) == 0 && (st.st_mode & 07777) == 0100,
                "inner mode not put back: %o", st.st_mode & 07777);
    child_chmod(dir, "home/locked/inner", 0700);
}

Test(tree, disk_usage_counts_into_unreadable_dirs_and_puts_modes_back)
{
    as_owner("user", owner_measures_locked_dir);
    put("asroot", 0, 0644);
    mkdirs("r/locked");
    put("r/locked/big", 1 << 20, 0600);
    char p[PATH_MAX];
    cr_assert_eq(chmod(at(p, "r/locked"), 0), 0);
    cr_assert_geq(jb_disk_usage(at(p, "r")), 1 << 20);
    cr_assert_eq(mode_of("r/locked"), 0);
    cr_assert_eq(jb_disk_usage(at(p, "missing")), -1);
    cr_assert_geq(jb_disk_usage(at(p, "r/locked/big")), 1 << 20, "a file is its own size");
}

Test(tree, disk_usage_stays_on_its_mount)
{
    private_mounts();
    mkdirs("host");
    put("host/big", 4 << 20, 0600);
    mkdirs("t/m");
    bind("host", "t/m");
    char p[PATH_MAX];
    cr_assert_lt(jb_disk_usage(at(p, "t")), 1 << 20, "counted what is mounted below");
    cr_assert_eq(umount(at(p, "t/m")), 0);
}

/* ---- owner ---- */

Test(tree, chown_tree_changes_links_not_targets_and_stays_on_its_mount)
{
    private_mounts();
    mkdirs("host");
    put("host/keep", 0, 0600);
    mkdirs("t/a/m");
    put("t/a/f", 0, 0644);
    char p[PATH_MAX], q[PATH_MAX];
    cr_assert_eq(symlink(at(q, "host/keep"), at(p, "t/a/link")), 0);
    bind("host", "t/a/m");
    int fd = open(at(p, "t"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct jb_err err = {0};
    cr_assert_eq(jb_chown_tree(fd, 4242, 4243, &err), 0, "%s", err.msg);
    close(fd);
    struct stat st;
    const char *mine[] = {"t", "t/a", "t/a/f", "t/a/link"};
    for (size_t i = 0; i < JB_ARRAY_LEN(mine); i++) {
        cr_assert_eq(lstat(at(p, mine[i]), &st), 0);
        cr_assert(st.st_uid == 4242 && st.st_gid == 4243, "%s not given", mine[i]);
    }
    const char *host[] = {"host", "host/keep"};
    for (size_t i = 0; i < JB_ARRAY_LEN(host); i++) {
        cr_assert_eq(lstat(at(p, host[i]), &st), 0);
        cr_assert_eq(st.st_uid, 0, "%s was given away through a link or a mount", host[i]);
    }
    cr_assert_eq(umount(at(p, "t/a/m")), 0);
}

/* ---- search ---- */

static int is_env(const char *name)
{
    return !strcmp(name, ".env");
}

static int is_deps(const char *name)
{
    return !strcmp(name, "node_modules");
}

Test(tree, find_looks_everywhere_but_skipped_dirs)
{
    mkdirs("pkg/node_modules/dep");
    put("pkg/node_modules/dep/.env", 0, 0644);
    mkdirs("pkg/bin");
    put("pkg/bin/x", 0, 0755);
    char p[PATH_MAX], found[PATH_MAX];
    struct jb_err err = {0};
    cr_assert_eq(jb_tree_find(at(p, "pkg"), is_env, is_deps, 1000, found, sizeof found, &err), 0,
                 "%s", err.msg);
    mkdirs("pkg/bin/conf");
    put("pkg/bin/conf/.env", 0, 0600);
    cr_assert_eq(jb_tree_find(p, is_env, is_deps, 1000, found, sizeof found, &err), 1);
    cr_assert_str_eq(found, "bin/conf/.env");
    cr_assert_eq(jb_tree_find(p, is_env, is_deps, 2, found, sizeof found, &err), -1);
    cr_assert_not_null(strstr(err.msg, "more than 2"), "%s", err.msg);
    cr_assert_eq(jb_tree_find(at(p, "missing"), is_env, NULL, 10, found, sizeof found, &err), -1);
}

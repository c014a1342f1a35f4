/* sandbox/rundir.c -- where a process's per-exec proxy sockets and the copy of janebot's
 * binary that sandboxes run live, under names that tell a sandbox nothing.
 *
 * A bind mount shows its source path in the sandbox's /proc/self/mountinfo. Sockets
 * named after the state dir, the sandbox and janebot's pid, or janebot's binary shown
 * from its install folder (beside a .env, perhaps), would tell the agent where things
 * are on the host. So: the base is a 0700 directory of janebot's user on a runtime
 * tmpfs where there is one (root: /run/janebot-run; others: $XDG_RUNTIME_DIR/janebot,
 * else /tmp/janebot-<uid>); each janebot process has a directory of random name there,
 * held by a lock for its life (a directory whose lock is free belonged to a process
 * that died, and is removed); sockets get random names; the sandbox init (a small static
 * program janebot embeds) is written there under a name made from a hash of janebot's
 * binary's identity, once per binary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "sandbox/backend.h"

#define STALE_GRACE_S 60 /* a directory younger than this may be a starting process's */

static int random_hex(char *out, size_t nbytes, struct jb_err *err)
{
    unsigned char raw[16];
    if (nbytes > sizeof raw || jb_random_bytes(raw, nbytes, err) < 0) return -1;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static int pick_base(char *out, size_t n)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    int w;
    if (geteuid() == 0)
        w = snprintf(out, n, "/run/janebot-run");
    else if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
             st.st_uid == geteuid())
        w = snprintf(out, n, "%s/janebot", xdg);
    else
        w = snprintf(out, n, "/tmp/janebot-%u", (unsigned)geteuid());
    /* <base>/<32 hex>/<32 hex>.llm.sock must fit a Unix socket address (108 bytes). */
    if (w < 0 || (size_t)w >= n || w + 80 >= 108)
        w = snprintf(out, n, "/tmp/janebot-%u", (unsigned)geteuid());
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Remove the directory `name` in base when its process is gone: no lock held on it and
 * older than the grace period (a process takes its lock right after making it). */
static void sweep_one(int base, const char *name)
{
    int d = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (d < 0) return;
    if (fstat(d, &st) < 0 || st.st_uid != geteuid() || time(NULL) - st.st_mtime < STALE_GRACE_S) {
        close(d);
        return;
    }
    int lock = openat(d, ".lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0) { /* alive */
        close(lock);
        close(d);
        return;
    }
    DIR *dir = fdopendir(d);
    if (!dir) {
        close(d);
        if (lock >= 0) close(lock);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(dir), de->d_name, 0); /* sockets and the lock: no directories */
    closedir(dir);
    if (lock >= 0) close(lock);
    unlinkat(base, name, AT_REMOVEDIR);
}

static void sweep(int base)
{
    int fd = dup(base);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (!dir) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)))
        if (strlen(de->d_name) == 32 && strspn(de->d_name, "0123456789abcdef") == 32)
            sweep_one(base, de->d_name);
    closedir(dir);
}

static int own_dir(struct run_dir *rd, int base, struct jb_err *err)
{
    char name[33];
    if (random_hex(name, 16, err) < 0) return -1;
    if (mkdirat(base, name, 0700) < 0)
        return jb_err_sys(err, "cannot create %s/%s", rd->base, name);
    if (asprintf(&rd->dir, "%s/%s", rd->base, name) < 0) {
        rd->dir = NULL;
        return jb_err_set(err, JB_ENOMEM, "run dir");
    }
    int d = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    rd->lock_fd = d < 0 ? -1 : openat(d, ".lock", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (d >= 0) close(d);
    if (rd->lock_fd < 0 || flock(rd->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return jb_err_sys(err, "cannot lock %s", rd->dir);
    return 0;
}

/* The sandbox init program janebot embeds (init-elf.S). */
extern const unsigned char sandbox_init_elf[];
extern const uint64_t sandbox_init_elf_size;

/* The embedded init's pages were read once, to be written: let go of them. Otherwise the
 * process that wrote the copy (the first janebot of a new binary, often a long-running
 * serve) keeps 0.8 MiB of its own binary resident for its whole life. They are read-only
 * pages of janebot's file, read again from it should anything touch them. */
static void init_elf_forget(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t from = ((uintptr_t)sandbox_init_elf + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t to = ((uintptr_t)sandbox_init_elf + size) & ~((uintptr_t)page - 1);
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Write the embedded sandbox init to <base>/janebot-<hash of janebot's identity>, once per
 * janebot binary (the init is part of it). */
static int init_copy(struct run_dir *rd, int base, const char *self_exe, struct jb_err *err)
{
    struct stat st;
    if (stat(self_exe, &st) < 0) return jb_err_sys(err, "cannot read %s", self_exe);
    size_t size = (size_t)sandbox_init_elf_size;
    char id[256], hex[65], name[64], tmp[96];
    snprintf(id, sizeof id, "%s:%llu:%llu:%lld:%lld.%09ld:%zu", self_exe,
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, size);
    jb_sha256_hex(id, strlen(id), hex);
    snprintf(name, sizeof name, "janebot-%.32s", hex);
    if (asprintf(&rd->init_copy, "%s/%s", rd->base, name) < 0) {
        rd->init_copy = NULL;
        return jb_err_set(err, JB_ENOMEM, "run dir");
    }
    struct stat have;
    if (fstatat(base, name, &have, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(have.st_mode) &&
        (size_t)have.st_size == size && have.st_uid == geteuid())
        return 0;
    snprintf(tmp, sizeof tmp, ".%s.%d", name, (int)getpid());
    jb_autoclose int out =
        openat(base, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0700);
    if (out < 0 || jb_write_all(out, sandbox_init_elf, size) < 0 || fchmod(out, 0755) < 0 ||
        renameat(base, tmp, base, name) < 0) {
        if (out >= 0) unlinkat(base, tmp, 0);
        return jb_err_sys(err, "cannot put janebot's sandbox init in %s", rd->base);
    }
    init_elf_forget(size);
    return 0;
}

int rundir_open(struct run_dir *rd, const char *self_exe, struct jb_err *err)
{
    memset(rd, 0, sizeof *rd);
    rd->lock_fd = -1;
    char base[256];
    if (pick_base(base, sizeof base) < 0 || !(rd->base = strdup(base)))
        return jb_err_set(err, JB_ENOMEM, "run dir");
    if (mkdir(base, 0700) < 0 && errno != EEXIST) return jb_err_sys(err, "cannot create %s", base);
    jb_autoclose int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077))
        return jb_err_set(err, JB_EDENIED,
                          "%s must be a directory of this user with mode 0700; remove it", base);
    sweep(fd);
    return own_dir(rd, fd, err) < 0 || init_copy(rd, fd, self_exe, err) < 0 ? -1 : 0;
}

int rundir_sock_path(const struct run_dir *rd, const char *suffix, char *path, size_t n,
                     struct jb_err *err)
{
    char name[33];
    if (random_hex(name, 16, err) < 0) return -1;
    int w = snprintf(path, n, "%s/%s%s", rd->dir, name, suffix);
    return w < 0 || (size_t)w >= n ? jb_err_set(err, JB_ESYS, "socket path too long") : 0;
}

void rundir_close(struct run_dir *rd)
{
    if (rd->dir) {
        char lock[4096];
        snprintf(lock, sizeof lock, "%s/.lock", rd->dir);
        unlink(lock);
        rmdir(rd->dir); /* the sockets were unlinked by their listeners */
    }
    if (rd->lock_fd >= 0) close(rd->lock_fd);
    free(rd->base);
    free(rd->dir);
    free(rd->init_copy);
    memset(rd, 0, sizeof *rd);
    rd->lock_fd = -1;
}

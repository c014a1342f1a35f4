/* sandbox/diskimg-copy.c -- the first disk image of a home: made fresh, or with the files
 * of a home made by an older janebot (a plain directory the sandbox wrote) copied in; and
 * what a crash in the middle of that left behind.
 *
 * The copy opens every name relative to a directory fd with O_NOFOLLOW and checks with
 * fstat what it opened, so a symlink or a swapped entry can only make it skip or copy a
 * name of the tree, never read or write outside it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/backend.h"
#include "sandbox/diskimg-int.h"

#define COPY_MAX_DEPTH 128 /* three fds a level: well under RLIMIT_NOFILE */

/* Mode bits kept: no set-uid or set-gid (the home is mounted nosuid anyway). */
static mode_t kept_mode(mode_t m)
{
    return m & 01777;
}

static int copy_bytes(int in, int out, const char *name, struct jb_err *err)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return jb_err_sys(err, "cannot read %s", name);
        if (r == 0) return 0;
        if (jb_write_all(out, buf, (size_t)r) < 0) return jb_err_sys(err, "cannot copy %s", name);
    }
}

static int copy_file(int from, int to, const char *name, uid_t uid, struct jb_err *err)
{
    jb_autoclose int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) return 0; /* changed: skipped */
    jb_autoclose int out =
        openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) return jb_err_sys(err, "cannot create %s", name);
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (copy_bytes(in, out, name, err) < 0) return -1;
    if (fchown(out, uid, uid) < 0 || fchmod(out, kept_mode(st.st_mode)) < 0 ||
        futimens(out, times) < 0)
        return jb_err_sys(err, "cannot set the owner of %s", name);
    return 0;
}

static int copy_link(int from, int to, const char *name, uid_t uid, struct jb_err *err)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(from, name, target, sizeof target - 1);
    if (n < 0) return 0; /* changed: skipped */
    target[n] = '\0';
    if (symlinkat(target, to, name) < 0 || fchownat(to, name, uid, uid, AT_SYMLINK_NOFOLLOW) < 0)
        return jb_err_sys(err, "cannot copy the link %s", name);
    return 0;
}

static int copy_dir(int from, int to, uid_t uid, int depth, struct jb_err *err);

static int copy_subdir(int from, int to, const char *name, uid_t uid, int depth, struct jb_err *err)
{
    jb_autoclose int in = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) return 0; /* changed: skipped */
    if (mkdirat(to, name, 0700) < 0 && errno != EEXIST)
        return jb_err_sys(err, "cannot make the folder %s", name);
    jb_autoclose int out = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (out < 0) return jb_err_sys(err, "cannot open the folder %s", name);
    if (copy_dir(in, out, uid, depth + 1, err) < 0) return -1;
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    /* The mode last: a folder of mode 000 is filled first. */
    if (fchown(out, uid, uid) < 0 || fchmod(out, kept_mode(st.st_mode)) < 0 ||
        futimens(out, times) < 0)
        return jb_err_sys(err, "cannot set the owner of the folder %s", name);
    return 0;
}

static int copy_entry(int from, int to, const char *name, uid_t uid, int depth, struct jb_err *err)
{
    struct stat st;
    if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return 0; /* gone: skipped */
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
        return copy_subdir(from, to, name, uid, depth, err);
    case S_IFREG:
        return copy_file(from, to, name, uid, err);
    case S_IFLNK:
        return copy_link(from, to, name, uid, err);
    case S_IFIFO:
        if (mkfifoat(to, name, kept_mode(st.st_mode)) < 0 ||
            fchownat(to, name, uid, uid, AT_SYMLINK_NOFOLLOW) < 0)
            return jb_err_sys(err, "cannot copy the pipe %s", name);
        return 0;
    default: /* sockets and devices mean nothing in a new mount */
        return 0;
    }
}

static int copy_dir(int from, int to, uid_t uid, int depth, struct jb_err *err)
{
    if (depth > COPY_MAX_DEPTH)
        return jb_err_set(err, JB_EUNAVAIL, "its folders nest deeper than %d levels",
                          COPY_MAX_DEPTH);
    int fd = dup(from);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return jb_err_sys(err, "cannot read a folder");
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc = copy_entry(from, to, de->d_name, uid, depth, err);
    closedir(d);
    return rc;
}

int diskimg_copy_tree(int from, int to, uid_t uid, struct jb_err *err)
{
    return copy_dir(from, to, uid, 0, err);
}

/* ---- the first image of a home: fresh, or with an old home's files ---- */

static int dir_is_empty(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return errno == ENOENT;
    }
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)))
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty;
}

/* Copy the files of <dir>/home into the new image, mounted at <dir>/home.new. */
static int copy_in(const struct home *h, int img, struct jb_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->dir, IMG_NEW);
    int n = -1;
    jb_autoclose int loop = -1;
    if (dimg_mount_point_ready(h, COPY_MNT, err) < 0 ||
        (loop = dimg_loop_attach(img, path, &n, err)) < 0 ||
        dimg_mount_loop(n, h->dfd, COPY_MNT, err) < 0)
        return -1;
    jb_autoclose int from = openat(h->dfd, "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    jb_autoclose int to = openat(h->dfd, COPY_MNT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (to >= 0) unlinkat(to, "lost+found", AT_REMOVEDIR);
    int rc = from < 0 || to < 0 ? jb_err_sys(err, "cannot open %s/home", h->dir)
                                : diskimg_copy_tree(from, to, h->uid, err);
    if (to >= 0) close(to), to = -1;
    if (dimg_unmount_at(h->dfd, h->dir, COPY_MNT, 0) != 0 && rc == 0)
        rc = jb_err_sys(err, "cannot unmount %s/%s", h->dir, COPY_MNT);
    unlinkat(h->dfd, COPY_MNT, AT_REMOVEDIR);
    return rc;
}

/* Make <dir>/home.img for a home that has none. 1 when made; 0 when the home stays a
 * directory under the walk quota (no image can be made here, or its files do not fit:
 * the reason is logged); -1 on error. */
int dimg_image_first(const struct home *h, struct jb_err *err)
{
    jb_autoclose int at = openat(h->dfd, "home", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (at >= 0 && dimg_mount_root(at) == 1)
        return jb_err_set(err, JB_EDENIED, "something is mounted on %s/home: unmount it", h->dir);
    int old = !dir_is_empty(h->dfd, "home");
    if (old && !h->first) return 0; /* tried when this process first saw it */
    char path[4096];
    snprintf(path, sizeof path, "%s/home", h->dir);
    long long used = old ? jb_disk_usage(path) : 0;
    struct jb_err e = {0};
    if (used > h->want - h->want / 8) {
        jb_err_set(&e, JB_EUNAVAIL, "its %lld MiB would not fit its image", used >> 20);
    } else if (dimg_image_make(h, &e) == 0) {
        jb_autoclose int img = openat(h->dfd, IMG_NEW, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (img < 0)
            jb_err_sys(&e, "cannot open %s/%s", h->dir, IMG_NEW);
        else if (old && copy_in(h, img, &e) < 0)
            unlinkat(h->dfd, IMG_NEW, 0);
        else if ((old && (renameat(h->dfd, "home", h->dfd, OLD_HOME) < 0 ||
                          mkdirat(h->dfd, "home", 0700) < 0)) ||
                 renameat(h->dfd, IMG_NEW, h->dfd, IMG_NAME) < 0)
            return jb_err_sys(err, "cannot put the disk image of %s in place", h->name);
        else {
            if (old) log_info("sandbox %s: the files of its home moved into a disk image", h->name);
            return 1;
        }
    }
    log_warn("sandbox %s: its home stays a directory with an approximate disk quota (a walk of "
             "its files): %s",
             h->name, e.msg);
    return 0;
}

/* What a crash in the middle of image_first() left: a half-made image, a copy mount, and
 * an old home either already copied (the image is in place) or not. */
void dimg_tidy_leftovers(const struct home *h)
{
    dimg_unmount_at(h->dfd, h->dir, COPY_MNT, 1);
    unlinkat(h->dfd, COPY_MNT, AT_REMOVEDIR);
    unlinkat(h->dfd, IMG_NEW, 0);
    struct stat st;
    if (fstatat(h->dfd, OLD_HOME, &st, AT_SYMLINK_NOFOLLOW) < 0) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->dir, OLD_HOME);
    if (fstatat(h->dfd, IMG_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        jb_rm_rf(path, NULL); /* copied: the image is in place */
        return;
    }
    if ((unlinkat(h->dfd, "home", AT_REMOVEDIR) < 0 && errno != ENOENT) ||
        renameat(h->dfd, OLD_HOME, h->dfd, "home") < 0)
        log_warn("sandbox %s: %s holds the files of its home from before its disk image; move "
                 "them back to %s/home by hand",
                 h->name, path, h->dir);
}

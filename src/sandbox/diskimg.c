/* sandbox/diskimg.c -- a file system of its own for each local sandbox's home (root only),
 * so the kernel enforces the disk quota: an ext4 file system in a sparse image file
 * <dir>/home.img of JANEBOT_SANDBOX_DISK_MB, loop-mounted at <dir>/home with nosuid, nodev
 * and discard. Bytes count whether a file is linked or only held open, inodes are bounded
 * (one per 16 KiB of the image: 262,144 files in the default 4096 MiB), a full home
 * answers ENOSPC inside, and blocks the agent frees go back to the host (discard punches
 * holes in the image).
 *
 * Lifetime: the first sandbox_ensure() makes and mounts the home, and it stays mounted while
 * the sandbox exists (across janebot restarts, until a reboot), so <dir>/home shows its
 * files on the host as a plain home did; the struct sandbox keeps its root open while a turn
 * uses it. rm, reset and gc unmount lazily (a process still in it keeps it until it ends)
 * and delete the image; reset's next ensure makes a fresh one. A mount left by a crash or
 * by an earlier janebot, or a loop device still holding the image (a sandbox still
 * running in its own mount namespace), is found and reused: one image never has two loop
 * devices, hence never two ext4 instances. Mount, unmount and resize of one sandbox are
 * serialised by flock(<dir>/home.lock), across threads and processes.
 *
 * A changed setting is applied at a process's first ensure of a home: grown in place
 * (EXT4_IOC_RESIZE_FS, which needs CAP_SYS_RESOURCE: root in a container may lack it), or
 * else unmounted, resized offline (e2fsck, resize2fs: growing always, shrinking when its
 * files fit) and mounted again, when no other process uses it; otherwise it keeps its size
 * until then, with a warning. A plain-directory home made by an older janebot has its files
 * copied in by fd (diskimg-copy.c); one that does not fit stays a directory under the walk
 * quota, with a warning. Where no image can be made (no loop device, no mkfs.ext4) a new
 * sandbox's home is a plain directory under the walk quota too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "sandbox/backend.h"
#include "sandbox/diskimg-int.h"

#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t) /* the kernel's fs/ext4/ext4.h */
#endif

/* ---- tools and loop devices ---- */

/* Run an e2fsprogs tool (found on a fixed root PATH, never the caller's); 0 when it exits
 * with at most ok_max. */
int dimg_tool_run(const char *tool, const char *const *args, int ok_max, struct jb_err *err)
{
    jb_autofree char *path = jb_which(tool, TOOL_PATH);
    if (!path)
        return jb_err_set(err, JB_EUNAVAIL, "%s is not installed (apt-get install e2fsprogs)",
                          tool);
    const char *argv[16] = {path};
    for (size_t i = 0; args[i] && i + 2 < JB_ARRAY_LEN(argv); i++)
        argv[i + 1] = args[i];
    static const char *const env[] = {"PATH=" TOOL_PATH, "LC_ALL=C", NULL};
    struct proc_spec ps = {.argv = argv, .envp = env};
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.deadline_ms = jb_mono_ms() + 600000;
    if (proc_run(&ps, &x, err) < 0) return jb_err_prefix(err, "%s", tool);
    if (x.exit_code <= ok_max) return 0;
    size_t l = strlen(x.stderr_tail);
    while (l && x.stderr_tail[l - 1] == '\n')
        x.stderr_tail[--l] = '\0';
    const char *last = strrchr(x.stderr_tail, '\n');
    return jb_err_set(err, JB_ESYS, "%s exited with status %d: %s", tool, x.exit_code,
                      last ? last + 1 : x.stderr_tail);
}

static int loop_open(int n, int flags)
{
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    return open(dev, flags | O_CLOEXEC);
}

/* An open fd on /dev/loop<n> when it holds the file (dev, ino); -1 otherwise. */
static int loop_matching(int n, dev_t dev, ino_t ino)
{
    int fd = loop_open(n, O_RDONLY);
    struct loop_info64 li;
    if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &li) == 0 && li.lo_inode == (uint64_t)ino &&
        li.lo_device == (uint64_t)dev)
        return fd;
    if (fd >= 0) close(fd);
    return -1;
}

/* An open fd on the loop device that holds the file (dev, ino), its number in *ret_n; -1
 * when none does. While the fd is open the device cannot be cleared. mounted_dev: the
 * device mounted on the home, tried first (the usual case: one lookup, not a scan of every
 * loop device on the host), or 0. */
static int loop_holding(dev_t dev, ino_t ino, dev_t mounted_dev, int *ret_n)
{
    char link[64], target[256];
    snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(mounted_dev), minor(mounted_dev));
    ssize_t l = mounted_dev ? readlink(link, target, sizeof target - 1) : -1;
    const char *base = l > 0 ? (target[l] = '\0', strrchr(target, '/')) : NULL;
    int n, fd;
    if (base && sscanf(base + 1, "loop%d", &n) == 1 && (fd = loop_matching(n, dev, ino)) >= 0) {
        *ret_n = n;
        return fd;
    }
    DIR *d = opendir("/sys/block");
    if (!d) return -1;
    int found = -1;
    struct dirent *de;
    while (found < 0 && (de = readdir(d))) {
        char attached[300];
        if (sscanf(de->d_name, "loop%d", &n) != 1) continue;
        snprintf(attached, sizeof attached, "/sys/block/%s/loop", de->d_name);
        if (access(attached, F_OK) < 0) continue;
        if ((found = loop_matching(n, dev, ino)) >= 0) *ret_n = n;
    }
    closedir(d);
    return found;
}

/* Attach img to a free loop device, cleared by the kernel once nothing uses it; returns an
 * open fd on it (the caller mounts it before closing that), its number in *ret_n. */
int dimg_loop_attach(int img, const char *path, int *ret_n, struct jb_err *err)
{
    jb_autoclose int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return jb_err_sys(err, "cannot open /dev/loop-control");
    for (int tries = 0; tries < 20; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) return jb_err_sys(err, "no free loop device");
        int fd = loop_open(n, O_RDWR);
        if (fd < 0) return jb_err_sys(err, "cannot open /dev/loop%d", n);
        struct loop_config c;
        memset(&c, 0, sizeof c);
        c.fd = (uint32_t)img;
        c.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        snprintf((char *)c.info.lo_file_name, sizeof c.info.lo_file_name, "%s", path);
        if (ioctl(fd, LOOP_CONFIGURE, &c) == 0) {
            *ret_n = n;
            return fd;
        }
        int e = errno;
        close(fd);
        if (e != EBUSY) { /* EBUSY: another process took that device first */
            errno = e;
            return jb_err_sys(err, "cannot attach %s to /dev/loop%d", path, n);
        }
    }
    return jb_err_set(err, JB_EUNAVAIL, "no free loop device for %s", path);
}

/* 1 when fd (a directory) is the root of a mount, 0 when not, -1 on error. */
int dimg_mount_root(int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0) return -1;
    if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
        return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    struct stat self, up; /* kernels before 5.8: a mount changes the device */
    if (fstat(fd, &self) < 0 || fstatat(fd, "..", &up, 0) < 0) return -1;
    return self.st_dev != up.st_dev;
}

/* Unmount what is mounted on <dfd>/<name> (everything stacked there). detach: lazily, so
 * processes still using it keep it until they end; else only when unused. 0 when nothing
 * is mounted there any more, 1 when it is busy, -1 on error. */
int dimg_unmount_at(int dfd, const char *dir, const char *name, int detach)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < 8; i++) {
        int fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
        int mr = dimg_mount_root(fd);
        close(fd);
        if (mr <= 0) return mr;
        if (umount2(path, UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0)) < 0)
            return errno == EBUSY ? 1 : -1;
    }
    return -1;
}

static int lock_home(int dfd, const char *dir, struct jb_err *err)
{
    int fd = openat(dfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return jb_err_sys(err, "cannot open %s/%s", dir, LOCK_NAME);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            jb_err_sys(err, "cannot lock %s/%s", dir, LOCK_NAME);
            close(fd);
            return -1;
        }
    return fd;
}

/* ---- making, growing and shrinking an image ---- */

/* A fresh empty file system in <dir>/home.img.new whose root belongs to h->uid. */
int dimg_image_make(const struct home *h, struct jb_err *err)
{
    unlinkat(h->dfd, IMG_NEW, 0);
    jb_autoclose int fd =
        openat(h->dfd, IMG_NEW, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, h->want) < 0)
        return jb_err_sys(err, "cannot make %s/%s", h->dir, IMG_NEW);
    char path[4096], ratio[32], ext[128];
    snprintf(path, sizeof path, "%s/%s", h->dir, IMG_NEW);
    snprintf(ratio, sizeof ratio, "%d", BYTES_PER_INODE);
    /* The file is sparse and new: nothing to zero, so it takes almost no host space. */
    snprintf(ext, sizeof ext, "root_owner=%u:%u,lazy_itable_init=1,lazy_journal_init=1",
             (unsigned)h->uid, (unsigned)h->uid);
    const char *args[] = {"-q", "-F", "-m", "0", "-i", ratio, "-E", ext, path, NULL};
    if (dimg_tool_run("mkfs.ext4", args, 0, err) == 0) return 0;
    unlinkat(h->dfd, IMG_NEW, 0);
    return -1;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Size of the ext4 file system in the image, from its superblock (consistent while the
 * image is mounted nowhere); -1 when it cannot be read. */
static long long fs_bytes(int img)
{
    unsigned char sb[1024];
    if (pread(img, sb, sizeof sb, 1024) != (ssize_t)sizeof sb) return -1;
    uint32_t log_block = le32(sb + 24);
    if ((le32(sb + 0x38) & 0xffff) != 0xEF53 || log_block > 6) return -1; /* s_magic */
    uint64_t blocks = le32(sb + 4);
    if (le32(sb + 0x60) & 0x80) blocks |= (uint64_t)le32(sb + 0x150) << 32; /* 64bit */
    return (long long)(blocks << (10 + log_block));
}

/* Offline (mounted nowhere): the file system and its file to h->want, larger or smaller
 * (shrinking when its files fit). Never fails the ensure: on failure the home keeps its
 * size, which still bounds it, and says why. */
static void image_resize(const struct home *h, int img)
{
    long long fs = fs_bytes(img);
    if (fs < 0 || fs == h->want) return;
    char path[4096], to[32];
    snprintf(path, sizeof path, "%s/%s", h->dir, IMG_NAME);
    snprintf(to, sizeof to, "%lldK", h->want >> 10);
    const char *fsck[] = {"-f", "-p", path, NULL}, *resize[] = {path, to, NULL};
    struct jb_err e = {0};
    struct stat st;
    if (h->want > fs &&
        (fstat(img, &st) < 0 || (st.st_size < h->want && ftruncate(img, h->want) < 0)))
        jb_err_sys(&e, "cannot grow %s", path);
    else if (dimg_tool_run("e2fsck", fsck, 1, &e) == 0 &&
             dimg_tool_run("resize2fs", resize, 0, &e) == 0 && ftruncate(img, h->want) == 0) {
        log_info("sandbox %s: its home was resized from %lld to %lld MiB (JANEBOT_SANDBOX_DISK_MB)",
                 h->name, fs >> 20, h->want >> 20);
        return;
    }
    log_warn(
        "sandbox %s: its home keeps its %lld MiB instead of JANEBOT_SANDBOX_DISK_MB=%lld (%s)%s",
        h->name, fs >> 20, h->want >> 20, e.msg,
        h->want < fs ? "; it shrinks at a later turn once enough files are deleted (or "
                       "`janebot sandbox reset` empties it)"
                     : "");
}

/* ---- mounting ---- */

int dimg_mount_loop(int n, int dfd, const char *name, struct jb_err *err)
{
    char src[32], dst[32];
    jb_autoclose int at = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (at < 0) return jb_err_sys(err, "cannot open the mount point %s", name);
    snprintf(src, sizeof src, "/dev/loop%d", n);
    snprintf(dst, sizeof dst, "/proc/self/fd/%d", at);
    if (mount(src, dst, "ext4", MS_NOSUID | MS_NODEV, "discard") < 0)
        return jb_err_sys(err, "cannot mount %s", src);
    return 0;
}

/* The mount point itself belongs to root, mode 0700: were the home ever bound while not
 * mounted, the sandbox would find a directory it cannot write. */
int dimg_mount_point_ready(const struct home *h, const char *name, struct jb_err *err)
{
    if ((mkdirat(h->dfd, name, 0700) < 0 && errno != EEXIST) ||
        fchownat(h->dfd, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
        fchmodat(h->dfd, name, 0700, 0) < 0)
        return jb_err_sys(err, "cannot prepare %s/%s", h->dir, name);
    return 0;
}

/* The root of the home when what is mounted there is the image on loop (fd), else -1. */
static int home_root_on(const struct home *h, int loop)
{
    struct stat hs, ls;
    int root = openat(h->dfd, "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root >= 0 && loop >= 0 && fstat(root, &hs) == 0 && fstat(loop, &ls) == 0 &&
        hs.st_dev == ls.st_rdev && dimg_mount_root(root) == 1)
        return root;
    if (root >= 0) close(root);
    return -1;
}

/* Grow the mounted home to h->want in place. Needs CAP_SYS_RESOURCE, which root in a
 * container may lack: -1 then (the caller resizes it offline instead). */
static int grow_online(const struct home *h, int img, int loop, int root)
{
    struct stat st;
    struct statfs sf;
    uint64_t blocks;
    if (fstat(img, &st) < 0 || fstatfs(root, &sf) < 0 ||
        (st.st_size < h->want &&
         (ftruncate(img, h->want) < 0 || ioctl(loop, LOOP_SET_CAPACITY, 0) < 0)))
        return -1;
    blocks = (uint64_t)h->want / (uint64_t)sf.f_bsize;
    if (ioctl(root, EXT4_IOC_RESIZE_FS, &blocks) < 0) return -1;
    log_info("sandbox %s: its home grew to %lld MiB (JANEBOT_SANDBOX_DISK_MB)", h->name,
             h->want >> 20);
    return 0;
}

/* The loop device still holding the image after its mount went: a file system on its way
 * out (a sandbox's mount namespace goes a moment after its last process) lets go within a
 * second or so; one still in use elsewhere does not. Waits up to 5 s; -1 once released. */
static int loop_released(const struct stat *ist, int loop, int *n)
{
    for (int i = 0; i < 250 && loop >= 0; i++) {
        close(loop);
        usleep(20000);
        loop = loop_holding(ist->st_dev, ist->st_ino, 0, n);
    }
    return loop;
}

/* Mount the image at home, or find it mounted there; returns the home's root, open
 * (O_RDONLY). fresh: the image was just made. At h->first a changed size is applied:
 * grown in place, else unmounted, resized offline and mounted again, when no one else
 * uses it. */
static int image_mount(const struct home *h, int img, int fresh, struct jb_err *err)
{
    struct stat ist;
    if (fstat(img, &ist) < 0) return jb_err_sys(err, "cannot read %s/%s", h->dir, IMG_NAME);
    int n = -1;
    struct stat hst;
    dev_t on_home = fstatat(h->dfd, "home", &hst, AT_SYMLINK_NOFOLLOW) == 0 ? hst.st_dev : 0;
    jb_autoclose int loop = loop_holding(ist.st_dev, ist.st_ino, on_home, &n);
    int at = openat(h->dfd, "home", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int mounted = at < 0 ? -1 : dimg_mount_root(at);
    if (at >= 0) close(at); /* it would keep the mount busy */
    if (mounted < 0) return jb_err_sys(err, "cannot open %s/home", h->dir);
    int root = mounted ? home_root_on(h, loop) : -1;
    if (mounted && root < 0)
        return jb_err_set(err, JB_EDENIED,
                          "something other than its disk image is mounted on %s/home: unmount it "
                          "(umount %s/home) and try again",
                          h->dir, h->dir);
    long long fs = fs_bytes(img); /* may lag while mounted: decides only whether to try */
    if (root >= 0 && h->first && fs != h->want &&
        !(h->want > fs && grow_online(h, img, loop, root) == 0)) {
        close(root), root = -1;
        if (dimg_unmount_at(h->dfd, h->dir, "home", 0) != 0 && /* busy: another janebot */
            (root = home_root_on(h, loop)) >= 0)
            log_warn("sandbox %s: its home keeps its %lld MiB while another janebot process uses "
                     "it; JANEBOT_SANDBOX_DISK_MB=%lld applies when janebot next starts",
                     h->name, fs >> 20, h->want >> 20);
    }
    if (root >= 0) return root;
    if (loop >= 0 && fs != h->want) loop = loop_released(&ist, loop, &n);
    if (loop < 0)
        image_resize(h, img);
    else if (fs != h->want)
        log_warn("sandbox %s: its home keeps its size until it is no longer in use, then takes "
                 "JANEBOT_SANDBOX_DISK_MB=%lld",
                 h->name, h->want >> 20);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->dir, IMG_NAME);
    if (dimg_mount_point_ready(h, "home", err) < 0 ||
        (loop < 0 && (loop = dimg_loop_attach(img, path, &n, err)) < 0) ||
        dimg_mount_loop(n, h->dfd, "home", err) < 0)
        return -1;
    if ((root = home_root_on(h, loop)) < 0)
        return jb_err_set(err, JB_ESYS, "%s/home is not the mount just made", h->dir);
    struct stat lf; /* mkfs and e2fsck make it; the agent has no use for it */
    if (fstatat(root, "lost+found", &lf, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(lf.st_mode) &&
        lf.st_uid == 0)
        unlinkat(root, "lost+found", AT_REMOVEDIR);
    if (fresh) fchmod(root, 0700);
    log_debug("sandbox %s: home mounted from /dev/loop%d", h->name, n);
    return root;
}

/* ---- the interface (backend.h) ---- */

int diskimg_ensure(struct sandbox *sb, uid_t uid, long long bytes, int first, struct jb_err *err)
{
    jb_autoclose int dfd = open(sb->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return jb_err_sys(err, "cannot open %s", sb->dir);
    struct home h = {
        .dfd = dfd, .dir = sb->dir, .name = sb->name, .want = bytes, .uid = uid, .first = first};
    jb_autoclose int lock = lock_home(dfd, sb->dir, err);
    if (lock < 0) return -1;
    dimg_tidy_leftovers(&h);
    int fresh = 0;
    jb_autoclose int img = openat(dfd, IMG_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (img < 0 && errno != ENOENT) return jb_err_sys(err, "cannot open %s/%s", sb->dir, IMG_NAME);
    if (img < 0) {
        int made = dimg_image_first(&h, err);
        if (made <= 0) return made;
        fresh = 1;
        img = openat(dfd, IMG_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (img < 0) return jb_err_sys(err, "cannot open %s/%s", sb->dir, IMG_NAME);
    }
    int root = image_mount(&h, img, fresh, err);
    if (root < 0) return jb_err_prefix(err, "the home of sandbox %s", sb->name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", sb->dir, OLD_HOME);
    if (fresh) jb_rm_rf(path, NULL); /* its files are in the image now */
    sb->home_fd = root;
    return 1;
}

int diskimg_in_place(const struct sandbox *sb)
{
    if (sb->home_fd < 0) return 0;
    struct stat a, b;
    jb_autoclose int fd = open(sb->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd >= 0 && fstat(fd, &a) == 0 && fstat(sb->home_fd, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int diskimg_drop(const char *dir, struct jb_err *err)
{
    jb_autoclose int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return errno == ENOENT ? 0 : jb_err_sys(err, "cannot open %s", dir);
    jb_autoclose int lock = lock_home(dfd, dir, err);
    if (lock < 0) return -1;
    if (dimg_unmount_at(dfd, dir, COPY_MNT, 1) != 0 || dimg_unmount_at(dfd, dir, "home", 1) != 0)
        return jb_err_sys(err, "cannot unmount the home in %s", dir);
    unlinkat(dfd, COPY_MNT, AT_REMOVEDIR);
    if ((unlinkat(dfd, IMG_NAME, 0) < 0 && errno != ENOENT) ||
        (unlinkat(dfd, IMG_NEW, 0) < 0 && errno != ENOENT))
        return jb_err_sys(err, "cannot delete the disk image in %s", dir);
    return 0;
}

int diskimg_full(int home_fd, long long *ret_left)
{
    struct statfs sf;
    if (home_fd < 0 || fstatfs(home_fd, &sf) < 0) return 0;
    long long bsize = (long long)sf.f_bsize, total = (long long)sf.f_blocks * bsize;
    long long left = (long long)sf.f_bavail * bsize, files = (long long)sf.f_files;
    /* ext4 refuses a write before the last blocks are gone (delayed allocation keeps room
     * for metadata): with less than 2 MiB or 2% left, writes fail or soon will. */
    long long room = total / 50 > (2 << 20) ? total / 50 : (2 << 20);
    long long inodes = files / 100 > 16 ? files / 100 : 16;
    if ((long long)sf.f_ffree < inodes)
        return *ret_left = (long long)sf.f_ffree, SANDBOX_DISK_FULL_FILES;
    if (left < room) return *ret_left = left, SANDBOX_DISK_FULL_BYTES;
    return 0;
}

long long diskimg_used_bytes(const char *dir)
{
    char path[4096];
    struct stat st;
    struct statfs sf;
    snprintf(path, sizeof path, "%s/%s", dir, IMG_NAME);
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) return -1;
    snprintf(path, sizeof path, "%s/home", dir);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int mounted = fd >= 0 && dimg_mount_root(fd) == 1 && fstatfs(fd, &sf) == 0;
    if (fd >= 0) close(fd);
    /* Mounted: what its files use (the image file lags while writes are cached). */
    if (mounted) return (long long)(sf.f_blocks - sf.f_bfree) * (long long)sf.f_bsize;
    return (long long)st.st_blocks * 512;
}

long long diskimg_inodes(long long bytes)
{
    return bytes / BYTES_PER_INODE;
}

int diskimg_usable(char *why, size_t n)
{
    jb_autofree char *mkfs = jb_which("mkfs.ext4", TOOL_PATH);
    int ctl = geteuid() == 0 ? open("/dev/loop-control", O_RDWR | O_CLOEXEC) : -1;
    int e = errno;
    if (ctl >= 0) close(ctl);
    if (geteuid() != 0)
        snprintf(why, n, "janebot does not run as root");
    else if (ctl < 0)
        snprintf(why, n, "cannot open /dev/loop-control: %s", strerror(e));
    else if (!mkfs)
        snprintf(why, n, "mkfs.ext4 is not installed (apt-get install e2fsprogs)");
    else
        return 0;
    return -1;
}

/* An image made, mounted, written and removed in a scratch directory under state_dir. */
static int probe_mount(const char *state_dir, char *why, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/.diskprobe-XXXXXX", state_dir);
    if (!mkdtemp(dir)) {
        snprintf(why, n, "cannot make a scratch folder in %.200s: %s", state_dir, strerror(errno));
        return -1;
    }
    jb_autoclose int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct home h = {.dfd = dfd, .dir = dir, .name = "probe", .want = 8 << 20, .uid = 0};
    struct jb_err e = {0};
    jb_autoclose int img = -1;
    jb_autoclose int loop = -1;
    int file = -1;
    int num = -1, rc = -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, IMG_NEW);
    if (dfd >= 0 && dimg_image_make(&h, &e) == 0 && dimg_mount_point_ready(&h, "home", &e) == 0 &&
        (img = openat(dfd, IMG_NEW, O_RDWR | O_CLOEXEC)) >= 0 &&
        (loop = dimg_loop_attach(img, path, &num, &e)) >= 0 &&
        dimg_mount_loop(num, dfd, "home", &e) == 0) {
        file =
            openat(dfd, "home/probe", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        rc = file >= 0 && jb_write_all(file, "ok", 2) == 0 ? 0 : jb_err_sys(&e, "cannot write");
        close(file), file = -1;
    }
    if (dimg_unmount_at(dfd, dir, "home", 1) != 0 && rc == 0) rc = jb_err_sys(&e, "cannot unmount");
    jb_rm_rf(dir, NULL);
    if (rc < 0) snprintf(why, n, "%s", e.msg[0] ? e.msg : strerror(errno));
    return rc;
}

void diskimg_doctor(const struct sandbox_opts *o,
                    void (*report)(void *ud, int ok, const char *what, const char *detail),
                    void *ud)
{
    char why[900], detail[1200];
    long long bytes = (long long)o->disk_mb << 20;
    int image =
        diskimg_usable(why, sizeof why) == 0 && probe_mount(o->state_dir, why, sizeof why) == 0;
    if (image)
        snprintf(detail, sizeof detail,
                 "ext4 image per home (bytes and inodes): %d MiB and %lld files per thread's home "
                 "(JANEBOT_SANDBOX_DISK_MB)",
                 o->disk_mb, diskimg_inodes(bytes));
    else
        snprintf(detail, sizeof detail,
                 "walk of the home (approximate; run as root for a real limit): %s; files held "
                 "open or in unreadable folders are missed, and inodes are not limited",
                 why);
    report(ud, image ? 1 : -1, "disk quota", detail); /* a walk runs, with less protection */
}

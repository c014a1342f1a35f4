/* sandbox/diskimg-int.h -- private to diskimg.c and diskimg-copy.c: the layout of a
 * sandbox's directory when its home is a disk image, and the helpers both use. */
#ifndef JB_SANDBOX_DISKIMG_INT_H
#define JB_SANDBOX_DISKIMG_INT_H

#include <sys/types.h>

#include "util/util.h"

#define IMG_NAME        "home.img"
#define IMG_NEW         "home.img.new" /* being made; never mounted at home */
#define COPY_MNT        "home.new"     /* where an old home's files are copied in */
#define OLD_HOME        "home.old"     /* an old home whose files are in the image */
#define LOCK_NAME       "home.lock"
#define BYTES_PER_INODE 16384
#define TOOL_PATH       "/usr/sbin:/sbin:/usr/bin:/bin"

/* The sandbox's directory while its home is worked on. */
struct home {
    int dfd;          /* <dir>, open */
    const char *dir;  /* its path */
    const char *name; /* the sandbox's name, for messages */
    long long want;   /* bytes: JANEBOT_SANDBOX_DISK_MB */
    uid_t uid;        /* owner of the home's root */
    int first;        /* this process's first ensure of the sandbox: sizes and an old
                         home's files are dealt with then, not at every turn */
};

/* Run an e2fsprogs tool (found on a fixed root PATH, never the caller's); 0 when it exits
 * with at most ok_max. */
int dimg_tool_run(const char *tool, const char *const *args, int ok_max, struct jb_err *err);
/* Attach img to a free loop device, cleared by the kernel once nothing uses it; returns an
 * open fd on it (the caller mounts it before closing that), its number in *ret_n. */
int dimg_loop_attach(int img, const char *path, int *ret_n, struct jb_err *err);
/* 1 when fd (a directory) is the root of a mount, 0 when not, -1 on error. */
int dimg_mount_root(int fd);
/* Mount /dev/loop<n> (ext4, nosuid, nodev, discard) on <dfd>/<name>. */
int dimg_mount_loop(int n, int dfd, const char *name, struct jb_err *err);
/* Unmount what is mounted on <dfd>/<name> (everything stacked there). detach: lazily, so
 * processes still using it keep it until they end; else only when unused. 0 when nothing
 * is mounted there any more, 1 when it is busy, -1 on error. */
int dimg_unmount_at(int dfd, const char *dir, const char *name, int detach);
/* <dfd>/<name> made if missing, owned by root, mode 0700: were the home ever bound while
 * not mounted, the sandbox would find a directory it cannot write. */
int dimg_mount_point_ready(const struct home *h, const char *name, struct jb_err *err);
/* A fresh empty file system in <dir>/home.img.new whose root belongs to h->uid. */
int dimg_image_make(const struct home *h, struct jb_err *err);

/* diskimg-copy.c: make <dir>/home.img for a home that has none. 1 when made; 0 when the
 * home stays a directory under the walk quota (no image can be made here, or its files do
 * not fit: the reason is logged; an old home is tried at h->first only); -1 on error. */
int dimg_image_first(const struct home *h, struct jb_err *err);
/* What a crash in the middle of dimg_image_first() left, put right. */
void dimg_tidy_leftovers(const struct home *h);

#endif

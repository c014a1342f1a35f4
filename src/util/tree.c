/* util/tree.c -- walks of trees that someone else may change while janebot walks them (a
 * sandbox's home, written by processes janebot does not control): removal, size, owner,
 * search.
 *
 * Every step is relative to the fd of the directory it is in: a name is looked up in that
 * directory only, a symlink is never followed (O_NOFOLLOW; unlinkat() and fchownat() with
 * AT_SYMLINK_NOFOLLOW act on the link itself), and nothing on another mount (a mount
 * point, or a bind mount of the same file system) is entered, removed or changed. A
 * directory swapped for a symlink between two steps is therefore seen as the symlink,
 * never as its target. Two directory fds are open at a time whatever the depth: the walk
 * climbs back through ".." and checks that it arrives where it came from (else the tree
 * moved under it and the caller walks again). Permission bits are changed only on
 * directories the caller owns, through an fd opened without following a symlink, and
 * never by root, who needs none. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "util.h"

struct tree_entry {
    const char *name;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    long long bytes; /* allocated on disk */
    int mount;       /* on another mount than the walk's top: never entered or changed */
};

struct tree_level {
    char *name; /* its name in the parent; NULL at the top */
    dev_t dev;
    ino_t ino;
    int restore; /* 1: put mode back when leaving */
    mode_t mode;
    struct jb_strv names; /* its entries, read when it was entered */
    size_t next;
};

struct tree_walk {
    mode_t need; /* owner bits the walk needs on the directories it enters (0: none) */
    int restore; /* 1: put the bits it added back when leaving a directory */
    /* An entry below the top: 1 to enter it (a directory), 0 not to, -1 to stop. */
    int (*visit)(struct tree_walk *w, int dfd, const struct tree_entry *e);
    /* Done with directory name of dfd; may be NULL. */
    void (*leave)(struct tree_walk *w, int dfd, const char *name);
    void *ud;
    /* the walk's own */
    struct statx top;
    struct tree_level *lv;
    size_t depth, cap;
    int failed_errno;      /* the first entry that could not be handled, for messages */
    char failed[PATH_MAX]; /* its path below the top */
};

static int entry_statx(int dfd, const char *name, struct statx *sx)
{
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);
    return statx(dfd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, sx);
}

/* b is on the same mount as a (a mount id where the kernel gives one, else the device
 * and the mount-root attribute). */
static int same_mount(const struct statx *a, const struct statx *b)
{
    if (a->stx_dev_major != b->stx_dev_major || a->stx_dev_minor != b->stx_dev_minor) return 0;
    if (a->stx_mask & b->stx_mask & STATX_MNT_ID) return a->stx_mnt_id == b->stx_mnt_id;
    return !(b->stx_attributes_mask & b->stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* "a/b/name": the levels below the top, then name. */
static void relpath(const struct tree_walk *w, const char *name, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 1; i < w->depth && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s/", w->lv[i].name);
    if (len < n) snprintf(out + len, n - len, "%s", name);
}

static void note(struct tree_walk *w, const char *name, int e)
{
    if (w->failed_errno) return;
    w->failed_errno = e;
    relpath(w, name, w->failed, sizeof w->failed);
}

/* The walk may add its bits to this directory: the caller owns it and is not root. */
static int may_fix(const struct tree_walk *w, const struct statx *sx)
{
    uid_t me = geteuid();
    return w->need && me != 0 && sx->stx_uid == me && (sx->stx_mode & w->need) != w->need;
}

/* Directory name of dfd, unreadable to its owner (chmod 000): add the walk's bits through
 * an O_PATH fd of exactly that directory (/proc/self/fd/N is its inode, not a path that
 * can be swapped), then open it through the same fd. */
static int open_fixing(struct tree_walk *w, int dfd, const char *name, struct tree_level *l)
{
    jb_autoclose int p = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct statx sx;
    if (p < 0 || entry_statx(p, "", &sx) < 0) return -1;
    if (!S_ISDIR(sx.stx_mode) || !same_mount(&w->top, &sx) || !may_fix(w, &sx))
        return errno = EACCES, -1;
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", p);
    if (chmod(self, (sx.stx_mode & 07777) | w->need) < 0) return -1;
    l->restore = w->restore, l->mode = sx.stx_mode & 07777;
    return open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Open directory name of dfd for the walk: never a symlink, never on another mount. */
static int open_dir(struct tree_walk *w, int dfd, const char *name, struct tree_level *l)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && w->need) fd = open_fixing(w, dfd, name, l);
    if (fd < 0) return -1;
    struct statx sx;
    if (entry_statx(fd, "", &sx) < 0 || !same_mount(&w->top, &sx)) {
        if (l->restore) fchmod(fd, l->mode);
        close(fd);
        return errno = EXDEV, -1;
    }
    l->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor), l->ino = sx.stx_ino;
    if (!l->restore && may_fix(w, &sx) && fchmod(fd, (sx.stx_mode & 07777) | w->need) == 0)
        l->restore = w->restore, l->mode = sx.stx_mode & 07777;
    return fd;
}

static int list_names(int fd, struct jb_strv *names)
{
    int d2 = dup(fd);
    DIR *d = d2 < 0 ? NULL : fdopendir(d2);
    if (!d) {
        if (d2 >= 0) close(d2);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = jb_strv_push(names, de->d_name, NULL);
    closedir(d);
    return rc;
}

static struct tree_level *push_level(struct tree_walk *w, const char *name)
{
    if (w->depth == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct tree_level *lv = realloc(w->lv, cap * sizeof *lv);
        if (!lv) return NULL;
        w->lv = lv, w->cap = cap;
    }
    struct tree_level *l = &w->lv[w->depth];
    memset(l, 0, sizeof *l);
    if (name && !(l->name = strdup(name))) return NULL;
    w->depth++;
    return l;
}

static void pop_level(struct tree_walk *w)
{
    struct tree_level *l = &w->lv[--w->depth];
    free(l->name);
    jb_strv_free(&l->names);
}

/* One entry of the directory *cur; *cur moves down into it when the visit enters it. */
static int step(struct tree_walk *w, int *cur, const char *name)
{
    struct statx sx;
    if (entry_statx(*cur, name, &sx) < 0) return 0; /* gone meanwhile */
    struct tree_entry e = {.name = name,
                           .mode = sx.stx_mode,
                           .uid = sx.stx_uid,
                           .gid = sx.stx_gid,
                           .bytes = (long long)sx.stx_blocks * 512,
                           .mount = !same_mount(&w->top, &sx)};
    int r = w->visit(w, *cur, &e);
    if (r < 0) return -1;
    if (r == 0 || e.mount || !S_ISDIR(e.mode)) return 0;
    struct tree_level *l = push_level(w, name);
    if (!l) return -1;
    int fd = open_dir(w, *cur, name, l);
    if (fd < 0 || list_names(fd, &l->names) < 0) {
        note(w, name, errno);
        if (fd >= 0 && l->restore) fchmod(fd, l->mode);
        if (fd >= 0) close(fd);
        pop_level(w);
        return 0;
    }
    close(*cur);
    *cur = fd;
    return 0;
}

/* Back to the parent through "..": 0, or 1 when that is not the directory the walk came
 * from (the tree moved). */
static int up(struct tree_walk *w, int *cur)
{
    struct tree_level *l = &w->lv[w->depth - 1], *parent = l - 1;
    int p = openat(*cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    int moved = p < 0 || fstat(p, &st) < 0 || st.st_dev != parent->dev || st.st_ino != parent->ino;
    if (l->restore) fchmod(*cur, l->mode);
    if (moved) {
        if (p >= 0) close(p);
        return 1;
    }
    close(*cur);
    *cur = p;
    char *name = TAKE_PTR(l->name);
    pop_level(w);
    if (w->leave) w->leave(w, *cur, name);
    free(name);
    return 0;
}

/* Walk the tree at name of dfd ("" or "." for dfd itself): 0 when done, 1 when it moved
 * under the walk, -1 when the top cannot be walked, memory ran out or visit() stopped. */
static int walk(struct tree_walk *w, int dfd, const char *name)
{
    if (!*name) name = ".";
    if (entry_statx(dfd, name, &w->top) < 0) return -1;
    if (!S_ISDIR(w->top.stx_mode)) return errno = ENOTDIR, -1;
    struct tree_level *l = push_level(w, NULL);
    int cur = l ? open_dir(w, dfd, name, l) : -1;
    int rc = cur < 0 || list_names(cur, &l->names) < 0 ? -1 : 0;
    while (rc == 0 && w->depth) {
        l = &w->lv[w->depth - 1];
        if (l->next < l->names.n)
            rc = step(w, &cur, l->names.v[l->next++]);
        else if (w->depth == 1)
            break;
        else
            rc = up(w, &cur);
    }
    if (cur >= 0 && w->depth && w->lv[w->depth - 1].restore) fchmod(cur, w->lv[w->depth - 1].mode);
    if (cur >= 0) close(cur);
    while (w->depth)
        pop_level(w);
    return rc;
}

static void walk_release(struct tree_walk *w)
{
    free(w->lv);
    w->lv = NULL, w->cap = 0;
}

/* ---- removal ---- */

enum { RM_PASSES = 8 };

static int rm_visit(struct tree_walk *w, int dfd, const struct tree_entry *e)
{
    if (e->mount) return note(w, e->name, EBUSY), 0;
    if (S_ISDIR(e->mode)) return 1;
    if (unlinkat(dfd, e->name, 0) < 0 && errno != ENOENT) note(w, e->name, errno);
    return 0;
}

static void rm_leave(struct tree_walk *w, int dfd, const char *name)
{
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) note(w, name, errno);
}

/* Remove name of dfd; shown is what messages call it. */
static int rm_at(int dfd, const char *name, const char *shown, struct jb_err *err)
{
    struct statx top, parent;
    if (entry_statx(dfd, name, &top) < 0)
        return errno == ENOENT ? 0 : jb_err_sys(err, "cannot remove %s", shown);
    if (!S_ISDIR(top.stx_mode))
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT
                   ? jb_err_sys(err, "cannot remove %s", shown)
                   : 0;
    if (entry_statx(dfd, "", &parent) < 0 || !same_mount(&parent, &top))
        return jb_err_set(err, JB_EDENIED,
                          "%s is a mount point: unmount it first (nothing removed)", shown);
    struct tree_walk w = {.need = 0700, .visit = rm_visit, .leave = rm_leave};
    int done = 0, e = 0;
    for (int pass = 0; pass < RM_PASSES && !done; pass++) {
        w.failed_errno = 0;
        if (walk(&w, dfd, name) < 0 && errno != ENOENT && !w.failed_errno) note(&w, ".", errno);
        done = unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
        e = errno;
        if (!done && e != ENOTEMPTY && e != EEXIST) break;
    }
    walk_release(&w);
    if (done) return 0;
    if (w.failed_errno)
        return jb_err_set(err, JB_ESYS, "cannot remove %s: %s/%s: %s", shown, shown, w.failed,
                          strerror(w.failed_errno));
    errno = e;
    return jb_err_sys(err, "cannot remove %s", shown);
}

/* path as the directory that holds it (opened) and its last component. */
static int open_parent(const char *path, char *base, size_t n)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof dir) return errno = EINVAL, -1;
    memcpy(dir, path, len);
    dir[len] = '\0';
    char *slash = strrchr(dir, '/');
    const char *b = slash ? slash + 1 : dir;
    if (!*b || !strcmp(b, ".") || !strcmp(b, "..") || strlen(b) >= n) return errno = EINVAL, -1;
    snprintf(base, n, "%s", b);
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int jb_rm_rf(const char *path, struct jb_err *err)
{
    char base[NAME_MAX + 1];
    jb_autoclose int dfd = open_parent(path, base, sizeof base);
    if (dfd < 0 && errno == EINVAL)
        return jb_err_set(err, JB_EPROTO, "refusing to remove %s", path);
    if (dfd < 0) return errno == ENOENT ? 0 : jb_err_sys(err, "cannot remove %s", path);
    return rm_at(dfd, base, path, err);
}

int jb_rm_rf_at(int dirfd, const char *name, struct jb_err *err)
{
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
        return jb_err_set(err, JB_EPROTO, "refusing to remove \"%s\"", name);
    return rm_at(dirfd, name, name, err);
}

/* ---- size ---- */

static int du_visit(struct tree_walk *w, int dfd, const struct tree_entry *e)
{
    (void)dfd;
    if (e->mount) return 0;
    *(long long *)w->ud += e->bytes;
    return S_ISDIR(e->mode);
}

long long jb_disk_usage(const char *path)
{
    char base[NAME_MAX + 1];
    jb_autoclose int dfd = open_parent(path, base, sizeof base);
    struct statx top;
    if (dfd < 0 || entry_statx(dfd, base, &top) < 0) return -1;
    long long best = (long long)top.stx_blocks * 512;
    if (!S_ISDIR(top.stx_mode)) return best;
    /* Moved under the walk: walk again; a tree that keeps moving gets the largest count. */
    for (int pass = 0; pass < 3; pass++) {
        long long total = (long long)top.stx_blocks * 512;
        struct tree_walk w = {.need = 0500, .restore = 1, .visit = du_visit, .ud = &total};
        int rc = walk(&w, dfd, base);
        walk_release(&w);
        if (total > best) best = total;
        if (rc <= 0) break;
    }
    return best;
}

/* ---- owner ---- */

struct owner {
    uid_t uid;
    gid_t gid;
};

static int chown_visit(struct tree_walk *w, int dfd, const struct tree_entry *e)
{
    const struct owner *o = w->ud;
    if (e->mount) return 0;
    if ((e->uid != o->uid || e->gid != o->gid) &&
        fchownat(dfd, e->name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
        note(w, e->name, errno);
    return S_ISDIR(e->mode);
}

int jb_chown_tree(int dirfd, uid_t uid, gid_t gid, struct jb_err *err)
{
    if (fchown(dirfd, uid, gid) < 0) return jb_err_sys(err, "cannot change the owner");
    struct owner o = {uid, gid};
    struct tree_walk w = {.visit = chown_visit, .ud = &o};
    int rc = 1;
    for (int pass = 0; pass < 3 && rc == 1; pass++)
        rc = walk(&w, dirfd, "");
    walk_release(&w);
    if (rc < 0) return jb_err_sys(err, "cannot change the owner");
    if (rc == 1) return jb_err_set(err, JB_ESYS, "cannot change the owner: the tree kept moving");
    if (w.failed_errno)
        return jb_err_set(err, JB_ESYS, "cannot change the owner of %s: %s", w.failed,
                          strerror(w.failed_errno));
    return 0;
}

/* ---- search ---- */

struct find {
    int (*match)(const char *name);
    int (*skip)(const char *name);
    size_t left;
    char *found;
    size_t n;
    int hit, too_many;
};

static int find_visit(struct tree_walk *w, int dfd, const struct tree_entry *e)
{
    (void)dfd;
    struct find *f = w->ud;
    if (f->left == 0) return f->too_many = 1, -1;
    f->left--;
    if (e->mount || f->match(e->name)) {
        relpath(w, e->name, f->found, f->n);
        f->hit = e->mount ? 2 : 1;
        return -1;
    }
    return S_ISDIR(e->mode) && !(f->skip && f->skip(e->name));
}

int jb_tree_find(const char *path, int (*match)(const char *name), int (*skip)(const char *name),
                 size_t max_entries, char *found, size_t n, struct jb_err *err)
{
    char base[NAME_MAX + 1];
    jb_autoclose int dfd = open_parent(path, base, sizeof base);
    if (dfd < 0) return jb_err_sys(err, "cannot read %s", path);
    struct find f = {.match = match, .skip = skip, .found = found, .n = n};
    struct tree_walk w = {.visit = find_visit, .ud = &f};
    int rc = 1;
    for (int pass = 0; pass < 3 && rc == 1; pass++) {
        f.left = max_entries;
        rc = walk(&w, dfd, base);
    }
    walk_release(&w);
    if (f.hit) return f.hit;
    if (f.too_many)
        return jb_err_set(err, JB_EDENIED, "%s holds more than %zu entries", path, max_entries);
    if (rc < 0) return jb_err_sys(err, "cannot read %s", path);
    if (rc == 1) return jb_err_set(err, JB_ESYS, "%s kept changing while it was read", path);
    return 0;
}

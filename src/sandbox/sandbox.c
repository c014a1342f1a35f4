/* sandbox/sandbox.c -- the backend registry and what every backend shares: names, the
 * on-disk layout <state>/sandboxes/<name>/{home,thread_key,last_used}, list and remove,
 * the outbox and files put into the home. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/backend.h"

static const struct sandbox_ops *const backends[] = {&sandbox_local_ops, &sandbox_host_ops,
                                                     &sandbox_sprites_ops};

const struct sandbox_ops *sandbox_ops_find(const char *name)
{
    for (size_t i = 0; i < JB_ARRAY_LEN(backends); i++)
        if (!strcmp(backends[i]->name, name)) return backends[i];
    return NULL;
}

void sandbox_name_for(const char *thread_key, char out[SANDBOX_NAME_LEN])
{
    char hex[65];
    jb_sha256_hex(thread_key, strlen(thread_key), hex);
    snprintf(out, SANDBOX_NAME_LEN, "jane-%.12s", hex);
}

int sandbox_is_name(const char *s)
{
    const char *hex = !strncmp(s, "jane-pool-", 10) ? s + 10 : !strncmp(s, "jane-", 5) ? s + 5 : "";
    if (strlen(hex) != 12) return 0;
    for (const char *p = hex; *p; p++)
        if (!strchr("0123456789abcdef", *p)) return 0;
    return 1;
}

void sandbox_sprite_row_release(struct sandbox_sprite_row *r)
{
    if (!r) return;
    free(r->thread_key);
    free(r->name);
    free(r->golden);
    memset(r, 0, sizeof *r);
}

void sandbox_sprite_rows_free(struct sandbox_sprite_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        sandbox_sprite_row_release(&v[i]);
    free(v);
}

int sandbox_ctx_init(struct sandbox_ctx *ctx, const struct sandbox_opts *o,
                     const struct sandbox_services *svc, int check, struct jb_err *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->opts = o, ctx->svc = svc;
    ctx->ops = sandbox_ops_find(o->backend);
    if (!ctx->ops) return jb_err_set(err, JB_ECONFIG, "unknown sandbox backend \"%s\"", o->backend);
    if (asprintf(&ctx->root, "%s/sandboxes", o->state_dir) < 0) {
        ctx->root = NULL;
        return jb_err_set(err, JB_ENOMEM, "sandbox root");
    }
    if (jb_mkdir_p(ctx->root, 0700, err) < 0) return -1;
    ctx->serving = check;
    if (check && ctx->ops->available(ctx, err) < 0) return -1;
    return ctx->ops->ctx_init ? ctx->ops->ctx_init(ctx, err) : 0;
}

int sandbox_doctor(const struct sandbox_opts *o,
                   void (*report)(void *ud, int ok, const char *what, const char *detail), void *ud)
{
    const struct sandbox_ops *ops = sandbox_ops_find(o->backend);
    if (!ops) {
        report(ud, 0, "sandbox", "unknown backend (JANEBOT_SANDBOX)");
        return 1;
    }
    struct sandbox_ctx ctx = {.opts = o, .ops = ops};
    return ops->doctor(&ctx, report, ud);
}

void sandbox_ctx_release(struct sandbox_ctx *ctx)
{
    if (ctx->priv && ctx->ops && ctx->ops->ctx_release) ctx->ops->ctx_release(ctx);
    ctx->priv = NULL;
    free(ctx->root);
    ctx->root = NULL;
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb) return;
    if (sb->home_fd >= 0) close(sb->home_fd);
    if (sb->lock_fd >= 0) close(sb->lock_fd);
    free(sb->thread_key);
    free(sb->dir);
    free(sb->home);
    free(sb->run_dir);
    free(sb);
}

static int write_small(const char *path, const char *text, struct jb_err *err)
{
    return jb_write_file(path, text, strlen(text), 0600, err);
}

int sandbox_ensure(const struct sandbox_ctx *ctx, const char *thread_key, struct sandbox **ret,
                   struct jb_err *err)
{
    if (!*thread_key || strchr(thread_key, '\n'))
        return jb_err_set(err, JB_EPROTO, "bad thread key");
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return jb_err_set(err, JB_ENOMEM, "sandbox");
    sb->ctx = ctx;
    sb->lock_fd = -1, sb->home_fd = -1, sb->host_uid = -1;
    sandbox_name_for(thread_key, sb->name);
    if (!(sb->thread_key = strdup(thread_key)) ||
        asprintf(&sb->dir, "%s/%s", ctx->root, sb->name) < 0 ||
        asprintf(&sb->home, "%s/home", sb->dir) < 0) {
        sandbox_free(sb);
        return jb_err_set(err, JB_ENOMEM, "sandbox");
    }
    char keyfile[4096];
    snprintf(keyfile, sizeof keyfile, "%s/thread_key", sb->dir);
    /* Sandboxes that are directories here: held until sandbox_free() (lock.c). */
    if (!ctx->ops->remove && sandbox_lock_use(sb->dir, &sb->lock_fd, err) < 0) {
        sandbox_free(sb);
        return -1;
    }
    struct stat st;
    int fresh = stat(keyfile, &st) < 0;
    if (jb_mkdir_p(sb->dir, 0700, err) < 0 || jb_mkdir_p(sb->home, 0700, err) < 0 ||
        (fresh && write_small(keyfile, thread_key, err) < 0) || ctx->ops->ensure(sb, err) < 0) {
        sandbox_free(sb);
        return -1;
    }
    *ret = sb;
    return 0;
}

int64_t sandbox_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sandbox_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    char stamp[4096];
    snprintf(stamp, sizeof stamp, "%s/last_used", sb->dir);
    int fd = open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
    return sb->ctx->ops->exec(sb, x, err);
}

void sandbox_disk_full_msg(const struct sandbox_exec *x, int quota_mb, char *out, size_t n)
{
    char left[32];
    jb_fmt_size(x->disk_left, left, sizeof left);
    if (x->disk_full == SANDBOX_DISK_FULL_FILES)
        snprintf(out, n,
                 "this thread's sandbox is full: it holds as many files as its disk quota of %d "
                 "MiB allows (JANEBOT_SANDBOX_DISK_MB; %lld more), so creating files in it fails "
                 "(\"No space left on device\"). Delete files in it (ask the agent), or an admin "
                 "can reset it or raise JANEBOT_SANDBOX_DISK_MB",
                 quota_mb, x->disk_left);
    else if (x->disk_full)
        snprintf(out, n,
                 "this thread's sandbox is full: %s of its disk quota of %d MiB "
                 "(JANEBOT_SANDBOX_DISK_MB) is left, so writing files in it fails or soon will "
                 "(\"No space left on device\"). Delete files in it (ask the agent), or an admin "
                 "can reset it or raise JANEBOT_SANDBOX_DISK_MB",
                 left, quota_mb);
    else if (n)
        *out = '\0';
}

void sandbox_name_of(const char *key_or_name, char out[SANDBOX_NAME_LEN])
{
    if (sandbox_is_name(key_or_name))
        snprintf(out, SANDBOX_NAME_LEN, "%s", key_or_name);
    else
        sandbox_name_for(key_or_name, out);
}

/* Directories of sandboxes being removed: <root>/.trash-<name>-<random>. */
#define TRASH_PREFIX ".trash-"

/* Remove the directory of sandbox name, its lock held by the caller. It is moved aside
 * first, so a turn that starts meanwhile makes a fresh directory instead of one that is
 * being emptied. */
static int remove_dir(const struct sandbox_ctx *ctx, const char *name, struct jb_err *err)
{
    jb_autoclose int root = open(ctx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return jb_err_sys(err, "cannot open %s", ctx->root);
    unsigned char r[4];
    char trash[SANDBOX_NAME_LEN + 32];
    if (jb_random_bytes(r, sizeof r, err) < 0) return -1;
    snprintf(trash, sizeof trash, TRASH_PREFIX "%s-%02x%02x%02x%02x", name, r[0], r[1], r[2], r[3]);
    if (renameat(root, name, root, trash) < 0)
        return errno == ENOENT ? 0 : jb_err_sys(err, "cannot remove sandbox %s", name);
    if (jb_rm_rf_at(root, trash, err) < 0)
        return jb_err_prefix(err, "sandbox %s (moved to %s/%s)", name, ctx->root, trash);
    return 0;
}

/* What failed removals left (a crash, a mount below a home): tried again by gc. */
static void trash_sweep(const struct sandbox_ctx *ctx)
{
    int fd = open(ctx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        struct jb_err e = {0};
        if (!strncmp(de->d_name, TRASH_PREFIX, strlen(TRASH_PREFIX)) &&
            jb_rm_rf_at(fd, de->d_name, &e) < 0)
            log_warn("gc: %s", e.msg);
    }
    closedir(d);
}

int sandbox_remove(const struct sandbox_ctx *ctx, const char *key_or_name, struct jb_err *err)
{
    if (ctx->ops->remove) return ctx->ops->remove(ctx, key_or_name, err);
    char name[SANDBOX_NAME_LEN], dir[4096];
    sandbox_name_of(key_or_name, name);
    snprintf(dir, sizeof dir, "%s/%s", ctx->root, name);
    struct stat st;
    if (lstat(dir, &st) < 0)
        return jb_err_set(err, JB_ENOTFOUND, "no sandbox %s (for %s)", name, key_or_name);
    jb_autoclose int lock = -1;
    if (sandbox_lock_remove(dir, &lock, err) < 0 ||
        (ctx->ops->home_drop && ctx->ops->home_drop(ctx, name, dir, 1, err) < 0))
        return -1;
    return remove_dir(ctx, name, err);
}

int sandbox_reset(const struct sandbox_ctx *ctx, const char *thread_key, struct jb_err *err)
{
    if (ctx->ops->reset) return ctx->ops->reset(ctx, thread_key, err);
    char name[SANDBOX_NAME_LEN], dir[4096], home[4200];
    sandbox_name_for(thread_key, name);
    snprintf(dir, sizeof dir, "%s/%s", ctx->root, name);
    snprintf(home, sizeof home, "%s/home", dir);
    struct stat st;
    if (lstat(home, &st) < 0)
        return jb_err_set(err, JB_ENOTFOUND, "no sandbox %s (for %s)", name, thread_key);
    jb_autoclose int lock = -1;
    if (sandbox_lock_remove(dir, &lock, err) < 0 ||
        (ctx->ops->home_drop && ctx->ops->home_drop(ctx, name, dir, 0, err) < 0) ||
        jb_rm_rf(home, err) < 0 || jb_mkdir_p(home, 0700, err) < 0)
        return -1;
    log_info("sandbox %s of %s: reset (its home is empty)", name, thread_key);
    return 0;
}

int sandbox_golden(const struct sandbox_ctx *ctx, char *out, size_t n, struct jb_err *err)
{
    if (!ctx->ops->golden)
        return jb_err_set(err, JB_ECONFIG,
                          "the %s backend has no golden image: its sandboxes start from the "
                          "host's own files",
                          ctx->ops->name);
    return ctx->ops->golden(ctx, out, n, err);
}

static int info_fill(const struct sandbox_ctx *ctx, const char *name, struct sandbox_info *in)
{
    char path[4096];
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", name);
    in->backend = ctx->ops->name;
    snprintf(path, sizeof path, "%s/%s/thread_key", ctx->root, name);
    size_t len;
    if (jb_read_file(path, 4096, &in->thread_key, &len, NULL) < 0) in->thread_key = strdup("?");
    snprintf(path, sizeof path, "%s/%s", ctx->root, name);
    in->size_bytes = diskimg_used_bytes(path); /* a home of its own: no walk */
    snprintf(path, sizeof path, "%s/%s/home", ctx->root, name);
    if (in->size_bytes < 0) in->size_bytes = jb_disk_usage(path);
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/last_used", ctx->root, name);
    in->last_used = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    return in->thread_key ? 0 : -1;
}

int sandbox_list(const struct sandbox_ctx *ctx, struct sandbox_info **ret, size_t *ret_n,
                 struct jb_err *err)
{
    if (ctx->ops->list) return ctx->ops->list(ctx, ret, ret_n, err);
    DIR *d = opendir(ctx->root);
    if (!d) return jb_err_sys(err, "cannot read %s", ctx->root);
    struct sandbox_info *v = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!sandbox_is_name(de->d_name)) continue;
        struct sandbox_info *nv = realloc(v, (n + 1) * sizeof *v);
        if (!nv || info_fill(ctx, de->d_name, &nv[n]) < 0) {
            v = nv ? nv : v;
            closedir(d);
            sandbox_info_free(v, n);
            return jb_err_set(err, JB_ENOMEM, "sandbox list");
        }
        v = nv, n++;
    }
    closedir(d);
    *ret = v, *ret_n = n;
    return 0;
}

void sandbox_info_free(struct sandbox_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].thread_key);
    free(v);
}

int sandbox_gc(const struct sandbox_ctx *ctx, int64_t idle_s,
               int (*keep)(void *keep_ud, const char *thread_key), void *keep_ud,
               struct jb_strv *removed, struct jb_err *err)
{
    struct sandbox_info *v = NULL;
    size_t n = 0;
    if (sandbox_list(ctx, &v, &n, err) < 0) return -1;
    int64_t cutoff = jb_now_ms() / 1000 - idle_s;
    int count = 0, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t used = v[i].last_used;
        if (!used) { /* never ran: its directory's age counts */
            char dir[4096];
            struct stat st;
            snprintf(dir, sizeof dir, "%s/%s", ctx->root, v[i].name);
            used = stat(dir, &st) == 0 ? (int64_t)st.st_mtime : 0;
        }
        if (used >= cutoff) continue;
        if (keep && keep(keep_ud, v[i].thread_key)) {
            log_info("gc: sandbox %s of %s has a turn running or waiting: kept", v[i].name,
                     v[i].thread_key);
            continue;
        }
        struct jb_err e = {0};
        if (sandbox_remove(ctx, v[i].name, &e) < 0 && e.code == JB_EBUSY) {
            log_info("gc: sandbox %s of %s is in use: kept", v[i].name, v[i].thread_key);
            continue;
        }
        if (e.code || jb_strv_push(removed, v[i].thread_key, &e) < 0) {
            if (err) *err = e;
            rc = -1;
        } else {
            count++;
        }
    }
    sandbox_info_free(v, n);
    if (!ctx->ops->remove) trash_sweep(ctx);
    return rc < 0 ? -1 : count;
}

/* The outbox is written by the sandbox: every name is opened relative to a directory fd
 * with O_NOFOLLOW, so a planted symlink can make janebot read nothing but its own target
 * name, never a host file. */
static int outbox_one(int dfd, int sent, const char *name, long long max_bytes,
                      int (*deliver)(void *, int, const char *),
                      void (*skipped)(void *, const char *, const char *), void *ud)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        skipped(ud, name, "it is not a regular file");
        return 0;
    }
    if (st.st_size > max_bytes) {
        close(fd);
        char why[96];
        snprintf(why, sizeof why, "it is larger than %lld MiB", max_bytes >> 20);
        skipped(ud, name, why);
        return 0;
    }
    int ok = deliver(ud, fd, name) == 0;
    close(fd);
    if (ok && sent >= 0) renameat(dfd, name, sent, name);
    return ok;
}

int sandbox_outbox(struct sandbox *sb, size_t max_files, long long max_bytes,
                   int (*deliver)(void *ud, int fd, const char *name),
                   void (*skipped)(void *ud, const char *name, const char *why), void *ud)
{
    if (sb->ctx->ops->outbox)
        return sb->ctx->ops->outbox(sb, max_files, max_bytes, deliver, skipped, ud);
    jb_autoclose int home = open(sb->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    jb_autoclose int dfd =
        home < 0 ? -1 : openat(home, "outbox", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return 0;
    struct stat ds;
    if (fstat(dfd, &ds) == 0 && mkdirat(dfd, "sent", 0700) == 0)
        fchownat(dfd, "sent", ds.st_uid, ds.st_gid, AT_SYMLINK_NOFOLLOW); /* the agent's */
    jb_autoclose int sent = openat(dfd, "sent", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fdopendir(dup(dfd));
    if (!d) return 0;
    struct jb_strv names = JB_STRV_INIT;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && strcmp(de->d_name, "sent") != 0)
            jb_strv_push(&names, de->d_name, NULL);
    closedir(d);
    int delivered = 0;
    for (size_t i = 0; i < names.n; i++) {
        if ((size_t)delivered >= max_files) {
            skipped(ud, names.v[i], "only the first files of a turn are sent");
            continue;
        }
        delivered += outbox_one(dfd, sent, names.v[i], max_bytes, deliver, skipped, ud);
    }
    jb_strv_free(&names);
    return delivered;
}

/* ---- files put into the home ---- */

static int in_list(const struct jb_strv *v, const char *s)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (!strcmp(v->v[i], s)) return 1;
    return 0;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void sandbox_safe_name(const char *name, const struct jb_strv *taken,
                       char out[SANDBOX_FILE_NAME_MAX + 1])
{
    const char *slash = name ? strrchr(name, '/') : NULL;
    const char *base = slash ? slash + 1 : name ? name : "";
    char clean[1024];
    size_t n = utf8_cut(base, sizeof clean - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)base[i];
        clean[i] = ch < 0x20 || ch == 0x7f || (i == 0 && ch == '.') ? '_' : (char)ch;
    }
    clean[n] = '\0';
    if (!n) snprintf(clean, sizeof clean, "file");
    /* The extension stays last, through cuts and numbers, so the file opens as what it is. */
    const char *dot = strrchr(clean, '.');
    size_t ext = dot && dot != clean && strlen(dot) <= 16 ? strlen(dot) : 0;
    size_t stem = strlen(clean) - ext;
    for (int k = 1;; k++) {
        char suffix[16] = "", cut[sizeof clean];
        if (k > 1) snprintf(suffix, sizeof suffix, "-%d", k);
        snprintf(cut, sizeof cut, "%.*s", (int)stem, clean);
        cut[utf8_cut(cut, SANDBOX_FILE_NAME_MAX - strlen(suffix) - ext)] = '\0';
        snprintf(out, SANDBOX_FILE_NAME_MAX + 1, "%s%s%s", cut, suffix, clean + stem);
        if (!in_list(taken, out) || k >= 100000) return;
    }
}

static int put_component_ok(const char *c, size_t len)
{
    return len > 0 && c[0] != '.' && len < 256;
}

/* Copy fd (from offset 0) into out. */
static int copy_fd(int in, int out, struct jb_err *err)
{
    char buf[65536];
    for (off_t off = 0;;) {
        ssize_t r = pread(in, buf, sizeof buf, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return jb_err_sys(err, "cannot read the file");
        if (r == 0) return 0;
        if (jb_write_all(out, buf, (size_t)r) < 0) return jb_err_sys(err, "cannot write the file");
        off += r;
    }
}

/* Write name in dfd through a fresh temporary and a rename, so an existing entry (a
 * symlink or hard link the sandbox planted) is replaced, never written through. */
static int put_file(int dfd, const char *name, int fd, const struct stat *owner, struct jb_err *err)
{
    unsigned char raw[8];
    char tmp[64];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    snprintf(tmp, sizeof tmp, ".janebot-put-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
             raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    jb_autoclose int out =
        openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) return jb_err_sys(err, "cannot create %s", name);
    if (fchown(out, owner->st_uid, owner->st_gid) < 0 && errno != EPERM) {
        unlinkat(dfd, tmp, 0);
        return jb_err_sys(err, "cannot hand %s to the sandbox's user", name);
    }
    int rc = copy_fd(fd, out, err);
    if (rc == 0 && renameat(dfd, tmp, dfd, name) < 0)
        rc = jb_err_sys(err, "cannot put %s in place", name);
    if (rc < 0) unlinkat(dfd, tmp, 0);
    return rc;
}

/* Open (making it when missing) directory name below dfd, owned like the home. */
static int put_dir(int dfd, const char *name, const struct stat *owner)
{
    if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST) return -1;
    int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d >= 0 && fchown(d, owner->st_uid, owner->st_gid) < 0 && errno != EPERM) {
        close(d);
        return -1;
    }
    return d;
}

int sandbox_put(struct sandbox *sb, const char *relpath, int fd, struct jb_err *err)
{
    for (const char *p = relpath;;) {
        const char *end = strchrnul(p, '/');
        if (!put_component_ok(p, (size_t)(end - p)))
            return jb_err_set(err, JB_EPROTO, "bad path %s for a file in the sandbox", relpath);
        if (!*end) break;
        p = end + 1;
    }
    if (sb->ctx->ops->put) return sb->ctx->ops->put(sb, relpath, fd, err);
    int dfd = open(sb->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat owner;
    if (dfd < 0 || fstat(dfd, &owner) < 0) {
        if (dfd >= 0) close(dfd);
        return jb_err_sys(err, "cannot open the home of sandbox %s", sb->name);
    }
    char comp[256];
    const char *p = relpath;
    for (const char *end; *(end = strchrnul(p, '/')); p = end + 1) {
        snprintf(comp, sizeof comp, "%.*s", (int)(end - p), p);
        int next = put_dir(dfd, comp, &owner);
        close(dfd);
        if (next < 0) return jb_err_sys(err, "cannot make ~/%.*s", (int)(end - relpath), relpath);
        dfd = next;
    }
    int rc = put_file(dfd, p, fd, &owner, err);
    close(dfd);
    return rc;
}

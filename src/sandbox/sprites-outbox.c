/* sandbox/sprites-outbox.c -- files the agent left in ~/outbox of a sprite, brought to the
 * host one exec at a time: `find` lists the entries (NUL-separated, so any name parses),
 * `cat` of one regular file fills a memfd handed to deliver(), and a delivered file moves
 * to ~/outbox/sent/. Names travel as arguments, never inside a script; everything the
 * sprite prints is hostile until parsed (sizes, kinds, names with '/' are refused).
 * The other way, sprites_put() writes a file users shared into the sprite's home. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "sandbox/backend.h"
#include "sandbox/sprites-int.h"

#define OUTBOX_TIMEOUT_MS 120000
#define LIST_MAX          (256u << 10)

struct capture {
    int fd; /* memfd, or -1 to collect into buf */
    struct jb_buf *buf;
    long long max, got;
    int over;
};

static void on_out(void *ud, const char *p, size_t n)
{
    struct capture *c = ud;
    if (c->over || c->got + (long long)n > c->max) {
        c->over = 1;
        return;
    }
    c->got += (long long)n;
    if (c->fd >= 0) {
        if (jb_write_all(c->fd, p, n) < 0) c->over = 1;
    } else if (jb_buf_append(c->buf, p, n, NULL) < 0) {
        c->over = 1;
    }
}

/* Run argv (a fixed script, then names) in the sprite; stdout into c. */
static int run_capture(struct sandbox *sb, const char *const *argv, struct capture *c,
                       struct jb_err *err)
{
    const char *env[] = {"HOME=" SPRITES_HOME, "PATH=" SPRITES_PATH, "LC_ALL=C", NULL};
    struct sandbox_exec x = {.argv = argv,
                             .env = env,
                             .deadline_ms = jb_mono_ms() + OUTBOX_TIMEOUT_MS,
                             .on_stdout = on_out,
                             .ud = c};
    if (sprites_run(sb->ctx->priv, sb->name, &x, SPRITES_HOME, err) < 0) return -1;
    if (x.exit_code != 0 || x.timed_out)
        return jb_err_set(err, JB_EUNAVAIL, "outbox of %s: exit %d: %s", sb->name, x.exit_code,
                          x.stderr_tail);
    return 0;
}

static int fetch(struct sandbox *sb, const char *name, long long max,
                 int (*deliver)(void *, int, const char *), void *ud)
{
    static const char cat[] = "cd \"$HOME/outbox\" && [ -f \"$1\" ] && [ ! -L \"$1\" ] && "
                              "exec cat -- \"$1\"";
    static const char done[] = "cd \"$HOME/outbox\" && mkdir -p sent && mv -f -- \"$1\" sent/";
    struct jb_err err = {0};
    int fd = proc_memfd("outbox", "", 0, &err);
    if (fd < 0) return 0;
    struct capture c = {.fd = fd, .max = max};
    const char *argv[] = {"/bin/sh", "-c", cat, "sh", name, NULL};
    int ok = run_capture(sb, argv, &c, &err) == 0 && !c.over && lseek(fd, 0, SEEK_SET) == 0 &&
             deliver(ud, fd, name) == 0;
    close(fd);
    if (!ok && err.msg[0]) log_warn("sprites: %s", err.msg);
    if (ok) {
        const char *mv[] = {"/bin/sh", "-c", done, "sh", name, NULL};
        struct jb_buf ignored = JB_BUF_INIT(4096);
        struct capture none = {.fd = -1, .buf = &ignored, .max = 4096};
        if (run_capture(sb, mv, &none, &err) < 0) log_warn("sprites: %s", err.msg);
        jb_buf_release(&ignored);
    }
    return ok;
}

/* One "<kind> <size> <name>" entry of find's -printf, NUL-terminated. */
static int parse_entry(const char *e, char *kind, long long *size, const char **name)
{
    char *end = NULL;
    if (!e[0] || e[1] != ' ') return -1;
    *kind = e[0];
    *size = strtoll(e + 2, &end, 10);
    if (end == e + 2 || *end != ' ' || *size < 0) return -1;
    *name = end + 1;
    return **name && !strchr(*name, '/') && strcmp(*name, ".") && strcmp(*name, "..") ? 0 : -1;
}

int sprites_outbox(struct sandbox *sb, size_t max_files, long long max_bytes,
                   int (*deliver)(void *ud, int fd, const char *name),
                   void (*skipped)(void *ud, const char *name, const char *why), void *ud)
{
    static const char list[] =
        "cd \"$HOME/outbox\" 2>/dev/null || exit 0; "
        "exec find . -mindepth 1 -maxdepth 1 ! -name sent -printf '%y %s %f\\0'";
    const char *argv[] = {"/bin/sh", "-c", list, NULL};
    struct jb_buf out = JB_BUF_INIT(LIST_MAX);
    struct capture c = {.fd = -1, .buf = &out, .max = LIST_MAX};
    struct jb_err err = {0};
    int delivered = 0;
    if (run_capture(sb, argv, &c, &err) < 0 || c.over) {
        log_warn("sprites: outbox of %s: %s", sb->name, err.msg[0] ? err.msg : "list too long");
        jb_buf_release(&out);
        return 0;
    }
    for (size_t off = 0; off < out.len;) {
        const char *e = out.data + off, *name;
        off += strnlen(e, out.len - off) + 1;
        char kind;
        long long size;
        if (parse_entry(e, &kind, &size, &name) < 0) continue;
        char why[96] = "";
        if ((size_t)delivered >= max_files)
            snprintf(why, sizeof why, "only the first files of a turn are sent");
        else if (kind != 'f')
            snprintf(why, sizeof why, "it is not a regular file");
        else if (size > max_bytes)
            snprintf(why, sizeof why, "it is larger than %lld MiB", max_bytes >> 20);
        if (why[0])
            skipped(ud, name, why);
        else
            delivered += fetch(sb, name, max_bytes, deliver, ud);
    }
    jb_buf_release(&out);
    return delivered;
}

/* ---- files put into the sprite (sandbox_put) ---- */

#define PUT_MAX (64LL << 20)

/* The bytes of fd, from offset 0, into b. */
static int slurp(int fd, struct jb_buf *b, struct jb_err *err)
{
    char chunk[65536];
    for (off_t off = 0;;) {
        ssize_t r = pread(fd, chunk, sizeof chunk, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return jb_err_sys(err, "cannot read the file");
        if (r == 0) return 0;
        if (jb_buf_append(b, chunk, (size_t)r, err) < 0) return -1;
        off += r;
    }
}

int sprites_put(struct sandbox *sb, const char *relpath, int fd, struct jb_err *err)
{
    /* The directory and the name travel as arguments; the bytes as stdin. Run as root (some
     * images), the result goes to the home's owner like place_file() does. */
    static const char script[] =
        "mkdir -p \"$HOME/$1\" && cat > \"$HOME/$1/$2\" && if [ \"$(id -u)\" = 0 ]; then "
        "chown \"$(stat -c %u:%g \"$HOME\")\" \"$HOME/$1\" \"$HOME/$1/$2\"; fi";
    const char *slash = strrchr(relpath, '/');
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - relpath) : 1, slash ? relpath : ".");
    const char *name = slash ? slash + 1 : relpath;
    struct jb_buf data = JB_BUF_INIT((size_t)PUT_MAX);
    if (slurp(fd, &data, err) < 0) {
        jb_buf_release(&data);
        return jb_err_prefix(err, "%s", relpath);
    }
    const char *argv[] = {"/bin/sh", "-c", script, "sh", dir, name, NULL};
    const char *env[] = {"HOME=" SPRITES_HOME, "PATH=" SPRITES_PATH, "LC_ALL=C", NULL};
    struct sandbox_exec x = {.argv = argv,
                             .env = env,
                             .stdin_data = data.data,
                             .stdin_len = data.len,
                             .deadline_ms = jb_mono_ms() + OUTBOX_TIMEOUT_MS};
    int rc = sprites_run(sb->ctx->priv, sb->name, &x, SPRITES_HOME, err);
    jb_buf_release(&data);
    if (rc < 0) return -1;
    if (x.exit_code != 0 || x.timed_out)
        return jb_err_set(err, JB_EUNAVAIL, "cannot write ~/%s in sprite %s: exit %d: %s", relpath,
                          sb->name, x.exit_code, x.stderr_tail);
    return 0;
}

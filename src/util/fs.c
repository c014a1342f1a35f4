/* util/fs.c -- directories, trees, whole-file reads and atomic writes, PATH lookup. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

int jb_mkdir_p(const char *path, unsigned mode, struct jb_err *err)
{
    if (!*path) return jb_err_set(err, JB_ECONFIG, "empty directory path");
    jb_autofree char *p = strdup(path);
    if (!p) return jb_err_set(err, JB_ENOMEM, "path");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) return jb_err_sys(err, "cannot create %s", p);
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return jb_err_set(err, JB_ESYS, "%s exists and is not a directory", path);
    return 0;
}

int jb_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct jb_err *err)
{
    jb_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return jb_err_set(err, JB_ENOTFOUND, "%s does not exist", path);
        return jb_err_sys(err, "cannot open %s", path);
    }
    struct jb_buf b = JB_BUF_INIT(max);
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            jb_buf_release(&b);
            return jb_err_sys(err, "cannot read %s", path);
        }
        if (n == 0) break;
        if (jb_buf_append(&b, chunk, (size_t)n, err) < 0) {
            jb_buf_release(&b);
            return jb_err_prefix(err, "%s", path);
        }
    }
    *ret = jb_buf_detach(&b, ret_len);
    return *ret ? 0 : jb_err_set(err, JB_ENOMEM, "reading %s", path);
}

int jb_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = 0;
            return -1;
        }
        c += w, n -= (size_t)w;
    }
    return 0;
}

int jb_write_file(const char *path, const void *data, size_t len, unsigned mode, struct jb_err *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return jb_err_set(err, JB_ESYS, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return jb_err_sys(err, "cannot create %s", tmp);
    /* open()'s mode passes the umask and is ignored for a stale temp file left by a crash:
     * set it exactly, before any (possibly secret) byte is written. */
    if (fchmod(fd, mode) < 0) {
        jb_err_sys(err, "cannot chmod %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (jb_write_all(fd, data, len) < 0) {
        jb_err_sys(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        jb_err_sys(err, "cannot write %s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

char *jb_which(const char *name, const char *path_env)
{
    if (!name || !*name) return NULL;
    if (strchr(name, '/')) return access(name, X_OK) == 0 ? strdup(name) : NULL;
    jb_autofree char *paths = strdup(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
    if (!paths) return NULL;
    char *save = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *full = NULL;
        if (asprintf(&full, "%s/%s", dir, name) < 0) return NULL;
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) return full;
        free(full);
    }
    return NULL;
}

int64_t jb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void jb_fmt_time(int64_t unix_s, char *out, size_t n)
{
    if (unix_s <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, n, "-"); /* out of range, or out too small */
}

void jb_fmt_size(long long bytes, char *out, size_t n)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (bytes < 0) {
        snprintf(out, n, "?");
        return;
    }
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < JB_ARRAY_LEN(units))
        v /= 1024, u++;
    if (u == 0)
        snprintf(out, n, "%lld B", bytes);
    else
        snprintf(out, n, "%.1f %s", v, units[u]);
}

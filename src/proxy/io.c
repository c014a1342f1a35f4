/* proxy/io.c -- socket helpers with deadlines, and the two-way splice the egress proxy and
 * the relay share. Every call is MSG_DONTWAIT plus poll, so a deadline holds whatever the
 * peer does, and sends use MSG_NOSIGNAL, so a vanished peer is an error, not SIGPIPE. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxy-int.h"

static int remaining_ms(int64_t deadline)
{
    int64_t r = deadline - jb_mono_ms();
    return r < 0 ? 0 : r > INT_MAX ? INT_MAX : (int)r;
}

/* Wait until fd reports ev (or an error or hangup, which the next call then reports). */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, remaining_ms(deadline));
        if (r > 0) return 0;
        if (r == 0) return errno = ETIMEDOUT, -1;
        if (errno != EINTR) return -1;
    }
}

static int again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

int px_read_until(int fd, char *buf, size_t cap, size_t *len, size_t want, int64_t deadline)
{
    if (want > cap) want = cap;
    while (*len < want) {
        ssize_t r = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);
        if (r > 0) {
            *len += (size_t)r;
            continue;
        }
        if (r == 0) return errno = ECONNRESET, -1;
        if (!again()) return -1;
        if (wait_fd(fd, POLLIN, deadline) < 0) return -1;
    }
    return 0;
}

int px_read_head(int fd, char *buf, size_t cap, int64_t deadline, size_t *len, size_t *head_len)
{
    size_t n = 0;
    *len = 0;
    for (;;) {
        if (n == cap) return errno = E2BIG, -1;
        ssize_t r = recv(fd, buf + n, cap - n, MSG_DONTWAIT);
        if (r > 0) {
            size_t from = n >= 3 ? n - 3 : 0; /* the blank line may straddle two reads */
            n += (size_t)r;
            *len = n;
            const char *e = memmem(buf + from, n - from, "\r\n\r\n", 4);
            if (e) return *head_len = (size_t)(e - buf) + 4, 0;
            continue;
        }
        if (r == 0) return errno = ECONNRESET, -1;
        if (!again()) return -1;
        if (wait_fd(fd, POLLIN, deadline) < 0) return -1;
    }
}

int px_send_all(int fd, const void *p, size_t n, int64_t deadline)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            s += w, n -= (size_t)w;
            continue;
        }
        if (w == 0 || !again()) return -1;
        if (wait_fd(fd, POLLOUT, deadline) < 0) return -1;
    }
    return 0;
}

int px_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
    if (connect(fd, sa, len) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return -1;
    if (wait_fd(fd, POLLOUT, deadline) < 0) return -1;
    int e = 0;
    socklen_t el = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0) return -1;
    if (e) return errno = e, -1;
    return 0;
}

void px_linger(int fd)
{
    shutdown(fd, SHUT_WR);
    int64_t deadline = jb_mono_ms() + 1000;
    char junk[4096];
    for (size_t total = 0; total < 65536;) {
        ssize_t r = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        if (r == 0 || !again() || wait_fd(fd, POLLIN, deadline) < 0) return;
    }
}

/* ---- splice ---------------------------------------------------------------------------- */

/* Done reading and nothing left to write: pass the EOF on, unless a byte limit ended it. */
static void dir_settle(struct px_dir *d, int dst)
{
    if (d->done || d->len > 0) return;
    if (!d->eof && d->left == 0) d->eof = 2;
    if (!d->eof) return;
    d->done = 1;
    if (d->eof == 1) shutdown(dst, SHUT_WR);
}

static void dir_want(const struct px_dir *d, struct pollfd *src, struct pollfd *dst)
{
    if (d->done) return;
    if (d->len > 0)
        dst->events |= POLLOUT;
    else
        src->events |= POLLIN;
}

static void dir_step(struct px_dir *d, int src, int dst, short src_ev, short dst_ev)
{
    if (d->done) return;
    if (d->len > 0 && (dst_ev & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t w = send(dst, d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            d->off += (size_t)w, d->len -= (size_t)w, d->total += (size_t)w;
        } else if (w < 0 && !again()) {
            d->done = 1; /* dst is gone: this direction can carry nothing more */
            d->len = 0;
            return;
        }
    } else if (d->len == 0 && (src_ev & (POLLIN | POLLERR | POLLHUP))) {
        size_t want = d->cap;
        if (d->left >= 0 && (unsigned long long)d->left < want) want = (size_t)d->left;
        ssize_t r = recv(src, d->buf, want, MSG_DONTWAIT);
        if (r > 0) {
            d->off = 0, d->len = (size_t)r;
            if (d->left >= 0) d->left -= r;
        } else if (r == 0 || !again()) {
            d->eof = 1;
        }
    }
    dir_settle(d, dst);
}

int px_splice(int a, int b, struct px_dir *ab, struct px_dir *ba, int idle_ms)
{
    for (;;) {
        dir_settle(ab, b);
        dir_settle(ba, a);
        if (ab->done && ba->done) return 0;
        struct pollfd p[2] = {{.fd = a}, {.fd = b}};
        dir_want(ab, &p[0], &p[1]);
        dir_want(ba, &p[1], &p[0]);
        for (int i = 0; i < 2; i++)
            if (!p[i].events) p[i].fd = -1; /* else a hangup we ignore would spin */
        int r = poll(p, 2, idle_ms);
        if (r == 0) return errno = ETIMEDOUT, -1;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if ((p[0].revents | p[1].revents) & POLLNVAL) return errno = EBADF, -1;
        dir_step(ab, a, b, p[0].revents, p[1].revents);
        dir_step(ba, b, a, p[1].revents, p[0].revents);
    }
}

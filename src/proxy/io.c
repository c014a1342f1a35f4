/* proxy/io.c -- socket helpers with deadlines, and the two-way splice of the egress proxy. Every
 * call is MSG_DONTWAIT plus poll, so a deadline holds whatever the peer does, and sends use
 * MSG_NOSIGNAL, so a vanished peer is an error, not SIGPIPE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
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

/* Room in each direction's pipe: more bytes per splice(2) call, and so fewer calls, than
 * the default 64 KiB; the pages are the sockets' own, held only until dst takes them. Not
 * more: an unprivileged user's pipes share 64 MiB (pipe-user-pages-soft), past which new
 * pipes get two pages, and janebot may run as such a user. */
#define PIPE_BYTES  (256 * 1024)
#define UNIX_SNDBUF (1024 * 1024)
/* Pipe-fulls one direction may move before the other gets its turn. */
#define BURST_MAX 8

static int pending(const struct px_dir *d)
{
    return d->len > 0 || d->piped > 0;
}

static void pipe_close(struct px_dir *d)
{
    for (int i = 0; i < 2; i++)
        if (d->pipe[i] >= 0) close(d->pipe[i]);
    d->pipe[0] = d->pipe[1] = -1;
    d->piped = 0;
}

/* A pipe for d, or none (d then copies through its buffer): out of descriptors is no
 * reason to fail a connection. */
static void pipe_open(struct px_dir *d)
{
    d->piped = 0;
    if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return;
    }
    fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_BYTES); /* a smaller pipe works too */
}

/* Non-blocking; a Unix socket also gets a larger send buffer: on that hop the sender's
 * buffer is all there is in flight (no window to grow), and its default (~208 KiB) wakes
 * the reader about once per 200 KiB. The kernel caps it at net.core.wmem_max. */
static void prepare_fd(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int domain = 0, size = UNIX_SNDBUF;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

/* Done reading and nothing left to write: pass the EOF on, unless a byte limit ended it. */
static void dir_settle(struct px_dir *d, int dst)
{
    if (d->done || pending(d)) return;
    if (!d->eof && d->left == 0) d->eof = 2;
    if (!d->eof) return;
    d->done = 1;
    if (d->eof == 1) shutdown(dst, SHUT_WR);
}

static void dir_want(const struct px_dir *d, struct pollfd *src, struct pollfd *dst)
{
    if (d->done) return;
    if (pending(d))
        dst->events |= POLLOUT;
    else
        src->events |= POLLIN;
}

/* What the buffer holds first (bytes read before the splice began), then the pipe's. */
static void dir_write(struct px_dir *d, int dst)
{
    ssize_t w;
    if (d->len > 0)
        w = send(dst, d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    else
        w = splice(d->pipe[0], NULL, dst, NULL, d->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (w > 0) {
        if (d->len > 0)
            d->off += (size_t)w, d->len -= (size_t)w;
        else
            d->piped -= (size_t)w;
        d->total += (size_t)w;
    } else if (w < 0 && !again()) {
        d->done = d->failed = 1; /* dst is gone: this direction can carry nothing more */
        d->len = d->piped = 0;
    }
}

/* polled: poll(2) just said src is readable. */
static void dir_read(struct px_dir *d, int src, int polled)
{
    size_t want = d->pipe[0] >= 0 ? PIPE_BYTES : d->cap;
    if (d->left >= 0 && (unsigned long long)d->left < want) want = (size_t)d->left;
    ssize_t r = -1;
    int copy = d->pipe[0] < 0;
    if (!copy) {
        r = splice(src, NULL, d->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (r < 0 && errno == EINVAL) pipe_close(d), copy = 1; /* src cannot splice */
        /* Readable, yet nothing to splice: TCP urgent data (MSG_OOB), which splice(2)
         * never steps over; polling again would spin. recv() skips it, as it always did. */
        if (r < 0 && errno == EAGAIN && polled) copy = 1;
        /* 0 is not always the end: with the urgent byte unread and the peer's FIN queued
         * behind data, splice(2) stops at the mark and says 0. recv() tells the two apart. */
        if (r == 0) copy = 1;
    }
    if (copy) {
        r = recv(src, d->buf, want < d->cap ? want : d->cap, MSG_DONTWAIT);
        if (r > 0) d->off = 0, d->len = (size_t)r;
    } else if (r > 0) {
        d->piped = (size_t)r;
    }
    if (r > 0) {
        if (d->left >= 0) d->left -= r;
    } else if (r == 0 || !again()) {
        d->eof = 1;
    }
}

static void dir_step(struct px_dir *d, int src, int dst, short src_ev, short dst_ev)
{
    if (d->done) return;
    if (pending(d) && (dst_ev & (POLLOUT | POLLERR | POLLHUP))) {
        dir_write(d, dst);
    } else if (!pending(d) && (src_ev & (POLLIN | POLLERR | POLLHUP))) {
        /* While dst takes all there is and src has more, go on without a poll in
         * between: a bulk transfer costs two splices per pipe-full, not three calls. */
        for (int i = 0; i < BURST_MAX && !d->done && !d->eof && d->left != 0; i++) {
            dir_read(d, src, i == 0);
            if (!pending(d)) break; /* src has nothing more for now */
            dir_write(d, dst);
            if (pending(d)) break; /* dst is full: wait for POLLOUT */
        }
    }
    dir_settle(d, dst);
}

static int splice_loop(int a, int b, struct px_dir *ab, struct px_dir *ba, int idle_ms)
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

int px_splice(int a, int b, struct px_dir *ab, struct px_dir *ba, int idle_ms)
{
    /* splice(2) into a socket has no MSG_NOSIGNAL: a vanished peer raises SIGPIPE in this
     * thread. Blocked here, and taken off before unblocking, it is only the EPIPE it
     * should be, whatever the process does with SIGPIPE (the default ends the process). */
    sigset_t pipe_sig, old;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, &old);
    prepare_fd(a);
    prepare_fd(b);
    pipe_open(ab);
    pipe_open(ba);
    int rc = splice_loop(a, b, ab, ba, idle_ms);
    int e = errno;
    pipe_close(ab);
    pipe_close(ba);
    if (!sigismember(&old, SIGPIPE)) {
        while (sigtimedwait(&pipe_sig, NULL, &(struct timespec){0}) == SIGPIPE)
            ;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    errno = e;
    return rc;
}

/* ---- short answers ---------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    }
    return "Error";
}

void px_respond(int fd, int status, const char *body)
{
    char msg[2048];
    size_t bl = body ? strlen(body) : 0;
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, reason(status), bl, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof msg) /* never cut a reply short of its length */
        n = snprintf(msg, sizeof msg, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", status,
                     reason(status));
    px_send_all(fd, msg, (size_t)n, jb_mono_ms() + 5000);
}

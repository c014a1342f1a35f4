/* proxy/relay.c -- the in-sandbox relay: TCP on 127.0.0.1 to the host's Unix socket, byte
 * for byte. It adds nothing, decides nothing and is not trusted: the policy lives on the
 * host side. It only has to stay up and bounded whatever the sandbox throws at it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"

/* Shared by relay_serve() and its connection threads; the last one out frees it, so a
 * fatal return of relay_serve() cannot pull it from under a live connection. */
struct relay {
    atomic_int refs, active;
    struct sockaddr_un addr;
};

struct relay_conn {
    struct relay *r;
    int tfd;
    char ab[EGRESS_BUF_SIZE], ba[EGRESS_BUF_SIZE];
};

static void relay_unref(struct relay *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) free(r);
}

static void *relay_conn_main(void *arg)
{
    struct relay_conn *c = arg;
    int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ufd >= 0 && connect(ufd, (struct sockaddr *)&c->r->addr, sizeof c->r->addr) == 0) {
        struct px_dir ab = {.buf = c->ab, .cap = sizeof c->ab, .left = -1};
        struct px_dir ba = {.buf = c->ba, .cap = sizeof c->ba, .left = -1};
        px_splice(c->tfd, ufd, &ab, &ba, EGRESS_IDLE_TIMEOUT_MS);
    }
    if (ufd >= 0) close(ufd);
    close(c->tfd);
    atomic_fetch_sub(&c->r->active, 1);
    relay_unref(c->r);
    free(c);
    return NULL;
}

static void relay_start(struct relay *r, int fd)
{
    struct relay_conn *c = NULL;
    if (atomic_load(&r->active) >= RELAY_MAX_CONNS || !(c = malloc(sizeof *c))) {
        close(fd); /* over the limit: refuse at once rather than queue */
        return;
    }
    c->r = r, c->tfd = fd;
    /* Bytes go on as they come: a reply head and the first event right behind it must not
     * wait for an ACK (Nagle). */
    static const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    atomic_fetch_add(&r->active, 1);
    atomic_fetch_add(&r->refs, 1);
    pthread_t t;
    if (px_thread_start(&t, relay_conn_main, c, 1) == 0) return;
    atomic_fetch_sub(&r->active, 1);
    atomic_fetch_sub(&r->refs, 1);
    close(fd);
    free(c);
}

/* accept() errors that end the relay: the descriptor itself is wrong. */
static int fatal_accept_error(int e)
{
    return e == EBADF || e == EINVAL || e == ENOTSOCK || e == EFAULT || e == EOPNOTSUPP;
}

int relay_serve(int listen_fd, const char *unix_path, struct jb_err *err)
{
    if (listen_fd < 0) return errno = EBADF, jb_err_sys(err, "relay: listening socket");
    struct relay *r = calloc(1, sizeof *r);
    if (!r) return jb_err_set(err, JB_ENOMEM, "relay: out of memory");
    r->addr.sun_family = AF_UNIX;
    if (strlen(unix_path) >= sizeof r->addr.sun_path) {
        free(r);
        return jb_err_set(err, JB_ECONFIG, "relay: socket path %s is too long", unix_path);
    }
    memcpy(r->addr.sun_path, unix_path, strlen(unix_path) + 1);
    atomic_init(&r->refs, 1);
    atomic_init(&r->active, 0);
    for (;;) {
        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
        if (p.revents & POLLNVAL) {
            errno = EBADF;
            break;
        }
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            relay_start(r, fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            poll(NULL, 0, 100); /* out of descriptors or memory: back off, do not spin */
        } else if (fatal_accept_error(errno)) {
            break;
        }
    }
    jb_err_sys(err, "relay: accept on fd %d", listen_fd);
    relay_unref(r);
    return -1;
}

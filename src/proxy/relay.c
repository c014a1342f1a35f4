/* proxy/relay.c -- the in-sandbox relay: TCP on 127.0.0.1 to the host's Unix socket, byte
 * for byte (splice(2), px_splice()). It decides nothing and is not trusted: the policy and
 * the per-sandbox caps live on the host side, which answers what it refuses. The relay only
 * has to stay up and bounded whatever the sandbox throws at it: its connection threads are
 * a pool.c group, capped at RELAY_MAX_CONNS, above the host's caps, so a client past them
 * reads the host's refusal; past the relay's own, a connection waits in the listen backlog
 * until one ends (a refusal here could only be a reset or a guess at the protocol). */
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"

struct relay_conn {
    char ab[EGRESS_BUF_SIZE], ba[EGRESS_BUF_SIZE];
};

/* One connection, tfd from the sandbox's client; ud the host socket's address. */
static void relay_conn_serve(struct px_conn *pc, int tfd, void *ud)
{
    const struct sockaddr_un *addr = ud;
    struct relay_conn *c = malloc(sizeof *c);
    if (!c) return; /* the pool closes tfd: the client sees the connection end */
    int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ufd >= 0 && px_conn_set_fd2(pc, ufd) == 0 &&
        connect(ufd, (const struct sockaddr *)addr, sizeof *addr) == 0) {
        struct px_dir ab = {.buf = c->ab, .cap = sizeof c->ab, .left = -1};
        struct px_dir ba = {.buf = c->ba, .cap = sizeof c->ba, .left = -1};
        px_splice(tfd, ufd, &ab, &ba, EGRESS_IDLE_TIMEOUT_MS);
        /* The host answered and closed before taking all the client sent (a refusal):
         * closing on unread bytes would reset the connection, and a reset may reach the
         * client before the answer it is reading. */
        if (ab.failed) px_linger(tfd);
    }
    free(c); /* ufd, once registered, is the pool's to close */
}

/* No thread or memory for a connection (the cap itself holds connections back): a 503,
 * since both host sockets behind a relay speak HTTP. Answered from the accept thread: a
 * short reply into an empty socket buffer cannot block; what the client sent so far is
 * read first, so the close is not a reset. */
static void relay_refuse(int fd, enum px_refusal why, void *ud)
{
    (void)why, (void)ud;
    char junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    px_respond(fd, 503, "janebot relay: out of memory or threads; try again later.\n");
    shutdown(fd, SHUT_WR);
}

int relay_serve(int listen_fd, const char *unix_path, struct jb_err *err)
{
    if (listen_fd < 0) return errno = EBADF, jb_err_sys(err, "relay: listening socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(unix_path) >= sizeof addr.sun_path)
        return jb_err_set(err, JB_ECONFIG, "relay: socket path %s is too long", unix_path);
    memcpy(addr.sun_path, unix_path, strlen(unix_path) + 1);
    struct px_pool pool;
    struct px_group g;
    px_pool_init(&pool, 0);
    int rc = px_group_init(&g, &pool, RELAY_MAX_CONNS, err);
    g.hold_when_full = 1;
    if (rc == 0) {
        /* Bytes go on as they come (tcp: TCP_NODELAY): a reply head and the first event
         * right behind it must not wait for an ACK. Returns only on a fatal error. */
        px_group_serve(&g, listen_fd, 1, "relay", relay_conn_serve, relay_refuse, &addr);
        rc = jb_err_sys(err, "relay: accept on fd %d", listen_fd);
    }
    px_group_close(&g);
    px_pool_destroy(&pool);
    return rc;
}

/* proxy/pool.c -- the connection threads of both host proxies (egress and LLM): a thread
 * per connection, capped per group (one listener) and for the whole pool (one proxy), an
 * accept loop per listener, and a group close that ends every connection it started.
 *
 * Connection states, all changes under pool->mu:
 *   accepted --(under both caps)--> live (thread running) --serve returns--> dead --joined--> freed
 *   accepted --(over a cap, closing, no thread)--> refused: the caller answers and closes
 * (P1) g->nlive and pool->nlive count live connections only; a connection leaves "live"
 *      after its descriptors are closed.
 * (P2) A connection's descriptors are closed only under pool->mu, so px_group_close() may
 *      shutdown() the ones it finds without hitting a reused descriptor.
 * (P3) Dead threads are joined by the accept thread when it next wakes (each finish wakes
 *      it) or by px_group_close(); at most the group's cap are ever unjoined. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "proxy/proxy-int.h"

#define THREAD_STACK (512 * 1024) /* room for getaddrinfo and the sanitizers; buffers are heap */

struct px_conn {
    struct px_group *g;
    pthread_t thr;
    px_serve_fn *serve;
    void *ud;
    int fd, fd2;   /* under pool->mu; -1 once closed */
    int cancelled; /* under pool->mu: the group is closing */
    int handoff;   /* came to the group's own socket, which also takes hand-overs */
    struct px_conn *next;
};

int px_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached)
{
    pthread_attr_t a;
    if (pthread_attr_init(&a) != 0) return -1;
    pthread_attr_setstacksize(&a, THREAD_STACK);
    if (detached) pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(t, &a, fn, arg);
    pthread_attr_destroy(&a);
    return rc == 0 ? 0 : (errno = rc, -1);
}

void px_pool_init(struct px_pool *p, int max)
{
    *p = (struct px_pool){.max = max};
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

void px_pool_destroy(struct px_pool *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

int px_group_init(struct px_group *g, struct px_pool *p, int max, struct jb_err *err)
{
    *g = (struct px_group){.pool = p, .max = max, .lfd = -1, .lfd2 = -1, .wake = {-1, -1}};
    if (pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) < 0) return jb_err_sys(err, "pipe");
    return 0;
}

static void wake(struct px_group *g)
{
    ssize_t r = write(g->wake[1], "w", 1); /* a full pipe already wakes the thread */
    (void)r;
}

/* ---- one connection -------------------------------------------------------------------- */

int px_conn_set_fd2(struct px_conn *c, int fd)
{
    struct px_pool *p = c->g->pool;
    pthread_mutex_lock(&p->mu);
    int cancelled = c->cancelled;
    if (cancelled)
        close(fd);
    else
        c->fd2 = fd;
    pthread_mutex_unlock(&p->mu);
    return cancelled ? -1 : 0;
}

void px_conn_close_fd2(struct px_conn *c)
{
    struct px_pool *p = c->g->pool;
    pthread_mutex_lock(&p->mu);
    if (c->fd2 >= 0) close(c->fd2);
    c->fd2 = -1;
    pthread_mutex_unlock(&p->mu);
}

/* Under pool->mu: c leaves the live list and the counts (P1). */
static void unlink_live(struct px_group *g, struct px_conn *c)
{
    struct px_conn **pp = &g->live;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    g->nlive--, g->pool->nlive--;
}

/* A hand-over on fd (handoff.c): the group accepts on the listener from now on, or the
 * sandbox reads why not. One per group: the sandbox's first process hands over once. */
static void adopt(struct px_group *g, int fd)
{
    char why[128] = "";
    int lfd = px_handoff_take(fd, why, sizeof why);
    if (lfd >= 0) {
        pthread_mutex_lock(&g->pool->mu);
        if (g->closing || g->lfd2 >= 0) {
            snprintf(why, sizeof why, "%s",
                     g->closing ? "the listener is closing" : "a listener came already");
            close(lfd);
            lfd = -1;
        } else {
            g->lfd2 = lfd;
        }
        pthread_mutex_unlock(&g->pool->mu);
    }
    int64_t deadline = jb_mono_ms() + PX_HANDOFF_TIMEOUT_MS;
    if (lfd >= 0) {
        wake(g); /* the accept thread polls it from now on */
        px_send_all(fd, "ok\n", 3, deadline);
        return;
    }
    log_warn("%s: refused a listener from the sandbox: %s", g->name, why);
    char line[160];
    int n = snprintf(line, sizeof line, "%s\n", why);
    px_send_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, deadline);
}

static void *conn_main(void *arg)
{
    struct px_conn *c = arg;
    struct px_group *g = c->g;
    if (c->handoff && px_handoff_waiting(c->fd))
        adopt(g, c->fd);
    else
        c->serve(c, c->fd, c->ud);
    pthread_mutex_lock(&g->pool->mu);
    if (c->fd >= 0) close(c->fd);
    if (c->fd2 >= 0) close(c->fd2);
    c->fd = c->fd2 = -1;
    unlink_live(g, c);
    c->next = g->dead;
    g->dead = c;
    pthread_cond_broadcast(&g->pool->cv);
    pthread_mutex_unlock(&g->pool->mu);
    wake(g); /* g outlives this thread: it is closed only after joining it */
    return NULL;
}

static enum px_refusal start(struct px_group *g, int fd, px_serve_fn *serve, void *ud, int handoff)
{
    struct px_pool *p = g->pool;
    struct px_conn *c = malloc(sizeof *c);
    enum px_refusal why = c ? PX_STARTED : PX_NO_THREAD;
    pthread_mutex_lock(&p->mu);
    if (c && g->closing) why = PX_CLOSING;
    if (c && !why && g->max > 0 && g->nlive >= g->max) why = PX_GROUP_FULL;
    if (c && !why && p->max > 0 && p->nlive >= p->max) why = PX_POOL_FULL;
    if (!why) {
        *c = (struct px_conn){.g = g,
                              .serve = serve,
                              .ud = ud,
                              .fd = fd,
                              .fd2 = -1,
                              .handoff = handoff,
                              .next = g->live};
        g->live = c;
        g->nlive++, p->nlive++;
    }
    pthread_mutex_unlock(&p->mu);
    if (why) {
        free(c);
        return why;
    }
    if (px_thread_start(&c->thr, conn_main, c, 0) == 0) return PX_STARTED;
    log_error("proxy: cannot start a connection thread: %s", strerror(errno));
    pthread_mutex_lock(&p->mu);
    unlink_live(g, c);
    pthread_mutex_unlock(&p->mu);
    free(c);
    return PX_NO_THREAD;
}

enum px_refusal px_start(struct px_group *g, int fd, px_serve_fn *serve, void *ud)
{
    return start(g, fd, serve, ud, 0);
}

static void join_all(struct px_conn *c)
{
    while (c) {
        struct px_conn *next = c->next;
        pthread_join(c->thr, NULL);
        free(c);
        c = next;
    }
}

void px_reap(struct px_group *g)
{
    pthread_mutex_lock(&g->pool->mu);
    struct px_conn *dead = TAKE_PTR(g->dead);
    pthread_mutex_unlock(&g->pool->mu);
    join_all(dead);
}

/* ---- the accept loop ------------------------------------------------------------------- */

/* 1 when the group is closing. Drains the wake pipe. */
static int woken(struct px_group *g)
{
    char b[256];
    while (read(g->wake[0], b, sizeof b) > 0)
        ;
    pthread_mutex_lock(&g->pool->mu);
    int closing = g->closing;
    pthread_mutex_unlock(&g->pool->mu);
    return closing;
}

/* fd came from g's own socket (lfd2: 0, from the listener a sandbox handed over). */
static void admit(struct px_group *g, int fd, int from_lfd)
{
    static const int one = 1;
    /* Small writes (an SSE event, a reply head) go out at once, not after an ACK. A
     * listener handed over is a TCP socket. */
    if (g->tcp || !from_lfd) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Only the group's own socket takes hand-overs: a sandbox's client never does. */
    enum px_refusal why = start(g, fd, g->serve, g->ud, from_lfd && g->handoff);
    if (why == PX_STARTED) return;
    g->refuse(fd, why, g->ud);
    close(fd);
}

/* accept() and poll() errors that end the loop: the listening descriptor itself is wrong. */
static int fatal_error(int e)
{
    return e == EBADF || e == EINVAL || e == ENOTSOCK || e == EFAULT || e == EOPNOTSUPP;
}

/* What to poll: g's listeners, or none while g holds new connections back (at its cap,
 * and told to: g->hold_when_full; a finishing connection wakes the thread). */
static void listeners(struct px_group *g, struct pollfd p[2])
{
    pthread_mutex_lock(&g->pool->mu);
    int hold = g->hold_when_full && g->max > 0 && g->nlive >= g->max;
    p[0] = (struct pollfd){.fd = hold ? -1 : g->lfd, .events = POLLIN};
    p[1] = (struct pollfd){.fd = hold ? -1 : g->lfd2, .events = POLLIN};
    pthread_mutex_unlock(&g->pool->mu);
}

/* One connection from listener lfd; 0, or -1 with errno when lfd itself is wrong. */
static int accept_one(struct px_group *g, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        admit(g, fd, lfd == g->lfd);
    } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        log_warn("%s: accept: %s", g->name, strerror(errno));
        struct pollfd w = {.fd = g->wake[0], .events = POLLIN};
        poll(&w, 1, 100); /* out of descriptors: back off instead of spinning */
    } else if (fatal_error(errno)) {
        return -1;
    }
    return 0;
}

static int accept_loop(struct px_group *g)
{
    for (;;) {
        px_reap(g);
        struct pollfd p[3];
        listeners(g, p);
        p[2] = (struct pollfd){.fd = g->wake[0], .events = POLLIN};
        if (poll(p, 3, -1) < 0) {
            if (fatal_error(errno)) return -1;
            if (errno != EINTR) poll(NULL, 0, 100);
            continue;
        }
        if (p[2].revents && woken(g)) return 0;
        if ((p[0].revents | p[1].revents) & POLLNVAL) return errno = EBADF, -1;
        /* One connection per poll: the cap is looked at again before the next. */
        int i = p[1].revents & POLLIN ? 1 : p[0].revents & POLLIN ? 0 : -1;
        if (i >= 0 && accept_one(g, p[i].fd) < 0) return -1;
    }
}

static void *accept_main(void *arg)
{
    struct px_group *g = arg;
    if (accept_loop(g) < 0) log_error("%s: no longer accepting: %s", g->name, strerror(errno));
    return NULL;
}

int px_group_listen(struct px_group *g, int lfd, int tcp, const char *name, px_serve_fn *serve,
                    px_refuse_fn *refuse, void *ud, struct jb_err *err)
{
    g->lfd = lfd, g->tcp = tcp, g->serve = serve, g->refuse = refuse, g->ud = ud;
    snprintf(g->name, sizeof g->name, "%s", name);
    if (px_thread_start(&g->thr, accept_main, g, 0) < 0)
        return jb_err_sys(err, "%s: cannot start the accept thread", name);
    g->accepting = 1;
    return 0;
}

void px_group_close(struct px_group *g)
{
    struct px_pool *p = g->pool;
    if (!p) return; /* never initialised */
    pthread_mutex_lock(&p->mu);
    g->closing = 1;
    pthread_mutex_unlock(&p->mu);
    if (g->accepting) {
        wake(g);
        pthread_join(g->thr, NULL); /* no new connections from here on */
        g->accepting = 0;
    }
    pthread_mutex_lock(&p->mu);
    for (struct px_conn *c = g->live; c; c = c->next) {
        c->cancelled = 1; /* shutdown wakes every poll or read the thread may sit in */
        if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
        if (c->fd2 >= 0) shutdown(c->fd2, SHUT_RDWR);
    }
    while (g->nlive > 0)
        pthread_cond_wait(&p->cv, &p->mu);
    struct px_conn *dead = TAKE_PTR(g->dead);
    if (g->lfd2 >= 0) close(g->lfd2); /* no thread left to use it */
    g->lfd2 = -1;
    pthread_mutex_unlock(&p->mu);
    join_all(dead);
    for (int i = 0; i < 2; i++)
        if (g->wake[i] >= 0) close(g->wake[i]);
    g->wake[0] = g->wake[1] = -1;
}

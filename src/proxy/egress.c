/* proxy/egress.c -- the egress proxy's lifecycle: one Unix socket per sandbox, an accept
 * thread per socket, a thread per connection, the limits, and a close that waits for all.
 *
 * Connection states, all changes under px->mu:
 *   accepted --(under the limits)--> live (thread running) --finish--> dead --joined--> freed
 *   accepted --(over a limit)------> 503 and closed by the accept thread, no thread
 * (E1) l->nlive and px->nlive count live connections only; a connection leaves "live" in
 *      egress_conn_finish(), after its sockets are closed.
 * (E2) A socket of a connection is closed only under px->mu, so egress_listener_close()
 *      may shutdown() the sockets it finds without hitting a reused descriptor.
 * (E3) Dead threads are joined by the accept thread when it next wakes (each finish wakes
 *      it) or by egress_listener_close(); at most the listener's limit are ever unjoined. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"

#define THREAD_STACK (512 * 1024) /* room for getaddrinfo and the sanitizers; buffers are heap */

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

int egress_proxy_new(const struct egress_policy *p, struct egress_proxy **ret, struct jb_err *err)
{
    struct egress_proxy *px = calloc(1, sizeof *px);
    if (!px) return jb_err_set(err, JB_ENOMEM, "egress proxy: out of memory");
    px->policy = p;
    pthread_mutex_init(&px->mu, NULL);
    pthread_cond_init(&px->cv, NULL);
    *ret = px;
    return 0;
}

void egress_proxy_free(struct egress_proxy *px)
{
    if (!px) return;
    for (;;) {
        pthread_mutex_lock(&px->mu);
        struct egress_listener *l = px->listeners;
        pthread_mutex_unlock(&px->mu);
        if (!l) break;
        egress_listener_close(l);
    }
    pthread_cond_destroy(&px->cv);
    pthread_mutex_destroy(&px->mu);
    free(px);
}

/* ---- connections ----------------------------------------------------------------------- */

static void wake(struct egress_listener *l)
{
    ssize_t r = write(l->wake[1], "w", 1); /* a full pipe already wakes the thread */
    (void)r;
}

int egress_conn_set_upstream(struct egress_conn *c, int fd)
{
    struct egress_proxy *px = c->l->px;
    pthread_mutex_lock(&px->mu);
    int cancelled = c->cancelled;
    if (cancelled)
        close(fd);
    else
        c->ufd = fd;
    pthread_mutex_unlock(&px->mu);
    return cancelled ? -1 : 0;
}

void egress_conn_close_upstream(struct egress_conn *c)
{
    struct egress_proxy *px = c->l->px;
    pthread_mutex_lock(&px->mu);
    if (c->ufd >= 0) close(c->ufd);
    c->ufd = -1;
    pthread_mutex_unlock(&px->mu);
}

/* Under px->mu: c leaves the live list and the counts (E1). */
static void unlink_live(struct egress_listener *l, struct egress_conn *c)
{
    struct egress_conn **pp = &l->live;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    l->nlive--, l->px->nlive--;
}

void egress_conn_finish(struct egress_conn *c)
{
    struct egress_listener *l = c->l;
    struct egress_proxy *px = l->px;
    pthread_mutex_lock(&px->mu);
    if (c->cfd >= 0) close(c->cfd);
    if (c->ufd >= 0) close(c->ufd);
    c->cfd = c->ufd = -1;
    unlink_live(l, c);
    c->next = l->dead;
    l->dead = c;
    pthread_cond_broadcast(&px->cv);
    pthread_mutex_unlock(&px->mu);
    wake(l); /* l outlives this thread: it is freed only after joining it */
}

static void join_all(struct egress_conn *c)
{
    while (c) {
        struct egress_conn *next = c->next;
        pthread_join(c->thr, NULL);
        free(c);
        c = next;
    }
}

static void reap(struct egress_listener *l)
{
    pthread_mutex_lock(&l->px->mu);
    struct egress_conn *dead = TAKE_PTR(l->dead);
    pthread_mutex_unlock(&l->px->mu);
    join_all(dead);
}

/* Over a limit: answer 503 from the accept thread (a short reply into an empty socket
 * buffer cannot block) and close, without starting a thread. */
static void turn_away(struct egress_listener *l, int fd, const char *why)
{
    log_warn("egress %s: refused a connection: %s", l->key, why);
    char junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ; /* unread bytes would turn our close into a reset that eats the reply */
    char body[128];
    snprintf(body, sizeof body, "janebot egress proxy: %s; try again later.\n", why);
    px_respond(fd, 503, body);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void admit(struct egress_listener *l, int fd)
{
    struct egress_proxy *px = l->px;
    struct egress_conn *c = malloc(sizeof *c);
    const char *full = c ? NULL : "out of memory";
    pthread_mutex_lock(&px->mu);
    if (c && l->nlive >= EGRESS_MAX_PER_LISTENER) full = "too many connections from this sandbox";
    if (c && !full && px->nlive >= EGRESS_MAX_PER_PROXY)
        full = "too many connections through the egress proxy";
    if (!full) {
        c->l = l, c->cfd = fd, c->ufd = -1, c->cancelled = 0, c->next = l->live;
        l->live = c; /* fields one by one: the buffers need no zeroing */
        l->nlive++, px->nlive++;
    }
    pthread_mutex_unlock(&px->mu);
    if (full) {
        free(c);
        return turn_away(l, fd, full);
    }
    if (px_thread_start(&c->thr, egress_conn_main, c, 0) == 0) return;
    log_error("egress %s: cannot start a connection thread: %s", l->key, strerror(errno));
    pthread_mutex_lock(&px->mu);
    unlink_live(l, c);
    pthread_mutex_unlock(&px->mu);
    close(fd);
    free(c);
}

/* 1 when the listener is closing. Drains the wake pipe. */
static int woken(struct egress_listener *l)
{
    char b[256];
    while (read(l->wake[0], b, sizeof b) > 0)
        ;
    pthread_mutex_lock(&l->px->mu);
    int closing = l->closing;
    pthread_mutex_unlock(&l->px->mu);
    return closing;
}

static void *accept_main(void *arg)
{
    struct egress_listener *l = arg;
    for (;;) {
        reap(l);
        struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN},
                              {.fd = l->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno != EINTR) poll(NULL, 0, 100);
            continue;
        }
        if (p[1].revents && woken(l)) return NULL;
        if (!(p[0].revents & POLLIN)) continue;
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(l, fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_warn("egress %s: accept: %s", l->key, strerror(errno));
            poll(&p[1], 1, 100); /* out of descriptors: back off instead of spinning */
        }
    }
}

/* ---- listeners ------------------------------------------------------------------------- */

static void listener_free(struct egress_listener *l)
{
    if (!l) return;
    if (l->fd >= 0) close(l->fd);
    for (int i = 0; i < 2; i++)
        if (l->wake[i] >= 0) close(l->wake[i]);
    free(l->path);
    free(l->key);
    free(l);
}

/* Bind under a temporary name, set mode and owner, then rename into place: the socket is
 * never reachable at sock_path with looser permissions, and connects never see it missing. */
static int bind_socket(struct egress_listener *l, uid_t owner, struct jb_err *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    unsigned char rnd[4];
    if (jb_random_bytes(rnd, sizeof rnd, err) < 0) return -1;
    int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s.%02x%02x%02x%02x", l->path, rnd[0],
                     rnd[1], rnd[2], rnd[3]);
    if (n < 0 || (size_t)n >= sizeof sun.sun_path)
        return jb_err_set(err, JB_ECONFIG, "egress socket path %s is too long", l->path);
    struct stat st;
    if (lstat(l->path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return jb_err_set(err, JB_ECONFIG, "%s exists and is not a socket", l->path);
    if (bind(l->fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        return jb_err_sys(err, "bind %s", sun.sun_path);
    if (listen(l->fd, 64) < 0 || chmod(sun.sun_path, 0600) < 0 ||
        (owner != (uid_t)-1 && chown(sun.sun_path, owner, (gid_t)-1) < 0) ||
        rename(sun.sun_path, l->path) < 0) {
        jb_err_sys(err, "egress socket %s", l->path);
        unlink(sun.sun_path);
        return -1;
    }
    return 0;
}

static int listener_open(struct egress_listener *l, const char *sock_path, const char *thread_key,
                         uid_t owner_uid, struct jb_err *err)
{
    if (!(l->path = strdup(sock_path)) || !(l->key = strdup(thread_key)))
        return jb_err_set(err, JB_ENOMEM, "egress listener: out of memory");
    if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0) return jb_err_sys(err, "pipe");
    if ((l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return jb_err_sys(err, "socket");
    if (bind_socket(l, owner_uid, err) < 0) return -1;
    if (px_thread_start(&l->thr, accept_main, l, 0) < 0) {
        jb_err_sys(err, "egress %s: cannot start the accept thread", thread_key);
        unlink(l->path);
        return -1;
    }
    return 0;
}

int egress_listen(struct egress_proxy *px, const char *sock_path, const char *thread_key,
                  uid_t owner_uid, struct egress_listener **ret, struct jb_err *err)
{
    struct egress_listener *l = calloc(1, sizeof *l);
    if (!l) return jb_err_set(err, JB_ENOMEM, "egress listener: out of memory");
    l->px = px, l->fd = l->wake[0] = l->wake[1] = -1;
    if (listener_open(l, sock_path, thread_key, owner_uid, err) < 0) {
        listener_free(l);
        return -1;
    }
    pthread_mutex_lock(&px->mu);
    l->next = px->listeners;
    px->listeners = l;
    pthread_mutex_unlock(&px->mu);
    log_debug("egress %s: listening on %s", l->key, l->path);
    *ret = l;
    return 0;
}

void egress_listener_close(struct egress_listener *l)
{
    if (!l) return;
    struct egress_proxy *px = l->px;
    pthread_mutex_lock(&px->mu);
    struct egress_listener **pp = &px->listeners;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp) *pp = l->next;
    l->closing = 1;
    pthread_mutex_unlock(&px->mu);
    wake(l);
    pthread_join(l->thr, NULL); /* no new connections from here on */
    pthread_mutex_lock(&px->mu);
    for (struct egress_conn *c = l->live; c; c = c->next) {
        c->cancelled = 1; /* shutdown wakes every poll the thread may sit in */
        if (c->cfd >= 0) shutdown(c->cfd, SHUT_RDWR);
        if (c->ufd >= 0) shutdown(c->ufd, SHUT_RDWR);
    }
    while (l->nlive > 0)
        pthread_cond_wait(&px->cv, &px->mu);
    struct egress_conn *dead = TAKE_PTR(l->dead);
    pthread_mutex_unlock(&px->mu);
    join_all(dead);
    unlink(l->path);
    log_debug("egress %s: closed %s", l->key, l->path);
    listener_free(l);
}

void egress_listener_set_policy(struct egress_listener *l, const struct egress_policy *policy)
{
    pthread_mutex_lock(&l->px->mu);
    l->policy = policy;
    pthread_mutex_unlock(&l->px->mu);
}

/* proxy/egress.c -- the egress proxy's lifecycle: one Unix socket per sandbox, each with
 * its group of connection threads (pool.c: an accept thread, a thread per connection, the
 * caps) and a close that waits for all of them. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"

int egress_proxy_new(const struct egress_policy *p, struct egress_proxy **ret, struct jb_err *err)
{
    struct egress_proxy *px = calloc(1, sizeof *px);
    if (!px) return jb_err_set(err, JB_ENOMEM, "egress proxy: out of memory");
    px->policy = p;
    pthread_mutex_init(&px->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&px->ask_cv, &ca);
    pthread_condattr_destroy(&ca);
    px_pool_init(&px->pool, EGRESS_MAX_PER_PROXY);
    *ret = px;
    return 0;
}

void egress_proxy_set_metrics(struct egress_proxy *px, struct jb_metrics *m)
{
    px->metrics = m;
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
    px_pool_destroy(&px->pool);
    pthread_cond_destroy(&px->ask_cv);
    pthread_mutex_destroy(&px->mu);
    free(px);
}

/* Over a cap: answer 503 from the accept thread (a short reply into an empty socket
 * buffer cannot block); the accept loop closes fd. */
static void turn_away(int fd, enum px_refusal why, void *ud)
{
    struct egress_listener *l = ud;
    const char *what = why == PX_GROUP_FULL  ? "too many connections from this sandbox"
                       : why == PX_POOL_FULL ? "too many connections through the egress proxy"
                       : why == PX_CLOSING   ? "the sandbox's proxy is closing"
                                             : "out of memory or threads";
    log_warn("egress %s: refused a connection: %s", l->key, what);
    char junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ; /* unread bytes would turn our close into a reset that eats the reply */
    char body[128];
    snprintf(body, sizeof body, "janebot egress proxy: %s; try again later.\n", what);
    px_respond(fd, 503, body);
    shutdown(fd, SHUT_WR);
}

/* ---- listeners ------------------------------------------------------------------------- */

static void listener_free(struct egress_listener *l)
{
    if (!l) return;
    px_group_close(&l->group);
    if (l->fd >= 0) close(l->fd);
    free(l->path);
    free(l->key);
    jb_strv_free(&l->denied);
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
    if (px_group_init(&l->group, &l->px->pool, EGRESS_MAX_PER_LISTENER, err) < 0) return -1;
    if ((l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return jb_err_sys(err, "socket");
    if (bind_socket(l, owner_uid, err) < 0) return -1;
    char name[96];
    snprintf(name, sizeof name, "egress %s", thread_key);
    l->group.handoff = 1; /* the sandbox's 127.0.0.1:3128 comes over l->fd */
    if (px_group_listen(&l->group, l->fd, 0, name, egress_conn_serve, turn_away, l, err) < 0) {
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
    l->px = px, l->fd = -1;
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
    pthread_mutex_unlock(&px->mu);
    px_group_close(&l->group); /* every connection of l has ended */
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

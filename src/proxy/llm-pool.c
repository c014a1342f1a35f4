/* proxy/llm-pool.c -- the LLM proxy's connection threads, one request each, for both
 * listeners (a local session's Unix socket, llm.c; the public TCP one, llm-public.c): the
 * accept loop, a cap on live connections, and joining them. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "proxy/llm-int.h"

struct llm_conn {
    struct llm_pool *pl;
    int fd;
    pthread_t thr;
    int done; /* under pl->mu */
    struct llm_conn *next;
};

void llm_pool_init(struct llm_pool *pl, int max, void (*serve)(void *ud, int fd), void *ud)
{
    *pl = (struct llm_pool){.max = max, .serve = serve, .ud = ud};
    pthread_mutex_init(&pl->mu, NULL);
}

void llm_pool_destroy(struct llm_pool *pl)
{
    pthread_mutex_destroy(&pl->mu);
}

static void *conn_main(void *p)
{
    struct llm_conn *c = p;
    c->pl->serve(c->pl->ud, c->fd);
    shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_lock(&c->pl->mu);
    c->done = 1;
    c->pl->nlive--;
    pthread_mutex_unlock(&c->pl->mu);
    return NULL;
}

/* Serve fd in a new thread. -1 (fd left to the caller) past pl->max or without a thread. */
static int pool_start(struct llm_pool *pl, int fd)
{
    pthread_mutex_lock(&pl->mu);
    struct llm_conn *c = pl->nlive < pl->max ? calloc(1, sizeof *c) : NULL;
    if (c) {
        c->pl = pl, c->fd = fd;
        /* Started under the lock: the thread's last step takes it, so it cannot finish
         * before it is on the list. */
        if (pthread_create(&c->thr, NULL, conn_main, c) == 0) {
            c->next = pl->conns;
            pl->conns = c;
            pl->nlive++;
        } else {
            free(c);
            c = NULL;
        }
    }
    pthread_mutex_unlock(&pl->mu);
    return c ? 0 : -1;
}

void llm_pool_reap(struct llm_pool *pl, int all)
{
    pthread_mutex_lock(&pl->mu);
    for (struct llm_conn **pp = &pl->conns; *pp;) {
        struct llm_conn *c = *pp;
        if (all && !c->done) shutdown(c->fd, SHUT_RDWR); /* wakes a thread blocked on it */
        if (!all && !c->done) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        pthread_mutex_unlock(&pl->mu);
        pthread_join(c->thr, NULL);
        close(c->fd);
        free(c);
        pthread_mutex_lock(&pl->mu);
        pp = &pl->conns; /* the list may have changed while unlocked */
    }
    pthread_mutex_unlock(&pl->mu);
}

void llm_accept_loop(int lfd, int wake_fd, struct llm_pool *pl, int tcp)
{
    static const int one = 1;
    for (;;) {
        struct pollfd fds[2] = {{.fd = lfd, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        llm_pool_reap(pl, 0);
        if (!(fds[0].revents & POLLIN)) continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(NULL, 0, 100); /* out of descriptors or memory: back off, do not spin */
            continue;
        }
        /* Small writes (an SSE event, a reply head) go out at once, not after an ACK. */
        if (tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (pool_start(pl, fd) < 0) {
            llm_reply(fd, LLM_ANTHROPIC, 503, "overloaded_error",
                      tcp ? "the LLM proxy has too many connections"
                          : "too many requests from this sandbox at once");
            close(fd);
        }
    }
}

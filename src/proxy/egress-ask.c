/* proxy/egress-ask.c -- egress approval: a name off the allowlist, on a listener with an
 * approver, is held while a person is asked (through the approver the core sets). The
 * sandbox is hostile, so asking is bounded: one question per name at a time (other
 * connections to the same name wait on it and share a deny or an "allow for this thread";
 * an "allow once" lets only the connection that asked through, and the next waiter asks
 * anew), and at most EGRESS_MAX_ASKS names waiting per listener; past that a connection is
 * refused without asking. Every connection still holds only its own thread. */
#include <poll.h>
#include <string.h>
#include <time.h>

#include "proxy/proxy-int.h"

#define WAIT_SLICE_MS 250 /* how often a waiting connection looks whether its client left */

/* One question in flight: its asker and waiters hold references (under px->mu). */
struct egress_ask {
    char name[EGRESS_NAME_MAX + 1];
    unsigned port;
    int refs, decided;
    enum egress_verdict verdict;
    char why[200];
    struct egress_ask *next;
};

/* 1 once the client hung up or the listener shut the connection down (a close). */
static int client_gone(void *ud)
{
    struct egress_conn *c = ud;
    struct pollfd p = {.fd = c->cfd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void ask_unref(struct egress_ask *a)
{
    if (--a->refs == 0) free(a);
}

static struct egress_ask *ask_find(struct egress_listener *l, const char *name, unsigned port)
{
    for (struct egress_ask *a = l->asks; a; a = a->next)
        if (a->port == port && !strcmp(a->name, name)) return a;
    return NULL;
}

/* Wait (px->mu held) until a is decided or c's client leaves: 1 decided, 0 left. */
static int wait_for(struct egress_conn *c, struct egress_ask *a)
{
    struct egress_proxy *px = c->l->px;
    while (!a->decided) {
        if (client_gone(c)) return 0;
        int64_t until = jb_mono_ms() + WAIT_SLICE_MS;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
        pthread_cond_timedwait(&px->ask_cv, &px->mu, &ts);
    }
    return 1;
}

/* Ask the approver (px->mu held on entry and on return; released while it decides). */
static enum egress_verdict ask_now(struct egress_conn *c, const char *name, unsigned port,
                                   char *why, size_t n)
{
    struct egress_listener *l = c->l;
    struct egress_proxy *px = l->px;
    struct egress_ask *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(why, n, "out of memory while asking for approval");
        return EGRESS_DENIED;
    }
    snprintf(a->name, sizeof a->name, "%s", name);
    a->port = port, a->refs = 1, a->next = l->asks;
    l->asks = a, l->nasks++;
    egress_approve_fn *fn = l->approve;
    void *ud = l->approve_ud;
    pthread_mutex_unlock(&px->mu);
    struct egress_approve_q q = {
        .thread_key = l->key, .name = name, .port = port, .gone = client_gone, .gone_ud = c};
    char reason[sizeof a->why] = "";
    enum egress_verdict v = fn(ud, &q, reason, sizeof reason);
    pthread_mutex_lock(&px->mu);
    for (struct egress_ask **pp = &l->asks; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    l->nasks--;
    char key[EGRESS_NAME_MAX + 8];
    snprintf(key, sizeof key, "%s:%u", name, port);
    if (v == EGRESS_DENIED && !client_gone(c) && l->denied.n < EGRESS_MAX_DENIED)
        (void)jb_strv_push(&l->denied, key, NULL); /* out of memory: it is asked again */
    a->decided = 1, a->verdict = v;
    snprintf(a->why, sizeof a->why, "%s", reason);
    snprintf(why, n, "%s", reason);
    pthread_cond_broadcast(&px->ask_cv);
    ask_unref(a);
    return v;
}

static int denied_before(const struct egress_listener *l, const char *name, unsigned port)
{
    char key[EGRESS_NAME_MAX + 8];
    snprintf(key, sizeof key, "%s:%u", name, port);
    for (size_t i = 0; i < l->denied.n; i++)
        if (!strcmp(l->denied.v[i], key)) return 1;
    return 0;
}

enum egress_verdict egress_ask(struct egress_conn *c, const char *name, unsigned port, char *why,
                               size_t n)
{
    struct egress_listener *l = c->l;
    struct egress_proxy *px = l->px;
    enum egress_verdict v = EGRESS_NOT_ASKED;
    *why = '\0';
    pthread_mutex_lock(&px->mu);
    if (l->approve && denied_before(l, name, port)) {
        snprintf(why, n, "denied earlier in this run; not asked again");
        pthread_mutex_unlock(&px->mu);
        return EGRESS_DENIED;
    }
    while (l->approve) {
        struct egress_ask *a = ask_find(l, name, port);
        if (!a) {
            if (l->nasks >= EGRESS_MAX_ASKS) {
                snprintf(why, n,
                         "%d other names already wait for a person's answer in this thread; "
                         "refused without asking",
                         l->nasks);
                v = EGRESS_DENIED;
            } else {
                v = ask_now(c, name, port, why, n);
            }
            break;
        }
        a->refs++; /* the same name is being asked about: its answer is ours too */
        int decided = wait_for(c, a);
        v = a->verdict;
        snprintf(why, n, "%s", a->why);
        ask_unref(a);
        if (!decided) {
            snprintf(why, n, "the client left while waiting for approval");
            v = EGRESS_DENIED;
            break;
        }
        if (v != EGRESS_ALLOWED_ONCE) break; /* once was for the connection that asked */
    }
    pthread_mutex_unlock(&px->mu);
    return v;
}

void egress_listener_set_approver(struct egress_listener *l, egress_approve_fn *fn, void *ud)
{
    pthread_mutex_lock(&l->px->mu);
    l->approve = fn, l->approve_ud = ud;
    pthread_mutex_unlock(&l->px->mu);
}

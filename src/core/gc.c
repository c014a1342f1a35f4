/* core/gc.c -- removing idle sandboxes (JANEBOT_SANDBOX_IDLE_DAYS): `janebot sandbox gc`,
 * and while serving a thread of the core that runs at start and then daily, on the core's
 * own sandbox context and store. The core's gc asks the core before each removal: a
 * sandbox whose thread has a turn running or a message waiting (queued, debounced, or
 * left pending by a stop) is kept, so the turn finds its files. */
#include <string.h>
#include <time.h>

#include "core/core-int.h"
#include "store/store.h"

#define GC_PERIOD_S   86400
#define GC_WAIT_MIN_S 86400

int core_thread_forget(struct core_services *cs, const char *thread_key, struct jb_err *err)
{
    store_token_revoke(cs->st, NULL, thread_key, NULL);
    struct jb_err e = {0};
    if (store_allow_forget(cs->st, thread_key, &e) < 0) log_warn("%s", e.msg);
    return store_session_delete(cs->st, thread_key, err);
}

int core_gc_run(struct core_services *cs, const struct sandbox_ctx *ctx, int64_t idle_s,
                int (*keep)(void *ud, const char *thread_key), void *keep_ud, struct jb_err *err)
{
    struct jb_strv removed = JB_STRV_INIT;
    int n = ctx ? sandbox_gc(ctx, idle_s, keep, keep_ud, &removed, err) : 0;
    pthread_mutex_lock(cs->st_mu);
    for (size_t i = 0; i < removed.n; i++) {
        struct jb_err e = {0};
        if (core_thread_forget(cs, removed.v[i], &e) < 0 && e.code != JB_ENOTFOUND)
            log_warn("gc: session of %s: %s", removed.v[i], e.msg);
        else
            log_info("gc: removed the sandbox of %s", removed.v[i]);
    }
    store_retention_run(cs->st, jb_now_ms(), cs->cfg->retention_days, NULL, NULL);
    pthread_mutex_unlock(cs->st_mu);
    jb_strv_free(&removed);
    return n;
}

int core_inbox_waits(struct core_services *cs, const char *thread_key, int64_t idle_s)
{
    /* A message older than both the idle limit and a day was abandoned (a chat thread that
     * crashed and was never opened again): it does not keep the sandbox forever. */
    int64_t since_ms = jb_now_ms() - (idle_s > GC_WAIT_MIN_S ? idle_s : GC_WAIT_MIN_S) * 1000;
    struct inbox_msg *v = NULL;
    size_t n = 0;
    struct jb_err e = {0};
    pthread_mutex_lock(cs->st_mu);
    int rc = store_inbox_pending(cs->st, thread_key, &v, &n, &e); /* a prefix: */
    pthread_mutex_unlock(cs->st_mu);
    if (rc < 0) {
        log_warn("gc: cannot tell whether %s has messages waiting (%s): its sandbox is kept",
                 thread_key, e.msg);
        return 1;
    }
    int waits = 0;
    for (size_t i = 0; i < n && !waits; i++)
        waits = !strcmp(v[i].thread_key, thread_key) && v[i].received_at >= since_ms;
    inbox_msgs_free(v, n);
    return waits;
}

struct keep {
    struct core *c; /* serving: its running turns too; NULL for a one-off */
    struct core_services *cs;
    int64_t idle_s;
};

static int keep_busy(void *ud, const char *thread_key)
{
    struct keep *k = ud;
    return (k->c && core_thread_running(k->c, thread_key)) ||
           core_inbox_waits(k->cs, thread_key, k->idle_s);
}

/* A one-off `sandbox gc`: turns of another process (serve, chat) hold their sandbox's
 * lock; their waiting messages are in the shared inbox. */
int core_sandbox_gc_oneoff(struct core_services *cs, const struct sandbox_ctx *ctx, int64_t idle_s,
                           struct jb_err *err)
{
    struct keep k = {.cs = cs, .idle_s = idle_s};
    return core_gc_run(cs, ctx, idle_s, keep_busy, &k, err);
}

/* Wait up to s seconds; 1 when the core is stopping. */
static int gc_wait(struct core_gc *g, int s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += s;
    pthread_mutex_lock(&g->mu);
    while (!g->stop && pthread_cond_timedwait(&g->cv, &g->mu, &ts) == 0) {
    }
    int stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    return stop;
}

static void *gc_main(void *arg)
{
    struct core *c = arg;
    int days = c->cfg->sandbox_idle_days;
    do {
        struct jb_err err = {0};
        struct keep k = {.c = c, .cs = &c->svc, .idle_s = (int64_t)days * 86400};
        /* JANEBOT_SANDBOX_IDLE_DAYS=0 keeps sandboxes forever; history still goes. */
        int n = core_gc_run(&c->svc, days > 0 ? &c->sbx : NULL, k.idle_s, keep_busy, &k, &err);
        if (n < 0)
            log_warn("gc: %s", err.msg);
        else if (n > 0)
            log_info("gc: removed %d sandbox(es) idle for more than %d days", n, days);
    } while (!gc_wait(&c->gc, GC_PERIOD_S));
    return NULL;
}

int core_gc_start(struct core *c, struct jb_err *err)
{
    struct core_gc *g = &c->gc;
    jb_cond_init_monotonic(&g->cv);
    pthread_mutex_init(&g->mu, NULL);
    if (pthread_create(&g->thr, NULL, gc_main, c) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        return jb_err_set(err, JB_ESYS, "cannot start the sandbox gc's thread");
    }
    g->started = 1;
    return 0;
}

void core_gc_stop(struct core *c)
{
    struct core_gc *g = &c->gc;
    if (!g->started) return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thr, NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    g->started = 0;
}

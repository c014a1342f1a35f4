/* core/gc.c -- removing idle sandboxes (JANEBOT_SANDBOX_IDLE_DAYS): `janebot sandbox gc`,
 * and while serving a thread of the core that runs at start and then daily, on the core's
 * own sandbox context and store. The core's gc asks the core before each removal: a
 * sandbox whose thread has a turn running or a message waiting (queued, debounced, or
 * left pending by a stop) is kept, so the turn finds its files. */
#include <time.h>

#include "core/core-int.h"
#include "store/store.h"

#define GC_PERIOD_S 86400

/* Per-request LLM usage is kept for a month, then only per day (store_llm_requests_fold). */
static void fold_llm_usage(struct store *st)
{
    char day[11];
    time_t t = time(NULL) - 31 * 86400;
    struct tm tm;
    struct jb_err e = {0};
    strftime(day, sizeof day, "%Y-%m-%d", gmtime_r(&t, &tm));
    if (store_llm_requests_fold(st, day, &e) < 0) log_warn("gc: %s", e.msg);
}

int core_gc_run(struct core_services *cs, const struct sandbox_ctx *ctx, int64_t idle_s,
                int (*keep)(void *ud, const char *thread_key), void *keep_ud, struct jb_err *err)
{
    struct jb_strv removed = JB_STRV_INIT;
    int n = sandbox_gc(ctx, idle_s, keep, keep_ud, &removed, err);
    pthread_mutex_lock(cs->st_mu);
    for (size_t i = 0; i < removed.n; i++) {
        struct jb_err e = {0};
        store_token_revoke(cs->st, NULL, removed.v[i], NULL);
        if (store_session_delete(cs->st, removed.v[i], &e) < 0 && e.code != JB_ENOTFOUND)
            log_warn("gc: session of %s: %s", removed.v[i], e.msg);
        else
            log_info("gc: removed the sandbox of %s", removed.v[i]);
    }
    fold_llm_usage(cs->st);
    pthread_mutex_unlock(cs->st_mu);
    jb_strv_free(&removed);
    return n;
}

static int keep_busy(void *ud, const char *thread_key)
{
    return core_thread_busy(ud, thread_key);
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
        int n = core_gc_run(&c->svc, &c->sbx, (int64_t)days * 86400, keep_busy, c, &err);
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
    if (c->cfg->sandbox_idle_days <= 0) return 0; /* 0: never */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
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

/* sandbox/sprites-pool.c -- the warm pool (JANEBOT_SPRITES_POOL=N): a thread of the
 * long-running process keeps N sprites ("jane-pool-<12 hex>") made, set up and
 * checkpointed ahead of need, recorded in the store's sandbox_pool once ready. A thread's
 * first turn claims one (store_pool_claim, one transaction) and kicks a refill. On start
 * it drops pool sprites made by another set-up and strays a crash left half-made.
 * Builds on a sprite by name (sprites-sprite.c, sprites-setup.c) and the store's pool
 * through the core's services; the backend (sprites.c) calls it, never the other way. */
#include <string.h>
#include <time.h>

#include "sandbox/sprites-int.h"

#define IDLE_WAIT_MS   60000L
#define BACKOFF_MIN_MS 5000L
#define BACKOFF_MAX_MS 300000L
#define STRAY_AGE_S    3600 /* a pool sprite the store never heard of, this old, is a stray */

struct sprites_pool {
    struct sprites *sp;
    int want;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stop, kicked;
};

static int pool_names(struct sprites *sp, const char *stale_for, struct jb_strv *v,
                      struct jb_err *err)
{
    return sp->svc->pool_names(sp->svc->ud, stale_for, v, err);
}

static void drop(struct sprites *sp, const char *name, const char *why)
{
    struct jb_err e = {0};
    log_info("sprites: pool: deleting %s (%s)", name, why);
    if (sprites_delete(sp, name, &e) < 0) log_warn("sprites: pool: %s", e.msg);
    sp->svc->pool_remove(sp->svc->ud, name, NULL);
}

struct stray_scan {
    struct sprites *sp;
    struct jb_strv pooled; /* the store's pool, read once per sweep */
};

static int stray_check(void *ud, json_t *e, struct jb_err *err)
{
    (void)err;
    struct stray_scan *sc = ud;
    struct sprites *sp = sc->sp;
    const char *name = json_string_value(json_object_get(e, "name"));
    int64_t made = sprites_parse_time(json_string_value(json_object_get(e, "created_at")));
    if (!made) made = sprites_parse_time(json_string_value(json_object_get(e, "updated_at")));
    if (!made || jb_now_ms() / 1000 - made < STRAY_AGE_S) return 0; /* maybe being made */
    for (size_t i = 0; i < sc->pooled.n; i++)
        if (!strcmp(sc->pooled.v[i], name)) return 0;
    struct sandbox_sprite_row row = {0};
    int claimed = sp->svc->name_get(sp->svc->ud, name, 1, &row, NULL) == 0;
    if (claimed)
        sandbox_sprite_row_release(&row);
    else
        drop(sp, name, "a stray: never made ready");
    return 0;
}

static void sweep(struct sprites *sp)
{
    struct jb_strv stale = JB_STRV_INIT;
    struct jb_err e = {0};
    if (pool_names(sp, sp->setup_hash, &stale, &e) == 0)
        for (size_t i = 0; i < stale.n; i++)
            drop(sp, stale.v[i], "made by another set-up");
    jb_strv_free(&stale);
    struct stray_scan sc = {.sp = sp, .pooled = JB_STRV_INIT};
    if (pool_names(sp, NULL, &sc.pooled, &e) < 0 ||
        sprites_list_each(sp, SPRITES_POOL_PREFIX, stray_check, &sc, &e) < 0)
        log_warn("sprites: pool: %s", e.msg);
    jb_strv_free(&sc.pooled);
}

static int fill_one(struct sprites *sp, struct jb_err *err)
{
    unsigned char raw[6];
    char name[SANDBOX_NAME_LEN], golden[SPRITES_CKPT_ID_MAX];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    snprintf(name, sizeof name, SPRITES_POOL_PREFIX "%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
             raw[2], raw[3], raw[4], raw[5]);
    int64_t t0 = jb_mono_ms();
    if (sprites_prepare(sp, name, golden, err) < 0) {
        struct jb_err ignored = {0};
        sprites_delete(sp, name, &ignored); /* best effort: the sweep gets it otherwise */
        return -1;
    }
    int rc = sp->svc->pool_add(sp->svc->ud, name, golden, sp->setup_hash, err);
    if (rc == 0)
        log_info("sprites: pool: %s ready in %lld ms", name, (long long)(jb_mono_ms() - t0));
    return rc;
}

/* Sleep up to ms, or until kicked or stopped. Returns 1 when stopping. */
static int pool_wait(struct sprites_pool *p, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && !p->kicked)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0) break;
    p->kicked = 0;
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void *pool_main(void *arg)
{
    struct sprites_pool *p = arg;
    struct sprites *sp = p->sp;
    struct jb_retry backoff = {.base_ms = BACKOFF_MIN_MS, .cap_ms = BACKOFF_MAX_MS};
    sweep(sp);
    for (;;) {
        struct jb_strv have = JB_STRV_INIT;
        struct jb_err e = {0};
        int rc = pool_names(sp, NULL, &have, &e);
        size_t n = have.n;
        jb_strv_free(&have);
        long wait = IDLE_WAIT_MS;
        if (rc == 0 && (int)n < p->want) {
            if (fill_one(sp, &e) == 0) {
                jb_retry_reset(&backoff);
                wait = 0;
            } else { /* a rate limit or an outage: do not hammer the API */
                wait = jb_retry_next(&backoff, 0);
            }
        }
        if (rc < 0 || e.msg[0]) log_warn("sprites: pool: %s", e.msg);
        if (pool_wait(p, wait)) break;
    }
    return NULL;
}

int sprites_pool_start(struct sprites *sp, int n, struct jb_err *err)
{
    struct sprites_pool *p = calloc(1, sizeof *p);
    if (!p) return jb_err_set(err, JB_ENOMEM, "pool");
    p->sp = sp, p->want = n;
    jb_cond_init_monotonic(&p->cv);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thr, NULL, pool_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return jb_err_set(err, JB_ESYS, "cannot start the pool's thread");
    }
    sp->pool = p;
    log_info("sprites: keeping %d warm sprite%s (JANEBOT_SPRITES_POOL)", n, n == 1 ? "" : "s");
    return 0;
}

void sprites_pool_kick(struct sprites *sp)
{
    struct sprites_pool *p = sp->pool;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->kicked = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void sprites_pool_stop(struct sprites *sp)
{
    struct sprites_pool *p = sp ? sp->pool : NULL;
    if (!p) return;
    atomic_store(&sp->stopping, 1); /* a set-up in progress ends now */
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thr, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    sp->pool = NULL;
}

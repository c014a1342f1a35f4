/* tests/tsan/stress.c -- the shared-state code of janebot under many threads, for the
 * ThreadSanitizer build (`make tsan`). Criterion's runner cannot start under TSan (its
 * inheritable arena cannot be mapped beside TSan's shadow memory), so this program drives
 * the same modules the concurrency unit tests drive, harder, and checks their results:
 *   lanes: 8 producers x 400 messages over 40 threads, 4 workers, merging + debounce;
 *          every message runs exactly once, in order within its thread, one turn per
 *          thread at a time;
 *   store: 8 threads, each with its own connection, claim 4 pool sprites: no sprite is
 *          claimed twice, and all 4 are claimed;
 *   lanes hold: a stop while producers enqueue: no turn starts once the running ones end;
 *   log:   8 threads log lines (text, then JSON, with a turn's context) that hold
 *          registered secrets while others register more.
 * Exit 0 when every check held; TSan itself fails the run on a data race
 * (TSAN_OPTIONS=halt_on_error=1). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"
#include "util/util.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "tsan stress: FAILED: " __VA_ARGS__);                                  \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- lanes -------------------------------------------------------------------------- */

#define PRODUCERS    8
#define PER_PRODUCER 400
#define LANES        40

struct lane_check {
    pthread_mutex_t mu;
    int running[LANES];
    int overlap;
    int next[LANES][PRODUCERS]; /* next sequence number expected per producer and lane */
    int disorder, seen;
};

static void lane_run(void *ud, int worker, const struct lane_msg *msgs, size_t n)
{
    (void)worker;
    struct lane_check *c = ud;
    int lane = atoi(msgs[0].thread_key + 1);
    pthread_mutex_lock(&c->mu);
    if (c->running[lane]++) c->overlap++;
    for (size_t i = 0; i < n; i++) {
        int p = 0, seq = 0;
        if (sscanf(msgs[i].text, "%d:%d", &p, &seq) != 2 || p < 0 || p >= PRODUCERS) {
            c->disorder++;
            continue;
        }
        if (seq != c->next[lane][p]) c->disorder++;
        c->next[lane][p] = seq + 1;
        c->seen++;
    }
    pthread_mutex_unlock(&c->mu);
    usleep(200);
    pthread_mutex_lock(&c->mu);
    c->running[lane]--;
    pthread_mutex_unlock(&c->mu);
}

struct producer {
    struct lanes *l;
    int id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    int seq[LANES] = {0};
    for (int i = 0; i < PER_PRODUCER; i++) {
        int lane = (i * 7 + p->id) % LANES;
        char key[16], text[32];
        snprintf(key, sizeof key, "t%d", lane);
        snprintf(text, sizeof text, "%d:%d", p->id, seq[lane]++);
        struct jb_err err = {0};
        CHECK(lanes_enqueue(p->l, 0, key, "U1", text, NULL, NULL, &err) == 0, "enqueue: %s",
              err.msg);
        if (i % 50 == 0) (void)lanes_pending(p->l);
    }
    return NULL;
}

static void stress_lanes(void)
{
    struct lane_check c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes_opts o = {.workers = 4, .merge = 1, .debounce_ms = 2, .max_per_user = 3};
    struct lanes *l = NULL;
    struct jb_err err = {0};
    CHECK(lanes_new(&o, lane_run, &c, &l, &err) == 0, "lanes_new: %s", err.msg);
    if (!l) return;
    pthread_t t[PRODUCERS];
    struct producer p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){l, i};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    lanes_set_max_per_user(l, 2);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    lanes_drain(l);
    lanes_free(l);
    CHECK(c.seen == PRODUCERS * PER_PRODUCER, "lanes ran %d of %d messages", c.seen,
          PRODUCERS * PER_PRODUCER);
    CHECK(c.overlap == 0, "two turns of one thread ran at once %d times", c.overlap);
    CHECK(c.disorder == 0, "%d messages ran out of order", c.disorder);
}

/* A stop while producers still enqueue: the hold lets running turns end, starts none after
 * they did, and lanes_free() joins the workers with messages left in the lanes. */
static void stress_lanes_hold(void)
{
    struct lane_check c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes_opts o = {.workers = 4, .merge = 1};
    struct lanes *l = NULL;
    struct jb_err err = {0};
    CHECK(lanes_new(&o, lane_run, &c, &l, &err) == 0, "lanes_new: %s", err.msg);
    if (!l) return;
    pthread_t t[PRODUCERS];
    struct producer p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){l, i};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    usleep(2000);
    (void)lanes_hold(l);
    for (int i = 0; i < 2000 && lanes_running(l) > 0; i++)
        usleep(1000);
    CHECK(lanes_running(l) == 0, "turns still running after a hold");
    pthread_mutex_lock(&c.mu);
    int seen = c.seen;
    pthread_mutex_unlock(&c.mu);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    usleep(20000);
    pthread_mutex_lock(&c.mu);
    CHECK(c.seen == seen, "%d messages ran after the hold", c.seen - seen);
    pthread_mutex_unlock(&c.mu);
    lanes_free(l);
    CHECK(c.overlap == 0 && c.disorder == 0, "overlap %d, disorder %d", c.overlap, c.disorder);
}

/* ---- the store: pool claims ------------------------------------------------------------ */

struct claimer {
    const char *db;
    int got;
    char name[64];
};

static void *claim_main(void *arg)
{
    struct claimer *c = arg;
    struct store *st = NULL;
    struct sandbox_name_row r;
    char key[32];
    snprintf(key, sizeof key, "chat:%p", arg);
    if (store_open(c->db, &st, NULL) == 0 && store_pool_claim(st, key, "h", &r, NULL) == 0) {
        c->got = 1;
        snprintf(c->name, sizeof c->name, "%s", r.name);
        sandbox_name_row_release(&r);
    }
    store_close(st);
    return NULL;
}

static void stress_store(const char *dir)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/stress.db", dir);
    struct store *st = NULL;
    struct jb_err err = {0};
    CHECK(store_open(db, &st, &err) == 0, "store_open: %s", err.msg);
    for (int i = 0; st && i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "jane-pool-00000000000%d", i);
        CHECK(store_pool_add(st, name, "v1", "h", &err) == 0, "pool_add: %s", err.msg);
    }
    store_close(st);
    struct claimer c[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (struct claimer){.db = db};
        pthread_create(&t[i], NULL, claim_main, &c[i]);
    }
    int got = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        got += c[i].got;
        for (int j = 0; j < i; j++)
            CHECK(!c[i].got || !c[j].got || strcmp(c[i].name, c[j].name) != 0, "%s claimed twice",
                  c[i].name);
    }
    CHECK(got == 4, "%d of 4 pool sprites claimed", got);
}

/* ---- the logger ------------------------------------------------------------------------- */

static void *log_main(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 200; i++) {
        char secret[64];
        snprintf(secret, sizeof secret, "xoxb-stress-%ld-%d-abcdefghijklmnop", id, i % 10);
        if (i % 20 == 0) jb_log_add_secret(secret);
        if (i % 2) {
            jb_log_ctx_set(secret, "U1");
            jb_log_ctx_turn(i);
            jb_log_event(JB_LOG_INFO, "turn.end", i, "stress %ld: %s", id, secret);
            jb_log_ctx_clear();
        } else {
            log_info("stress %ld: %s", id, secret);
        }
        if (id == 0 && i == 100) jb_log_set_format(JB_LOG_JSON); /* the format, mid-run */
    }
    return NULL;
}

static void stress_log(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    FILE *f = fopen(path, "w+");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    jb_log_init(JB_LOG_INFO, f);
    pthread_t t[8];
    for (long i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, log_main, (void *)i);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    fflush(f);
    jb_log_init(JB_LOG_INFO, stderr);
    jb_log_set_format(JB_LOG_TEXT);
    rewind(f);
    char line[1024];
    int lines = 0, leaks = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, "abcdefghijklmnop")) leaks++;
    }
    fclose(f);
    CHECK(lines == 8 * 200, "%d of %d log lines written whole", lines, 8 * 200);
    CHECK(leaks == 0, "%d log lines show a secret", leaks);
}

int main(void)
{
    char dir[] = "/tmp/janebot-tsan-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    stress_lanes();
    stress_lanes_hold();
    stress_store(dir);
    stress_log(dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "tsan stress: could not remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "tsan stress: %d check(s) failed\n", failures);
        return 1;
    }
    printf("tsan stress: lanes, store and log checks passed\n");
    return 0;
}

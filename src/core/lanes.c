/* core/lanes.c -- one lane per thread key, run by a fixed pool of worker threads.
 *
 *   lane states:  QUEUED (on the ready list) --worker--> RUNNING --done--> QUEUED if more
 *                 messages wait, else the lane is freed.
 * (L1) A lane is on the ready list or RUNNING, never both: so one turn per thread.
 * (L2) Messages are appended and taken from the head: arrival order, none dropped.
 * (L3) A finished lane goes to the tail of the ready list, so a busy thread cannot
 *      starve the others. All state is guarded by one mutex; turns run outside it. */
#include <pthread.h>
#include <string.h>

#include "core/core.h"

#define LANE_BUCKETS 256

struct msg_node {
    struct lane_msg m;
    struct msg_node *next;
};

struct lane {
    char *key;
    struct msg_node *head, *tail;
    int running, ready;
    struct lane *next_ready, *next_bucket;
};

struct lanes {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct lane *buckets[LANE_BUCKETS];
    struct lane *ready_head, *ready_tail;
    size_t pending;
    int stopping;
    lane_run_fn run;
    void *ud;
    int nworkers;
    pthread_t *workers;
};

static unsigned bucket_of(const char *key)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % LANE_BUCKETS;
}

static void msg_free(struct msg_node *n)
{
    if (!n) return;
    free(n->m.thread_key);
    free(n->m.user_id);
    free(n->m.text);
    free(n);
}

static void ready_push(struct lanes *l, struct lane *ln)
{
    ln->ready = 1;
    ln->next_ready = NULL;
    if (l->ready_tail)
        l->ready_tail->next_ready = ln;
    else
        l->ready_head = ln;
    l->ready_tail = ln;
    pthread_cond_signal(&l->work);
}

static struct lane *ready_pop(struct lanes *l)
{
    struct lane *ln = l->ready_head;
    if (!ln) return NULL;
    l->ready_head = ln->next_ready;
    if (!l->ready_head) l->ready_tail = NULL;
    ln->ready = 0;
    return ln;
}

static void lane_unlink_free(struct lanes *l, struct lane *ln)
{
    struct lane **pp = &l->buckets[bucket_of(ln->key)];
    while (*pp != ln)
        pp = &(*pp)->next_bucket;
    *pp = ln->next_bucket;
    free(ln->key);
    free(ln);
}

struct worker_arg {
    struct lanes *l;
    int index;
};

static void *worker_main(void *p)
{
    struct worker_arg wa = *(struct worker_arg *)p;
    free(p);
    struct lanes *l = wa.l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct lane *ln;
        while (!(ln = ready_pop(l)) && !l->stopping)
            pthread_cond_wait(&l->work, &l->mu);
        if (!ln) break;
        struct msg_node *n = ln->head;
        ln->head = n->next;
        if (!ln->head) ln->tail = NULL;
        ln->running = 1;
        pthread_mutex_unlock(&l->mu);

        l->run(l->ud, wa.index, &n->m);
        msg_free(n);

        pthread_mutex_lock(&l->mu);
        ln->running = 0;
        l->pending--;
        if (ln->head)
            ready_push(l, ln);
        else
            lane_unlink_free(l, ln);
        if (l->pending == 0) pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int lanes_new(int workers, lane_run_fn run, void *ud, struct lanes **ret, struct jb_err *err)
{
    struct lanes *l = calloc(1, sizeof *l);
    if (!l || !(l->workers = calloc((size_t)workers, sizeof *l->workers))) {
        free(l);
        return jb_err_set(err, JB_ENOMEM, "lanes");
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->idle, NULL);
    l->run = run;
    l->ud = ud;
    for (int i = 0; i < workers; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? (*wa = (struct worker_arg){l, i},
                       pthread_create(&l->workers[i], NULL, worker_main, wa))
                    : -1;
        if (rc != 0) {
            free(wa);
            lanes_free(l);
            return jb_err_set(err, JB_ESYS, "cannot start worker thread %d", i);
        }
        l->nworkers++;
    }
    *ret = l;
    return 0;
}

static struct lane *lane_get(struct lanes *l, const char *key)
{
    unsigned b = bucket_of(key);
    for (struct lane *ln = l->buckets[b]; ln; ln = ln->next_bucket)
        if (!strcmp(ln->key, key)) return ln;
    struct lane *ln = calloc(1, sizeof *ln);
    if (!ln || !(ln->key = strdup(key))) {
        free(ln);
        return NULL;
    }
    ln->next_bucket = l->buckets[b];
    l->buckets[b] = ln;
    return ln;
}

int lanes_enqueue(struct lanes *l, int64_t inbox_id, const char *thread_key, const char *user,
                  const char *text, struct jb_err *err)
{
    struct msg_node *n = calloc(1, sizeof *n);
    if (!n) return jb_err_set(err, JB_ENOMEM, "message");
    n->m.inbox_id = inbox_id;
    n->m.thread_key = strdup(thread_key);
    n->m.user_id = strdup(user);
    n->m.text = strdup(text);
    if (!n->m.thread_key || !n->m.user_id || !n->m.text) {
        msg_free(n);
        return jb_err_set(err, JB_ENOMEM, "message");
    }
    pthread_mutex_lock(&l->mu);
    struct lane *ln = lane_get(l, thread_key);
    if (!ln) {
        pthread_mutex_unlock(&l->mu);
        msg_free(n);
        return jb_err_set(err, JB_ENOMEM, "lane");
    }
    if (ln->tail)
        ln->tail->next = n;
    else
        ln->head = n;
    ln->tail = n;
    l->pending++;
    if (!ln->running && !ln->ready) ready_push(l, ln);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void lanes_drain(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->pending)
        pthread_cond_wait(&l->idle, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

size_t lanes_pending(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->pending;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void lanes_free(struct lanes *l)
{
    if (!l) return;
    lanes_drain(l);
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nworkers; i++)
        pthread_join(l->workers[i], NULL);
    free(l->workers);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->idle);
    free(l);
}

/* core/lanes.c -- one lane per thread key, run by a fixed pool of worker threads.
 *
 *   IDLE --msg--> WAITING (on the ready list, due at ready_at) --worker--> RUNNING
 *   RUNNING --done--> WAITING (due now) if messages arrived meanwhile, else the lane is
 *   freed. A message to a WAITING lane restarts its debounce (ready_at = now + debounce).
 * (L1) A lane is on the ready list or RUNNING, never both: one turn per thread.
 * (L2) Messages are appended and taken from the head: arrival order, none dropped.
 * (L3) A finished lane goes to the tail of the ready list, so a busy thread cannot
 *      starve the others. All state is guarded by one mutex; turns run outside it.
 * (L5) Per-user cap (opts.max_per_user > 0): a due lane whose turn's user (its next
 *      batch's last message) already runs max_per_user turns is passed over and stays
 *      where it is on the ready list; the end of any turn wakes the workers to look
 *      again. So extra messages wait in their lanes, in order, and are never dropped;
 *      users[] counts the running turns per user (entries with n > 0 only).
 * (L6) Once held (lanes_hold(), a stop), no turn starts: messages stay in their lanes
 *      (and in the inbox) while the running turns end; running counts those. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define LANE_BUCKETS 256

/* A queued message in one small block: its user, then one byte whose bit i says that the
 * i-th of text, ref and files follows, then those. The core queues an id and a user only (a
 * backlog of 10,000 waiting threads is then a lane and one 32-byte block each); the
 * lane_msg a turn gets is made from it (msg_view), its thread_key the lane's own key. */
struct msg_node {
    struct msg_node *next;
    int64_t inbox_id;
    char str[]; /* user '\0' mask [text '\0'] [ref '\0'] [files '\0'] */
};

struct lane {
    struct msg_node *head, *tail;
    int64_t ready_at; /* jb_mono_ms() when a WAITING lane may start */
    struct lane *next_ready, *next_bucket;
    uint32_t count;
    uint8_t running, ready;
    char key[]; /* the thread key, in the lane's own allocation */
};

struct user_count {
    char *user;
    int n; /* turns of this user running now */
    struct user_count *next;
};

struct lanes {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct lane *buckets[LANE_BUCKETS];
    struct lane *ready_head, *ready_tail;
    size_t pending;
    int stopping;
    int held;    /* (L6) */
    int running; /* turns running now */
    struct lanes_opts opts;
    struct user_count *users; /* (L5) */
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

void lane_msg_release(struct lane_msg *m)
{
    free(m->thread_key), free(m->user_id), free(m->text), free(m->ref), free(m->files);
    *m = (struct lane_msg){0};
}

int lane_msg_init(struct lane_msg *m, int64_t inbox_id, const char *thread_key, const char *user,
                  const char *text, const char *ref, const char *files)
{
    *m = (struct lane_msg){.inbox_id = inbox_id,
                           .thread_key = strdup(thread_key),
                           .user_id = strdup(user),
                           .text = strdup(text),
                           .ref = ref ? strdup(ref) : NULL,
                           .files = files ? strdup(files) : NULL};
    if (m->thread_key && m->user_id && m->text && (!ref || m->ref) && (!files || m->files))
        return 0;
    lane_msg_release(m);
    return -1;
}

static void msg_free(struct msg_node *n)
{
    free(n); /* its strings are part of it */
}

static void ready_push(struct lanes *l, struct lane *ln, int64_t at)
{
    ln->ready = 1;
    ln->ready_at = at;
    ln->next_ready = NULL;
    if (l->ready_tail)
        l->ready_tail->next_ready = ln;
    else
        l->ready_head = ln;
    l->ready_tail = ln;
    pthread_cond_broadcast(&l->work);
}

/* The user a lane's next turn runs for: its last message's with merging, else its
 * first's (take_batch takes those). */
static const char *batch_user(const struct lanes *l, const struct lane *ln)
{
    return (l->opts.merge ? ln->tail : ln->head)->str;
}

static struct user_count *user_find(struct lanes *l, const char *user)
{
    for (struct user_count *u = l->users; u; u = u->next)
        if (!strcmp(u->user, user)) return u;
    return NULL;
}

/* (L5): 1 when the lane's next turn must wait for one of its user's turns to end. */
static int user_blocked(struct lanes *l, const struct lane *ln)
{
    if (l->opts.max_per_user <= 0) return 0;
    const struct user_count *u = user_find(l, batch_user(l, ln));
    return u && u->n >= l->opts.max_per_user;
}

/* Count a turn of user as running; NULL when out of memory (the turn then goes uncounted). */
static struct user_count *user_inc(struct lanes *l, const char *user)
{
    struct user_count *u = user_find(l, user);
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u || !(u->user = strdup(user))) {
            free(u);
            log_warn("lanes: out of memory counting the turns of %s", user);
            return NULL;
        }
        u->next = l->users;
        l->users = u;
    }
    u->n++;
    return u;
}

static void user_dec(struct lanes *l, struct user_count *u)
{
    if (!u || --u->n > 0) return;
    for (struct user_count **pp = &l->users; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    free(u->user);
    free(u);
}

/* The first lane that is due and not held back by (L5), unlinked; else NULL and *wake_at
 * the earliest due time (0: none; held-back lanes wait for a turn to end). */
static struct lane *ready_take(struct lanes *l, int64_t now, int64_t *wake_at)
{
    struct lane *prev = NULL;
    *wake_at = 0;
    if (l->held) return NULL; /* (L6) */
    for (struct lane *ln = l->ready_head; ln; prev = ln, ln = ln->next_ready) {
        if (ln->ready_at > now) {
            if (!*wake_at || ln->ready_at < *wake_at) *wake_at = ln->ready_at;
            continue;
        }
        if (user_blocked(l, ln)) continue;
        if (prev)
            prev->next_ready = ln->next_ready;
        else
            l->ready_head = ln->next_ready;
        if (l->ready_tail == ln) l->ready_tail = prev;
        ln->ready = 0;
        return ln;
    }
    return NULL;
}

static void lane_unlink_free(struct lanes *l, struct lane *ln)
{
    struct lane **pp = &l->buckets[bucket_of(ln->key)];
    while (*pp != ln)
        pp = &(*pp)->next_bucket;
    *pp = ln->next_bucket;
    free(ln);
}

/* Due times are jb_mono_ms(); `work` waits on CLOCK_MONOTONIC (lanes_new), so a step of
 * the wall clock neither stalls nor hurries a debounced lane. */
static void wait_until(struct lanes *l, int64_t wake_at)
{
    if (!wake_at) {
        pthread_cond_wait(&l->work, &l->mu);
        return;
    }
    if (wake_at <= jb_mono_ms()) return;
    struct timespec ts = {.tv_sec = wake_at / 1000, .tv_nsec = (wake_at % 1000) * 1000000};
    pthread_cond_timedwait(&l->work, &l->mu, &ts);
}

/* Take the messages of one turn off the lane (all of them when merging). */
static struct msg_node *take_batch(struct lanes *l, struct lane *ln, size_t *n)
{
    struct msg_node *batch = ln->head;
    if (l->opts.merge) {
        *n = ln->count;
        ln->head = ln->tail = NULL;
    } else {
        *n = 1;
        ln->head = batch->next;
        if (!ln->head) ln->tail = NULL;
        batch->next = NULL;
    }
    ln->count -= *n;
    return batch;
}

/* The message as a turn sees it; its strings are the node's and the lane's. */
static struct lane_msg msg_view(const struct msg_node *n, const char *key)
{
    struct lane_msg m = {
        .inbox_id = n->inbox_id, .thread_key = (char *)key, .user_id = (char *)n->str};
    const char *at = n->str + strlen(n->str) + 1;
    unsigned char mask = (unsigned char)*at++;
    char **field[] = {&m.text, &m.ref, &m.files};
    for (int i = 0; i < 3; i++)
        if (mask & (1u << i)) {
            *field[i] = (char *)at;
            at += strlen(at) + 1;
        }
    return m;
}

static void run_batch(struct lanes *l, int worker, const struct lane *ln, struct msg_node *batch,
                      size_t n)
{
    struct lane_msg stackv[8] = {0};
    struct lane_msg *v = n <= 8 ? stackv : calloc(n, sizeof *v);
    size_t i = 0;
    for (struct msg_node *p = batch; p && v; p = p->next)
        v[i++] = msg_view(p, ln->key);
    if (v)
        l->run(l->ud, worker, v, n);
    else
        log_error("out of memory: a turn of %zu messages could not run", n);
    if (v != stackv) free(v);
    while (batch) {
        struct msg_node *next = batch->next;
        msg_free(batch);
        batch = next;
    }
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
        int64_t wake_at;
        struct lane *ln = ready_take(l, jb_mono_ms(), &wake_at);
        if (!ln) {
            if (l->stopping && (!l->ready_head || l->held)) break;
            wait_until(l, wake_at);
            continue;
        }
        size_t n;
        struct user_count *user = user_inc(l, batch_user(l, ln));
        struct msg_node *batch = take_batch(l, ln, &n);
        ln->running = 1;
        l->running++;
        pthread_mutex_unlock(&l->mu);
        run_batch(l, wa.index, ln, batch, n);
        pthread_mutex_lock(&l->mu);
        ln->running = 0;
        l->running--;
        user_dec(l, user);
        if (l->opts.max_per_user > 0) pthread_cond_broadcast(&l->work); /* (L5) */
        l->pending -= n;
        if (ln->head)
            ready_push(l, ln, jb_mono_ms());
        else
            lane_unlink_free(l, ln);
        if (l->pending == 0 || (l->held && l->running == 0)) pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int lanes_new(const struct lanes_opts *o, lane_run_fn run, void *ud, struct lanes **ret,
              struct jb_err *err)
{
    struct lanes *l = calloc(1, sizeof *l);
    if (!l || !(l->workers = calloc((size_t)o->workers, sizeof *l->workers))) {
        free(l);
        return jb_err_set(err, JB_ENOMEM, "lanes");
    }
    pthread_mutex_init(&l->mu, NULL);
    jb_cond_init_monotonic(&l->work);
    pthread_cond_init(&l->idle, NULL);
    l->opts = *o;
    l->run = run;
    l->ud = ud;
    for (int i = 0; i < o->workers; i++) {
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
    size_t len = strlen(key) + 1;
    struct lane *ln = calloc(1, sizeof *ln + len);
    if (!ln) return NULL;
    memcpy(ln->key, key, len);
    ln->next_bucket = l->buckets[b];
    l->buckets[b] = ln;
    return ln;
}

static struct msg_node *msg_new(int64_t inbox_id, const char *user, const char *text,
                                const char *ref, const char *files)
{
    const char *const str[] = {text, ref, files};
    size_t ulen = strlen(user) + 1, len = ulen + 1;
    for (size_t i = 0; i < JB_ARRAY_LEN(str); i++)
        len += str[i] ? strlen(str[i]) + 1 : 0;
    struct msg_node *n = malloc(sizeof *n + len);
    if (!n) return NULL;
    *n = (struct msg_node){.inbox_id = inbox_id};
    memcpy(n->str, user, ulen);
    char *mask = n->str + ulen, *at = mask + 1;
    *mask = 0;
    for (size_t i = 0; i < JB_ARRAY_LEN(str); i++)
        if (str[i]) {
            size_t sl = strlen(str[i]) + 1;
            memcpy(at, str[i], sl);
            at += sl;
            *mask = (char)(*mask | (1 << i));
        }
    return n;
}

int lanes_enqueue(struct lanes *l, int64_t inbox_id, const char *thread_key, const char *user,
                  const char *text, const char *ref, const char *files, struct jb_err *err)
{
    struct msg_node *n = msg_new(inbox_id, user, text, ref, files);
    if (!n) return jb_err_set(err, JB_ENOMEM, "message");
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
    ln->count++;
    l->pending++;
    int64_t due = jb_mono_ms() + l->opts.debounce_ms;
    if (ln->ready) { /* still waiting: the debounce starts over */
        ln->ready_at = due;
        pthread_cond_broadcast(&l->work);
    } else if (!ln->running) {
        ready_push(l, ln, due);
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void lanes_set_max_per_user(struct lanes *l, int max_per_user)
{
    pthread_mutex_lock(&l->mu);
    l->opts.max_per_user = max_per_user;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
}

void lanes_drain(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->held ? (size_t)l->running : l->pending) /* (L6): held messages never run */
        pthread_cond_wait(&l->idle, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

int lanes_has(struct lanes *l, const char *thread_key)
{
    pthread_mutex_lock(&l->mu);
    const struct lane *ln = l->buckets[bucket_of(thread_key)];
    while (ln && strcmp(ln->key, thread_key) != 0)
        ln = ln->next_bucket;
    pthread_mutex_unlock(&l->mu);
    return ln != NULL;
}

int lanes_hold(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    l->held = 1;
    int n = l->running;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int lanes_running(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->running;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t lanes_pending(struct lanes *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->pending;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t lanes_waiting(struct lanes *l)
{
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (struct lane *ln = l->ready_head; ln; ln = ln->next_ready)
        n++;
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
    for (size_t b = 0; b < LANE_BUCKETS; b++) /* (L6): lanes a hold left */
        while (l->buckets[b]) {
            struct lane *ln = l->buckets[b];
            while (ln->head) {
                struct msg_node *next = ln->head->next;
                msg_free(ln->head);
                ln->head = next;
            }
            lane_unlink_free(l, ln);
        }
    free(l->workers);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->idle);
    free(l);
}

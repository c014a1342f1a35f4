/* frontend/status.c -- the status writer: one thread per Slack frontend that posts, updates
 * and removes the status message of each running turn.
 *
 * Why a thread of its own: the turn's progress comes from inside the exec's output loop
 * (the local sandbox's pipe loop, the Sprites WebSocket callback). Anything that waits on
 * Slack there stops the turn reading its agent, checking its deadline and answering pings.
 * So the frontend only records the newest status per thread (status_writer_set: a pointer
 * swap under the mutex) and this thread does the talking:
 *  - one entry per running turn; a newer status replaces one not yet shown (coalescing);
 *  - a message is updated at most every STATUS_EVERY_MS, and all updates together stay
 *    within chat.update's rate (a token bucket of UPDATE_PER_MIN);
 *  - every call is slack_call_nowait(): a 429 returns at once and only this writer's use
 *    of that method pauses for Retry-After; turns and answers never wait for it;
 *  - when a turn ends its entry is marked ended: no update is sent after that, the
 *    message is deleted, and a message not yet posted is never posted.
 * Entries are freed only by this thread; the other functions never free one. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "frontend/status.h"
#include "slack/slack.h"

#define STATUS_EVERY_MS 2000 /* per message: chat.update is Tier 3 */
#define UPDATE_PER_MIN  50   /* chat.update for the whole workspace (Tier 3: 50+/min) */
#define UPDATE_BURST    3.0
#define STOP_GRACE_MS   2000 /* at stop: time left for removing status messages */
#define CALL_TIMEOUT_MS 5000 /* a stuck Slack holds the writer no longer than this */
#define IDLE_WAKE_MS    60000

enum method { M_POST, M_UPDATE, M_DELETE, M_COUNT };
static const char *const method_names[M_COUNT] = {"chat.postMessage", "chat.update", "chat.delete"};

struct status_entry {
    struct status_entry *next;
    char channel[64], thread[64];
    char *key;
    char *ts;       /* the posted message, or NULL */
    char *want;     /* newest status not yet shown (markdown), or NULL */
    int64_t due_ms; /* no update of this message before this */
    int gave_up;    /* posting failed: no status message for this turn */
    int ended;      /* the turn is over */
    int busy;       /* the writer has a call in flight for it */
};

struct status_writer {
    struct slack_web *web;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    struct status_entry *list;
    int stopping;                   /* under mu: only removals from now on */
    atomic_int abort;               /* abandon a call in flight and exit */
    int64_t blocked_until[M_COUNT]; /* Retry-After per method (writer thread only) */
    double tokens;                  /* chat.update bucket (writer thread only) */
    int64_t tokens_ms;
    pthread_t thread;
};

/* One call the writer makes, copied out of an entry so it runs without the mutex. */
struct job {
    enum method m;
    struct status_entry *e;
    char channel[64], thread[64], ts[64];
    char *text; /* owned; POST/UPDATE */
};

static void entry_free(struct status_entry *e)
{
    if (!e) return;
    free(e->key);
    free(e->ts);
    free(e->want);
    free(e);
}

/* The entry of thread_key's running turn (not ended), or NULL. Under mu. */
static struct status_entry *find_live(struct status_writer *sw, const char *key)
{
    for (struct status_entry *e = sw->list; e; e = e->next)
        if (!e->ended && !strcmp(e->key, key)) return e;
    return NULL;
}

static void unlink_entry(struct status_writer *sw, struct status_entry *e)
{
    for (struct status_entry **pp = &sw->list; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            return;
        }
}

/* ---- the frontend's side: no I/O, no waiting --------------------------------------- */

void status_writer_begin(struct status_writer *sw, const char *key)
{
    const char *colon = key ? strchr(key, ':') : NULL;
    struct status_entry *e = calloc(1, sizeof *e);
    if (!e || !colon || colon == key || (size_t)(colon - key) >= sizeof e->channel ||
        strlen(colon + 1) >= sizeof e->thread || !(e->key = strdup(key))) {
        entry_free(e);
        return;
    }
    snprintf(e->channel, sizeof e->channel, "%.*s", (int)(colon - key), key);
    snprintf(e->thread, sizeof e->thread, "%s", colon + 1);
    pthread_mutex_lock(&sw->mu);
    struct status_entry *old = find_live(sw, key);
    if (old) old->ended = 1; /* a turn that never said it ended */
    e->next = sw->list;
    sw->list = e;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

void status_writer_set(struct status_writer *sw, const char *key, const char *status)
{
    char *text = strdup(status ? status : "");
    if (!text) return;
    pthread_mutex_lock(&sw->mu);
    struct status_entry *e = find_live(sw, key);
    if (e) {
        char *old = e->want;
        e->want = text;
        text = old;
        pthread_cond_signal(&sw->cv);
    }
    pthread_mutex_unlock(&sw->mu);
    free(text); /* the one replaced, or ours when the turn is unknown */
}

void status_writer_end(struct status_writer *sw, const char *key)
{
    char *drop = NULL;
    pthread_mutex_lock(&sw->mu);
    struct status_entry *e = find_live(sw, key);
    if (e) {
        e->ended = 1;
        drop = TAKE_PTR(e->want);
        pthread_cond_signal(&sw->cv);
    }
    pthread_mutex_unlock(&sw->mu);
    free(drop);
}

/* ---- the writer --------------------------------------------------------------------- */

/* When the chat.update bucket has a token (now when it has one). */
static int64_t update_ready_ms(struct status_writer *sw, int64_t now)
{
    sw->tokens += (double)(now - sw->tokens_ms) * UPDATE_PER_MIN / 60000.0;
    if (sw->tokens > UPDATE_BURST) sw->tokens = UPDATE_BURST;
    sw->tokens_ms = now;
    if (sw->tokens >= 1.0) return now;
    return now + (int64_t)((1.0 - sw->tokens) * 60000.0 / UPDATE_PER_MIN) + 1;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* What e needs next and from when; 0 when nothing. Under mu. */
static int entry_next(struct status_writer *sw, const struct status_entry *e, int64_t now,
                      enum method *m, int64_t *due)
{
    if (e->ended || sw->stopping) {
        if (!e->ts) return 0;
        *m = M_DELETE, *due = sw->blocked_until[M_DELETE];
    } else if (!e->ts && !e->gave_up) {
        *m = M_POST, *due = sw->blocked_until[M_POST];
    } else if (e->ts && e->want) {
        *m = M_UPDATE;
        *due = max64(max64(e->due_ms, sw->blocked_until[M_UPDATE]), update_ready_ms(sw, now));
    } else {
        return 0;
    }
    return 1;
}

/* Choose the next call: removals first (turns that ended), then posts, then the update
 * waiting longest. Entries that ended with nothing posted are forgotten here. Returns 0
 * with *wake_ms when nothing is due yet. Under mu. */
static int pick_job(struct status_writer *sw, int64_t now, struct job *j, int64_t *wake_ms)
{
    struct status_entry *best = NULL;
    enum method best_m = M_COUNT;
    int64_t best_due = 0, wake = now + IDLE_WAKE_MS;
    for (struct status_entry **pp = &sw->list; *pp;) {
        struct status_entry *e = *pp;
        enum method m;
        int64_t due;
        if (!e->busy && e->ended && !e->ts) {
            *pp = e->next;
            entry_free(e);
            continue;
        }
        pp = &e->next;
        if (e->busy || !entry_next(sw, e, now, &m, &due)) continue;
        if (due > now) {
            if (due < wake) wake = due;
        } else if (!best || m < best_m || (m == best_m && due < best_due)) {
            best = e, best_m = m, best_due = due;
        }
    }
    *wake_ms = wake;
    if (!best) return 0;
    *j = (struct job){.m = best_m, .e = best};
    best->busy = 1;
    snprintf(j->channel, sizeof j->channel, "%s", best->channel);
    snprintf(j->thread, sizeof j->thread, "%s", best->thread);
    snprintf(j->ts, sizeof j->ts, "%s", best->ts ? best->ts : "");
    if (best_m != M_DELETE) j->text = TAKE_PTR(best->want);
    if (best_m == M_UPDATE) sw->tokens -= 1.0;
    return 1;
}

/* The message text for a status (NULL: the first one). Caller frees. */
static char *status_mrkdwn(const char *status)
{
    if (!status) return strdup("_Working on it…_");
    jb_autofree char *md = NULL;
    if (asprintf(&md, "Working on it… (%s)", status) < 0) return NULL;
    return slack_mrkdwn_from_markdown(md);
}

/* Make the call of j; 0, or -1 with err (retry_after_s > 0 when rate limited). The new
 * message's ts into *ret_ts for a post. Without the mutex. */
static int run_job(struct status_writer *sw, const struct job *j, struct slack_nowait *nw,
                   char **ret_ts, struct jb_err *err)
{
    jb_auto(json_decrefp) json_t *args = NULL, *r = NULL;
    jb_autofree char *text = j->m == M_DELETE ? NULL : status_mrkdwn(j->text);
    if (j->m == M_POST)
        args = json_pack("{s:s, s:s, s:s*, s:b}", "channel", j->channel, "thread_ts", j->thread,
                         "text", text, "unfurl_links", 0);
    else if (j->m == M_UPDATE)
        args = json_pack("{s:s, s:s, s:s*}", "channel", j->channel, "ts", j->ts, "text", text);
    else
        args = json_pack("{s:s, s:s}", "channel", j->channel, "ts", j->ts);
    if (!args || (j->m != M_DELETE && !text)) return jb_err_set(err, JB_ENOMEM, "status message");
    unsigned flags = j->m == M_POST ? SLACK_CALL_ONCE : 0;
    if (slack_call_nowait(sw->web, method_names[j->m], args, flags, nw, &r, NULL, err) < 0)
        return -1;
    const char *ts = json_string_value(json_object_get(r, "ts"));
    if (j->m == M_POST && !(ts && (*ret_ts = strdup(ts))))
        return jb_err_set(err, JB_EPROTO, "chat.postMessage: no ts in the answer");
    return 0;
}

/* Record what the call of j did. Under mu. */
static void apply_job(struct status_writer *sw, struct job *j, int rc,
                      const struct slack_nowait *nw, char **ts, const struct jb_err *err)
{
    struct status_entry *e = j->e;
    int64_t now = jb_mono_ms();
    e->busy = 0;
    if (rc < 0 && nw->retry_after_s > 0) { /* rate limited: try again after the window */
        sw->blocked_until[j->m] = now + nw->retry_after_s * 1000;
        log_info("slack: status messages: %s rate limited; next try in %ld s", method_names[j->m],
                 nw->retry_after_s);
        if (!e->want && !e->ended) e->want = TAKE_PTR(j->text); /* unless a newer one came */
    } else if (j->m == M_POST) {
        if (rc == 0)
            e->ts = TAKE_PTR(*ts), e->due_ms = now + STATUS_EVERY_MS;
        else
            e->gave_up = 1;
    } else if (j->m == M_UPDATE) {
        e->due_ms = now + STATUS_EVERY_MS; /* failed: a newer status will come */
    } else {
        unlink_entry(sw, e); /* removed, or it cannot be: either way done */
        entry_free(e);
    }
    if (rc < 0 && nw->retry_after_s == 0)
        log_debug("slack: status message in %s:%s: %s", j->channel, j->thread, err->msg);
    free(TAKE_PTR(j->text));
}

static void wait_until(struct status_writer *sw, int64_t wake_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms = wake_ms - jb_mono_ms();
    if (ms < 1) ms = 1;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&sw->cv, &sw->mu, &ts);
}

static void *writer_main(void *arg)
{
    struct status_writer *sw = arg;
    pthread_mutex_lock(&sw->mu);
    while (!atomic_load(&sw->abort)) {
        struct job j;
        int64_t wake;
        if (!pick_job(sw, jb_mono_ms(), &j, &wake)) {
            if (sw->stopping) break; /* nothing left that can be removed now */
            wait_until(sw, wake);
            continue;
        }
        pthread_mutex_unlock(&sw->mu);
        struct slack_nowait nw = {.stop = &sw->abort, .timeout_ms = CALL_TIMEOUT_MS};
        struct jb_err err = {0};
        jb_autofree char *ts = NULL;
        int rc = run_job(sw, &j, &nw, &ts, &err);
        pthread_mutex_lock(&sw->mu);
        apply_job(sw, &j, rc, &nw, &ts, &err);
    }
    pthread_mutex_unlock(&sw->mu);
    return NULL;
}

struct status_writer *status_writer_new(struct slack_web *w, struct jb_err *err)
{
    struct status_writer *sw = calloc(1, sizeof *sw);
    if (!sw) {
        jb_err_set(err, JB_ENOMEM, "status writer");
        return NULL;
    }
    sw->web = w;
    sw->tokens = UPDATE_BURST, sw->tokens_ms = jb_mono_ms();
    pthread_mutex_init(&sw->mu, NULL);
    jb_cond_init_monotonic(&sw->cv);
    int rc = pthread_create(&sw->thread, NULL, writer_main, sw);
    if (rc != 0) {
        pthread_cond_destroy(&sw->cv);
        pthread_mutex_destroy(&sw->mu);
        free(sw);
        jb_err_set(err, JB_ESYS, "status writer: pthread_create: %s", strerror(rc));
        return NULL;
    }
    return sw;
}

void status_writer_free(struct status_writer *sw)
{
    if (!sw) return;
    pthread_mutex_lock(&sw->mu);
    sw->stopping = 1;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += STOP_GRACE_MS / 1000;
    if (pthread_clockjoin_np(sw->thread, NULL, CLOCK_MONOTONIC, &ts) != 0) {
        atomic_store(&sw->abort, 1); /* a call in flight gives up within about a second */
        pthread_mutex_lock(&sw->mu);
        pthread_cond_signal(&sw->cv);
        pthread_mutex_unlock(&sw->mu);
        pthread_join(sw->thread, NULL);
    }
    while (sw->list) {
        struct status_entry *e = sw->list;
        sw->list = e->next;
        entry_free(e);
    }
    pthread_cond_destroy(&sw->cv);
    pthread_mutex_destroy(&sw->mu);
    free(sw);
}

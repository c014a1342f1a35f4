/* store/store-int.h -- private to src/store: the connection and the helpers every table's
 * file uses to prepare, bind, run and report. Not part of the public interface. */
#ifndef JB_STORE_INT_H
#define JB_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

struct store_checkpointer;

#define STORE_BUSY_MS 5000 /* how long a connection waits for another's write lock */

/* The statements of an event's admission (store_event_admit(), run on the Slack thread
 * before its ack) and of the rate buckets: prepared once per connection and kept, since
 * preparing costs more than running them. */
enum store_hot {
    HOT_BEGIN,
    HOT_COMMIT,
    HOT_ROLLBACK,
    HOT_EVENT_SEEN,
    HOT_INBOX_ADD,
    HOT_BUCKET_READ,
    HOT_BUCKET_WRITE,
    STORE_HOT_N
};

struct store {
    sqlite3 *db;
    char *path;                      /* for messages */
    struct store_checkpointer *ckpt; /* NULL unless store_low_latency() (latency.c) */
    int64_t busy_t0;                 /* store_low_latency()'s busy handler: first try, ms */
    sqlite3_stmt *hot[STORE_HOT_N];  /* store_hot(): NULL until first used */
};

/* Stop st's checkpoint thread, if any (store_close() does). */
void store_checkpoint_stop(struct store *st);

/* A bound parameter. Text NULL binds SQL NULL. Text is bound SQLITE_STATIC: it must
 * outlive the statement, which holds for arguments of the calling function. */
struct store_arg {
    char type; /* 't' text, 'i' integer */
    const char *s;
    int64_t i;
};
#define STORE_MAX_ARGS 12
struct store_args {
    size_t n;
    struct store_arg v[STORE_MAX_ARGS];
};
#define ARG_T(x) ((struct store_arg){.type = 't', .s = (x)})
#define ARG_I(x) ((struct store_arg){.type = 'i', .i = (int64_t)(x)})
/* &STORE_ARGS(ARG_T(key), ARG_I(now)): parameters ?1, ?2, … in order. */
#define STORE_ARGS(...)                                                                            \
    ((struct store_args){.n =                                                                      \
                             sizeof((struct store_arg[]){__VA_ARGS__}) / sizeof(struct store_arg), \
                         .v = {__VA_ARGS__}})

static inline void store_stmt_freep(sqlite3_stmt **s)
{
    sqlite3_finalize(*s);
}
#define store_autostmt jb_auto(store_stmt_freep)

/* Fill err with "store: <fmt>: <sqlite's last message>" and a code from sqlite's last
 * result: JB_ETIMEOUT when busy/locked past the busy timeout, JB_ENOMEM, else JB_ESYS.
 * Always returns -1. Call it right after the failing sqlite call. */
int store_fail(struct store *st, struct jb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepare sql and bind args (may be NULL). 0, or -1 with sqlite's message left on the
 * connection for store_fail(). */
int store_prepare(struct store *st, const char *sql, const struct store_args *args,
                  sqlite3_stmt **ret);
/* Hot statement `which` (its text is always sql), bound to args (may be NULL), ready to
 * step; the caller holds the connection's mutex (store_lock()) until store_hot_done().
 * 0, or -1 for store_fail(). */
int store_hot(struct store *st, enum store_hot which, const char *sql,
              const struct store_args *args, sqlite3_stmt **ret);
/* Reset s and clear its bindings: ready for the next store_hot(). */
void store_hot_done(sqlite3_stmt *s);
/* Run hot statement `which` (no rows, or a RETURNING id into *ret_id, may be NULL);
 * *ret_changes (may be NULL): rows changed. 0, or -1 for store_fail(). */
int store_hot_run(struct store *st, enum store_hot which, const char *sql,
                  const struct store_args *args, int64_t *ret_id, int64_t *ret_changes);
/* The connection's own mutex, held across a sequence of statements that must not
 * interleave with another thread's on the same connection (the hot statements). */
void store_lock(struct store *st);
void store_unlock(struct store *st);
/* Inside a write transaction: read key's bucket, let fn update it, write it back. fn's
 * result (0 or 1), or -1 for store_fail() when the bucket could not be read or written. */
int store_bucket_take(struct store *st, const char *key, store_bucket_fn fn, void *ud,
                      struct jb_err *err);

/* Prepare, bind and run a statement that returns no rows (or only a RETURNING id, which
 * goes to *ret_id when that is not NULL). *ret_changes (may be NULL) gets the number of
 * rows changed. 0, or -1 for store_fail(). */
int store_run(struct store *st, const char *sql, const struct store_args *args, int64_t *ret_id,
              int64_t *ret_changes);
/* malloc'd copy of a text column; *ret NULL for SQL NULL. -1 only when out of memory. */
int store_col_dup(sqlite3_stmt *s, int col, char **ret);
/* Room for one more element of size elem in v (capacity *cap, n used): v or its
 * replacement, or NULL when out of memory (v is then unchanged and still the caller's). */
void *store_grow(void *v, size_t *cap, size_t n, size_t elem);

#endif

/* store/buckets.c -- the rate_buckets table: one token bucket per key (a user), updated
 * in one write transaction; and a read-only look at the Slack events already recorded. */
#include <string.h>

#include "store/store-int.h"

static int bucket_read(struct store *st, const char *key, int *found, double *tokens,
                       int64_t *updated, struct jb_err *err)
{
    sqlite3_stmt *s = NULL;
    if (store_hot(st, HOT_BUCKET_READ, "SELECT tokens, updated_at FROM rate_buckets WHERE key = ?1",
                  &STORE_ARGS(ARG_T(key)), &s) < 0)
        return store_fail(st, err, "cannot read the rate bucket of %s", key);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) {
        *tokens = sqlite3_column_double(s, 0);
        *updated = sqlite3_column_int64(s, 1);
    } else if (rc != SQLITE_DONE) {
        store_fail(st, err, "cannot read the rate bucket of %s", key);
    }
    store_hot_done(s);
    return *found || rc == SQLITE_DONE ? 0 : -1;
}

static int bucket_write(struct store *st, const char *key, double tokens, int64_t updated,
                        struct jb_err *err)
{
    /* tokens is fractional: bound as a double (the shared helpers bind text and integers). */
    sqlite3_stmt *s = NULL;
    int ok = store_hot(st, HOT_BUCKET_WRITE,
                       "INSERT INTO rate_buckets (key, tokens, updated_at) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,"
                       "  updated_at = excluded.updated_at",
                       NULL, &s) == 0 &&
             sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_double(s, 2, tokens) == SQLITE_OK &&
             sqlite3_bind_int64(s, 3, updated) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
    if (!ok) store_fail(st, err, "cannot write the rate bucket of %s", key);
    store_hot_done(s);
    return ok ? 0 : -1;
}

int store_bucket_take(struct store *st, const char *key, store_bucket_fn fn, void *ud,
                      struct jb_err *err)
{
    int found = 0;
    double tokens = 0;
    int64_t updated = 0;
    if (bucket_read(st, key, &found, &tokens, &updated, err) < 0) return -1;
    int rc = fn(ud, found, &tokens, &updated);
    if (rc < 0) return jb_err_set(err, JB_ESYS, "store: rate bucket of %s: not updated", key);
    return bucket_write(st, key, tokens, updated, err) < 0 ? -1 : rc;
}

int store_bucket_update(struct store *st, const char *key, store_bucket_fn fn, void *ud,
                        struct jb_err *err)
{
    store_lock(st);
    int rc = store_hot_run(st, HOT_BEGIN, "BEGIN IMMEDIATE", NULL, NULL, NULL) < 0
                 ? store_fail(st, err, "cannot lock the rate bucket of %s", key)
                 : store_bucket_take(st, key, fn, ud, err);
    if (rc >= 0 && store_hot_run(st, HOT_COMMIT, "COMMIT", NULL, NULL, NULL) < 0)
        rc = store_fail(st, err, "cannot commit the rate bucket of %s", key);
    if (rc < 0 && !sqlite3_get_autocommit(st->db))
        store_hot_run(st, HOT_ROLLBACK, "ROLLBACK", NULL, NULL, NULL);
    store_unlock(st);
    return rc;
}

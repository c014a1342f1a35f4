/* store/buckets.c -- the rate_buckets table: one token bucket per key (a user), updated
 * in one write transaction; and a read-only look at the Slack events already recorded. */
#include <string.h>

#include "store/store-int.h"

static int bucket_read(struct store *st, const char *key, int *found, double *tokens,
                       int64_t *updated, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT tokens, updated_at FROM rate_buckets WHERE key = ?1",
                      &STORE_ARGS(ARG_T(key)), &s) < 0)
        return store_fail(st, err, "cannot read the rate bucket of %s", key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return *found = 0, 0;
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot read the rate bucket of %s", key);
    *found = 1;
    *tokens = sqlite3_column_double(s, 0);
    *updated = sqlite3_column_int64(s, 1);
    return 0;
}

static int bucket_write(struct store *st, const char *key, double tokens, int64_t updated,
                        struct jb_err *err)
{
    /* tokens is fractional: bound as a double (the shared helpers bind text and integers). */
    store_autostmt sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db,
                           "INSERT INTO rate_buckets (key, tokens, updated_at) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,"
                           "  updated_at = excluded.updated_at",
                           -1, 0, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_double(s, 2, tokens) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, updated) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, err, "cannot write the rate bucket of %s", key);
    return 0;
}

int store_bucket_update(struct store *st, const char *key, store_bucket_fn fn, void *ud,
                        struct jb_err *err)
{
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot lock the rate bucket of %s", key);
    int found = 0;
    double tokens = 0;
    int64_t updated = 0;
    int rc = bucket_read(st, key, &found, &tokens, &updated, err);
    if (rc == 0) rc = fn(ud, found, &tokens, &updated);
    if (rc >= 0 && bucket_write(st, key, tokens, updated, err) < 0) rc = -1;
    if (rc >= 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_fail(st, err, "cannot commit the rate bucket of %s", key);
    if (rc < 0) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc < 0 && err && !err->msg[0])
        jb_err_set(err, JB_ESYS, "store: rate bucket of %s: not updated", key);
    return rc;
}

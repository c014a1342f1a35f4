/* store/remote.c -- remote sandboxes: which sprite serves a thread (sandbox_names) and the
 * warm pool of sprites ready to be claimed (sandbox_pool). A claim is one write
 * transaction, so two janebot processes sharing the database never claim the same one. */
#include <string.h>

#include "store/store-int.h"

void sandbox_name_row_release(struct sandbox_name_row *r)
{
    free(r->thread_key);
    free(r->name);
    free(r->golden);
    free(r->setup_hash);
    memset(r, 0, sizeof *r);
}

void sandbox_name_rows_free(struct sandbox_name_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        sandbox_name_row_release(&v[i]);
    free(v);
}

#define NAME_COLS "thread_key, name, golden, setup_hash, created_at, last_used"

static int name_from_row(sqlite3_stmt *s, struct sandbox_name_row *r)
{
    *r = (struct sandbox_name_row){.created_at = sqlite3_column_int64(s, 4),
                                   .last_used = sqlite3_column_int64(s, 5)};
    if (store_col_dup(s, 0, &r->thread_key) < 0 || store_col_dup(s, 1, &r->name) < 0 ||
        store_col_dup(s, 2, &r->golden) < 0 || store_col_dup(s, 3, &r->setup_hash) < 0) {
        sandbox_name_row_release(r);
        return -1;
    }
    return 0;
}

int store_name_get(struct store *st, const char *key, int by_name, struct sandbox_name_row *ret,
                   struct jb_err *err)
{
    const char *sql = by_name ? "SELECT " NAME_COLS " FROM sandbox_names WHERE name = ?1"
                              : "SELECT " NAME_COLS " FROM sandbox_names WHERE thread_key = ?1";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_T(key)), &s) < 0)
        return store_fail(st, err, "cannot read the sandbox of %s", key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return jb_err_set(err, JB_ENOTFOUND, "store: no sandbox for %s", key);
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot read the sandbox of %s", key);
    if (name_from_row(s, ret) < 0) return jb_err_set(err, JB_ENOMEM, "store: sandbox row");
    return 0;
}

int store_name_set(struct store *st, const char *thread_key, const char *name, const char *golden,
                   const char *setup_hash, struct jb_err *err)
{
    static const char sql[] =
        "INSERT INTO sandbox_names (" NAME_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
        " ON CONFLICT (thread_key) DO UPDATE SET name = excluded.name,"
        " golden = excluded.golden, setup_hash = excluded.setup_hash";
    if (store_run(st, sql,
                  &STORE_ARGS(ARG_T(thread_key), ARG_T(name), ARG_T(golden), ARG_T(setup_hash),
                              ARG_I(jb_now_ms())),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot record sprite %s for %s", name, thread_key);
    return 0;
}

int store_name_touch(struct store *st, const char *thread_key, struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st, "UPDATE sandbox_names SET last_used = ?2 WHERE thread_key = ?1",
                  &STORE_ARGS(ARG_T(thread_key), ARG_I(jb_now_ms())), NULL, &n) < 0)
        return store_fail(st, err, "cannot touch the sandbox of %s", thread_key);
    return n ? 0 : jb_err_set(err, JB_ENOTFOUND, "store: no sandbox for %s", thread_key);
}

int store_name_delete(struct store *st, const char *thread_key, struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st, "DELETE FROM sandbox_names WHERE thread_key = ?1",
                  &STORE_ARGS(ARG_T(thread_key)), NULL, &n) < 0)
        return store_fail(st, err, "cannot forget the sandbox of %s", thread_key);
    return n ? 0 : jb_err_set(err, JB_ENOTFOUND, "store: no sandbox for %s", thread_key);
}

int store_name_list(struct store *st, struct sandbox_name_row **ret, size_t *ret_n,
                    struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT " NAME_COLS " FROM sandbox_names ORDER BY name", NULL, &s) < 0)
        return store_fail(st, err, "cannot list sandboxes");
    struct sandbox_name_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct sandbox_name_row *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv || name_from_row(s, &nv[n]) < 0) {
            sandbox_name_rows_free(nv ? nv : v, n);
            return jb_err_set(err, JB_ENOMEM, "store: listing sandboxes");
        }
        v = nv, n++;
    }
    if (rc != SQLITE_DONE) {
        sandbox_name_rows_free(v, n);
        return store_fail(st, err, "cannot list sandboxes");
    }
    *ret = v, *ret_n = n;
    return 0;
}

/* ---- the pool ---- */

int store_pool_add(struct store *st, const char *name, const char *golden, const char *setup_hash,
                   struct jb_err *err)
{
    if (store_run(st,
                  "INSERT OR REPLACE INTO sandbox_pool (name, golden, setup_hash, ready_at)"
                  " VALUES (?1, ?2, ?3, ?4)",
                  &STORE_ARGS(ARG_T(name), ARG_T(golden), ARG_T(setup_hash), ARG_I(jb_now_ms())),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot add sprite %s to the pool", name);
    return 0;
}

static int claim_locked(struct store *st, const char *thread_key, const char *setup_hash,
                        struct sandbox_name_row *ret, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st,
                      "SELECT name, golden FROM sandbox_pool WHERE setup_hash = ?1"
                      " ORDER BY ready_at, name LIMIT 1",
                      &STORE_ARGS(ARG_T(setup_hash)), &s) < 0)
        return store_fail(st, err, "cannot read the pool");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return jb_err_set(err, JB_ENOTFOUND, "store: the pool is empty");
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot read the pool");
    jb_autofree char *name = NULL, *golden = NULL;
    if (store_col_dup(s, 0, &name) < 0 || store_col_dup(s, 1, &golden) < 0)
        return jb_err_set(err, JB_ENOMEM, "store: pool");
    if (store_run(st, "DELETE FROM sandbox_pool WHERE name = ?1", &STORE_ARGS(ARG_T(name)), NULL,
                  NULL) < 0)
        return store_fail(st, err, "cannot take %s from the pool", name);
    if (store_name_set(st, thread_key, name, golden, setup_hash, err) < 0) return -1;
    return store_name_get(st, thread_key, 0, ret, err);
}

int store_pool_claim(struct store *st, const char *thread_key, const char *setup_hash,
                     struct sandbox_name_row *ret, struct jb_err *err)
{
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot lock the pool");
    int rc = claim_locked(st, thread_key, setup_hash, ret, err);
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sandbox_name_row_release(ret);
        rc = store_fail(st, err, "cannot commit a pool claim");
    }
    if (rc < 0) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_pool_names(struct store *st, const char *stale_for, struct jb_strv *ret,
                     struct jb_err *err)
{
    const char *sql = stale_for ? "SELECT name FROM sandbox_pool WHERE setup_hash != ?1"
                                  " ORDER BY name"
                                : "SELECT name FROM sandbox_pool ORDER BY name";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, stale_for ? &STORE_ARGS(ARG_T(stale_for)) : NULL, &s) < 0)
        return store_fail(st, err, "cannot list the pool");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (jb_strv_push(ret, (const char *)sqlite3_column_text(s, 0), err) < 0) return -1;
    return rc == SQLITE_DONE ? 0 : store_fail(st, err, "cannot list the pool");
}

int store_pool_remove(struct store *st, const char *name, struct jb_err *err)
{
    if (store_run(st, "DELETE FROM sandbox_pool WHERE name = ?1", &STORE_ARGS(ARG_T(name)), NULL,
                  NULL) < 0)
        return store_fail(st, err, "cannot remove %s from the pool", name);
    return 0;
}

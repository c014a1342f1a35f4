/* store/egress.c -- the names one thread's sandbox may reach besides its channel's list:
 * added by a person's "Allow for this thread" on an egress approval, shown by `janebot
 * sandbox show`, removed by `janebot sandbox egress rm` and with the thread's sandbox
 * (store_allow_forget()). Never a channel's: each row names its thread. */
#include <string.h>

#include "store/store-int.h"

int store_egress_add(struct store *st, const char *thread_key, const char *name, const char *by,
                     struct jb_err *err)
{
    if (store_run(st,
                  "INSERT INTO egress_allow (thread_key, name, added_by, added_at)"
                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (thread_key, name) DO UPDATE SET"
                  " added_by = excluded.added_by, added_at = excluded.added_at",
                  &STORE_ARGS(ARG_T(thread_key), ARG_T(name), ARG_T(by), ARG_I(jb_now_ms())), NULL,
                  NULL) < 0)
        return store_fail(st, err, "cannot add %s to the egress list of %s", name, thread_key);
    return 0;
}

int store_egress_has(struct store *st, const char *thread_key, const char *name, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT 1 FROM egress_allow WHERE thread_key = ?1 AND name = ?2",
                      &STORE_ARGS(ARG_T(thread_key), ARG_T(name)), &s) < 0)
        return store_fail(st, err, "cannot read the egress list of %s", thread_key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return store_fail(st, err, "cannot read the egress list of %s", thread_key);
}

void egress_rows_free(struct egress_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].added_by);
    }
    free(v);
}

int store_egress_list(struct store *st, const char *thread_key, struct egress_row **ret,
                      size_t *ret_n, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    struct egress_row *v = NULL;
    size_t n = 0, cap = 0;
    *ret = NULL, *ret_n = 0;
    if (store_prepare(st,
                      "SELECT name, added_by, added_at FROM egress_allow WHERE thread_key = ?1"
                      " ORDER BY name",
                      &STORE_ARGS(ARG_T(thread_key)), &s) < 0)
        return store_fail(st, err, "cannot read the egress list of %s", thread_key);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct egress_row *g = store_grow(v, &cap, n, sizeof *v);
        if (!g) goto nomem;
        v = g;
        v[n] = (struct egress_row){.added_at = sqlite3_column_int64(s, 2)};
        n++;
        if (store_col_dup(s, 0, &v[n - 1].name) < 0 || store_col_dup(s, 1, &v[n - 1].added_by) < 0)
            goto nomem;
    }
    if (rc != SQLITE_DONE) {
        egress_rows_free(v, n);
        return store_fail(st, err, "cannot read the egress list of %s", thread_key);
    }
    *ret = v, *ret_n = n;
    return 0;
nomem:
    egress_rows_free(v, n);
    return jb_err_set(err, JB_ENOMEM, "the egress list of %s: out of memory", thread_key);
}

int store_egress_remove(struct store *st, const char *thread_key, const char *name,
                        struct jb_err *err)
{
    int64_t changed = 0;
    if (store_run(st, "DELETE FROM egress_allow WHERE thread_key = ?1 AND name = ?2",
                  &STORE_ARGS(ARG_T(thread_key), ARG_T(name)), NULL, &changed) < 0)
        return store_fail(st, err, "cannot remove %s from the egress list of %s", name, thread_key);
    if (changed == 0)
        return jb_err_set(err, JB_ENOTFOUND,
                          "%s is not on the egress list of thread %s (see janebot sandbox show %s)",
                          name, thread_key, thread_key);
    return 0;
}

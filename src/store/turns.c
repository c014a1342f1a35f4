/* store/turns.c -- the turn audit: one row per agent run, opened when it starts and
 * closed with its outcome, so a crash leaves evidence (closed later as "interrupted"). */
#include <limits.h>
#include <string.h>

#include "store/store-int.h"

void turn_rows_free(struct turn_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].thread_key);
        free(v[i].user_id);
        free(v[i].sandbox);
        free(v[i].outcome);
        free(v[i].backend);
    }
    free(v);
}

int store_turn_begin(struct store *st, const char *thread_key, const char *user_id,
                     const char *sandbox, int64_t *ret_id, struct jb_err *err)
{
    static const char sql[] = "INSERT INTO turns (thread_key, user_id, sandbox, started_at)"
                              " VALUES (?1, ?2, ?3, ?4) RETURNING id";
    int64_t id = 0;
    if (store_run(
            st, sql,
            &STORE_ARGS(ARG_T(thread_key), ARG_T(user_id), ARG_T(sandbox), ARG_I(jb_now_ms())), &id,
            NULL) < 0)
        return store_fail(st, err, "cannot record a turn of %s", thread_key);
    if (ret_id) *ret_id = id;
    return 0;
}

static int outcome_known(const char *o)
{
    static const char *const known[] = {"ok", "error", "timeout", "cancelled", "no_answer"};
    for (size_t i = 0; o && i < JB_ARRAY_LEN(known); i++)
        if (strcmp(o, known[i]) == 0) return 1;
    return 0;
}

int store_turn_end(struct store *st, int64_t id, const char *outcome, int exit_status,
                   int64_t input_tokens, int64_t output_tokens, struct jb_err *err)
{
    /* A typo here would make the audit unqueryable by outcome; refuse it loudly. */
    if (!outcome_known(outcome))
        return jb_err_set(err, JB_EPROTO,
                          "store: turn outcome must be ok, error, timeout, cancelled or "
                          "no_answer, not %s",
                          outcome ? outcome : "(null)");
    static const char sql[] =
        "UPDATE turns SET ended_at = ?2, outcome = ?3, exit_status = ?4,"
        " duration_ms = ?2 - started_at, input_tokens = ?5, output_tokens = ?6 WHERE id = ?1";
    int64_t n = 0;
    if (store_run(st, sql,
                  &STORE_ARGS(ARG_I(id), ARG_I(jb_now_ms()), ARG_T(outcome), ARG_I(exit_status),
                              ARG_I(input_tokens), ARG_I(output_tokens)),
                  NULL, &n) < 0)
        return store_fail(st, err, "cannot close turn %lld", (long long)id);
    if (n == 0) return jb_err_set(err, JB_ENOTFOUND, "store: no turn %lld", (long long)id);
    return 0;
}

int store_turn_close_stale(struct store *st, struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st,
                  "UPDATE turns SET outcome = 'interrupted', ended_at = ?1,"
                  " duration_ms = ?1 - started_at WHERE ended_at IS NULL",
                  &STORE_ARGS(ARG_I(jb_now_ms())), NULL, &n) < 0)
        return store_fail(st, err, "cannot close interrupted turns");
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* -1 only when out of memory; t is then empty. */
static int turn_from_row(sqlite3_stmt *s, struct turn_row *t)
{
    *t = (struct turn_row){
        .id = sqlite3_column_int64(s, 0),
        .started_at = sqlite3_column_int64(s, 5),
        .ended_at = sqlite3_column_int64(s, 6),
        .duration_ms = sqlite3_column_int64(s, 7),
        .exit_status = sqlite3_column_int(s, 8),
        .exec_ms = sqlite3_column_int64(s, 10),
    };
    if (store_col_dup(s, 1, &t->thread_key) < 0 || store_col_dup(s, 2, &t->user_id) < 0 ||
        store_col_dup(s, 3, &t->sandbox) < 0 || store_col_dup(s, 4, &t->outcome) < 0 ||
        store_col_dup(s, 9, &t->backend) < 0) {
        free(t->thread_key);
        free(t->user_id);
        free(t->sandbox);
        free(t->outcome);
        free(t->backend);
        return -1;
    }
    return 0;
}

int store_turn_list(struct store *st, const char *thread_key, size_t limit, struct turn_row **ret,
                    size_t *ret_n, struct jb_err *err)
{
    /* Two statements rather than "?1 IS NULL OR thread_key = ?1", which defeats the index. */
#define TURN_SELECT                                                                                \
    "SELECT id, thread_key, user_id, sandbox, outcome, started_at, coalesce(ended_at, 0),"         \
    " coalesce(duration_ms, 0), coalesce(exit_status, 0), backend, coalesce(exec_ms, 0)"           \
    " FROM turns"
    const char *sql = thread_key ? TURN_SELECT " WHERE thread_key = ?2 ORDER BY id DESC LIMIT ?1"
                                 : TURN_SELECT " ORDER BY id DESC LIMIT ?1";
#undef TURN_SELECT
    int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    store_autostmt sqlite3_stmt *s = NULL;
    struct store_args args =
        thread_key ? STORE_ARGS(ARG_I(lim), ARG_T(thread_key)) : STORE_ARGS(ARG_I(lim));
    if (store_prepare(st, sql, &args, &s) < 0) return store_fail(st, err, "cannot list turns");
    struct turn_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct turn_row *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv || turn_from_row(s, &nv[n]) < 0) {
            turn_rows_free(nv ? nv : v, n);
            return jb_err_set(err, JB_ENOMEM, "store: listing turns");
        }
        v = nv;
        n++;
    }
    if (rc != SQLITE_DONE) {
        turn_rows_free(v, n);
        return store_fail(st, err, "cannot list turns");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_turn_exec(struct store *st, int64_t id, const char *backend, int64_t exec_ms,
                    struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st, "UPDATE turns SET backend = ?2, exec_ms = ?3 WHERE id = ?1",
                  &STORE_ARGS(ARG_I(id), ARG_T(backend), ARG_I(exec_ms)), NULL, &n) < 0)
        return store_fail(st, err, "cannot record the run of turn %lld", (long long)id);
    return n ? 0 : jb_err_set(err, JB_ENOTFOUND, "store: no turn %lld", (long long)id);
}

/* store/sessions.c -- the sessions table: which agent conversation and sandbox a thread
 * key resumes, and how many turns it has had. */
#include <string.h>

#include "store/store-int.h"

#define SESSION_COLS "thread_key, agent, agent_session_id, sandbox, turns, created_at, last_active"

void session_row_release(struct session_row *r)
{
    if (!r) return;
    free(r->thread_key);
    free(r->agent);
    free(r->agent_session_id);
    free(r->sandbox);
    *r = (struct session_row){0};
}

void session_rows_free(struct session_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        session_row_release(&v[i]);
    free(v);
}

/* -1 only when out of memory; r is then empty. */
static int session_from_row(sqlite3_stmt *s, struct session_row *r)
{
    *r = (struct session_row){
        .turns = sqlite3_column_int64(s, 4),
        .created_at = sqlite3_column_int64(s, 5),
        .last_active = sqlite3_column_int64(s, 6),
    };
    if (store_col_dup(s, 0, &r->thread_key) < 0 || store_col_dup(s, 1, &r->agent) < 0 ||
        store_col_dup(s, 2, &r->agent_session_id) < 0 || store_col_dup(s, 3, &r->sandbox) < 0) {
        session_row_release(r);
        return -1;
    }
    return 0;
}

int store_session_get(struct store *st, const char *thread_key, struct session_row *ret,
                      struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT " SESSION_COLS " FROM sessions WHERE thread_key = ?1",
                      &STORE_ARGS(ARG_T(thread_key)), &s) < 0)
        return store_fail(st, err, "cannot read session %s", thread_key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return jb_err_set(err, JB_ENOTFOUND, "store: no session for %s", thread_key);
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot read session %s", thread_key);
    struct session_row r;
    if (session_from_row(s, &r) < 0)
        return jb_err_set(err, JB_ENOMEM, "store: reading session %s", thread_key);
    *ret = r;
    return 0;
}

int store_session_touch(struct store *st, const char *thread_key, const char *agent,
                        const char *agent_session_id, const char *sandbox, struct jb_err *err)
{
    /* One statement, so concurrent touches of one key cannot lose an increment. A NULL
     * session id keeps the known one: the agent may not repeat it on every turn. */
    static const char sql[] =
        "INSERT INTO sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)"
        " ON CONFLICT (thread_key) DO UPDATE SET agent = excluded.agent,"
        "  agent_session_id = coalesce(excluded.agent_session_id, agent_session_id),"
        "  sandbox = excluded.sandbox, turns = turns + 1, last_active = excluded.last_active";
    int64_t now = jb_now_ms();
    if (store_run(st, sql,
                  &STORE_ARGS(ARG_T(thread_key), ARG_T(agent), ARG_T(agent_session_id),
                              ARG_T(sandbox), ARG_I(now)),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot update session %s", thread_key);
    return 0;
}

/* -1 with JB_ENOTFOUND when the statement matched no session. */
static int session_change(struct store *st, const char *sql, const char *thread_key,
                          const char *verb, struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st, sql, &STORE_ARGS(ARG_T(thread_key)), NULL, &n) < 0)
        return store_fail(st, err, "cannot %s session %s", verb, thread_key);
    if (n == 0) return jb_err_set(err, JB_ENOTFOUND, "store: no session for %s", thread_key);
    return 0;
}

int store_session_clear_id(struct store *st, const char *thread_key, struct jb_err *err)
{
    return session_change(st, "UPDATE sessions SET agent_session_id = NULL WHERE thread_key = ?1",
                          thread_key, "clear", err);
}

int store_session_delete(struct store *st, const char *thread_key, struct jb_err *err)
{
    return session_change(st, "DELETE FROM sessions WHERE thread_key = ?1", thread_key, "delete",
                          err);
}

int store_session_list(struct store *st, struct session_row **ret, size_t *ret_n,
                       struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st,
                      "SELECT " SESSION_COLS " FROM sessions ORDER BY last_active DESC, thread_key",
                      NULL, &s) < 0)
        return store_fail(st, err, "cannot list sessions");
    struct session_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct session_row *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv || session_from_row(s, &nv[n]) < 0) {
            session_rows_free(nv ? nv : v, n);
            return jb_err_set(err, JB_ENOMEM, "store: listing sessions");
        }
        v = nv;
        n++;
    }
    if (rc != SQLITE_DONE) {
        session_rows_free(v, n);
        return store_fail(st, err, "cannot list sessions");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

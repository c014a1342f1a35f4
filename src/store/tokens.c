/* store/tokens.c -- scoped LLM tokens (only their hashes) and token accounting. A token
 * is bound to one thread; every request renews its expiry and adds to the usage of the
 * day (UTC), the user and the thread. */
#include <string.h>
#include <time.h>

#include "store/store-int.h"

int store_token_add(struct store *st, const char *hash, const char *thread_key, const char *user,
                    const char *sandbox, int64_t expires_at, struct jb_err *err)
{
    static const char sql[] = "INSERT INTO llm_tokens (hash, thread_key, user_id, sandbox,"
                              " created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    if (store_run(st, sql,
                  &STORE_ARGS(ARG_T(hash), ARG_T(thread_key), ARG_T(user), ARG_T(sandbox),
                              ARG_I(jb_now_ms()), ARG_I(expires_at)),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot record a token of %s", thread_key);
    return 0;
}

int store_token_check(struct store *st, const char *hash, char **ret_thread, struct jb_err *err)
{
    static const char sql[] =
        "SELECT thread_key, revoked, expires_at FROM llm_tokens WHERE hash = ?1";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_T(hash)), &s) < 0)
        return store_fail(st, err, "cannot check a token");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return jb_err_set(err, JB_ENOTFOUND, "unknown token");
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot check a token");
    if (sqlite3_column_int(s, 1)) return jb_err_set(err, JB_EDENIED, "the token was revoked");
    if (sqlite3_column_int64(s, 2) < jb_now_ms())
        return jb_err_set(err, JB_EDENIED, "the token expired");
    if (store_col_dup(s, 0, ret_thread) < 0) return jb_err_set(err, JB_ENOMEM, "token");
    return 0;
}

static void utc_day(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    strftime(out, 11, "%Y-%m-%d", gmtime_r(&now, &tm));
}

int store_llm_request_add(struct store *st, const char *hash, const struct llm_request_use *u,
                          int64_t expires_at, struct jb_err *err)
{
    static const char tok[] = "UPDATE llm_tokens SET last_used = ?2, expires_at = ?3,"
                              " input_tokens = input_tokens + ?4,"
                              " output_tokens = output_tokens + ?5 WHERE hash = ?1";
    static const char req[] =
        "INSERT INTO llm_requests (at, day, user_id, thread_key, provider, model, status,"
        " input_tokens, cache_write_tokens, cache_read_tokens, output_tokens)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    char day[11];
    utc_day(day);
    int64_t now = jb_now_ms(), prompt = u->t.input + u->t.cache_write + u->t.cache_read;
    if (store_run(st, tok,
                  &STORE_ARGS(ARG_T(hash), ARG_I(now), ARG_I(expires_at), ARG_I(prompt),
                              ARG_I(u->t.output)),
                  NULL, NULL) < 0 ||
        store_run(st, req,
                  &STORE_ARGS(ARG_I(now), ARG_T(day), ARG_T(u->user ? u->user : "?"),
                              ARG_T(u->thread_key), ARG_T(u->provider),
                              ARG_T(u->model ? u->model : ""), ARG_I(u->status), ARG_I(u->t.input),
                              ARG_I(u->t.cache_write), ARG_I(u->t.cache_read), ARG_I(u->t.output)),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot record token usage of %s", u->thread_key);
    return 0;
}

int store_token_revoke(struct store *st, const char *hash, const char *thread_key,
                       struct jb_err *err)
{
    int64_t n = 0;
    int rc =
        hash ? store_run(st, "UPDATE llm_tokens SET revoked = 1 WHERE hash = ?1 AND revoked = 0",
                         &STORE_ARGS(ARG_T(hash)), NULL, &n)
             : store_run(st,
                         "UPDATE llm_tokens SET revoked = 1 WHERE thread_key = ?1 AND revoked = 0",
                         &STORE_ARGS(ARG_T(thread_key)), NULL, &n);
    if (rc < 0) return store_fail(st, err, "cannot revoke tokens");
    return (int)n;
}

void token_rows_free(struct token_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].thread_key);
        free(v[i].user_id);
        free(v[i].sandbox);
    }
    free(v);
}

int store_token_list(struct store *st, struct token_row **ret, size_t *ret_n, struct jb_err *err)
{
    static const char sql[] = "SELECT thread_key, user_id, sandbox, created_at, expires_at,"
                              " last_used, revoked, input_tokens, output_tokens FROM llm_tokens"
                              " ORDER BY created_at DESC LIMIT 1000";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, NULL, &s) < 0) return store_fail(st, err, "cannot list tokens");
    struct token_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct token_row *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv) break;
        v = nv;
        struct token_row *r = &v[n];
        *r = (struct token_row){.created_at = sqlite3_column_int64(s, 3),
                                .expires_at = sqlite3_column_int64(s, 4),
                                .last_used = sqlite3_column_int64(s, 5),
                                .revoked = sqlite3_column_int(s, 6),
                                .input_tokens = sqlite3_column_int64(s, 7),
                                .output_tokens = sqlite3_column_int64(s, 8)};
        n++;
        if (store_col_dup(s, 0, &r->thread_key) < 0 || store_col_dup(s, 1, &r->user_id) < 0 ||
            store_col_dup(s, 2, &r->sandbox) < 0)
            break;
    }
    if (rc != SQLITE_DONE) {
        token_rows_free(v, n);
        return rc == SQLITE_ROW ? jb_err_set(err, JB_ENOMEM, "token list")
                                : store_fail(st, err, "cannot list tokens");
    }
    *ret = v, *ret_n = n;
    return 0;
}

int store_usage_today(struct store *st, const char *user, int64_t *ret_total, struct jb_err *err)
{
    static const char sql[] = "SELECT COALESCE(SUM(input_tokens + cache_write_tokens"
                              " + cache_read_tokens + output_tokens), 0)"
                              " FROM llm_requests WHERE day = ?1 AND user_id = ?2";
    char day[11];
    utc_day(day);
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_T(day), ARG_T(user)), &s) < 0 ||
        sqlite3_step(s) != SQLITE_ROW)
        return store_fail(st, err, "cannot read today's usage");
    *ret_total = sqlite3_column_int64(s, 0);
    return 0;
}

void usage_rows_free(struct usage_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].user_id);
        free(v[i].thread_key);
        free(v[i].model);
    }
    free(v);
}

int store_usage_list(struct store *st, const char *since, struct usage_row **ret, size_t *ret_n,
                     struct jb_err *err)
{
    static const char sql[] =
        "SELECT user_id, thread_key, model, SUM(input_tokens), SUM(cache_write_tokens),"
        " SUM(cache_read_tokens), SUM(output_tokens), SUM(requests) FROM llm_requests"
        " WHERE day >= ?1 GROUP BY user_id, thread_key, model ORDER BY SUM(input_tokens"
        " + cache_write_tokens + cache_read_tokens + output_tokens) DESC, user_id, thread_key,"
        " model";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_T(since ? since : "")), &s) < 0)
        return store_fail(st, err, "cannot read usage");
    struct usage_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct usage_row *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv) break;
        v = nv;
        v[n] = (struct usage_row){.t = {.input = sqlite3_column_int64(s, 3),
                                        .cache_write = sqlite3_column_int64(s, 4),
                                        .cache_read = sqlite3_column_int64(s, 5),
                                        .output = sqlite3_column_int64(s, 6)},
                                  .requests = sqlite3_column_int64(s, 7)};
        n++;
        if (store_col_dup(s, 0, &v[n - 1].user_id) < 0 ||
            store_col_dup(s, 1, &v[n - 1].thread_key) < 0 ||
            store_col_dup(s, 2, &v[n - 1].model) < 0)
            break;
    }
    if (rc != SQLITE_DONE) {
        usage_rows_free(v, n);
        return rc == SQLITE_ROW ? jb_err_set(err, JB_ENOMEM, "usage list")
                                : store_fail(st, err, "cannot read usage");
    }
    *ret = v, *ret_n = n;
    return 0;
}

/* One row per request keeps each request's model and status for a month; older days
 * need only their totals: their rows become one per user, thread, provider and model. */
int store_llm_requests_fold(struct store *st, const char *before, struct jb_err *err)
{
    static const char fold[] =
        "CREATE TEMP TABLE IF NOT EXISTS llm_fold AS SELECT * FROM llm_requests WHERE 0;"
        "DELETE FROM temp.llm_fold;"
        "INSERT INTO temp.llm_fold (at, day, user_id, thread_key, provider, model, status,"
        " input_tokens, cache_write_tokens, cache_read_tokens, output_tokens, requests)"
        " SELECT MIN(at), day, user_id, thread_key, provider, model, 0, SUM(input_tokens),"
        " SUM(cache_write_tokens), SUM(cache_read_tokens), SUM(output_tokens), SUM(requests)"
        " FROM llm_requests WHERE day < ?1"
        " GROUP BY day, user_id, thread_key, provider, model HAVING COUNT(*) > 1;"
        "DELETE FROM llm_requests WHERE day < ?1 AND (day, user_id, thread_key, provider, model)"
        " IN (SELECT day, user_id, thread_key, provider, model FROM temp.llm_fold);"
        "INSERT INTO llm_requests (at, day, user_id, thread_key, provider, model, status,"
        " input_tokens, cache_write_tokens, cache_read_tokens, output_tokens, requests)"
        " SELECT at, day, user_id, thread_key, provider, model, status, input_tokens,"
        " cache_write_tokens, cache_read_tokens, output_tokens, requests FROM temp.llm_fold;";
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot fold old LLM usage");
    int rc = 0;
    for (const char *sql = fold; rc == 0 && *sql;) {
        sqlite3_stmt *s = NULL;
        const char *tail = NULL;
        if (sqlite3_prepare_v2(st->db, sql, -1, &s, &tail) != SQLITE_OK) rc = -1;
        if (s && sqlite3_bind_parameter_count(s) > 0 &&
            sqlite3_bind_text(s, 1, before, -1, SQLITE_STATIC) != SQLITE_OK)
            rc = -1;
        if (s && rc == 0 && sqlite3_step(s) != SQLITE_DONE) rc = -1;
        sqlite3_finalize(s);
        sql = tail ? tail : "";
        while (*sql == ' ')
            sql++;
    }
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = -1;
    if (rc < 0) {
        store_fail(st, err, "cannot fold old LLM usage");
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

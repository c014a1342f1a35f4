/* store/approvals.c -- the approvals audit (who decided what about which tool, when) and
 * the tools a thread allowed for good ("Allow for this thread"), which outlive restarts
 * and go with the thread's sandbox (store_allow_forget()). */
#include "store/store-int.h"

int store_approval_add(struct store *st, const struct approval_row *r, struct jb_err *err)
{
    if (store_run(st,
                  "INSERT INTO approvals (thread_key, requester, tool, input_sha256, answer,"
                  " decided_by, reason, asked_at, decided_at, domain)"
                  " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                  &STORE_ARGS(ARG_T(r->thread_key), ARG_T(r->requester), ARG_T(r->tool),
                              ARG_T(r->input_sha256), ARG_T(r->answer), ARG_T(r->decided_by),
                              ARG_T(r->reason), ARG_I(r->asked_at), ARG_I(r->decided_at),
                              ARG_T(r->domain)),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot record the approval in %s", r->thread_key);
    return 0;
}

int store_approval_count(struct store *st, const char *thread_key, int64_t *ret, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT COUNT(*) FROM approvals WHERE thread_key = ?1",
                      &STORE_ARGS(ARG_T(thread_key)), &s) < 0 ||
        sqlite3_step(s) != SQLITE_ROW)
        return store_fail(st, err, "cannot count the approvals of %s", thread_key);
    *ret = sqlite3_column_int64(s, 0);
    return 0;
}

int store_allow_add(struct store *st, const char *thread_key, const char *tool, const char *by,
                    struct jb_err *err)
{
    if (store_run(st,
                  "INSERT INTO approval_allow (thread_key, tool, allowed_by, allowed_at)"
                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (thread_key, tool) DO UPDATE SET"
                  " allowed_by = excluded.allowed_by, allowed_at = excluded.allowed_at",
                  &STORE_ARGS(ARG_T(thread_key), ARG_T(tool), ARG_T(by), ARG_I(jb_now_ms())), NULL,
                  NULL) < 0)
        return store_fail(st, err, "cannot allow %s in %s", tool, thread_key);
    return 0;
}

int store_allow_has(struct store *st, const char *thread_key, const char *tool, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT 1 FROM approval_allow WHERE thread_key = ?1 AND tool = ?2",
                      &STORE_ARGS(ARG_T(thread_key), ARG_T(tool)), &s) < 0)
        return store_fail(st, err, "cannot read the allowances of %s", thread_key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return store_fail(st, err, "cannot read the allowances of %s", thread_key);
}

int store_allow_forget(struct store *st, const char *thread_key, struct jb_err *err)
{
    if (store_run(st, "DELETE FROM approval_allow WHERE thread_key = ?1",
                  &STORE_ARGS(ARG_T(thread_key)), NULL, NULL) < 0 ||
        store_run(st, "DELETE FROM egress_allow WHERE thread_key = ?1",
                  &STORE_ARGS(ARG_T(thread_key)), NULL, NULL) < 0 ||
        store_run(st, "DELETE FROM approvals WHERE thread_key = ?1", &STORE_ARGS(ARG_T(thread_key)),
                  NULL, NULL) < 0)
        return store_fail(st, err, "cannot forget the approvals of %s", thread_key);
    return 0;
}

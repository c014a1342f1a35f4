/* store/retention.c -- what the store forgets, once a day (store_retention_run(), called
 * from the daily gc). Rows that only say what happened go once they are older than the
 * window; rows something still depends on stay:
 *   slack_events  dedupe of redeliveries: kept for the window, and never less than
 *                 STORE_EVENTS_MIN_DAYS (Slack redelivers for minutes to hours);
 *   inbox         pending rows always (their turn has not run); done or failed ones go;
 *   turns         running ones always; ended ones go;
 *   llm_tokens    one per exec: unexpired and unrevoked ones always (a turn may use it);
 *                 expired or revoked ones go once their last use left the window;
 *   llm_requests  per-request rows are folded into one per day, user, thread, provider and
 *                 model after the window (the totals `janebot usage` reports stay); those
 *                 daily rows go after STORE_USAGE_KEEP_DAYS;
 *   approvals     decided ones go (allowances for a thread stay with its sandbox).
 * sessions, rate buckets, sandbox names, the pool and uids are state, not history: their
 * own code removes them. */
#include <time.h>

#include "store/store-int.h"

#define DAY_MS (86400 * (int64_t)1000)

/* "YYYY-MM-DD" (UTC) of now_ms minus days. */
static void day_before(int64_t now_ms, int days, char out[11])
{
    time_t t = (time_t)(now_ms / 1000) - (time_t)days * 86400;
    struct tm tm;
    strftime(out, 11, "%Y-%m-%d", gmtime_r(&t, &tm));
}

/* One DELETE; its count added to *n. */
static int forget(struct store *st, const char *sql, int64_t cutoff, int64_t *n, struct jb_err *err,
                  const char *what)
{
    int64_t changed = 0;
    if (store_run(st, sql, &STORE_ARGS(ARG_I(cutoff)), NULL, &changed) < 0)
        return store_fail(st, err, "retention: %s", what);
    *n += changed;
    return 0;
}

static int forget_usage(struct store *st, int64_t now_ms, int days, struct store_retention *r,
                        struct jb_err *err)
{
    char before[11];
    day_before(now_ms, days, before);
    if (store_llm_requests_fold(st, before, err) < 0) return -1;
    day_before(now_ms, days > STORE_USAGE_KEEP_DAYS ? days : STORE_USAGE_KEEP_DAYS, before);
    int64_t changed = 0;
    if (store_run(st, "DELETE FROM llm_requests WHERE day < ?1", &STORE_ARGS(ARG_T(before)), NULL,
                  &changed) < 0)
        return store_fail(st, err, "retention: LLM usage");
    r->usage += changed;
    return 0;
}

static int run(struct store *st, int64_t now_ms, int days, struct store_retention *ret,
               struct jb_err *err)
{
    struct store_retention r = {0};
    if (ret) *ret = r;
    if (days <= 0) { /* keep everything; per-request usage is still folded: it loses nothing */
        char before[11];
        day_before(now_ms, STORE_USAGE_FOLD_DAYS, before);
        return store_llm_requests_fold(st, before, err);
    }
    int ev_days = days > STORE_EVENTS_MIN_DAYS ? days : STORE_EVENTS_MIN_DAYS;
    int64_t cutoff = now_ms - days * DAY_MS;
    if (forget(st, "DELETE FROM slack_events WHERE received_at < ?1", now_ms - ev_days * DAY_MS,
               &r.events, err, "Slack events") < 0 ||
        forget(st,
               "DELETE FROM inbox WHERE state IN ('done', 'failed') AND"
               " COALESCE(finished_at, received_at) < ?1",
               cutoff, &r.inbox, err, "finished inbox messages") < 0 ||
        forget(st, "DELETE FROM turns WHERE ended_at IS NOT NULL AND ended_at < ?1", cutoff,
               &r.turns, err, "turns") < 0 ||
        forget(st,
               "DELETE FROM llm_tokens" /* expired before the cutoff, so no longer valid */
               " WHERE MAX(created_at, expires_at, COALESCE(last_used, 0)) < ?1",
               cutoff, &r.tokens, err, "LLM tokens") < 0 ||
        forget(st, "DELETE FROM approvals WHERE decided_at < ?1", cutoff, &r.approvals, err,
               "approval decisions") < 0 ||
        forget_usage(st, now_ms, days, &r, err) < 0)
        return -1;
    if (ret) *ret = r;
    return 0;
}

int store_retention_run(struct store *st, int64_t now_ms, int days, struct store_retention *ret,
                        struct jb_err *err)
{
    struct store_retention r = {0};
    struct jb_err e = {0};
    if (run(st, now_ms, days, &r, &e) < 0) {
        log_warn("store: retention: %s", e.msg);
        if (err) *err = e;
        return -1;
    }
    if (r.events || r.inbox || r.turns || r.tokens || r.usage || r.approvals)
        log_info("store: retention (%d days): forgot %lld Slack event ids, %lld finished "
                 "messages, %lld turns, %lld LLM tokens, %lld daily usage rows, %lld approval "
                 "decisions",
                 days, (long long)r.events, (long long)r.inbox, (long long)r.turns,
                 (long long)r.tokens, (long long)r.usage, (long long)r.approvals);
    if (ret) *ret = r;
    return 0;
}

/* tests/unit/test_store_retention.c -- store/retention.c on a temporary database: rows
 * older than the window go, recent ones and those still in use stay, and dedupe still
 * knows a recent Slack event. Old rows are made by backdating their times with SQL. */
#include <criterion/criterion.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define DAY (86400 * (int64_t)1000)

static char dir[PATH_MAX], db[PATH_MAX + 16];
static struct store *st;
static sqlite3 *raw;
static int64_t now;

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-retention-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/janebot.db", dir);
    struct jb_err err = {0};
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(sqlite3_open(db, &raw), SQLITE_OK);
    now = jb_now_ms();
}

static void teardown(void)
{
    sqlite3_close(raw);
    store_close(st);
    jb_rm_rf(dir, NULL);
}

TestSuite(retention, .init = setup, .fini = teardown);

static void sql(const char *fmt, ...)
{
    char q[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(raw, q, NULL, NULL, &msg), SQLITE_OK, "%s: %s", q, msg);
}

static long long count(const char *q)
{
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(raw, q, -1, &s, NULL), SQLITE_OK, "%s", q);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    long long n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void event(const char *id, int64_t age)
{
    struct jb_err err = {0};
    cr_assert_eq(store_event_seen(st, id, id, &err), 0, "%s", err.msg);
    sql("UPDATE slack_events SET received_at = %lld WHERE event_id = '%s'", (long long)(now - age),
        id);
}

static int64_t inbox(const char *text, int64_t age, const char *finished)
{
    struct jb_err err = {0};
    int64_t id;
    cr_assert_eq(store_inbox_add(st, "T1", "U1", text, NULL, NULL, &id, &err), 0, "%s", err.msg);
    if (finished) cr_assert_eq(store_inbox_finish(st, id, finished, &err), 0, "%s", err.msg);
    sql("UPDATE inbox SET received_at = %lld, finished_at = CASE WHEN finished_at IS NULL THEN"
        " NULL ELSE %lld END WHERE id = %lld",
        (long long)(now - age), (long long)(now - age), (long long)id);
    return id;
}

static int64_t turn(int64_t age, int ended)
{
    struct jb_err err = {0};
    int64_t id;
    cr_assert_eq(store_turn_begin(st, "T1", "U1", "sb", &id, &err), 0, "%s", err.msg);
    if (ended) cr_assert_eq(store_turn_end(st, id, "ok", 0, 1, 1, &err), 0, "%s", err.msg);
    sql("UPDATE turns SET started_at = %lld, ended_at = CASE WHEN ended_at IS NULL THEN NULL"
        " ELSE %lld END WHERE id = %lld",
        (long long)(now - age), (long long)(now - age), (long long)id);
    return id;
}

static void token(const char *hash, int64_t created_age, int64_t expires_in, int revoked)
{
    struct jb_err err = {0};
    cr_assert_eq(store_token_add(st, hash, "T1", "U1", "sb", now + expires_in, &err), 0, "%s",
                 err.msg);
    if (revoked) cr_assert_eq(store_token_revoke(st, hash, NULL, &err), 1, "%s", err.msg);
    sql("UPDATE llm_tokens SET created_at = %lld WHERE hash = '%s'", (long long)(now - created_age),
        hash);
}

static void usage_row(int days_ago, long long input)
{
    char day[11];
    time_t t = (time_t)(now / 1000) - days_ago * 86400;
    struct tm tm;
    strftime(day, sizeof day, "%Y-%m-%d", gmtime_r(&t, &tm));
    sql("INSERT INTO llm_requests (at, day, user_id, thread_key, provider, model, input_tokens)"
        " VALUES (%lld, '%s', 'U1', 'T1', 'anthropic', 'm', %lld)",
        (long long)(now - days_ago * DAY), day, input);
}

Test(retention, old_history_goes_and_what_is_in_use_stays)
{
    event("EvOLD", 40 * DAY);
    event("EvNEW", 2 * 3600 * 1000);
    inbox("old done", 40 * DAY, "done");
    inbox("old failed", 40 * DAY, "failed");
    int64_t pending = inbox("old pending", 40 * DAY, NULL);
    int64_t recent = inbox("recent done", 1 * DAY, "done");
    turn(40 * DAY, 1);
    int64_t running = turn(40 * DAY, 0);
    int64_t recent_turn = turn(2 * DAY, 1);
    token("h-old-expired", 40 * DAY, -39 * DAY, 0);
    token("h-old-revoked", 40 * DAY, -35 * DAY, 1);
    token("h-old-but-live", 40 * DAY, 3600 * 1000, 0);
    token("h-recent-revoked", 1 * DAY, 3600 * 1000, 1);
    usage_row(40, 10);
    usage_row(40, 5);
    usage_row(500, 7);
    usage_row(1, 3);
    usage_row(1, 4);

    struct store_retention r;
    struct jb_err err = {0};
    cr_assert_eq(store_retention_run(st, now, 30, &r, &err), 0, "%s", err.msg);

    cr_expect_eq(r.events, 1);
    cr_expect_eq(count("SELECT COUNT(*) FROM slack_events WHERE event_id = 'EvNEW'"), 1);
    cr_expect_eq(r.inbox, 2);
    cr_expect_eq(count("SELECT COUNT(*) FROM inbox"), 2);
    char q[128];
    snprintf(q, sizeof q, "SELECT COUNT(*) FROM inbox WHERE id IN (%lld, %lld)", (long long)pending,
             (long long)recent);
    cr_expect_eq(count(q), 2, "the pending message and the recent one stay");
    cr_expect_eq(r.turns, 1);
    snprintf(q, sizeof q, "SELECT COUNT(*) FROM turns WHERE id IN (%lld, %lld)", (long long)running,
             (long long)recent_turn);
    cr_expect_eq(count(q), 2, "the running turn and the recent one stay");
    cr_expect_eq(count("SELECT COUNT(*) FROM turns"), 2);
    cr_expect_eq(r.tokens, 2);
    cr_expect_eq(count("SELECT COUNT(*) FROM llm_tokens WHERE hash IN ('h-old-but-live',"
                       " 'h-recent-revoked')"),
                 2);
    char *thread = NULL;
    cr_expect_eq(store_token_check(st, "h-old-but-live", &thread, &err), 0, "%s", err.msg);
    free(thread);
    /* Usage: the two rows of 40 days ago are one now (totals kept), the 500-day one is gone,
     * recent ones are untouched. */
    cr_expect_eq(count("SELECT COUNT(*) FROM llm_requests"), 3);
    cr_expect_eq(count("SELECT SUM(input_tokens) FROM llm_requests"), 22);
    cr_expect_eq(count("SELECT MAX(requests) FROM llm_requests"), 2);
    cr_expect_eq(r.usage, 1);

    /* Dedupe still works for the recent event; the forgotten one is unknown. */
    cr_expect_eq(store_event_seen(st, "EvNEW", "EvNEW", &err), 1);
    cr_expect_eq(store_event_known(st, "EvOLD", "EvOLD", &err), 0);
}

Test(retention, event_ids_outlive_a_short_window)
{
    event("Ev3DAYS", 3 * DAY);
    event("Ev8DAYS", 8 * DAY);
    inbox("two days old", 2 * DAY, "done");
    struct store_retention r;
    struct jb_err err = {0};
    cr_assert_eq(store_retention_run(st, now, 1, &r, &err), 0, "%s", err.msg);
    cr_expect_eq(r.inbox, 1, "a window of one day");
    cr_expect_eq(r.events, 1, "event ids are kept %d days whatever the window",
                 STORE_EVENTS_MIN_DAYS);
    cr_expect_eq(store_event_known(st, "Ev3DAYS", "Ev3DAYS", &err), 1);
}

Test(retention, zero_days_keeps_everything)
{
    event("EvOLD", 400 * DAY);
    inbox("old done", 400 * DAY, "done");
    turn(400 * DAY, 1);
    usage_row(500, 7);
    usage_row(40, 1);
    usage_row(40, 2);
    struct store_retention r;
    struct jb_err err = {0};
    cr_assert_eq(store_retention_run(st, now, 0, &r, &err), 0, "%s", err.msg);
    cr_expect(r.events == 0 && r.inbox == 0 && r.turns == 0 && r.tokens == 0 && r.usage == 0);
    cr_expect_eq(count("SELECT COUNT(*) FROM slack_events"), 1);
    cr_expect_eq(count("SELECT COUNT(*) FROM inbox"), 1);
    cr_expect_eq(count("SELECT COUNT(*) FROM turns"), 1);
    cr_expect_eq(count("SELECT COUNT(*) FROM llm_requests"), 2, "folded, not deleted");
    cr_expect_eq(count("SELECT SUM(input_tokens) FROM llm_requests"), 10);
}

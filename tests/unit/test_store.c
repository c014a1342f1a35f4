/* tests/unit/test_store.c -- store/: schema and migrations, sessions, inbox, turn audit,
 * and concurrent writers on separate connections. Each test has its own temp dir. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "store/store.h"

static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 16];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL); /* migrations log at info: keep test output readable */
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/janebot-store-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
    snprintf(dbpath, sizeof dbpath, "%s/janebot.db", tmpdir);
}

static void teardown(void)
{
    struct jb_err err = {0};
    cr_expect_eq(jb_rm_rf(tmpdir, &err), 0, "rm -rf %s: %s", tmpdir, err.msg);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct store *open_ok(void)
{
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(dbpath, &st, &err), 0, "store_open: %s", err.msg);
    cr_assert_not_null(st);
    return st;
}

/* Runs sql on a separate raw connection, as another program would. */
static void raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- schema ---- */

Test(store, open_creates_the_current_schema)
{
    struct store *st = open_ok();
    cr_assert_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
    cr_assert_eq(STORE_SCHEMA_VERSION, 10);
    struct stat sb;
    cr_assert_eq(stat(dbpath, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", (unsigned)(sb.st_mode & 0777));
    char wal[sizeof dbpath + 8];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    cr_assert_eq(stat(wal, &sb), 0, "WAL file %s", wal);
    cr_assert_eq(sb.st_mode & 0777, 0600, "WAL mode %o", (unsigned)(sb.st_mode & 0777));
    store_close(st);

    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                    "('sessions', 'inbox', 'turns', 'inbox_state', 'turns_thread')",
                                    -1, &s, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(s, 0), 5);
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

Test(store, reopen_is_idempotent)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    cr_assert_eq(store_session_touch(st, "chat:x", "amp", "T-1", "local", &err), 0, "%s", err.msg);
    store_close(st);
    for (int i = 0; i < 3; i++) {
        st = open_ok();
        cr_assert_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
        struct session_row r;
        cr_assert_eq(store_session_get(st, "chat:x", &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.turns, 1);
        session_row_release(&r);
        store_close(st);
    }
}

Test(store, refuses_newer_database)
{
    raw_exec("CREATE TABLE future (x); PRAGMA user_version = 99");
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(dbpath, &st, &err), -1);
    cr_assert_null(st, "*ret must stay untouched on failure");
    cr_assert_eq(err.code, JB_ECONFIG, "got %s: %s", jb_strerror(err.code), err.msg);
    cr_assert_not_null(strstr(err.msg, "schema version 99"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "only up to 10"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, dbpath), "%s", err.msg);

    /* Refused untouched: still in rollback-journal mode, as the newer janebot left it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "delete");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

Test(store, refuses_a_file_that_is_not_a_database)
{
    FILE *f = fopen(dbpath, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 100; i++)
        fputs("this is not a database\n", f);
    fclose(f);
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(dbpath, &st, &err), -1);
    cr_assert_null(st);
    cr_assert_eq(err.code, JB_ESYS, "got %s: %s", jb_strerror(err.code), err.msg);
    cr_assert_not_null(strstr(err.msg, "not a database"), "%s", err.msg);
}

Test(store, tightens_a_world_readable_file)
{
    raw_exec("PRAGMA user_version = 0");
    cr_assert_eq(chmod(dbpath, 0644), 0);
    struct store *st = open_ok();
    struct stat sb;
    cr_assert_eq(stat(dbpath, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", (unsigned)(sb.st_mode & 0777));
    store_close(st);
}

Test(store, refuses_a_symlink)
{
    char target[PATH_MAX + 16];
    snprintf(target, sizeof target, "%s/real.db", tmpdir);
    cr_assert_eq(symlink(target, dbpath), 0);
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(dbpath, &st, &err), -1);
    cr_assert_null(st);
    cr_assert_eq(err.code, JB_ECONFIG, "%s", err.msg);
    cr_assert_eq(access(target, F_OK), -1, "the link target must not be created");
}

Test(store, database_fds_are_close_on_exec)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    cr_assert_eq(store_session_touch(st, "k", "amp", NULL, "local", &err), 0); /* WAL files */
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char link[PATH_MAX], target[PATH_MAX] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0 || strncmp(target, tmpdir, strlen(tmpdir)) != 0) continue;
        int flags = fcntl(atoi(e->d_name), F_GETFD);
        cr_expect(flags >= 0 && (flags & FD_CLOEXEC), "%s lacks FD_CLOEXEC", target);
        seen++;
    }
    closedir(d);
    cr_assert_geq(seen, 1, "no open database file found");
    store_close(st);
}

/* ---- sessions ---- */

Test(store, session_touch_creates_and_counts)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    int64_t t0 = jb_now_ms();
    cr_assert_eq(store_session_touch(st, "chat:x", "amp", "T-1", "local", &err), 0, "%s", err.msg);
    struct session_row r;
    cr_assert_eq(store_session_get(st, "chat:x", &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.thread_key, "chat:x");
    cr_assert_str_eq(r.agent, "amp");
    cr_assert_str_eq(r.agent_session_id, "T-1");
    cr_assert_str_eq(r.sandbox, "local");
    cr_assert_eq(r.turns, 1);
    cr_assert_geq(r.created_at, t0);
    cr_assert_eq(r.created_at, r.last_active);
    int64_t created = r.created_at;
    session_row_release(&r);

    sleep_ms(2);
    /* NULL keeps the known session id; agent and sandbox are replaced. */
    cr_assert_eq(store_session_touch(st, "chat:x", "claude", NULL, "host", &err), 0, "%s", err.msg);
    cr_assert_eq(store_session_get(st, "chat:x", &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.turns, 2);
    cr_assert_str_eq(r.agent_session_id, "T-1");
    cr_assert_str_eq(r.agent, "claude");
    cr_assert_str_eq(r.sandbox, "host");
    cr_assert_eq(r.created_at, created);
    cr_assert_gt(r.last_active, created);
    session_row_release(&r);

    cr_assert_eq(store_session_clear_id(st, "chat:x", &err), 0, "%s", err.msg);
    cr_assert_eq(store_session_get(st, "chat:x", &r, &err), 0, "%s", err.msg);
    cr_assert_null(r.agent_session_id);
    cr_assert_eq(r.turns, 2, "clearing the id keeps the row");
    session_row_release(&r);

    cr_assert_eq(store_session_touch(st, "chat:x", "claude", "T-2", "host", &err), 0);
    cr_assert_eq(store_session_get(st, "chat:x", &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.agent_session_id, "T-2");
    cr_assert_eq(r.turns, 3);
    session_row_release(&r);
    store_close(st);
}

Test(store, session_missing_is_not_found)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    struct session_row r = {.turns = 42};
    cr_assert_eq(store_session_get(st, "nope", &r, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND, "got %s: %s", jb_strerror(err.code), err.msg);
    cr_assert_eq(r.turns, 42, "*ret must stay untouched");
    err = (struct jb_err){0};
    cr_assert_eq(store_session_clear_id(st, "nope", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    err = (struct jb_err){0};
    cr_assert_eq(store_session_delete(st, "nope", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);

    cr_assert_eq(store_session_touch(st, "yes", "amp", NULL, "local", &err), 0);
    cr_assert_eq(store_session_delete(st, "yes", &err), 0, "%s", err.msg);
    cr_assert_eq(store_session_get(st, "yes", &r, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    store_close(st);
}

Test(store, session_list_newest_first)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    struct session_row *v = NULL;
    size_t n = 99;
    cr_assert_eq(store_session_list(st, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    session_rows_free(v, n);

    const char *order[] = {"a", "b", "c", "a"};
    for (size_t i = 0; i < JB_ARRAY_LEN(order); i++) {
        cr_assert_eq(store_session_touch(st, order[i], "amp", NULL, "local", &err), 0);
        sleep_ms(3);
    }
    cr_assert_eq(store_session_list(st, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0].thread_key, "a");
    cr_assert_eq(v[0].turns, 2);
    cr_assert_str_eq(v[1].thread_key, "c");
    cr_assert_str_eq(v[2].thread_key, "b");
    session_rows_free(v, n);
    store_close(st);
}

Test(store, sqlite_errors_carry_sqlites_message)
{
    struct store *st = open_ok();
    raw_exec("DROP TABLE sessions");
    struct jb_err err = {0};
    cr_assert_eq(store_session_touch(st, "chat:x", "amp", NULL, "local", &err), -1);
    cr_assert_eq(err.code, JB_ESYS, "got %s", jb_strerror(err.code));
    cr_assert_str_eq(err.msg, "store: cannot update session chat:x: no such table: sessions");
    store_close(st);
}

/* ---- inbox ---- */

static size_t pending_count(struct store *st, const char *prefix, struct inbox_msg **keep)
{
    struct jb_err err = {0};
    struct inbox_msg *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_inbox_pending(st, prefix, &v, &n, &err), 0, "%s", err.msg);
    if (keep)
        *keep = v;
    else
        inbox_msgs_free(v, n);
    return n;
}

Test(store, inbox_add_pending_finish)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    const char *keys[] = {"C1:1", "C1:2", "C2:1", "C_1:x", "C%1:y", "Cx1:z"};
    int64_t ids[JB_ARRAY_LEN(keys)];
    int64_t t0 = jb_now_ms();
    for (size_t i = 0; i < JB_ARRAY_LEN(keys); i++) {
        cr_assert_eq(
            store_inbox_add(st, keys[i], "U1", "hello 'world' %s", NULL, NULL, &ids[i], &err), 0,
            "%s", err.msg);
        if (i) cr_assert_gt(ids[i], ids[i - 1]);
    }
    struct inbox_msg *v = NULL;
    size_t n = pending_count(st, "", &v);
    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(v[i].id, ids[i], "oldest first");
        cr_assert_str_eq(v[i].thread_key, keys[i]);
        cr_assert_str_eq(v[i].user_id, "U1");
        cr_assert_str_eq(v[i].text, "hello 'world' %s");
        cr_assert_geq(v[i].received_at, t0);
    }
    inbox_msgs_free(v, n);

    cr_assert_eq(pending_count(st, NULL, NULL), 6, "NULL prefix means all");
    cr_assert_eq(pending_count(st, "C1:", NULL), 2);
    /* '_' and '%' are literal, not LIKE wildcards. */
    cr_assert_eq(pending_count(st, "C_", &v), 1);
    cr_assert_str_eq(v[0].thread_key, "C_1:x");
    inbox_msgs_free(v, 1);
    cr_assert_eq(pending_count(st, "C%", &v), 1);
    cr_assert_str_eq(v[0].thread_key, "C%1:y");
    inbox_msgs_free(v, 1);
    cr_assert_eq(pending_count(st, "C_1:x-longer", NULL), 0);

    cr_assert_eq(store_inbox_finish(st, ids[0], "done", &err), 0, "%s", err.msg);
    cr_assert_eq(store_inbox_finish(st, ids[1], "failed", &err), 0, "%s", err.msg);
    cr_assert_eq(pending_count(st, "C1:", NULL), 0);
    cr_assert_eq(pending_count(st, "", NULL), 4);

    cr_assert_eq(store_inbox_finish(st, ids[2], "pending", &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_eq(store_inbox_finish(st, 999999, "done", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND, "%s", err.msg);
    store_close(st);
}

/* What a turn reads when it starts: the lanes queue only a message's id. */
Test(store, inbox_get_reads_one_pending_message_whole)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    int64_t a, b;
    static const char files[] = "[{\"name\":\"a.txt\",\"url\":\"https://files.example.com/a\"}]";
    cr_assert_eq(store_inbox_add(st, "C1:1", "U1", "first", "C1:1.5", files, &a, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_inbox_add(st, "C1:2", "U2", "second", NULL, NULL, &b, &err), 0);
    struct inbox_msg m;
    cr_assert_eq(store_inbox_get(st, a, &m, &err), 0, "%s", err.msg);
    cr_expect_eq(m.id, a);
    cr_expect_str_eq(m.thread_key, "C1:1");
    cr_expect_str_eq(m.user_id, "U1");
    cr_expect_str_eq(m.text, "first");
    cr_expect_str_eq(m.ref, "C1:1.5");
    cr_expect_str_eq(m.files, files);
    cr_expect_eq(m.answering, 0);
    inbox_msg_release(&m);
    cr_expect_null(m.text, "released and zeroed");

    cr_assert_eq(store_inbox_answering(st, b, &err), 0, "%s", err.msg);
    cr_assert_eq(store_inbox_get(st, b, &m, &err), 0, "an answering message is still pending");
    cr_expect_null(m.ref);
    cr_expect_null(m.files);
    cr_expect_eq(m.answering, 1);
    inbox_msg_release(&m);

    cr_assert_eq(store_inbox_finish(st, a, "done", &err), 0);
    cr_expect_eq(store_inbox_get(st, a, &m, &err), -1, "finished: not to run again");
    cr_expect_eq(err.code, JB_ENOTFOUND, "%s", err.msg);
    cr_expect_eq(store_inbox_get(st, b + 1000, &m, &err), -1);
    cr_expect_eq(err.code, JB_ENOTFOUND);
    store_close(st);
}

/* ---- turn audit ---- */

Test(store, turn_begin_end_list_close_stale)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    int64_t a1, a2, b1;
    cr_assert_eq(store_turn_begin(st, "A", "U1", "local", &a1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_turn_begin(st, "B", "U2", "host", &b1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_turn_begin(st, "A", "U1", "local", &a2, &err), 0, "%s", err.msg);
    sleep_ms(2);
    cr_assert_eq(store_turn_end(st, a1, "ok", 0, 100, 20, &err), 0, "%s", err.msg);

    struct turn_row *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_turn_list(st, NULL, 10, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(v[0].id, a2, "newest first");
    cr_assert_eq(v[1].id, b1);
    cr_assert_eq(v[2].id, a1);
    cr_assert_null(v[0].outcome, "running");
    cr_assert_eq(v[0].ended_at, 0);
    cr_assert_str_eq(v[2].outcome, "ok");
    cr_assert_str_eq(v[2].user_id, "U1");
    cr_assert_str_eq(v[2].sandbox, "local");
    cr_assert_geq(v[2].ended_at, v[2].started_at + 2);
    cr_assert_eq(v[2].duration_ms, v[2].ended_at - v[2].started_at);
    turn_rows_free(v, n);

    cr_assert_eq(store_turn_list(st, "A", 10, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(v[0].id, a2);
    turn_rows_free(v, n);
    cr_assert_eq(store_turn_list(st, NULL, 1, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    turn_rows_free(v, n);

    cr_assert_eq(store_turn_close_stale(st, &err), 2, "%s", err.msg);
    cr_assert_eq(store_turn_close_stale(st, &err), 0);
    cr_assert_eq(store_turn_list(st, NULL, 10, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_str_eq(v[0].outcome, "interrupted");
    cr_assert_str_eq(v[1].outcome, "interrupted");
    cr_assert_neq(v[0].ended_at, 0);
    cr_assert_str_eq(v[2].outcome, "ok");
    turn_rows_free(v, n);

    cr_assert_eq(store_turn_end(st, a2, "bogus", 0, 0, 0, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_eq(store_turn_end(st, 424242, "error", 1, 0, 0, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    store_close(st);
}

/* ---- concurrency: one connection per thread ---- */

#define WRITES 200

struct writer {
    int n;
    int failures;
    struct jb_err err;
};

static void *writer_run(void *arg)
{
    struct writer *w = arg;
    struct store *st = NULL;
    if (store_open(dbpath, &st, &w->err) < 0) {
        w->failures = WRITES;
        return NULL;
    }
    for (int i = 0; i < WRITES; i++) {
        char key[32];
        snprintf(key, sizeof key, "T%d:%d", w->n, i);
        int64_t id = 0;
        if (store_inbox_add(st, key, "U", "x", "C1:1.2", NULL, &id, &w->err) < 0 ||
            store_session_touch(st, "shared", "amp", NULL, "local", &w->err) < 0)
            w->failures++;
    }
    store_close(st);
    return NULL;
}

Test(store, two_connections_write_concurrently)
{
    store_close(open_ok()); /* schema first; the next test covers racing openers */
    struct writer w[2] = {{.n = 0}, {.n = 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, writer_run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(w[i].failures, 0, "writer %d: %d failures, last: %s", i, w[i].failures,
                     w[i].err.msg);
    struct store *st = open_ok();
    cr_assert_eq(pending_count(st, "", NULL), 2 * WRITES);
    struct session_row r;
    struct jb_err err = {0};
    cr_assert_eq(store_session_get(st, "shared", &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.turns, 2 * WRITES, "no increment may be lost");
    session_row_release(&r);
    store_close(st);
}

struct opener {
    int rc;
    int version;
    struct jb_err err;
};

static void *opener_run(void *arg)
{
    struct opener *o = arg;
    struct store *st = NULL;
    o->rc = store_open(dbpath, &st, &o->err);
    if (o->rc == 0) {
        o->version = store_schema_version(st);
        store_close(st);
    }
    return NULL;
}

Test(store, racing_openers_migrate_once)
{
    struct opener o[8] = {0};
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, opener_run, &o[i]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(o[i].rc, 0, "opener %d: %s", i, o[i].err.msg);
        cr_assert_eq(o[i].version, STORE_SCHEMA_VERSION);
    }
}

/* Several processes opening one new database at once (two `janebot chat` started
 * together): switching it to WAL must wait, not fail with "database is locked". */
Test(store, racing_processes_open_a_new_database)
{
    for (int round = 0; round < 40; round++) {
        char side[PATH_MAX + 32];
        unlink(dbpath); /* and its WAL files: a stale WAL beside a new database is corrupt */
        snprintf(side, sizeof side, "%s-wal", dbpath);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", dbpath);
        unlink(side);
        pid_t kids[8];
        for (int i = 0; i < 8; i++) {
            kids[i] = fork();
            cr_assert_geq(kids[i], 0);
            if (kids[i] == 0) {
                struct store *st = NULL;
                struct jb_err err = {0};
                int rc = store_open(dbpath, &st, &err);
                store_close(st);
                if (rc < 0) fprintf(stderr, "opener: %s\n", err.msg);
                _exit(rc == 0 ? 0 : 1);
            }
        }
        for (int i = 0; i < 8; i++) {
            int status = 0;
            waitpid(kids[i], &status, 0);
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: an opener failed",
                      round);
        }
    }
}

/* ---- Slack events: each accepted once ---- */

Test(store, an_event_is_accepted_once_by_id_and_by_post)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    int64_t id = 0;
    cr_assert_eq(
        store_event_accept(st, "Ev1", "C1:1.1", "C1:1.1", "U1", "hi", "C1:1.1", NULL, &id, &err), 0,
        "%s", err.msg);
    cr_assert_gt(id, 0);
    /* a redelivery (same event id) and the same post as another event (same dedupe key) */
    cr_assert_eq(
        store_event_accept(st, "Ev1", "C1:1.1", "C1:1.1", "U1", "hi", NULL, NULL, &id, &err), 1);
    cr_assert_eq(
        store_event_accept(st, "Ev2", "C1:1.1", "C1:1.1", "U1", "hi", NULL, NULL, &id, &err), 1);
    struct inbox_msg *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_inbox_pending(st, "C1:", &v, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].ref, "C1:1.1");
    inbox_msgs_free(v, n);
    cr_assert_eq(
        store_event_accept(st, "Ev3", "C1:1.2", "C1:1.1", "U1", "more", "C1:1.2", NULL, &id, &err),
        0);
    store_close(st);
}

/* A store_bucket_fn that records what it found and changes nothing. */
struct bucket_seen {
    int found;
    double tokens;
};

static int bucket_found(void *ud, int found, double *tokens, int64_t *updated_ms)
{
    struct bucket_seen *seen = ud;
    (void)updated_ms;
    seen->found = found, seen->tokens = *tokens;
    return 0;
}

/* A store_bucket_fn: says *ud (0 take, 1 limited, -1 broken), counts its calls in ud[1]. */
static int bucket_says(void *ud, int found, double *tokens, int64_t *updated_ms)
{
    int *v = ud;
    (void)found, (void)updated_ms;
    v[1]++;
    *tokens = 7;
    return v[0];
}

Test(store, an_admitted_event_spends_its_token_in_the_same_transaction)
{
    struct jb_err err = {0}, bucket_err = {0};
    struct store *st = open_ok();
    int says[2] = {1, 0};
    struct store_admit a = {.event_id = "Ev1",
                            .dedupe_key = "D1:1.1",
                            .thread_key = "D1:1.1",
                            .user_id = "U1",
                            .text = "hi",
                            .bucket_key = "user:U1",
                            .bucket_fn = bucket_says,
                            .bucket_ud = says};
    int64_t id = 0;
    /* limited: recorded as seen, nothing in the inbox */
    cr_assert_eq(store_event_admit(st, &a, &id, &bucket_err, &err), 2, "%s", err.msg);
    cr_assert_eq(says[1], 1);
    cr_assert_eq(store_event_known(st, "Ev1", "D1:1.1", &err), 1);
    cr_assert_eq(pending_count(st, "D1:", NULL), 0);
    /* its redelivery is found before a token is spent */
    cr_assert_eq(store_event_admit(st, &a, &id, &bucket_err, &err), 1);
    cr_assert_eq(says[1], 1, "a duplicate spends no token");
    /* taken: in the inbox, and the bucket written in the same commit */
    says[0] = 0;
    a.event_id = "Ev2", a.dedupe_key = "D1:1.2";
    cr_assert_eq(store_event_admit(st, &a, &id, &bucket_err, &err), 0, "%s", err.msg);
    cr_assert_gt(id, 0);
    cr_assert_eq(pending_count(st, "D1:", NULL), 1);
    /* a bucket that cannot be updated lets the message through, and says why */
    says[0] = -1;
    a.event_id = "Ev3", a.dedupe_key = "D1:1.3";
    cr_assert_eq(store_event_admit(st, &a, &id, &bucket_err, &err), 0, "%s", err.msg);
    cr_assert_neq(bucket_err.msg[0], '\0');
    cr_assert_eq(pending_count(st, "D1:", NULL), 2);
    store_close(st);
    /* what was committed is there after a reopen: the bucket (found, 7 tokens) too */
    st = open_ok();
    struct bucket_seen seen = {0, 0};
    cr_assert_eq(store_bucket_update(st, "user:U1", bucket_found, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.found, 1);
    cr_assert_float_eq(seen.tokens, 7.0, 1e-9);
    cr_assert_eq(pending_count(st, "D1:", NULL), 2);
    store_close(st);
}

Test(store, the_files_of_a_message_are_kept_until_its_turn_runs)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    const char *files = "[{\"name\":\"a.txt\",\"url\":\"https://files.slack.com/x\","
                        "\"size\":3,\"mimetype\":\"text/plain\"}]";
    int64_t id = 0;
    cr_assert_eq(
        store_event_accept(st, "Ev1", "C1:1.1", "C1:1.1", "U1", "hi", "C1:1.1", files, &id, &err),
        0, "%s", err.msg);
    cr_assert_eq(store_inbox_add(st, "C1:1.1", "U1", "plain", NULL, NULL, &id, &err), 0);
    store_close(st);
    st = open_ok(); /* a restart: what was stored comes back */
    struct inbox_msg *v = NULL;
    size_t n = pending_count(st, "C1:", &v);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].files, files);
    cr_assert_null(v[1].files, "no files: NULL");
    inbox_msgs_free(v, n);
    store_close(st);
}

/* Migration 8: the per-day totals of before become rows of their day (no model), and the
 * daily cap and `usage` read them with every kind of token since. */
Test(store, llm_usage_of_before_per_model_counting_is_kept)
{
    struct jb_err err = {0};
    store_close(open_ok());
    raw_exec("DROP TABLE llm_requests; DROP TABLE approvals; DROP TABLE approval_allow;"
             "DROP TABLE egress_allow;"
             "CREATE TABLE llm_usage (day TEXT NOT NULL, user_id TEXT NOT NULL,"
             " thread_key TEXT NOT NULL, input_tokens INTEGER NOT NULL DEFAULT 0,"
             " output_tokens INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,"
             " PRIMARY KEY (day, user_id, thread_key));"
             "INSERT INTO llm_usage VALUES ('2026-01-02', 'U1', 'C1:1.1', 300, 40, 7);"
             "PRAGMA user_version = 7;");
    struct store *st = open_ok();
    cr_assert_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
    struct llm_request_use use = {
        .thread_key = "C1:1.1",
        .user = "U1",
        .provider = "anthropic",
        .model = "claude-x",
        .status = 200,
        .t = {.input = 1, .cache_write = 2, .cache_read = 3, .output = 4}};
    cr_assert_eq(store_llm_request_add(st, "h", &use, jb_now_ms() + 1000, &err), 0, "%s", err.msg);
    int64_t today = 0;
    cr_assert_eq(store_usage_today(st, "U1", &today, &err), 0, "%s", err.msg);
    cr_expect_eq(today, 10, "today: every kind of token of today's request, got %lld",
                 (long long)today);
    struct usage_row *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_usage_list(st, NULL, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(v[0].model, "");
    cr_expect(v[0].t.input == 300 && v[0].t.output == 40 && v[0].requests == 7);
    cr_expect_str_eq(v[1].model, "claude-x");
    cr_expect(v[1].t.cache_write == 2 && v[1].t.cache_read == 3 && v[1].requests == 1);
    usage_rows_free(v, n);
    store_close(st);
}

Test(store, old_llm_requests_fold_into_daily_rows_with_the_same_totals)
{
    struct jb_err err = {0};
    struct store *st = open_ok();
    struct llm_request_use use = {
        .thread_key = "C1:1.1",
        .user = "U1",
        .provider = "anthropic",
        .model = "claude-x",
        .status = 200,
        .t = {.input = 1, .cache_write = 2, .cache_read = 3, .output = 4}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(store_llm_request_add(st, "h", &use, jb_now_ms() + 1000, &err), 0, "%s",
                     err.msg);
    raw_exec("UPDATE llm_requests SET day = '2020-01-01' WHERE id <= 2");
    cr_assert_eq(store_llm_requests_fold(st, "2020-01-02", &err), 0, "%s", err.msg);
    cr_assert_eq(store_llm_requests_fold(st, "2020-01-02", &err), 0, "twice: %s", err.msg);
    struct usage_row *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_usage_list(st, NULL, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_expect(v[0].requests == 3 && v[0].t.input == 3 && v[0].t.cache_read == 9);
    usage_rows_free(v, n);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM llm_requests", -1, &s, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(s, 0), 2, "two old rows became one, today's stays");
    sqlite3_finalize(s);
    sqlite3_close(db);
    store_close(st);
}

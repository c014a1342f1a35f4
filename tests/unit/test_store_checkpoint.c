/* tests/unit/test_store_checkpoint.c -- store/latency.c: on a connection whose
 * checkpoints are offloaded, commits past SQLite's 1000-page mark still get the WAL copied
 * into the database (by the store's own thread: no other connection here commits, and the
 * database file only grows through checkpoints in WAL mode), and every event accepted on it
 * is there after a reopen. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sqlite3.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store.h"

static char dir[PATH_MAX], db[PATH_MAX + 16];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-checkpoint-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/janebot.db", dir);
}

static void teardown(void)
{
    jb_rm_rf(dir, NULL);
}

TestSuite(checkpoint, .init = setup, .fini = teardown);

static off_t file_size(const char *path)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "stat %s", path);
    return sb.st_size;
}

enum { EVENTS = 600 };

Test(checkpoint, offloaded_connection_is_checkpointed_by_the_store_thread)
{
    struct jb_err err = {0};
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_low_latency(st, &err), 0, "%s", err.msg);
    off_t before = file_size(db);

    /* ~8 KB of text per event: 2-3 pages per commit, well past 1000 pages in all. */
    static char text[8000];
    memset(text, 'x', sizeof text - 1);
    for (int i = 0; i < EVENTS; i++) {
        char id[32], key[32];
        snprintf(id, sizeof id, "Ev%06d", i);
        snprintf(key, sizeof key, "D1:%06d", i);
        cr_assert_eq(store_event_accept(st, id, key, "D1:1.0", "U1", text, key, NULL, NULL, &err),
                     0, "%s", err.msg);
    }
    /* The thread runs on its own schedule: wait for its copy (a bound, not a timing claim). */
    for (int i = 0; i < 3000 && file_size(db) <= before; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    cr_expect_gt(file_size(db), before, "the database file never grew: no checkpoint ran");
    store_close(st);

    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    struct inbox_msg *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_inbox_pending(st, "D1:", &v, &n, &err), 0, "%s", err.msg);
    cr_expect_eq(n, EVENTS, "%zu of %d accepted events after a reopen", n, EVENTS);
    inbox_msgs_free(v, n);
    store_close(st);
}

Test(checkpoint, offload_twice_and_close_without_writes)
{
    struct jb_err err = {0};
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_low_latency(st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_low_latency(st, &err), 0, "%s", err.msg);
    cr_expect_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
    store_close(st); /* stops and joins the idle thread */
}

/* Another connection holds the write lock for a while: a write on the low-latency
 * connection waits for it (its own busy handler) and succeeds once it is released. */
struct holder {
    sqlite3 *db;
};

static void *release_later(void *p)
{
    struct holder *h = p;
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

Test(checkpoint, a_write_waits_for_another_connections_lock)
{
    struct jb_err err = {0};
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_low_latency(st, &err), 0, "%s", err.msg);
    struct holder h;
    cr_assert_eq(sqlite3_open(db, &h.db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, release_later, &h), 0);
    cr_expect_eq(
        store_event_accept(st, "Ev1", "D1:1.0", "D1:1.0", "U1", "hi", "D1:1.0", NULL, NULL, &err),
        0, "%s", err.msg);
    pthread_join(t, NULL);
    sqlite3_close(h.db);
    store_close(st);
}

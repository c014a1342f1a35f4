/* tests/unit/test_store_uids.c -- store/uids.c: one host uid offset per sandbox name, the
 * smallest free one, given back on removal, never handed out twice (also from several
 * connections at once), and a clear error when all 65,536 are taken. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#include "store/store.h"

static char dir[PATH_MAX], db[PATH_MAX + 16];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-uids-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/janebot.db", dir);
}

static void teardown(void)
{
    jb_rm_rf(dir, NULL);
}

TestSuite(uids, .init = setup, .fini = teardown);

static struct store *open_ok(void)
{
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    return st;
}

static int uid_of(struct store *st, const char *name)
{
    int off = -1;
    struct jb_err err = {0};
    cr_assert_eq(store_uid_get(st, name, &off, &err), 0, "%s: %s", name, err.msg);
    return off;
}

Test(uids, each_name_keeps_its_own_offset_and_a_freed_one_is_reused_first)
{
    struct store *st = open_ok();
    cr_assert_eq(uid_of(st, "jane-aaaa00000001"), 0);
    cr_assert_eq(uid_of(st, "jane-aaaa00000002"), 1);
    cr_assert_eq(uid_of(st, "jane-aaaa00000003"), 2);
    cr_assert_eq(uid_of(st, "jane-aaaa00000001"), 0, "a name keeps its offset");
    cr_assert_eq(store_uid_free(st, "jane-aaaa00000002", NULL), 0);
    cr_assert_eq(store_uid_free(st, "jane-never-had-one", NULL), 0);
    cr_assert_eq(uid_of(st, "jane-aaaa00000004"), 1, "the smallest free offset comes first");
    cr_assert_eq(uid_of(st, "jane-aaaa00000005"), 3);
    store_close(st);
}

/* Names whose old hashed uid (16 bits of the name) was the same get different offsets. */
Test(uids, names_that_shared_a_hashed_uid_get_different_ones)
{
    struct store *st = open_ok();
    int a = uid_of(st, "jane-abcd11111111"), b = uid_of(st, "jane-abcd22222222");
    cr_assert_neq(a, b);
    store_close(st);
}

struct taker {
    int off[50];
};

static void *take_main(void *p)
{
    struct taker *t = p;
    struct store *st = NULL;
    if (store_open(db, &st, NULL) < 0) return NULL;
    for (int i = 0; i < 50; i++) {
        char name[64];
        snprintf(name, sizeof name, "jane-%p-%d", p, i);
        t->off[i] = -1;
        store_uid_get(st, name, &t->off[i], NULL);
    }
    store_close(st);
    return NULL;
}

Test(uids, concurrent_connections_never_hand_out_one_offset_twice)
{
    store_close(open_ok());
    struct taker t[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, take_main, &t[i]);
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    static char seen[STORE_UID_OFFSETS];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 50; k++) {
            int off = t[i].off[k];
            cr_assert(off >= 0 && off < 300, "offset %d", off);
            cr_assert_eq(seen[off], 0, "offset %d handed out twice", off);
            seen[off] = 1;
        }
}

Test(uids, when_every_offset_is_taken_the_error_says_what_to_do)
{
    store_close(open_ok());
    sqlite3 *raw = NULL;
    cr_assert_eq(sqlite3_open(db, &raw), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(raw,
                              "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n"
                              " WHERE i < 65535) INSERT INTO sandbox_uids"
                              " SELECT 'jane-fill-' || i, i, 0 FROM n",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(raw));
    sqlite3_close(raw);
    struct store *st = open_ok();
    struct jb_err err = {0};
    int off = -1;
    cr_assert_eq(store_uid_get(st, "jane-one-too-many", &off, &err), -1);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert(strstr(err.msg, "sandbox gc"), "%s", err.msg);
    cr_assert_eq(uid_of(st, "jane-fill-65535"), 65535, "names that have one still get theirs");
    cr_assert_eq(store_uid_free(st, "jane-fill-40000", NULL), 0);
    cr_assert_eq(uid_of(st, "jane-one-too-many"), 40000);
    store_close(st);
}

/* tests/unit/test_store_answering.c -- store/inbox.c: a message whose answer is going out
 * is "answering": still returned as pending (flagged), so a restart can look whether the
 * answer got out; finished, it is gone from the pending list. */
#include <criterion/criterion.h>
#include <limits.h>

#include "store/store.h"

static char dir[PATH_MAX], db[PATH_MAX + 16];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-answering-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/janebot.db", dir);
}

static void teardown(void)
{
    jb_rm_rf(dir, NULL);
}

TestSuite(answering, .init = setup, .fini = teardown);

Test(answering, flagged_while_pending_then_gone_when_finished)
{
    struct jb_err err = {0};
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    int64_t a = 0, b = 0;
    cr_assert_eq(store_inbox_add(st, "C1:1", "U1", "first", "C1:1", NULL, &a, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_inbox_add(st, "C1:1", "U1", "second", "C1:2", NULL, &b, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_inbox_answering(st, a, &err), 0, "%s", err.msg);

    struct inbox_msg *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_inbox_pending(st, "C1:", &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2, "an answering message is still pending");
    cr_assert_eq(v[0].id, a);
    cr_assert_eq(v[0].answering, 1);
    cr_assert_eq(v[1].answering, 0);
    inbox_msgs_free(v, n);

    cr_assert_eq(store_inbox_finish(st, a, "done", &err), 0, "%s", err.msg);
    cr_assert_eq(store_inbox_answering(st, a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_inbox_pending(st, "C1:", &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "a finished message stays finished");
    cr_assert_eq(v[0].id, b);
    inbox_msgs_free(v, n);
    store_close(st);
}

/* tests/unit/test_store_remote.c -- store/remote.c: thread -> sprite names and the warm
 * pool, including claims from two connections at once. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "store/store.h"

static char dir[PATH_MAX], db[PATH_MAX + 16];

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    snprintf(dir, sizeof dir, "/tmp/janebot-remote-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/janebot.db", dir);
}

static void teardown(void)
{
    jb_rm_rf(dir, NULL);
}

TestSuite(remote, .init = setup, .fini = teardown);

static struct store *open_ok(void)
{
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    return st;
}

Test(remote, names_are_kept_per_thread_and_found_both_ways)
{
    struct store *st = open_ok();
    struct jb_err err = {0};
    struct sandbox_name_row r;
    cr_assert_eq(store_name_get(st, "chat:a", 0, &r, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    cr_assert_eq(store_name_set(st, "chat:a", "jane-pool-0123456789ab", "v1", "abc", &err), 0);
    cr_assert_eq(store_name_get(st, "jane-pool-0123456789ab", 1, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.thread_key, "chat:a");
    cr_assert_str_eq(r.golden, "v1");
    sandbox_name_row_release(&r);
    cr_assert_eq(store_name_set(st, "chat:a", "jane-pool-0123456789ab", NULL, NULL, &err), 0);
    cr_assert_eq(store_name_get(st, "chat:a", 0, &r, &err), 0);
    cr_assert_null(r.golden);
    sandbox_name_row_release(&r);
    cr_assert_eq(store_name_touch(st, "chat:a", &err), 0);
    cr_assert_eq(store_name_delete(st, "chat:a", &err), 0);
    cr_assert_eq(store_name_delete(st, "chat:a", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    store_close(st);
}

Test(remote, a_claim_takes_the_oldest_sprite_of_the_same_setup)
{
    struct store *st = open_ok();
    struct jb_err err = {0};
    struct sandbox_name_row r;
    cr_assert_eq(store_pool_add(st, "jane-pool-000000000001", "v1", "old", &err), 0);
    cr_assert_eq(store_pool_add(st, "jane-pool-000000000002", "v1", "new", &err), 0);
    cr_assert_eq(store_pool_add(st, "jane-pool-000000000003", "v2", "new", &err), 0);
    struct jb_strv stale = JB_STRV_INIT;
    cr_assert_eq(store_pool_names(st, "new", &stale, &err), 0);
    cr_assert_eq(stale.n, 1);
    cr_assert_str_eq(stale.v[0], "jane-pool-000000000001");
    jb_strv_free(&stale);
    cr_assert_eq(store_pool_claim(st, "chat:x", "new", &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.name, "jane-pool-000000000002");
    cr_assert_str_eq(r.golden, "v1");
    sandbox_name_row_release(&r);
    cr_assert_eq(store_pool_claim(st, "chat:y", "new", &r, &err), 0);
    cr_assert_str_eq(r.name, "jane-pool-000000000003");
    sandbox_name_row_release(&r);
    cr_assert_eq(store_pool_claim(st, "chat:z", "new", &r, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    cr_assert_eq(store_name_get(st, "chat:z", 0, &r, &err), -1, "a failed claim maps nothing");
    store_close(st);
}

struct claimer {
    int got;
    char name[64];
};

static void *claim_main(void *p)
{
    struct claimer *c = p;
    struct store *st = NULL;
    struct sandbox_name_row r;
    char key[32];
    snprintf(key, sizeof key, "chat:%p", p);
    if (store_open(db, &st, NULL) == 0 && store_pool_claim(st, key, "h", &r, NULL) == 0) {
        c->got = 1;
        snprintf(c->name, sizeof c->name, "%s", r.name);
        sandbox_name_row_release(&r);
    }
    store_close(st);
    return NULL;
}

Test(remote, concurrent_claims_never_share_a_sprite)
{
    struct store *st = open_ok();
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "jane-pool-00000000000%d", i);
        cr_assert_eq(store_pool_add(st, name, "v1", "h", NULL), 0);
    }
    store_close(st);
    struct claimer c[8] = {0};
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, claim_main, &c[i]);
    int got = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        got += c[i].got;
        for (int j = 0; j < i; j++)
            cr_assert(!c[i].got || !c[j].got || strcmp(c[i].name, c[j].name) != 0,
                      "%s claimed twice", c[i].name);
    }
    cr_assert_eq(got, 4);
}

/* Scoped LLM tokens (tokens.c): an expiry renewed by use, and revocation. */
Test(remote, a_token_expires_unless_used_and_stays_revoked)
{
    struct store *st = open_ok();
    struct jb_err err = {0};
    char *thread = NULL;
    int64_t now = jb_now_ms();
    cr_assert_eq(store_token_add(st, "h-old", "chat:t", "u", "jane-x", now - 1, &err), 0);
    cr_assert_eq(store_token_check(st, "h-old", &thread, &err), -1);
    cr_assert_eq(err.code, JB_EDENIED);
    cr_assert(strstr(err.msg, "expired"), "%s", err.msg);
    cr_assert_eq(store_token_add(st, "h-new", "chat:t", "u", "jane-x", now + 60000, &err), 0);
    cr_assert_eq(store_token_check(st, "h-new", &thread, &err), 0, "%s", err.msg);
    cr_assert_str_eq(thread, "chat:t");
    free(thread);
    /* Use pushes the expiry: a token used just before it lapsed lives on. */
    struct llm_request_use use = {.thread_key = "chat:t",
                                  .user = "u",
                                  .provider = "anthropic",
                                  .model = "m",
                                  .status = 200,
                                  .t = {.input = 1, .output = 2}};
    cr_assert_eq(store_llm_request_add(st, "h-old", &use, now + 60000, &err), 0);
    cr_assert_eq(store_token_check(st, "h-old", &thread, &err), 0, "%s", err.msg);
    free(thread);
    cr_assert_eq(store_token_revoke(st, NULL, "chat:t", &err), 2);
    cr_assert_eq(store_token_check(st, "h-new", &thread, &err), -1);
    cr_assert(strstr(err.msg, "revoked"), "%s", err.msg);
    cr_assert_eq(store_token_check(st, "h-unknown", &thread, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    store_close(st);
}

/* tests/unit/test_egress_approve.c -- egress approval: the config file's egress_approval
 * (good and bad values) and the store's per-thread egress list (add, list, remove,
 * forget, and that it outlives reopening). */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "core/core.h"
#include "core/policy.h"
#include "store/store.h"

static char dir[PATH_MAX];
static struct jb_err err;

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    char tmpl[] = "/tmp/jb-egress-approve-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, dir));
    err = (struct jb_err){0};
}

static void teardown(void)
{
    struct jb_err e = {0};
    jb_rm_rf(dir, &e);
}

TestSuite(egress_approve, .init = setup, .fini = teardown);

/* The policy of a config file with text; NULL (err set) when it is refused. */
static struct policy *load(const char *text)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/janebot.yaml", dir);
    struct jb_err e = {0};
    cr_assert_eq(jb_write_file(path, text, strlen(text), 0600, &e), 0, "%s", e.msg);
    struct policy *p = policy_new_default();
    cr_assert_not_null(p);
    err = (struct jb_err){0};
    if (policy_read_file(p, path, &err) < 0 || policy_finish(p, &err) < 0) {
        policy_unref(p);
        return NULL;
    }
    return p;
}

Test(egress_approve, config_true_false_and_default_off)
{
    struct policy *p = load("channels:\n"
                            "  default: {egress_approval: true}\n"
                            "  C0ASKING01: {egress_approval: true, egress: [pypi.example.com]}\n"
                            "  C0QUIET001: {egress_approval: false}\n"
                            "  C0PLAIN001: {egress: [pypi.example.com]}\n");
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(policy_channel_for(p, "C0ASKING01:1.1")->egress_approval, 1);
    cr_assert_eq(policy_channel_for(p, "C0QUIET001:1.1")->egress_approval, 0);
    cr_assert_eq(policy_channel_for(p, "C0PLAIN001:1.1")->egress_approval, 0,
                 "off unless the channel's own entry says true");
    cr_assert_eq(policy_channel_for(p, "C0UNLISTED:1.1")->egress_approval, 1, "default's");
    policy_unref(p);
    p = load("channels:\n  C0PLAIN001: {egress: [pypi.example.com]}\n");
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(policy_channel_for(p, "C0PLAIN001:1.1")->egress_approval, 0, "false by default");
    cr_assert_eq(policy_channel_for(p, "C0UNLISTED:1.1")->egress_approval, 0);
    policy_unref(p);
}

Test(egress_approve, bad_values_name_line_key_and_value)
{
    const char *const bad[] = {"yes", "1", "[true]", "True"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        char text[200];
        snprintf(text, sizeof text, "channels:\n  C1:\n    egress_approval: %s\n", bad[i]);
        cr_assert_null(load(text), "accepted %s", bad[i]);
        cr_assert(strstr(err.msg, ":3:"), "%s", err.msg);
        cr_assert(strstr(err.msg, "channels.C1.egress_approval"), "%s", err.msg);
        cr_assert(strstr(err.msg, "expected true or false"), "%s", err.msg);
    }
    cr_assert_null(load("channels:\n  C1: {egress_aproval: true}\n"));
    cr_assert(strstr(err.msg, "egress_approval"), "the unknown-key message lists it: %s", err.msg);
}

Test(egress_approve, thread_list_add_list_remove_forget)
{
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/j.db", dir);
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_add(st, "C1:1.1", "pypi.example.com", "U1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_add(st, "C1:1.1", "api.example.com", "U2", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_add(st, "C1:1.1", "api.example.com", "U3", &err), 0, "again: fine");
    struct approval_row r = {.thread_key = "C1:1.1",
                             .requester = "U1",
                             .tool = "egress",
                             .input_sha256 = "00",
                             .answer = "allow_thread",
                             .decided_by = "U3",
                             .domain = "api.example.com:443",
                             .asked_at = 1,
                             .decided_at = 2};
    cr_assert_eq(store_approval_add(st, &r, &err), 0, "%s", err.msg);
    store_close(st);
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_has(st, "C1:1.1", "api.example.com", &err), 1);
    cr_assert_eq(store_egress_has(st, "C1:2.2", "api.example.com", &err), 0, "only that thread");
    cr_assert_eq(store_egress_has(st, "C2:1.1", "api.example.com", &err), 0, "nor its channel");
    struct egress_row *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_egress_list(st, "C1:1.1", &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].name, "api.example.com", "sorted by name");
    cr_assert_str_eq(v[0].added_by, "U3", "the last to allow it");
    cr_assert_str_eq(v[1].name, "pypi.example.com");
    cr_assert(v[1].added_at > 0);
    egress_rows_free(v, n);
    cr_assert_eq(store_egress_remove(st, "C1:1.1", "pypi.example.com", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_remove(st, "C1:1.1", "pypi.example.com", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "pypi.example.com is not on the egress list"), "%s", err.msg);
    cr_assert_eq(store_egress_list(st, "C9:9.9", &v, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(v);
    cr_assert_eq(store_allow_forget(st, "C1:1.1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_has(st, "C1:1.1", "api.example.com", &err), 0, "gone with it");
    store_close(st);
}

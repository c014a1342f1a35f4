/* tests/unit/test_approve.c -- approvals: the config file's approve / approvers /
 * approve_timeout (good and bad), the tool classes, the store's audit and allowances,
 * block_actions payloads (the shared conformance fixtures and hostile ones), and egress
 * approval's config key and per-thread list. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>

#include "conformance.h"
#include "core/core.h"
#include "core/policy.h"
#include "slack/slack.h"
#include "store/store.h"

static char dir[PATH_MAX];
static struct jb_err err;

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    char tmpl[] = "/tmp/jb-approve-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, dir));
    err = (struct jb_err){0};
}

static void teardown(void)
{
    struct jb_err e = {0};
    jb_rm_rf(dir, &e);
}

TestSuite(approve, .init = setup, .fini = teardown);

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

static void load_bad(const char *text, const char *const *needles)
{
    struct policy *p = load(text);
    cr_assert_null(p, "accepted: %s", text);
    for (; *needles; needles++)
        cr_assert(strstr(err.msg, *needles), "\"%s\" not in: %s", *needles, err.msg);
}

Test(approve, config_per_channel_with_defaults)
{
    struct policy *p = load("channels:\n"
                            "  default: {approve: [\"*\"]}\n"
                            "  C0DEVCHAN1:\n"
                            "    approve: [Bash, edit, \"mcp:github\"]\n"
                            "    approvers: [U0CAROL03, W0DAVE004]\n"
                            "    approve_timeout: 90s\n"
                            "  C0OTHERCH9: {approve_timeout: 2m}\n");
    cr_assert_not_null(p, "%s", err.msg);
    const struct policy_channel *ch = policy_channel_for(p, "C0DEVCHAN1:1.2");
    cr_assert_eq(ch->approve.n, 3);
    cr_assert_str_eq(ch->approvers.v[1], "W0DAVE004");
    cr_assert_eq(ch->approve_timeout_s, 90);
    ch = policy_channel_for(p, "C0OTHERCH9:1.2");
    cr_assert_eq(ch->approve.n, 0, "a channel's own entry does not inherit default's");
    cr_assert_eq(ch->approve_timeout_s, 120);
    ch = policy_channel_for(p, "D0ALICEDM1:1.2");
    cr_assert_str_eq(ch->approve.v[0], "*");
    cr_assert_eq(ch->approve_timeout_s, APPROVE_TIMEOUT_DEFAULT_S, "10 minutes by default");
    policy_unref(p);
}

Test(approve, bad_config_names_line_key_and_value)
{
    load_bad("channels:\n  C1: {approve: Bash}\n",
             (const char *[]){":2:", "channels.C1.approve", "list", NULL});
    load_bad("channels:\n  C1: {approve: [\"mcp:\"]}\n",
             (const char *[]){":2:", "channels.C1.approve", "mcp:", "server name", NULL});
    load_bad("channels:\n  C1: {approve: [\"Bash(rm *)\"]}\n",
             (const char *[]){":2:", "channels.C1.approve", NULL});
    load_bad("channels:\n  C1: {approve: [\"a*b\"]}\n",
             (const char *[]){":2:", "a*b", "edit, mcp:SERVER or *", NULL});
    load_bad("channels:\n  C1: {approvers: [alice]}\n",
             (const char *[]){":2:", "channels.C1.approvers", "alice", "user id", NULL});
    load_bad("channels:\n  C1:\n    approve_timeout: soon\n",
             (const char *[]){":3:", "channels.C1.approve_timeout", "soon", "10m", NULL});
    load_bad("channels:\n  C1: {approve_timeout: 0}\n", (const char *[]){"\"0\"", NULL});
    load_bad("channels:\n  C1: {approve_timeout: 25h}\n", (const char *[]){"24h", NULL});
    load_bad("channels:\n  C1: {approval: [Bash]}\n",
             (const char *[]){"channels.C1.approval", "unknown key", NULL});
}

Test(approve, durations)
{
    int s = 0;
    cr_assert_eq(approve_parse_duration("90", &s), 0);
    cr_assert_eq(s, 90);
    cr_assert_eq(approve_parse_duration("10m", &s), 0);
    cr_assert_eq(s, 600);
    cr_assert_eq(approve_parse_duration("1h", &s), 0);
    cr_assert_eq(s, 3600);
    const char *bad[] = {"", "-5", "5 m", "m", "5x", "0s", "1441m", "99999999999999999999"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++)
        cr_assert_eq(approve_parse_duration(bad[i], &s), -1, "%s", bad[i]);
}

Test(approve, tool_classes)
{
    cr_assert(approve_class_matches("Bash", "Bash"));
    cr_assert(approve_class_matches("bash", "Bash"), "names compare without case");
    cr_assert_not(approve_class_matches("Bash", "BashOutput"));
    cr_assert(approve_class_matches("*", "anything"));
    cr_assert_not(approve_class_matches("*", ""));
    const char *edits[] = {"Edit",         "MultiEdit", "Write",
                           "NotebookEdit", "edit_file", "create_file"};
    for (size_t i = 0; i < JB_ARRAY_LEN(edits); i++)
        cr_assert(approve_class_matches("edit", edits[i]), "%s", edits[i]);
    cr_assert_not(approve_class_matches("edit", "Read"));
    cr_assert_not(approve_class_matches("edit", "Bash"));
    cr_assert(approve_class_matches("mcp:github", "mcp__github__create_issue"));
    cr_assert_not(approve_class_matches("mcp:github", "mcp__github2__create_issue"));
    cr_assert_not(approve_class_matches("mcp:git", "mcp__github__create_issue"));
    cr_assert_not(approve_class_matches("mcp:github", "github"));
    struct jb_strv list = JB_STRV_INIT;
    jb_strv_push(&list, "Read", NULL);
    jb_strv_push(&list, "mcp:linear", NULL);
    cr_assert(approve_list_matches(&list, "mcp__linear__search"));
    cr_assert_not(approve_list_matches(&list, "Bash"));
    jb_strv_free(&list);
    cr_assert_null(approve_class_check("mcp:github"));
    cr_assert_not_null(approve_class_check("mcp:"));
    cr_assert_not_null(approve_class_check("a b"));
}

Test(approve, store_audit_and_allowances_survive_reopening)
{
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/j.db", dir);
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    struct approval_row r = {.thread_key = "C1:1.1",
                             .requester = "U1",
                             .tool = "Bash",
                             .input_sha256 = "00",
                             .answer = "allow_thread",
                             .decided_by = "U1",
                             .asked_at = 1,
                             .decided_at = 2};
    cr_assert_eq(store_approval_add(st, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(store_allow_add(st, "C1:1.1", "Bash", "U1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_allow_add(st, "C1:1.1", "Bash", "U2", &err), 0, "again is fine");
    store_close(st);
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_allow_has(st, "C1:1.1", "Bash", &err), 1);
    cr_assert_eq(store_allow_has(st, "C1:1.1", "Write", &err), 0);
    cr_assert_eq(store_allow_has(st, "C1:2.2", "Bash", &err), 0, "only that thread");
    int64_t n = 0;
    cr_assert_eq(store_approval_count(st, "C1:1.1", &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(store_allow_forget(st, "C1:1.1", &err), 0);
    cr_assert_eq(store_allow_has(st, "C1:1.1", "Bash", &err), 0);
    cr_assert_eq(store_approval_count(st, "C1:1.1", &n, &err), 0);
    cr_assert_eq(n, 0);
    store_close(st);
}

/* ---- block_actions ---- */

static json_t *fixture_payload(const char *name)
{
    char d[PATH_MAX], path[PATH_MAX + 64];
    conformance_dir(d);
    snprintf(path, sizeof path, "%s/slack/%s", d, name);
    json_t *env = json_load_file(path, 0, NULL);
    cr_assert_not_null(env, "%s", path);
    json_t *p = json_incref(json_object_get(env, "payload"));
    json_decref(env);
    return p;
}

Test(approve, block_actions_of_the_decision_fixture)
{
    json_t *p = fixture_payload("interactive_block_actions_thread_decision.json");
    struct slack_block_action a;
    cr_assert_eq(slack_block_action_parse(p, &a, NULL, &err), 1, "%s", err.msg);
    cr_assert_str_eq(a.action_id, "janebot_perm_allow_once");
    cr_assert_str_eq(a.value, "C0DEVCHAN1:1717171717.000100#perm-0003");
    cr_assert_str_eq(a.user, "U0ALICE01");
    cr_assert_str_eq(a.channel, "C0DEVCHAN1");
    cr_assert_str_eq(a.message_ts, "1717178000.001100");
    cr_assert_str_eq(a.thread_ts, "1717171717.000100");
    slack_block_action_release(&a);
    json_decref(p);
    p = fixture_payload("interactive_block_actions_ephemeral.json");
    cr_assert_eq(slack_block_action_parse(p, &a, NULL, &err), 1, "%s", err.msg);
    cr_assert_null(a.thread_ts, "an ephemeral's click has no thread_ts");
    slack_block_action_release(&a);
    json_decref(p);
}

Test(approve, hostile_block_actions_are_refused)
{
    const char *bad[] = {
        "{}",
        "{\"type\":\"block_actions\"}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U1\"},\"actions\":[]}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":5},\"actions\":[{\"action_id\":\"a\"}],"
        "\"channel\":{\"id\":\"C1\"}}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U1\"},\"actions\":[{\"action_id\":[]}],"
        "\"channel\":{\"id\":\"C1\"}}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U1\"},\"actions\":[{\"action_id\":\"a\"}]}",
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        json_t *p = json_loads(bad[i], 0, NULL);
        struct slack_block_action a;
        err = (struct jb_err){0};
        cr_assert_eq(slack_block_action_parse(p, &a, NULL, &err), -1, "%s", bad[i]);
        cr_assert_eq(err.code, JB_EPROTO, "%s", bad[i]);
        json_decref(p);
    }
    char big[3000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = 0;
    json_t *p =
        json_pack("{s:s, s:{s:s}, s:[{s:s, s:s}], s:{s:s}}", "type", "block_actions", "user", "id",
                  "U1", "actions", "action_id", "a", "value", big, "channel", "id", "C1");
    struct slack_block_action a;
    cr_assert_eq(slack_block_action_parse(p, &a, NULL, &err), -1, "a value over 2,000 bytes");
    json_decref(p);
    p = json_pack("{s:s}", "type", "view_submission");
    const char *why = NULL;
    cr_assert_eq(slack_block_action_parse(p, &a, &why, &err), 0);
    cr_assert_not_null(why);
    json_decref(p);
}

/* ---- egress approval: the config key and the thread's own list ---- */

Test(approve, egress_config_true_false_and_default_off)
{
    struct policy *p = load("channels:\n"
                            "  default: {egress_approval: true}\n"
                            "  C0ASKING01: {egress_approval: true, egress: [pkgs.example.com]}\n"
                            "  C0QUIET001: {egress_approval: false}\n"
                            "  C0PLAIN001: {egress: [pkgs.example.com]}\n");
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(policy_channel_for(p, "C0ASKING01:1.1")->egress_approval, 1);
    cr_assert_eq(policy_channel_for(p, "C0QUIET001:1.1")->egress_approval, 0);
    cr_assert_eq(policy_channel_for(p, "C0PLAIN001:1.1")->egress_approval, 0,
                 "off unless the channel's own entry says true");
    cr_assert_eq(policy_channel_for(p, "C0UNLISTED:1.1")->egress_approval, 1, "default's");
    policy_unref(p);
    p = load("channels:\n  C0PLAIN001: {egress: [pkgs.example.com]}\n");
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(policy_channel_for(p, "C0PLAIN001:1.1")->egress_approval, 0, "false by default");
    cr_assert_eq(policy_channel_for(p, "C0UNLISTED:1.1")->egress_approval, 0);
    policy_unref(p);
}

Test(approve, egress_bad_values_name_line_key_and_value)
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

Test(approve, egress_thread_list_add_list_remove_forget)
{
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/j.db", dir);
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_add(st, "C1:1.1", "pkgs.example.com", "U1", &err), 0, "%s", err.msg);
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
    cr_assert_str_eq(v[1].name, "pkgs.example.com");
    cr_assert(v[1].added_at > 0);
    egress_rows_free(v, n);
    cr_assert_eq(store_egress_remove(st, "C1:1.1", "pkgs.example.com", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_remove(st, "C1:1.1", "pkgs.example.com", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "pkgs.example.com is not on the egress list"), "%s", err.msg);
    cr_assert_eq(store_egress_list(st, "C9:9.9", &v, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(v);
    cr_assert_eq(store_allow_forget(st, "C1:1.1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_egress_has(st, "C1:1.1", "api.example.com", &err), 0, "gone with it");
    store_close(st);
}

/* tests/unit/test_slack_events.c -- Socket Mode frames and Events API payloads: every
 * shared conformance fixture handled as its README says, acks, prompt text, and malformed
 * input (truncated, mistyped, huge, mutated) that must never crash. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "slack/slack.h"
#include "conformance.h"

#define BOT_USER "U0JANEBOT"
#define BOT_ID   "B0JANEBOT"

static struct slack_envelope env;
static struct slack_message msg;
static struct jb_err err;

static void teardown(void)
{
    slack_envelope_release(&env);
    slack_message_release(&msg);
}
TestSuite(slack_events, .fini = teardown);
TestSuite(slack_events_conformance, .fini = teardown);

static char *fixture(const char *name, size_t *len)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    conformance_dir(dir);
    snprintf(path, sizeof path, "%s/slack/%s", dir, name);
    char *data = NULL;
    struct jb_err e = {0};
    cr_assert_eq(jb_read_file(path, 1 << 20, &data, len, &e), 0, "%s: %s", path, e.msg);
    return data;
}

/* Parse a fixture frame into env; it must succeed with the given type. */
static void frame(const char *name, enum slack_envelope_type type)
{
    size_t len;
    char *text = fixture(name, &len), *id = NULL;
    cr_assert_eq(slack_envelope_parse(text, len, &env, &id, &err), 0, "%s: %s", name, err.msg);
    cr_assert_null(id);
    cr_assert_eq(env.type, type, "%s: type %d", name, env.type);
    free(text);
}

/* Interpret the events_api frame's payload; returns what slack_event_interpret did. */
static int event(const char *name, const char **why)
{
    frame(name, SLACK_ENV_EVENTS_API);
    cr_assert_not_null(env.envelope_id);
    cr_assert_not_null(env.payload);
    int rc = slack_event_interpret(env.payload, BOT_USER, BOT_ID, &msg, why, &err);
    cr_assert_neq(rc, -1, "%s: %s", name, err.msg);
    return rc;
}

static void expect_ack(const char *envelope_id, const json_t *payload, const char *want_file)
{
    char *ack = slack_ack_json(envelope_id, payload);
    cr_assert_not_null(ack);
    size_t len;
    char *want_text = fixture(want_file, &len);
    json_t *got = json_loads(ack, 0, NULL), *want = json_loads(want_text, 0, NULL);
    cr_assert(json_equal(got, want), "ack %s differs from %s", ack, want_file);
    json_decref(got);
    json_decref(want);
    free(want_text);
    free(ack);
}

/* ---- conformance: Socket Mode frames ------------------------------------------------ */

Test(slack_events_conformance, hello)
{
    frame("hello.json", SLACK_ENV_HELLO);
    cr_assert(!env.envelope_id && !env.disconnect_reason);
}

Test(slack_events_conformance, disconnect_reasons)
{
    static const char *const reasons[] = {"warning", "refresh_requested", "too_many_websockets",
                                          "link_disabled"};
    for (size_t i = 0; i < JB_ARRAY_LEN(reasons); i++) {
        char name[64];
        snprintf(name, sizeof name, "disconnect_%s.json", reasons[i]);
        frame(name, SLACK_ENV_DISCONNECT);
        cr_assert_str_eq(env.disconnect_reason, reasons[i]);
        slack_envelope_release(&env);
    }
}

Test(slack_events_conformance, app_mention_starts_a_thread)
{
    cr_assert_eq(event("events_api_app_mention.json", NULL), 1);
    cr_assert_str_eq(env.envelope_id, "c67a03d0-4094-4744-90ca-d286e00a3ab1");
    cr_assert(env.retry_attempt == 0 && !env.accepts_response_payload);
    cr_assert_str_eq(env.retry_reason, "");
    expect_ack(env.envelope_id, NULL, "ack_events_api.json");
    cr_assert_str_eq(msg.event_id, "Ev07APPMENT1");
    cr_assert_str_eq(msg.thread_key, "C0DEVCHAN1:1717171717.000100");
    cr_assert_str_eq(msg.dedupe_key, "C0DEVCHAN1:1717171717.000100");
    cr_assert_str_eq(msg.text, "why does `make test` fail on main?");
    cr_assert_str_eq(msg.team, "T0AB12CDE");
    cr_assert_str_eq(msg.user, "U0ALICE01");
    cr_assert_str_eq(msg.thread_ts, "1717171717.000100");
    cr_assert(!msg.channel_type && !msg.files);
    cr_assert(msg.is_mention && !msg.in_thread && !msg.followup_only);
}

Test(slack_events_conformance, app_mention_in_thread_is_a_follow_up)
{
    cr_assert_eq(event("events_api_app_mention_in_thread.json", NULL), 1);
    cr_assert_str_eq(msg.thread_key, "C0DEVCHAN1:1717171717.000100");
    cr_assert_str_eq(msg.dedupe_key, "C0DEVCHAN1:1717172000.000300");
    cr_assert_str_eq(msg.ts, "1717172000.000300");
    cr_assert_str_eq(msg.text, "now add a regression test for it");
    cr_assert(msg.in_thread && msg.is_mention);
}

Test(slack_events_conformance, dm_message)
{
    cr_assert_eq(event("events_api_message_im.json", NULL), 1);
    cr_assert_str_eq(msg.event_id, "Ev07MSGIM001");
    cr_assert_str_eq(msg.thread_key, "D0ALICEDM1:1717173000.000200");
    cr_assert_str_eq(msg.channel_type, "im");
    cr_assert_str_eq(msg.text, "can you summarise the open PRs & their status?");
    cr_assert(!msg.is_mention && !msg.in_thread && !msg.followup_only);
}

Test(slack_events_conformance, dm_retry_shares_the_event_id)
{
    cr_assert_eq(event("events_api_message_im.json", NULL), 1);
    char *first_env = strdup(env.envelope_id), *first_id = strdup(msg.event_id);
    char *first_key = strdup(msg.dedupe_key);
    teardown();
    cr_assert_eq(event("events_api_message_im_retry.json", NULL), 1);
    cr_assert_eq(env.retry_attempt, 1);
    cr_assert_str_eq(env.retry_reason, "timeout");
    cr_assert_str_neq(env.envelope_id, first_env); /* acked under its own id */
    cr_assert_str_eq(msg.event_id, first_id);      /* ... but deduped on this one */
    cr_assert_str_eq(msg.dedupe_key, first_key);
    free(first_env);
    free(first_id);
    free(first_key);
}

Test(slack_events_conformance, ignored_messages)
{
    static const struct {
        const char *file, *why;
    } cases[] = {
        {"events_api_message_bot_message.json", "bot message"},
        {"events_api_message_own_bot_reply.json", "own message"},
        {"events_api_message_changed.json", "edit"},
        {"events_api_message_deleted.json", "deletion"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(cases); i++) {
        const char *why = NULL;
        cr_assert_eq(event(cases[i].file, &why), 0, "%s was not ignored", cases[i].file);
        cr_assert_str_eq(why, cases[i].why, "%s", cases[i].file);
        cr_assert_not_null(env.envelope_id); /* ignored, yet acked */
        teardown();
    }
}

Test(slack_events_conformance, own_reply_is_caught_by_either_id)
{
    size_t len;
    char *text = fixture("events_api_message_own_bot_reply.json", &len);
    cr_assert_eq(slack_envelope_parse(text, len, &env, NULL, &err), 0, "%s", err.msg);
    const char *why = NULL;
    cr_assert_eq(slack_event_interpret(env.payload, NULL, BOT_ID, &msg, &why, &err), 0);
    cr_assert_str_eq(why, "own message");
    cr_assert_eq(slack_event_interpret(env.payload, BOT_USER, NULL, &msg, &why, &err), 0);
    cr_assert_str_eq(why, "own message");
    cr_assert_eq(slack_event_interpret(env.payload, NULL, NULL, &msg, &why, &err), 0);
    cr_assert_str_eq(why, "bot message");
    free(text);
}

Test(slack_events_conformance, file_share_follow_up_keeps_files)
{
    cr_assert_eq(event("events_api_message_file_share.json", NULL), 1);
    cr_assert_str_eq(msg.thread_key, "C0DEVCHAN1:1717171717.000100");
    cr_assert_str_eq(msg.text, "here is the failing log");
    cr_assert(msg.in_thread && msg.followup_only && !msg.is_mention);
    cr_assert(json_is_array(msg.files));
    cr_assert_eq(json_array_size(msg.files), 1);
    json_t *f = json_array_get(msg.files, 0);
    cr_assert_str_eq(json_string_value(json_object_get(f, "url_private_download")),
                     "https://files.slack.com/files-pri/T0AB12CDE-F07LOGFILE1/download/build.log");
}

Test(slack_events_conformance, thread_broadcast_is_a_reply_run_once)
{
    cr_assert_eq(event("events_api_message_thread_broadcast.json", NULL), 1);
    cr_assert_str_eq(msg.thread_key, "C0DEVCHAN1:1717171717.000100");
    cr_assert_str_eq(msg.text, "the fix is merged, please re-run");
    cr_assert(msg.in_thread && msg.is_mention && !msg.followup_only);
    char *key = strdup(msg.dedupe_key);
    slack_message_release(&msg);
    /* the app_mention Slack sends for the same post shares the dedupe key */
    json_t *ev = json_object_get(env.payload, "event");
    json_object_set_new(ev, "type", json_string("app_mention"));
    json_object_del(ev, "subtype");
    json_object_set_new(env.payload, "event_id", json_string("Ev07THBCST02"));
    cr_assert_eq(slack_event_interpret(env.payload, BOT_USER, BOT_ID, &msg, NULL, &err), 1);
    cr_assert_str_eq(msg.dedupe_key, key);
    cr_assert_str_eq(key, "C0DEVCHAN1:1717176000.000900");
    free(key);
}

Test(slack_events_conformance, blocks_message_uses_text)
{
    cr_assert_eq(event("events_api_message_with_blocks.json", NULL), 1);
    const char *want =
        json_string_value(json_object_get(json_object_get(env.payload, "event"), "text"));
    cr_assert_str_eq(msg.text, want);
    cr_assert(strstr(msg.text, "<#C0DEVCHAN1|dev>") && strstr(msg.text, "<@U0BOB0001>"));
    cr_assert_str_eq(msg.thread_key, "D0ALICEDM1:1717177000.001000");
}

Test(slack_events_conformance, slash_command_ack_with_payload)
{
    frame("slash_commands.json", SLACK_ENV_SLASH_COMMANDS);
    cr_assert_eq(env.accepts_response_payload, 1);
    cr_assert_str_eq(json_string_value(json_object_get(env.payload, "command")), "/janebot");
    cr_assert_str_eq(json_string_value(json_object_get(env.payload, "text")), "status");
    json_t *resp = json_pack("{s:s, s:s}", "response_type", "ephemeral", "text",
                             "janebot is up. 2 threads running.");
    expect_ack(env.envelope_id, resp, "ack_slash_command_with_payload.json");
    json_decref(resp);
    cr_assert_eq(slack_event_interpret(env.payload, BOT_USER, BOT_ID, &msg, NULL, &err), 0);
}

Test(slack_events_conformance, interactive_cancel_button)
{
    frame("interactive_block_actions.json", SLACK_ENV_INTERACTIVE);
    cr_assert_str_eq(env.envelope_id, "57d6a792-4d35-4d0b-b6aa-3361493e1caf");
    cr_assert_str_eq(json_string_value(json_object_get(env.payload, "type")), "block_actions");
    json_t *action = json_array_get(json_object_get(env.payload, "actions"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(action, "value")),
                     "C0DEVCHAN1:1717171717.000100");
}

/* Every .json under the fixture dir: frames (a top-level string "type") parse; others
 * fail cleanly; events_api payloads interpret without error. */
static void parse_file(const char *path)
{
    char *data = NULL, *id = NULL;
    size_t len;
    struct jb_err e = {0};
    cr_assert_eq(jb_read_file(path, 1 << 20, &data, &len, &e), 0, "%s: %s", path, e.msg);
    json_t *j = json_loadb(data, len, 0, NULL);
    cr_assert_not_null(j, "%s is not JSON", path);
    int is_frame = json_is_string(json_object_get(j, "type"));
    struct slack_envelope x = {0};
    int rc = slack_envelope_parse(data, len, &x, &id, &e);
    cr_assert_eq(rc, is_frame ? 0 : -1, "%s: %s", path, e.msg);
    if (rc == 0 && x.type == SLACK_ENV_EVENTS_API) {
        struct slack_message m = {0};
        cr_assert_neq(slack_event_interpret(x.payload, BOT_USER, BOT_ID, &m, NULL, &e), -1,
                      "%s: %s", path, e.msg);
        slack_message_release(&m);
    }
    slack_envelope_release(&x);
    json_decref(j);
    free(id);
    free(data);
}

static size_t walk(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    size_t count = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        const char *dot = strrchr(de->d_name, '.');
        if (S_ISDIR(st.st_mode)) count += walk(path);
        if (S_ISREG(st.st_mode) && dot && strcmp(dot, ".json") == 0) parse_file(path), count++;
    }
    closedir(d);
    return count;
}

Test(slack_events_conformance, every_fixture_file_parses)
{
    char dir[PATH_MAX];
    conformance_dir(dir);
    cr_assert_gt(walk(dir), 20);
}

Test(slack_events_conformance, truncated_frames_fail_cleanly)
{
    static const char *const files[] = {"events_api_app_mention.json", "hello.json",
                                        "slash_commands.json", "interactive_block_actions.json",
                                        "events_api_message_file_share.json"};
    for (size_t f = 0; f < JB_ARRAY_LEN(files); f++) {
        size_t len;
        char *text = fixture(files[f], &len);
        for (size_t cut = 0; cut < len; cut++) {
            char *id = NULL;
            struct slack_envelope x = {0};
            int rc = slack_envelope_parse(text, cut, &x, &id, &err);
            int blank = strspn(text + cut, " \t\r\n") == len - cut; /* only whitespace cut */
            cr_assert_eq(rc, blank ? 0 : -1, "%s cut at %zu", files[f], cut);
            if (rc < 0) cr_assert_eq(err.code, JB_EPROTO);
            slack_envelope_release(&x);
            free(id);
        }
        free(text);
    }
}

/* Flip bytes of every frame fixture at random: parse and interpret must not crash. */
Test(slack_events_conformance, mutated_frames_do_not_crash)
{
    static const char *const files[] = {
        "events_api_app_mention.json",        "events_api_message_im.json",
        "events_api_message_file_share.json", "events_api_message_thread_broadcast.json",
        "events_api_message_changed.json",    "disconnect_warning.json"};
    static const char junk[] = "{}[]\",:0-9.tfn\\u \x01\xff\xc3";
    srand(3);
    for (size_t f = 0; f < JB_ARRAY_LEN(files); f++) {
        size_t len;
        char *text = fixture(files[f], &len);
        for (int round = 0; round < 400; round++) {
            char *m = malloc(len);
            memcpy(m, text, len);
            for (int k = 0; k < 1 + rand() % 4; k++)
                m[(size_t)rand() % len] = junk[rand() % (int)(sizeof junk - 1)];
            char *id = NULL;
            struct slack_envelope x = {0};
            if (slack_envelope_parse(m, len, &x, &id, &err) == 0 && x.payload) {
                struct slack_message msg2 = {0};
                slack_event_interpret(x.payload, BOT_USER, BOT_ID, &msg2, NULL, &err);
                slack_message_release(&msg2);
            }
            slack_envelope_release(&x);
            free(id);
            free(m);
        }
        free(text);
    }
}

/* ---- envelopes without the fixture dir --------------------------------------------- */

static int parse(const char *text, char **id)
{
    return slack_envelope_parse(text, strlen(text), &env, id, &err);
}

Test(slack_events, malformed_frames)
{
    static const char *const bad[] = {"",
                                      "   ",
                                      "not json",
                                      "[]",
                                      "\"hello\"",
                                      "42",
                                      "null",
                                      "{",
                                      "{\"type\": 5}",
                                      "{\"type\": null}",
                                      "{\"type\": [\"hello\"]}",
                                      "{\"type\": {}}",
                                      "{\"type\":\"events_api\"}",
                                      "{\"type\":\"events_api\",\"envelope_id\":5,\"payload\":{}}",
                                      "{\"type\":\"slash_commands\",\"payload\":{}}",
                                      "{\"type\":\"hello\"} trailing",
                                      "{\"type\":\"hello\",\"s\":\"\\u0000\"}"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        char *id = NULL;
        err = (struct jb_err){0};
        cr_assert_eq(parse(bad[i], &id), -1, "accepted: %s", bad[i]);
        cr_assert_eq(err.code, JB_EPROTO, "%s", bad[i]);
        cr_assert_null(id, "%s", bad[i]);
    }
    cr_assert_eq(slack_envelope_parse(NULL, 0, &env, NULL, &err), -1);
}

Test(slack_events, unparseable_envelope_still_hands_out_its_id)
{
    char *id = NULL;
    cr_assert_eq(parse("{\"envelope_id\":\"E1\",\"type\":7}", &id), -1);
    cr_assert_str_eq(id, "E1");
    free(id);
    id = NULL;
    cr_assert_eq(parse("{\"envelope_id\":\"E2\",\"type\":\"events_api\",\"payload\":\"x\"}", &id),
                 -1);
    cr_assert_str_eq(id, "E2");
    free(id);
    cr_assert_eq(parse("{\"envelope_id\":\"E3\",\"type\":\"hello\"}", NULL), 0); /* id NULL ok */
}

Test(slack_events, unknown_type_is_other)
{
    cr_assert_eq(parse("{\"envelope_id\":\"E9\",\"type\":\"brand_new\",\"payload\":[1]}", NULL), 0);
    cr_assert(env.type == SLACK_ENV_OTHER && json_is_array(env.payload));
    cr_assert_str_eq(env.envelope_id, "E9");
    slack_envelope_release(&env);
    cr_assert_eq(parse("{\"type\":\"brand_new\"}", NULL), 0);
    cr_assert(env.type == SLACK_ENV_OTHER && !env.envelope_id && !env.payload);
}

Test(slack_events, wrong_field_types_are_tolerated)
{
    cr_assert_eq(parse("{\"envelope_id\":\"E\",\"type\":\"events_api\",\"payload\":{},"
                       "\"retry_attempt\":\"1\",\"retry_reason\":3,"
                       "\"accepts_response_payload\":\"yes\"}",
                       NULL),
                 0);
    cr_assert(env.retry_attempt == 0 && !env.retry_reason && !env.accepts_response_payload);
    slack_envelope_release(&env);
    cr_assert_eq(parse("{\"type\":\"disconnect\",\"reason\":{}}", NULL), 0);
    cr_assert_null(env.disconnect_reason);
    slack_envelope_release(&env);
    cr_assert_eq(parse("{\"envelope_id\":\"E\",\"type\":\"events_api\",\"payload\":{},"
                       "\"retry_attempt\":99999999999}",
                       NULL),
                 0);
    cr_assert_eq(env.retry_attempt, INT_MAX);
}

Test(slack_events, huge_frames)
{
    size_t n = 4u << 20;
    char *big = malloc(n + 256);
    int k = snprintf(big, 256,
                     "{\"envelope_id\":\"E\",\"type\":\"events_api\",\"payload\":{"
                     "\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{"
                     "\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\","
                     "\"user\":\"U1\",\"ts\":\"1.2\",\"text\":\"");
    memset(big + k, 'a', n);
    memcpy(big + k + n, "\"}}}", 5);
    cr_assert_eq(parse(big, NULL), 0, "%s", err.msg); /* 4 MiB of prompt */
    cr_assert_eq(slack_event_interpret(env.payload, BOT_USER, BOT_ID, &msg, NULL, &err), 1);
    cr_assert_eq(strlen(msg.text), n);
    free(big);
    cr_assert_eq(slack_envelope_parse("{}", SLACK_FRAME_MAX + 1, &env, NULL, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
}

Test(slack_events, ack_json)
{
    char *a = slack_ack_json("abc", NULL);
    cr_assert_str_eq(a, "{\"envelope_id\":\"abc\"}");
    free(a);
    json_t *p = json_object();
    a = slack_ack_json("abc", p);
    cr_assert_str_eq(a, "{\"envelope_id\":\"abc\",\"payload\":{}}");
    free(a);
    json_decref(p);
    cr_assert_null(slack_ack_json(NULL, NULL));
    cr_assert_null(slack_ack_json("\xff", NULL));
}

/* ---- events_api payloads without the fixture dir ----------------------------------- */

/* An event_callback around the given inner event JSON. */
static int interpret(const char *event_json, const char **why)
{
    char *s = NULL;
    cr_assert_geq(asprintf(&s,
                           "{\"type\":\"event_callback\",\"team_id\":\"T1\","
                           "\"event_id\":\"Ev1\",\"event\":%s}",
                           event_json),
                  0);
    json_t *p = json_loads(s, 0, NULL);
    cr_assert_not_null(p, "%s", s);
    slack_message_release(&msg);
    int rc = slack_event_interpret(p, BOT_USER, BOT_ID, &msg, why, &err);
    json_decref(p);
    free(s);
    return rc;
}

#define DM(text)                                                                                   \
    "{\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\","                            \
    "\"user\":\"U1\",\"ts\":\"5.1\",\"text\":\"" text "\"}"

static void expect_prompt(const char *event_json, const char *want)
{
    cr_assert_eq(interpret(event_json, NULL), 1, "%s: %s", event_json, err.msg);
    cr_assert_str_eq(msg.text, want, "%s", event_json);
}

Test(slack_events, prompt_text)
{
    expect_prompt(DM("<@U0JANEBOT> hi"), "hi");
    expect_prompt(DM("please <@U0JANEBOT> look"), "please look");
    expect_prompt(DM("ask <@U0JANEBOT|janebot>, then <@U0BOB0001>"), "ask , then <@U0BOB0001>");
    expect_prompt(DM("  a &amp; b &lt;x&gt; &amp;lt; &quot;  "), "a & b <x> &lt; &quot;");
    expect_prompt(DM("&lt;@U0JANEBOT&gt; stays"), "<@U0JANEBOT> stays");
    expect_prompt(DM("<@U0JANEBOT>"), "");
    expect_prompt(DM("<@U0JANEBOT|broken no close"), "<@U0JANEBOT|broken no close");
    expect_prompt(DM("<@U0JANEBOTX> other user"), "<@U0JANEBOTX> other user");
    expect_prompt(DM("\\n\\t<@U0JANEBOT>\\n"), "");
    cr_assert_eq(msg.is_mention, 1);
    expect_prompt("{\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\","
                  "\"user\":\"U1\",\"ts\":\"5.1\"}",
                  "");
}

Test(slack_events, ignore_reasons)
{
    static const struct {
        const char *event, *why;
    } cases[] = {
        {"{\"type\":\"reaction_added\",\"user\":\"U1\"}", "unsupported event"},
        {"{\"channel\":\"C1\"}", "unsupported event"},
        {"{\"type\":\"message\",\"subtype\":\"channel_join\",\"channel_type\":\"im\"}",
         "unsupported subtype"},
        {"{\"type\":\"message\",\"subtype\":7,\"channel_type\":\"im\"}", "unsupported subtype"},
        {"{\"type\":\"message\",\"bot_id\":\"B9\",\"channel_type\":\"im\"}", "bot message"},
        {"{\"type\":\"message\",\"hidden\":true,\"channel_type\":\"im\"}", "hidden message"},
        {"{\"type\":\"app_mention\",\"edited\":{\"ts\":\"1\"}}", "edit"},
        {"{\"type\":\"message\",\"channel_type\":\"channel\",\"channel\":\"C1\",\"user\":\"U1\","
         "\"ts\":\"5.1\",\"text\":\"<@U0JANEBOT> hi\"}",
         "not addressed to the bot"},
        {"{\"type\":\"message\",\"channel_type\":\"channel\",\"channel\":\"C1\",\"user\":\"U1\","
         "\"ts\":\"5.1\",\"subtype\":\"file_share\",\"text\":\"top-level file\"}",
         "not addressed to the bot"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(cases); i++) {
        const char *why = NULL;
        cr_assert_eq(interpret(cases[i].event, &why), 0, "%s: %s", cases[i].event, err.msg);
        cr_assert_str_eq(why, cases[i].why, "%s", cases[i].event);
    }
    json_t *p = json_pack("{s:s}", "type", "url_verification");
    const char *why = NULL;
    cr_assert_eq(slack_event_interpret(p, BOT_USER, BOT_ID, &msg, &why, &err), 0);
    cr_assert_str_eq(why, "not an event_callback");
    json_decref(p);
}

Test(slack_events, malformed_payloads)
{
    static const char *const events[] = {
        "[]",
        "\"x\"",
        "null",
        "{\"type\":\"message\",\"channel_type\":\"im\",\"user\":\"U1\",\"ts\":\"5.1\"}",
        "{\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\",\"user\":\"U1\"}",
        "{\"type\":\"app_mention\",\"channel\":\"C1\",\"ts\":\"5.1\"}",
        "{\"type\":\"app_mention\",\"channel\":\"C1\",\"ts\":5.1,\"user\":\"U1\"}",
        "{\"type\":\"app_mention\",\"channel\":\"\",\"ts\":\"5.1\",\"user\":\"U1\"}"};
    for (size_t i = 0; i < JB_ARRAY_LEN(events); i++) {
        err = (struct jb_err){0};
        cr_assert_eq(interpret(events[i], NULL), -1, "accepted %s", events[i]);
        cr_assert_eq(err.code, JB_EPROTO);
    }
    json_t *p = json_pack("{s:s, s:{s:s}}", "type", "event_callback", "event", "type", "message");
    cr_assert_eq(slack_event_interpret(p, BOT_USER, BOT_ID, &msg, NULL, &err), -1); /* no id */
    json_decref(p);
    cr_assert_eq(slack_event_interpret(NULL, BOT_USER, BOT_ID, &msg, NULL, &err), -1);
}

Test(slack_events, thread_keys_and_mentions)
{
    cr_assert_eq(interpret("{\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\","
                           "\"user\":\"U1\",\"ts\":\"5.1\",\"thread_ts\":\"\",\"text\":\"x\"}",
                           NULL),
                 1);
    cr_assert_str_eq(msg.thread_key, "D1:5.1");
    cr_assert_eq(msg.in_thread, 0);
    cr_assert_eq(interpret("{\"type\":\"message\",\"channel_type\":\"im\",\"channel\":\"D1\","
                           "\"user\":\"U1\",\"ts\":\"5.1\",\"thread_ts\":\"5.1\"}",
                           NULL),
                 1);
    cr_assert_eq(msg.in_thread, 0); /* the parent itself */
    cr_assert_eq(interpret("{\"type\":\"message\",\"channel_type\":\"group\",\"channel\":\"G1\","
                           "\"user\":\"U1\",\"ts\":\"6.1\",\"subtype\":\"thread_broadcast\","
                           "\"thread_ts\":\"5.1\",\"text\":\"no mention\"}",
                           NULL),
                 1);
    cr_assert_str_eq(msg.thread_key, "G1:5.1");
    cr_assert(msg.followup_only && msg.in_thread && !msg.is_mention);
    cr_assert_str_eq(msg.team, "T1");
}

/* tests/unit/test_slack_reactions.c -- reaction_added events: the real payload (shared
 * conformance fixture) and hostile ones. */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "conformance.h"
#include "slack/slack.h"

static struct slack_reaction rx;
static struct jb_err err;

static void teardown(void)
{
    slack_reaction_release(&rx);
}
TestSuite(slack_reactions, .fini = teardown);

Test(slack_reactions, the_real_reaction_added_payload)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    conformance_dir(dir);
    snprintf(path, sizeof path, "%s/slack/events_api_reaction_added.json", dir);
    json_t *frame = json_load_file(path, 0, NULL);
    cr_assert_not_null(frame, "%s", path);
    json_t *payload = json_object_get(frame, "payload");
    cr_assert(slack_event_is_reaction(payload));
    const char *why = NULL;
    cr_assert_eq(slack_reaction_interpret(payload, &rx, &why, &err), 1, "%s", err.msg);
    cr_assert_str_eq(rx.event_id, "Ev07REACTAD1");
    cr_assert_str_eq(rx.user, "U0ALICE01");
    cr_assert_str_eq(rx.reaction, "white_check_mark");
    cr_assert_str_eq(rx.channel, "C0DEVCHAN1");
    cr_assert_str_eq(rx.ts, "1717172100.000350");
    cr_assert_str_eq(rx.item_user, "U0JANEBOT");
    json_decref(frame);
}

static int interpret(const char *event_json, const char **why)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":%s}",
             event_json);
    json_t *p = json_loads(buf, 0, NULL);
    cr_assert_not_null(p, "%s", buf);
    int rc = slack_reaction_interpret(p, &rx, why, &err);
    json_decref(p);
    return rc;
}

Test(slack_reactions, a_reaction_on_a_file_is_ignored)
{
    const char *why = NULL;
    cr_assert_eq(interpret("{\"type\":\"reaction_added\",\"user\":\"U1\",\"reaction\":\"x\","
                           "\"item\":{\"type\":\"file\",\"file\":\"F1\"}}",
                           &why),
                 0);
    cr_assert_str_eq(why, "not on a message");
}

Test(slack_reactions, hostile_payloads_are_clear_errors)
{
    static const char *bad[] = {
        "{\"type\":\"reaction_added\",\"user\":\"U1\",\"reaction\":\"x\",\"item\":\"C1\"}",
        "{\"type\":\"reaction_added\",\"reaction\":\"x\",\"item\":{\"type\":\"message\","
        "\"channel\":\"C1\",\"ts\":\"1.2\"}}",
        "{\"type\":\"reaction_added\",\"user\":\"U1\",\"reaction\":7,\"item\":{\"type\":"
        "\"message\",\"channel\":\"C1\",\"ts\":\"1.2\"}}",
        "{\"type\":\"reaction_added\",\"user\":\"U1\",\"reaction\":\"x\",\"item\":{\"type\":"
        "\"message\",\"channel\":\"C1\"}}",
        "{\"type\":\"reaction_added\",\"user\":\"U1\",\"reaction\":\"x\",\"item\":{\"type\":"
        "\"message\",\"channel\":\"C1\",\"ts\":\"11111111111111111111111111111111111111111\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        err = (struct jb_err){0};
        cr_assert_eq(interpret(bad[i], &why), -1, "payload %zu", i);
        cr_assert_eq(err.code, JB_EPROTO, "payload %zu", i);
        cr_assert(strstr(err.msg, "reaction_added"), "payload %zu: %s", i, err.msg);
        cr_assert_null(rx.event_id);
    }
}

Test(slack_reactions, a_message_event_is_no_reaction)
{
    json_t *p = json_pack("{s:s, s:s, s:{s:s}}", "type", "event_callback", "event_id", "Ev1",
                          "event", "type", "message");
    cr_assert_not(slack_event_is_reaction(p));
    const char *why = NULL;
    cr_assert_eq(slack_reaction_interpret(p, &rx, &why, &err), -1);
    json_decref(p);
}

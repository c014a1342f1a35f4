/* tests/fuzz/envelope.c -- Socket Mode frames: slack_envelope_parse(), then for an
 * events_api envelope slack_event_interpret() and slack_files_normalise() on its payload,
 * and the ack (slack_ack_json()), as the socket thread and the frontend do. */
#include "fuzz.h"
#include "slack/slack.h"

static void on_payload(const struct slack_envelope *env)
{
    struct slack_message m = {0};
    const char *why = NULL;
    struct jb_err err = {0};
    int rc = slack_event_interpret(env->payload, "U0BOT", "B0BOT", &m, &why, &err);
    FUZZ_ASSERT(rc >= -1 && rc <= 1);
    if (rc == 1) {
        FUZZ_ASSERT(m.thread_key && m.text && m.channel && m.ts && m.user && m.event_id);
        char *files = NULL;
        struct jb_strv skipped = {0};
        if (slack_files_normalise(m.files, 1000, &files, &skipped, &err) == 0 && files) {
            json_t *back = json_loads(files, 0, NULL);
            FUZZ_ASSERT(json_is_array(back)); /* what is stored must read back */
            json_decref(back);
        }
        free(files);
        jb_strv_free(&skipped);
    } else if (rc == 0) {
        FUZZ_ASSERT(why != NULL);
    }
    slack_message_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    struct slack_envelope env;
    char *id = NULL;
    struct jb_err err = {0};
    if (slack_envelope_parse((const char *)data, size, &env, &id, &err) < 0) {
        FUZZ_ASSERT(err.msg[0]);
        if (id) free(slack_ack_json(id, NULL));
        free(id);
        return 0;
    }
    free(id);
    if (env.type == SLACK_ENV_EVENTS_API) {
        FUZZ_ASSERT(env.envelope_id && json_is_object(env.payload));
        on_payload(&env);
    }
    if (env.envelope_id) {
        json_t *payload = json_pack("{s:s}", "text", "ok");
        char *ack = slack_ack_json(env.envelope_id, payload);
        if (ack) {
            json_t *back = json_loads(ack, 0, NULL);
            FUZZ_ASSERT(json_is_object(back));
            FUZZ_ASSERT(
                !strcmp(json_string_value(json_object_get(back, "envelope_id")), env.envelope_id));
            json_decref(back);
        }
        free(ack);
        json_decref(payload);
    }
    slack_envelope_release(&env);
    return 0;
}

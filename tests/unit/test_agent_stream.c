/* tests/unit/test_agent_stream.c -- the stream-json parser and agent_result, fed lines
 * captured from the real CLIs (docs/agent-clis.md) and the awkward cases around them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "agent/agent.h"

/* ---- captured lines (shortened as in agent-clis.md) ---- */

#define SID "720181ef-6d0f-4b78-8045-bec3144ba43a"
#define L_INIT                                                                                     \
    "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/sandbox/work\",\"session_id\":\"" SID    \
    "\",\"tools\":[\"Task\",\"Bash\"],\"mcp_servers\":[],\"model\":\"claude-opus-5-5\","           \
    "\"permissionMode\":\"default\",\"apiKeySource\":\"ANTHROPIC_API_KEY\"}"
#define L_TEXT                                                                                     \
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_fake_1\",\"type\":\"message\",\"role\":"    \
    "\"assistant\",\"model\":\"claude-opus-5-5\",\"content\":[{\"type\":\"text\",\"text\":\"hi "   \
    "from fake (user messages seen: 1)\"}],\"stop_reason\":null,\"stop_sequence\":null,"           \
    "\"usage\":{\"input_tokens\":10,\"output_tokens\":1},\"context_management\":null},"            \
    "\"parent_tool_use_id\":null,\"session_id\":\"" SID "\",\"uuid\":\"3dd9f074\"}"
#define L_TOOL_USE                                                                                 \
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_fake_1\",\"type\":\"message\",\"role\":"    \
    "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_fake_1\",\"name\":"          \
    "\"Bash\",\"input\":{\"description\":\"Print a greeting\",\"command\":\"echo "                 \
    "hello-from-tool\"}}],\"stop_reason\":null},\"parent_tool_use_id\":null,\"session_id\":\"" SID \
    "\"}"
#define L_TOOL_RESULT                                                                              \
    "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":"             \
    "\"toolu_fake_1\",\"type\":\"tool_result\",\"content\":\"hello-from-tool\",\"is_error\":"      \
    "false}]},\"parent_tool_use_id\":null,\"session_id\":\"" SID "\",\"tool_use_result\":"         \
    "{\"stdout\":\"hello-from-tool\",\"stderr\":\"\",\"interrupted\":false}}"
#define L_DENIED                                                                                   \
    "{\"type\":\"system\",\"subtype\":\"permission_denied\",\"tool_name\":\"Bash\","               \
    "\"tool_use_id\":\"toolu_fake_1\",\"message\":\"touch needs approval.\",\"session_id\":\"" SID \
    "\"}"
#define L_RETRY                                                                                    \
    "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":1,\"max_retries\":10,"             \
    "\"retry_delay_ms\":582,\"error_status\":401,\"error\":\"authentication_failed\","             \
    "\"session_id\":\"737e2f37\",\"uuid\":\"ca2d820d\"}"
#define L_RESULT                                                                                   \
    "{\"duration_api_ms\":85,\"stop_reason\":\"end_turn\",\"session_id\":\"" SID "\","             \
    "\"total_cost_usd\":0.00014000000000000001,\"usage\":{\"input_tokens\":10,"                    \
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":5},"        \
    "\"permission_denials\":[],\"terminal_reason\":\"completed\",\"is_error\":false,"              \
    "\"num_turns\":1,\"subtype\":\"success\",\"api_error_status\":null,\"result\":\"hi from "      \
    "fake (user messages seen: 1)\",\"type\":\"result\",\"duration_ms\":464}"
#define L_RESULT_ERR                                                                               \
    "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,"               \
    "\"result\":null,\"session_id\":\"" SID "\",\"errors\":[\"No conversation found with "         \
    "session ID: " SID "\",\"second\"]}"

static const char transcript[] = L_INIT "\n" L_TEXT "\n" L_TOOL_USE "\n" L_TOOL_RESULT "\n" L_DENIED
                                        "\n" L_RETRY "\n" L_RESULT "\n";

/* ---- a recorder: copies of every event, plus an agent_result ---- */

struct rec_ev {
    enum agent_event_type type;
    char *session_id, *text, *tool_name, *subtype, *errors;
    int is_error;
    int64_t in, out;
    char *request_id, *input_json, *tool_use_id;
};

struct rec {
    struct rec_ev ev[64];
    size_t n;
    struct agent_result res;
};

static char *dup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void rec_cb(void *ud, const struct agent_event *ev)
{
    struct rec *r = ud;
    cr_assert_lt(r->n, JB_ARRAY_LEN(r->ev));
    r->ev[r->n++] = (struct rec_ev){
        ev->type,          dup0(ev->session_id), dup0(ev->text),       dup0(ev->tool_name),
        dup0(ev->subtype), dup0(ev->errors),     ev->is_error,         ev->input_tokens,
        ev->output_tokens, dup0(ev->request_id), dup0(ev->input_json), dup0(ev->tool_use_id)};
    agent_result_on_event(&r->res, ev);
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct rec_ev *e = &r->ev[i];
        free(e->session_id), free(e->text), free(e->tool_name), free(e->subtype), free(e->errors);
        free(e->request_id), free(e->input_json), free(e->tool_use_id);
    }
    r->n = 0;
    agent_result_release(&r->res);
}

static struct rec R = {.res = AGENT_RESULT_INIT};
static struct agent_stream *st;

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL); /* the warnings below are expected */
    st = agent_stream_new(0, rec_cb, &R);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    agent_stream_free(st);
    st = NULL;
    rec_free(&R);
}

static void feed_str(const char *s)
{
    agent_stream_feed(st, s, strlen(s));
}
static void feed_line(const char *s)
{
    feed_str(s);
    feed_str("\n");
}
static const struct agent_stream_stats *stats(void)
{
    return agent_stream_stats(st);
}

TestSuite(agent_stream, .init = setup, .fini = teardown);

/* ---- the captured lines one by one ---- */

Test(agent_stream, init_line_gives_session_id)
{
    feed_line(L_INIT);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_INIT);
    cr_assert_str_eq(R.ev[0].session_id, SID);
    cr_assert_str_eq(R.res.session_id, SID);
    cr_assert_eq(stats()->lines, 1);
    cr_assert_eq(stats()->events, 1);
}

Test(agent_stream, assistant_text)
{
    feed_line(L_TEXT);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_TEXT);
    cr_assert_str_eq(R.ev[0].text, "hi from fake (user messages seen: 1)");
    cr_assert_str_eq(R.ev[0].session_id, SID);
}

Test(agent_stream, assistant_tool_use_summarises_command)
{
    feed_line(L_TOOL_USE);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_TOOL_USE);
    cr_assert_str_eq(R.ev[0].tool_name, "Bash");
    cr_assert_str_eq(R.ev[0].text, "echo hello-from-tool");
    cr_assert_eq(R.res.tool_uses, 1);
    cr_assert_str_eq(R.res.last_tool, "Bash");
}

Test(agent_stream, tool_summary_other_keys_and_truncation)
{
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":["
              "{\"type\":\"tool_use\",\"name\":\"Read\",\"input\":{\"limit\":5,\"file_path\":"
              "\"/w/a.c\"}},"
              "{\"type\":\"tool_use\",\"name\":\"Grep\",\"input\":{\"n\":1,\"glob\":\"*.h\"}},"
              "{\"type\":\"tool_use\",\"name\":\"Odd\",\"input\":{\"n\":1}},"
              "{\"type\":\"tool_use\",\"name\":\"Bash\",\"input\":{\"command\":\"line1\\nline2 "
              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
              "xxxxxxxxxxxxxxxxxx\"}}]}}");
    cr_assert_eq(R.n, 4);
    cr_assert_str_eq(R.ev[0].text, "/w/a.c");
    cr_assert_str_eq(R.ev[1].text, "*.h");
    cr_assert_str_eq(R.ev[2].text, "");
    cr_assert_eq(strlen(R.ev[3].text), 80 + 3);
    cr_assert_eq(strncmp(R.ev[3].text, "line1 line2 ", 12), 0);
    cr_assert_str_eq(R.ev[3].text + 80, "\xe2\x80\xa6");
}

Test(agent_stream, tool_summary_cuts_on_utf8_boundary)
{
    /* 79 ASCII bytes, then a 4-byte emoji crossing the 80-byte cut */
    char line[512];
    snprintf(line, sizeof line,
             "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\",\"name\":"
             "\"Bash\",\"input\":{\"command\":\"%s\\ud83d\\ude00tail\"}}]}}",
             "0123456789012345678901234567890123456789012345678901234567890123456789012345678");
    feed_line(line);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(strlen(R.ev[0].text), 79 + 3);
}

Test(agent_stream, user_tool_result)
{
    feed_line(L_TOOL_RESULT);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_TOOL_RESULT);
    cr_assert_eq(R.ev[0].is_error, 0);
    cr_assert_str_eq(R.ev[0].text, "hello-from-tool");
}

Test(agent_stream, user_content_string_and_result_list)
{
    feed_line("{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"do it\"}}");
    cr_assert_eq(R.n, 0);
    feed_line("{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\","
              "\"is_error\":true,\"content\":[{\"type\":\"image\"},{\"type\":\"text\","
              "\"text\":\"denied\"}]},{\"type\":\"text\",\"text\":\"x\"}]}}");
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_TOOL_RESULT);
    cr_assert_eq(R.ev[0].is_error, 1);
    cr_assert_str_eq(R.ev[0].text, "denied");
    cr_assert_eq(stats()->unknown, 0);
}

Test(agent_stream, permission_denied_is_unknown)
{
    feed_line(L_DENIED);
    cr_assert_eq(R.n, 0);
    cr_assert_eq(stats()->unknown, 1);
    cr_assert_eq(stats()->not_json, 0);
}

Test(agent_stream, unknown_and_missing_types)
{
    feed_line("{\"type\":\"stream_event\",\"event\":{}}");
    feed_line("{\"type\":null,\"subtype\":\"init\"}");
    feed_line("{\"subtype\":\"init\"}");
    feed_line("{\"type\":\"system\"}");
    feed_line("{\"type\":\"system\",\"subtype\":\"compact_boundary\"}");
    cr_assert_eq(R.n, 0);
    cr_assert_eq(stats()->unknown, 5);
}

Test(agent_stream, api_retry)
{
    feed_line(L_RETRY);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_RETRY);
    cr_assert_str_eq(R.ev[0].text, "API retry 1/10 (status 401)");
    feed_line("{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":2,\"max_retries\":10,"
              "\"error_status\":null,\"error\":\"overloaded\"}");
    cr_assert_str_eq(R.ev[1].text, "API retry 2/10 (overloaded)");
}

Test(agent_stream, result_with_type_last)
{
    feed_line(L_RESULT);
    cr_assert_eq(R.n, 1);
    struct rec_ev *e = &R.ev[0];
    cr_assert_eq(e->type, AGENT_EV_RESULT);
    cr_assert_str_eq(e->text, "hi from fake (user messages seen: 1)");
    cr_assert_str_eq(e->subtype, "success");
    cr_assert_str_eq(e->session_id, SID);
    cr_assert_eq(e->is_error, 0);
    cr_assert_eq(e->in, 10);
    cr_assert_eq(e->out, 5);
    cr_assert_null(e->errors);
    cr_assert(R.res.has_result);
    cr_assert_str_eq(R.res.session_id, SID);
    cr_assert_str_eq(agent_result_answer(&R.res), "hi from fake (user messages seen: 1)");
    cr_assert_eq(agent_resume_missing(&R.res), 0);
}

Test(agent_stream, result_null_with_errors)
{
    feed_line(L_RESULT_ERR);
    cr_assert_eq(R.n, 1);
    cr_assert_null(R.ev[0].text);
    cr_assert_eq(R.ev[0].is_error, 1);
    cr_assert_eq(R.ev[0].in, 0);
    cr_assert_eq(R.ev[0].out, 0);
    cr_assert_str_eq(R.ev[0].errors, "No conversation found with session ID: " SID "; second");
    cr_assert_str_eq(R.res.subtype, "error_during_execution");
    cr_assert_null(agent_result_answer(&R.res));
    cr_assert_eq(agent_resume_missing(&R.res), 1);
}

Test(agent_stream, result_session_id_replaces_init)
{
    feed_line(L_INIT);
    feed_line("{\"type\":\"result\",\"subtype\":\"success\",\"session_id\":\"T-new\","
              "\"result\":\"ok\"}");
    cr_assert_str_eq(R.res.session_id, "T-new");
}

/* ---- feeding ---- */

Test(agent_stream, whole_transcript)
{
    feed_str(transcript);
    cr_assert_eq(stats()->lines, 7);
    cr_assert_eq(stats()->events, 6);
    cr_assert_eq(stats()->unknown, 1);
    enum agent_event_type want[] = {AGENT_EV_INIT,        AGENT_EV_TEXT,  AGENT_EV_TOOL_USE,
                                    AGENT_EV_TOOL_RESULT, AGENT_EV_RETRY, AGENT_EV_RESULT};
    cr_assert_eq(R.n, JB_ARRAY_LEN(want));
    for (size_t i = 0; i < R.n; i++)
        cr_assert_eq(R.ev[i].type, want[i], "event %zu", i);
}

static int str_same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

Test(agent_stream, byte_by_byte_equals_whole)
{
    struct rec bytes = {.res = AGENT_RESULT_INIT};
    struct agent_stream *s2 = agent_stream_new(0, rec_cb, &bytes);
    for (size_t i = 0; i < sizeof transcript - 1; i++)
        agent_stream_feed(s2, transcript + i, 1);
    agent_stream_finish(s2);
    feed_str(transcript);
    agent_stream_finish(st);
    cr_assert_eq(memcmp(agent_stream_stats(s2), stats(), sizeof *stats()), 0);
    cr_assert_eq(bytes.n, R.n);
    for (size_t i = 0; i < R.n; i++) {
        struct rec_ev *a = &bytes.ev[i], *b = &R.ev[i];
        cr_assert_eq(a->type, b->type);
        cr_assert(str_same(a->text, b->text) && str_same(a->session_id, b->session_id) &&
                  str_same(a->tool_name, b->tool_name) && str_same(a->subtype, b->subtype));
    }
    cr_assert_str_eq(agent_result_answer(&bytes.res), agent_result_answer(&R.res));
    agent_stream_free(s2);
    rec_free(&bytes);
}

Test(agent_stream, line_split_across_feeds)
{
    const char *line = L_TEXT "\n";
    size_t half = strlen(line) / 2;
    agent_stream_feed(st, line, half);
    cr_assert_eq(R.n, 0);
    agent_stream_feed(st, line + half, strlen(line) - half);
    cr_assert_eq(R.n, 1);
    cr_assert_str_eq(R.ev[0].text, "hi from fake (user messages seen: 1)");
}

Test(agent_stream, non_json_lines_counted)
{
    feed_str("npm WARN something\n\n   \n[1,2]\n{not json\n{\"a\":1} trailing\n\"str\"\n");
    feed_line(L_TEXT);
    cr_assert_eq(stats()->not_json, 5);
    cr_assert_eq(stats()->lines, 8);
    cr_assert_eq(R.n, 1);
}

Test(agent_stream, overlong_line_skipped_next_parsed)
{
    struct rec r2 = {.res = AGENT_RESULT_INIT};
    struct agent_stream *s2 = agent_stream_new(1u << 20, rec_cb, &r2);
    size_t big = 2u << 20, chunk = 64u << 10;
    char *buf = malloc(chunk);
    memset(buf, 'x', chunk);
    buf[0] = '{';
    for (size_t sent = 0; sent < big; sent += chunk)
        agent_stream_feed(s2, buf, chunk);
    free(buf);
    const char *next = "\n" L_TEXT "\n";
    agent_stream_feed(s2, next, strlen(next));
    cr_assert_eq(agent_stream_stats(s2)->too_long, 1);
    cr_assert_eq(agent_stream_stats(s2)->lines, 2);
    cr_assert_eq(r2.n, 1);
    cr_assert_str_eq(r2.ev[0].text, "hi from fake (user messages seen: 1)");
    agent_stream_free(s2);
    rec_free(&r2);
}

Test(agent_stream, line_at_cap_is_kept)
{
    const char *line = L_TEXT;
    struct rec r2 = {.res = AGENT_RESULT_INIT};
    struct agent_stream *s2 = agent_stream_new(strlen(line), rec_cb, &r2);
    agent_stream_feed(s2, line, strlen(line));
    agent_stream_feed(s2, "\n", 1);
    cr_assert_eq(agent_stream_stats(s2)->too_long, 0);
    cr_assert_eq(r2.n, 1);
    agent_stream_feed(s2, line, strlen(line));
    agent_stream_feed(s2, " \n", 2); /* one byte over */
    cr_assert_eq(agent_stream_stats(s2)->too_long, 1);
    cr_assert_eq(r2.n, 1);
    agent_stream_free(s2);
    rec_free(&r2);
}

Test(agent_stream, crlf)
{
    feed_str(L_INIT "\r\n" L_TEXT "\r\n\r\n");
    cr_assert_eq(R.n, 2);
    cr_assert_str_eq(R.ev[1].text, "hi from fake (user messages seen: 1)");
    cr_assert_eq(stats()->not_json, 0);
}

Test(agent_stream, unterminated_final_line_parsed_once_at_finish)
{
    feed_str(L_TEXT "\n" L_RESULT);
    cr_assert_eq(R.n, 1);
    agent_stream_finish(st);
    cr_assert_eq(R.n, 2);
    cr_assert_eq(R.ev[1].type, AGENT_EV_RESULT);
    agent_stream_finish(st);
    cr_assert_eq(R.n, 2);
    cr_assert_eq(stats()->lines, 2);
}

Test(agent_stream, truncated_final_line_counted)
{
    const char *line = L_RESULT;
    feed_line(L_TEXT);
    agent_stream_feed(st, line, strlen(line) - 10);
    agent_stream_finish(st);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(stats()->not_json, 1);
    cr_assert_eq(R.res.has_result, 0);
    cr_assert_str_eq(agent_result_answer(&R.res), "hi from fake (user messages seen: 1)");
}

/* ---- what the answer is made of ---- */

Test(agent_stream, subagent_text_not_in_answer)
{
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
              "\"sub says\"},{\"type\":\"tool_use\",\"name\":\"Read\",\"input\":{}}]},"
              "\"parent_tool_use_id\":\"toolu_task_1\",\"session_id\":\"" SID "\"}");
    feed_line("{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\","
              "\"content\":\"x\"}]},\"parent_tool_use_id\":\"toolu_task_1\"}");
    feed_line(L_TEXT);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.res.tool_uses, 0);
    cr_assert_str_eq(agent_result_answer(&R.res), "hi from fake (user messages seen: 1)");
}

Test(agent_stream, answer_falls_back_to_texts)
{
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
              "\"one\"},{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":\"text\","
              "\"text\":\"two\"}]},\"parent_tool_use_id\":null}");
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
              "\"three\"}]}}");
    feed_line("{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":true,"
              "\"result\":\"\",\"errors\":[\"Reached maximum number of turns (1)\"]}");
    cr_assert_str_eq(agent_result_answer(&R.res), "one\n\ntwo\n\nthree");
    cr_assert_str_eq(R.res.errors, "Reached maximum number of turns (1)");
    cr_assert_eq(R.res.is_error, 1);
    cr_assert_eq(agent_resume_missing(&R.res), 0);
}

Test(agent_stream, no_answer_when_nothing_said)
{
    feed_line(L_INIT);
    cr_assert_null(agent_result_answer(&R.res));
}

/* ---- encoding ---- */

Test(agent_stream, unicode_escapes_decoded)
{
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
              "\"caf\\u00e9 \\ud83d\\ude00 raw \xc3\xa9\"}]}}");
    cr_assert_eq(R.n, 1);
    cr_assert_str_eq(R.ev[0].text, "caf\xc3\xa9 \xf0\x9f\x98\x80 raw \xc3\xa9");
}

Test(agent_stream, embedded_nul_does_not_break)
{
    feed_line("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
              "\"before\\u0000after\"}]}}");
    cr_assert_eq(R.n, 1);
    cr_assert_str_eq(R.ev[0].text, "before");
    cr_assert_eq(stats()->not_json, 0);
}

Test(agent_stream, nul_byte_in_line_is_not_json)
{
    const char line[] = "{\"type\":\"system\",\0\"subtype\":\"init\"}\n";
    agent_stream_feed(st, line, sizeof line - 1);
    feed_line(L_INIT);
    cr_assert_eq(stats()->not_json, 1);
    cr_assert_eq(R.n, 1);
}

/* ---- Claude Code's questions before a tool (agent-approvals.md 2.5) ---- */

#define L_CAN_USE                                                                                  \
    "{\"type\":\"control_request\",\"request_id\":\"23f1-aa\",\"request\":{\"subtype\":"           \
    "\"can_use_tool\",\"tool_name\":\"Bash\",\"display_name\":\"Bash\",\"input\":{\"command\":"    \
    "\"touch /home/agent/work/t.txt\",\"description\":\"fake tool call\"},\"description\":"        \
    "\"fake tool "                                                                                 \
    "call\",\"permission_suggestions\":[],\"blocked_path\":\"/home/agent/work/t.txt\","            \
    "\"tool_use_id\":\"toolu_56da\"}}"

Test(agent_stream, can_use_tool_is_a_permission_question)
{
    feed_line(L_CAN_USE);
    cr_assert_eq(R.n, 1);
    cr_assert_eq(R.ev[0].type, AGENT_EV_PERMISSION);
    cr_assert_str_eq(R.ev[0].request_id, "23f1-aa");
    cr_assert_str_eq(R.ev[0].tool_name, "Bash");
    cr_assert_str_eq(R.ev[0].tool_use_id, "toolu_56da");
    json_error_t je;
    json_t *in = json_loads(R.ev[0].input_json, 0, &je);
    cr_assert(json_is_object(in));
    cr_assert_str_eq(json_string_value(json_object_get(in, "command")),
                     "touch /home/agent/work/t.txt");
    json_decref(in);
    cr_assert_eq(R.res.tool_uses, 0, "a question is not a tool use");
    feed_line("{\"type\":\"control_cancel_request\",\"request_id\":\"23f1-aa\"}");
    cr_assert_eq(R.n, 2);
    cr_assert_eq(R.ev[1].type, AGENT_EV_PERMISSION_CANCEL);
    cr_assert_str_eq(R.ev[1].request_id, "23f1-aa");
}

Test(agent_stream, other_or_malformed_control_requests_are_skipped)
{
    feed_line("{\"type\":\"control_request\",\"request_id\":\"1\",\"request\":{\"subtype\":"
              "\"interrupt\"}}");
    feed_line("{\"type\":\"control_request\",\"request\":{\"subtype\":\"can_use_tool\","
              "\"tool_name\":\"Bash\",\"input\":{}}}"); /* no id */
    feed_line("{\"type\":\"control_request\",\"request_id\":\"2\",\"request\":{\"subtype\":"
              "\"can_use_tool\",\"tool_name\":\"Bash\",\"input\":\"rm -rf /\"}}");
    feed_line("{\"type\":\"control_request\",\"request_id\":\"3\",\"request\":{\"subtype\":"
              "\"can_use_tool\",\"input\":{}}}"); /* no tool */
    feed_line("{\"type\":\"control_cancel_request\"}");
    cr_assert_eq(R.n, 0);
    cr_assert_eq(stats()->unknown, 5);
}

static json_t *answer_of(const char *line)
{
    size_t n = strlen(line);
    cr_assert(n > 1 && line[n - 1] == '\n' && !memchr(line, '\n', n - 1), "one line: %s", line);
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    cr_assert_not_null(o, "%s", line);
    const json_t *r = json_object_get(o, "response");
    cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "control_response");
    cr_assert_str_eq(json_string_value(json_object_get(r, "subtype")), "success");
    cr_assert_str_eq(json_string_value(json_object_get(r, "request_id")), "23f1-aa");
    return o;
}

Test(agent_stream, permission_lines_allow_with_the_input_and_deny_with_a_reason)
{
    char *allow = agent_permission_line("23f1-aa", 1, "{\"command\":\"ls\\n\"}", "unused");
    cr_assert_not_null(allow);
    json_t *o = answer_of(allow);
    const json_t *a = json_object_get(json_object_get(o, "response"), "response");
    cr_assert_str_eq(json_string_value(json_object_get(a, "behavior")), "allow");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a, "updatedInput"), "command")), "ls\n");
    json_decref(o);
    free(allow);
    char *deny = agent_permission_line("23f1-aa", 0, NULL, "denied by U1");
    o = answer_of(deny);
    a = json_object_get(json_object_get(o, "response"), "response");
    cr_assert_str_eq(json_string_value(json_object_get(a, "behavior")), "deny");
    cr_assert_str_eq(json_string_value(json_object_get(a, "message")), "denied by U1");
    json_decref(o);
    free(deny);
    cr_assert_null(agent_permission_line("23f1-aa", 1, "[1]", NULL), "not an object");
    cr_assert_null(agent_permission_line("23f1-aa", 1, "{", NULL));
}

Test(agent_stream, steer_lines_for_amp_carry_the_flag_and_an_id)
{
    char *plain = agent_steer_line("also docs", 0, "janebot-7");
    char *amp = agent_steer_line("also docs", 1, "janebot-7");
    cr_assert_str_eq(plain, "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{"
                            "\"type\":\"text\",\"text\":\"also docs\"}]}}\n");
    json_error_t je;
    json_t *o = json_loads(amp, 0, &je);
    cr_assert_not_null(o, "%s", amp);
    cr_assert(json_is_true(json_object_get(o, "steer")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "request_id")), "janebot-7");
    cr_assert_str_eq(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(o, "message"), "content"), 0), "text")),
        "also docs");
    json_decref(o);
    free(plain), free(amp);
    cr_assert_null(agent_steer_line("\xff\xfe", 1, "x"), "not UTF-8");
}

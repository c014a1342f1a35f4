/* tests/unit/test_parser_entry.c -- the parser entry points the fuzz targets call
 * (tests/fuzz/): slack_web_answer() judges an answer as slack_call_ex() does, and
 * sprites_rx_fragment() reads exec messages as sprites_ws_exec() does. */
#include <criterion/criterion.h>
#include <string.h>

#include "sandbox/sprites-int.h"
#include "slack/slack.h"

static int answer(long status, const char *head, const char *body, unsigned flags, json_t **ret,
                  char **code, long *after, struct jb_err *err)
{
    return slack_web_answer("chat.postMessage", flags, status, head, strlen(head), body,
                            strlen(body), ret, code, after, err);
}

Test(web_answer, ok_true_is_the_body)
{
    json_t *r = NULL;
    char *code = NULL;
    long after = 0;
    struct jb_err err = {0};
    cr_assert_eq(answer(200, "HTTP/1.1 200 OK\r\n\r\n", "{\"ok\":true,\"ts\":\"1.2\"}", 0, &r,
                        &code, &after, &err),
                 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "ts")), "1.2");
    cr_assert_eq(after, -1);
    cr_assert_null(code);
    json_decref(r);
}

Test(web_answer, rate_limit_reads_retry_after_and_is_retryable)
{
    json_t *r = NULL;
    char *code = NULL;
    long after = 0;
    struct jb_err err = {0};
    cr_assert_eq(answer(429, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n", "", 0, &r,
                        &code, &after, &err),
                 -1);
    cr_assert_eq(after, 7);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert(strstr(err.msg, "429"), "%s", err.msg);
}

Test(web_answer, errors_map_as_slack_call_ex_maps_them)
{
    json_t *r = NULL;
    char *code = NULL;
    long after = 0;
    struct jb_err err = {0};
    cr_assert_eq(
        answer(200, "", "{\"ok\":false,\"error\":\"invalid_auth\"}", 0, &r, &code, &after, &err),
        -1);
    cr_assert_eq(err.code, JB_EDENIED);
    cr_assert_str_eq(code, "invalid_auth");
    free(code);
    code = NULL;
    /* a garbled 2xx for a call that must not repeat: it may have been posted */
    cr_assert_eq(answer(200, "", "<html>", SLACK_CALL_ONCE, &r, &code, &after, &err), -1);
    cr_assert_eq(err.code, JB_ETIMEOUT);
    cr_assert_eq(answer(200, "", "{\"ok\":\"yes\"}", 0, &r, &code, &after, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_null(r);
}

static void on_stdout(void *ud, const char *p, size_t n)
{
    strncat(ud, p, n);
}

Test(sprites_rx, messages_split_over_fragments_are_read_whole)
{
    char out[64] = "";
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.on_stdout = on_stdout;
    x.ud = out;
    struct sprites_rx rx = {.x = &x, .text = JB_BUF_INIT(65536)};
    cr_assert_eq(sprites_rx_fragment(&rx, 1, 0, "\x01he", 3), 0);
    cr_assert_eq(sprites_rx_fragment(&rx, 0, 1, "llo", 3), 0); /* continuation */
    cr_assert_eq(sprites_rx_fragment(&rx, 1, 1, "\x02oops", 5), 0);
    cr_assert_eq(sprites_rx_fragment(&rx, 0, 0, "{\"type\":\"ex", 11), 0);
    cr_assert_eq(sprites_rx_fragment(&rx, 0, 1, "it\",\"exit_code\":259}", 20), 1);
    cr_assert_str_eq(out, "hello");
    cr_assert_str_eq(x.stderr_tail, "oops");
    cr_assert_eq(x.exit_code, 3); /* 259 & 0xff */
    sprites_rx_release(&rx);
}

Test(sprites_rx, a_bare_exit_frame_is_status_zero)
{
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.exit_code = 9;
    struct sprites_rx rx = {.x = &x, .text = JB_BUF_INIT(65536)};
    cr_assert_eq(sprites_rx_fragment(&rx, 1, 1, "\x03", 1), 1);
    cr_assert_eq(x.exit_code, 0);
    sprites_rx_release(&rx);
}

/* What the LLM proxy reads from answers (every kind of token, the model) and how it asks
 * a streamed Chat Completion for its usage (proxy/llm-usage.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "proxy/llm-int.h"

static struct llm_usage read_all(enum llm_provider p, const char *const *events, size_t n)
{
    struct llm_usage u = {0};
    for (size_t i = 0; i < n; i++)
        llm_usage_read(&u, p, events[i], strlen(events[i]));
    return u;
}

#define EXPECT_TOKENS(u, in, cw, cr, out)                                                          \
    cr_expect((u).t.input == (in) && (u).t.cache_write == (cw) && (u).t.cache_read == (cr) &&      \
                  (u).t.output == (out),                                                           \
              "got %lld in, %lld cache write, %lld cache read, %lld out", (long long)(u).t.input,  \
              (long long)(u).t.cache_write, (long long)(u).t.cache_read, (long long)(u).t.output)

Test(llm_usage, anthropic_stream_counts_cache_tokens_and_the_running_output)
{
    const char *ev[] = {
        "{\"type\":\"message_start\",\"message\":{\"model\":\"claude-x-1\",\"usage\":"
        "{\"input_tokens\":11,\"cache_creation_input_tokens\":100,"
        "\"cache_read_input_tokens\":1000,\"output_tokens\":1}}}",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":3}}",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":7}}",
    };
    struct llm_usage u = read_all(LLM_ANTHROPIC, ev, 3);
    EXPECT_TOKENS(u, 11, 100, 1000, 7);
    cr_expect_str_eq(u.model, "claude-x-1");
}

Test(llm_usage, anthropic_plain_message)
{
    const char *ev[] = {"{\"id\":\"m\",\"model\":\"claude-y\",\"usage\":{\"input_tokens\":5,"
                        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":20,"
                        "\"output_tokens\":9}}"};
    struct llm_usage u = read_all(LLM_ANTHROPIC, ev, 1);
    EXPECT_TOKENS(u, 5, 0, 20, 9);
    cr_expect_str_eq(u.model, "claude-y");
}

Test(llm_usage, openai_chat_cached_tokens_are_inside_prompt_tokens)
{
    const char *ev[] = {"{\"model\":\"gpt-z\",\"usage\":{\"prompt_tokens\":120,"
                        "\"completion_tokens\":30,\"prompt_tokens_details\":{\"cached_tokens\":"
                        "100}}}"};
    struct llm_usage u = read_all(LLM_OPENAI, ev, 1);
    EXPECT_TOKENS(u, 20, 0, 100, 30);
    cr_expect_str_eq(u.model, "gpt-z");
}

Test(llm_usage, openai_responses_stream_counts_at_response_completed)
{
    const char *ev[] = {
        "{\"type\":\"response.created\",\"response\":{\"model\":\"gpt-r\",\"usage\":null}}",
        "{\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}",
        "{\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-r\",\"usage\":{"
        "\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":40},"
        "\"output_tokens\":12,\"output_tokens_details\":{\"reasoning_tokens\":8},"
        "\"total_tokens\":62}}}",
    };
    struct llm_usage u = read_all(LLM_OPENAI, ev, 3);
    EXPECT_TOKENS(u, 10, 0, 40, 12);
    cr_expect_str_eq(u.model, "gpt-r");
}

Test(llm_usage, hostile_numbers_and_names_are_tamed)
{
    const char *ev[] = {"{\"model\":\"a\\u001b[31mb c\",\"usage\":{\"input_tokens\":-5,"
                        "\"output_tokens\":\"9\",\"cache_read_input_tokens\":2}}",
                        "not json"};
    struct llm_usage u = read_all(LLM_ANTHROPIC, ev, 2);
    EXPECT_TOKENS(u, 0, 0, 2, 0);
    cr_expect_str_eq(u.model, "a?[31mb?c");
}

/* The body as the upstream gets it: scanned in pieces of `step` bytes, the insertion sent
 * where the scanner says, then spaces up to the announced length. */
static char *rewrite(const char *body, size_t step, char model[JB_MODEL_MAX])
{
    struct llm_body_scan sc = {.want_usage = 1};
    size_t pad = llm_body_pad(LLM_OPENAI, "POST", "/v1/chat/completions"), added = 0;
    size_t n = strlen(body);
    char *out = calloc(n + pad + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = n - i < step ? n - i : step;
        const char *ins = NULL;
        size_t k = llm_body_scan(&sc, body + i, len, &ins);
        memcpy(out + o, body + i, k);
        o += k, i += k;
        if (ins) memcpy(out + o, ins, strlen(ins)), o += strlen(ins), added += strlen(ins);
    }
    cr_assert_leq(added, pad);
    memset(out + o, ' ', pad - added);
    if (model) llm_body_model(&sc, model);
    return out;
}

static json_t *stream_options_of(const char *body, size_t step)
{
    char *out = rewrite(body, step, NULL);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert_not_null(j, "not JSON after the rewrite (%s): %s", e.text, out);
    free(out);
    json_t *so = json_incref(json_object_get(j, "stream_options"));
    json_decref(j);
    return so;
}

Test(llm_usage, a_streamed_chat_completion_is_asked_for_usage)
{
    static const char *const bodies[] = {
        "{\"model\":\"gpt-z\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
        "\"}{\\\"}\"}]}",
        "{\"stream\" : true , \"stream_options\":{}}",
        "{\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
        "{\"stream_options\":{\"x\":{\"include_usage\":false}},\"stream\":true}",
        "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"stream_options\":{\"include_usage\":false}}",
        "{\"stream\":true,\"stream_options\":null}",
        "{\"str\\u0065am\":true,\"messages\":[]}",
        "{\"\\u0073tream\":true,\"stream_options\":{\"include_\\u0075sage\":false}}",
    };
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++)
        for (size_t step = 1; step <= strlen(bodies[b]); step += 7) {
            json_t *so = stream_options_of(bodies[b], step);
            cr_expect(json_is_true(json_object_get(so, "include_usage")), "body %zu step %zu", b,
                      step);
            json_decref(so);
        }
}

Test(llm_usage, a_request_that_does_not_stream_is_left_alone_but_padded)
{
    const char *body = "{\"model\":\"gpt-z\",\"stream\":false,\"messages\":[]}";
    char model[JB_MODEL_MAX];
    char *out = rewrite(body, 5, model);
    size_t pad = llm_body_pad(LLM_OPENAI, "POST", "/v1/chat/completions");
    cr_expect_eq(strlen(out), strlen(body) + pad);
    cr_expect(!strncmp(out, body, strlen(body)), "%s", out);
    cr_expect_eq(strspn(out + strlen(body), " "), pad);
    cr_expect_str_eq(model, "gpt-z");
    free(out);
    cr_expect_eq(llm_body_pad(LLM_OPENAI, "POST", "/v1/responses"), 0);
    cr_expect_eq(llm_body_pad(LLM_ANTHROPIC, "POST", "/v1/chat/completions"), 0);
}

Test(llm_usage, whether_the_client_asked_for_usage_itself)
{
    static const struct {
        const char *body;
        int asked;
    } cases[] = {
        {"{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 1},
        {"{\"stream\":true,\"stream_options\":{\"include_usage\":false}}", 0},
        {"{\"stream\":true}", 0},
        {"{\"stream\":true,\"stream_options\":{\"x\":{\"include_usage\":true}}}", 0},
        {"{\"stream_options\":{\"include_usage\":true},\"stream\":true,"
         "\"stream_options\":{\"include_usage\":false}}",
         0},
        {"{\"meta\":{\"include_usage\":true},\"stream\":true}", 0},
        {"{\"stream\":true,\"stream_options\":{\"a\":[1,{\"b\":2}],\"include_usage\":true}}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_body_scan sc = {.want_usage = 1};
        const char *p = cases[i].body, *ins = NULL;
        size_t n = strlen(p), k = llm_body_scan(&sc, p, n, &ins);
        if (k < n) llm_body_scan(&sc, p + k, n - k, &ins);
        cr_expect_eq(sc.client_usage, cases[i].asked, "case %zu: %s", i, cases[i].body);
        cr_expect(sc.inserted, "case %zu: a streamed request always gets ours", i);
    }
}

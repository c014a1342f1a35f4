/* tests/unit/test_llm_path.c -- the LLM proxy's allow list of API calls (llm-path.c) and
 * the header syntax check both proxies share (px_check_head(), http.c). The end-to-end
 * refusals over both listeners are in tests/security/test_4600_llm_proxy.py. */
#include <criterion/criterion.h>
#include <string.h>

#include "proxy/llm-int.h"

struct call {
    enum llm_provider p;
    const char *method, *target;
};

Test(llm_path, the_agents_calls_pass)
{
    static const struct call ok[] = {
        {LLM_ANTHROPIC, "POST", "/v1/messages"},
        {LLM_ANTHROPIC, "POST", "/v1/messages?beta=true"},
        {LLM_ANTHROPIC, "POST", "/v1/messages/count_tokens"},
        {LLM_ANTHROPIC, "POST", "/v1/messages/count_tokens?beta=true"},
        {LLM_OPENAI, "POST", "/v1/chat/completions"},
        {LLM_OPENAI, "POST", "/v1/responses"},
        {LLM_OPENAI, "GET", "/v1/models"},
        {LLM_AMP, "POST", "/api/internal?getUserInfo"},
        {LLM_AMP, "POST", "/api/internal?load_Plugins2"},
        {LLM_AMP, "POST", "/api/telemetry"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(ok); i++) {
        const char *why = llm_path_check(ok[i].p, ok[i].method, ok[i].target);
        cr_expect_null(why, "%s %s: %s", ok[i].method, ok[i].target, why);
    }
}

Test(llm_path, everything_else_is_refused_with_a_reason)
{
    static const struct {
        struct call c;
        const char *why; /* a word of the reason */
    } bad[] = {
        {{LLM_AMP, "POST", "/api/.."}, "'..'"},
        {{LLM_AMP, "POST", "/api/../"}, "'..'"},
        {{LLM_AMP, "POST", "/api/./internal?x"}, "'.'"},
        {{LLM_AMP, "POST", "/api//internal?x"}, "empty"},
        {{LLM_AMP, "POST", "/api/internal/?x"}, "empty"},
        {{LLM_AMP, "POST", "/"}, "empty"},
        {{LLM_AMP, "POST", ""}, "start"},
        {{LLM_AMP, "POST", "api/internal?x"}, "start"},
        {{LLM_AMP, "POST", "/api/%2e%2e"}, "percent"},
        {{LLM_AMP, "POST", "/api/%2E%2e/x"}, "percent"},
        {{LLM_AMP, "POST", "/api/internal%2fx"}, "percent"},
        {{LLM_AMP, "POST", "/api/internal%5Cx"}, "percent"},
        {{LLM_AMP, "POST", "/api\\internal?x"}, "backslash"},
        {{LLM_AMP, "POST", "/api/internal?x#y"}, "fragment"},
        {{LLM_AMP, "POST", "/api/threads"}, "not an API endpoint"},
        {{LLM_AMP, "GET", "/api/internal?getUserInfo"}, "method"},
        {{LLM_AMP, "POST", "/api/internal"}, "query"},
        {{LLM_AMP, "POST", "/api/internal?"}, "query"},
        {{LLM_AMP, "POST", "/api/internal?a=b"}, "query"},
        {{LLM_AMP, "POST", "/api/internal?a&b"}, "query"},
        {{LLM_AMP, "POST",
          "/api/internal?"
          "a123456789a123456789a123456789a123456789a123456789a123456789abcde"},
         "query"},
        {{LLM_AMP, "POST", "/api/telemetry?x"}, "query"},
        {{LLM_ANTHROPIC, "POST", "/v1/messages/../models"}, "'..'"},
        {{LLM_ANTHROPIC, "POST", "/v1/messages?beta=true&x"}, "query"},
        {{LLM_ANTHROPIC, "POST", "/v1/messages?beta=false"}, "query"},
        {{LLM_ANTHROPIC, "GET", "/v1/messages"}, "method"},
        {{LLM_ANTHROPIC, "POST", "/v1/models"}, "not an API endpoint"},
        {{LLM_ANTHROPIC, "POST", "/api/internal?x"}, "not an API endpoint"}, /* Amp's */
        {{LLM_OPENAI, "POST", "/v1/embeddings"}, "not an API endpoint"},
        {{LLM_OPENAI, "POST", "/v1/messages"}, "not an API endpoint"}, /* Anthropic's */
        {{LLM_OPENAI, "GET", "/v1/models?x=1"}, "query"},
        {{LLM_OPENAI, "DELETE", "/v1/models"}, "method"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        const struct call *c = &bad[i].c;
        const char *why = llm_path_check(c->p, c->method, c->target);
        cr_expect_not_null(why, "%s %s passed", c->method, c->target);
        if (why) cr_expect(strstr(why, bad[i].why), "%s %s: %s", c->method, c->target, why);
    }
}

Test(llm_path, header_syntax_is_strict)
{
    static const char ok[] = "POST /x HTTP/1.1\r\nHost: a\r\nX-A:\tv  w\t\r\nX-B:\r\n\r\n";
    cr_expect_null(px_check_head(ok, strlen(ok)));
    static const struct {
        const char *head, *why;
    } bad[] = {
        {"POST /x HTTP/1.1\r\nX-A : v\r\n\r\n", "bad header name"},
        {"POST /x HTTP/1.1\r\nX-A\t: v\r\n\r\n", "bad header name"},
        {"POST /x HTTP/1.1\r\nX-A: v\r\n folded\r\n\r\n", "folded"},
        {"POST /x HTTP/1.1\r\nX-A: v\r\n\tX-B: w\r\n\r\n", "folded"},
        {"POST /x HTTP/1.1\r\nX-A: v\nX-B: w\r\n\r\n", "bare LF"},
        {"POST /x HTTP/1.1\r\nX-A: v\rX-B: w\r\n\r\n", "bare CR"},
        {"POST /x HTTP/1.1\r\nX(A): v\r\n\r\n", "bad header name"},
        {"POST /x HTTP/1.1\r\n: v\r\n\r\n", "malformed"},
        {"POST /x HTTP/1.1\r\nno colon\r\n\r\n", "malformed"},
        {"POST /x HTTP/1.1\r\nX-A: v\x01\r\n\r\n", "control"},
        {"POST /x HTTP/1.1\r\nX-A: v\x7f\r\n\r\n", "control"},
        {"POST /x HTTP/1.1\r\nX-\xc3\xa9: v\r\n\r\n", "bad header name"},
        {"POST /x HTTP/1.1\r\nX-A: v\r\n", "blank line"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        const char *why = px_check_head(bad[i].head, strlen(bad[i].head));
        cr_expect_not_null(why, "passed: %s", bad[i].head);
        if (why) cr_expect(strstr(why, bad[i].why), "%s: %s", bad[i].head, why);
    }
    static const char nul[] = "POST /x HTTP/1.1\r\nX-A: v\0w\r\n\r\n";
    const char *why = px_check_head(nul, sizeof nul - 1);
    cr_expect(why && strstr(why, "NUL"), "%s", why ? why : "passed");
}

/* tests/unit/test_llm_path.c -- the LLM proxy's allow list of API calls (llm-path.c). The
 * head parser both proxies share is tested in test_http_head.c; the end-to-end
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

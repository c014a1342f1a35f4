/* proxy/llm-path.c -- which requests the LLM proxy passes upstream: an exact list of
 * method, path and query per provider, the calls the agent CLIs make (agent-clis.md) and
 * nothing else. The path goes upstream sent as written, so whatever a server could read as
 * another path (dot segments, empty segments, percent-escapes, backslashes) is refused
 * before the list is even looked at. */
#include <string.h>

#include "proxy/llm-int.h"

enum query {
    Q_NONE, /* no query string at all */
    Q_BETA, /* none, or exactly "beta=true" (Claude Code adds it to every call) */
    Q_NAME, /* exactly one name of [A-Za-z0-9_], 1 to 64 (Amp's "?<method>") */
};

static const struct endpoint {
    enum llm_provider provider;
    const char *method, *path;
    enum query query;
} endpoints[] = {
    /* Claude Code and Pi: one POST /v1/messages?beta=true per model turn; count_tokens is
     * the same API's, harmless, and the SDKs offer it. */
    {LLM_ANTHROPIC, "POST", "/v1/messages", Q_BETA},
    {LLM_ANTHROPIC, "POST", "/v1/messages/count_tokens", Q_BETA},
    /* The OpenAI SDKs' model calls, and the model list they may ask for first. */
    {LLM_OPENAI, "POST", "/v1/chat/completions", Q_NONE},
    {LLM_OPENAI, "POST", "/v1/responses", Q_NONE},
    {LLM_OPENAI, "GET", "/v1/models", Q_NONE},
    /* Amp: its JSON-RPC calls ("POST /api/internal?getUserInfo") and its telemetry. */
    {LLM_AMP, "POST", "/api/internal", Q_NAME},
    {LLM_AMP, "POST", "/api/telemetry", Q_NONE},
};

/* What no allowed path holds; NULL when path[0, n) has none of it. */
static const char *path_shape(const char *path, size_t n)
{
    if (n == 0 || path[0] != '/') return "the path must start with '/'";
    if (memchr(path, '%', n)) return "percent-escapes are not allowed in the path";
    for (const char *seg = path + 1, *end = path + n; seg <= end;) {
        const char *slash = memchr(seg, '/', (size_t)(end - seg));
        size_t len = (size_t)((slash ? slash : end) - seg);
        if (len == 0) return "empty path segments ('//' or a trailing '/') are not allowed";
        if ((len == 1 && seg[0] == '.') || (len == 2 && !memcmp(seg, "..", 2)))
            return "'.' and '..' path segments are not allowed";
        seg += len + 1;
    }
    return NULL;
}

static int query_ok(enum query q, const char *query) /* query: after '?', or NULL */
{
    switch (q) {
    case Q_NONE:
        return !query;
    case Q_BETA:
        return !query || !strcmp(query, "beta=true");
    case Q_NAME: {
        size_t n = query ? strspn(query, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_")
                         : 0;
        return n > 0 && n <= 64 && !query[n];
    }
    }
    return 0;
}

const char *llm_path_check(enum llm_provider p, const char *method, const char *target)
{
    if (strpbrk(target, "\\#")) return "backslashes and fragments are not allowed";
    const char *q = strchr(target, '?');
    size_t n = q ? (size_t)(q - target) : strlen(target);
    const char *why = path_shape(target, n);
    if (why) return why;
    int path_known = 0;
    for (size_t i = 0; i < JB_ARRAY_LEN(endpoints); i++) {
        const struct endpoint *e = &endpoints[i];
        if (e->provider != p || strlen(e->path) != n || strncmp(e->path, target, n)) continue;
        path_known = 1;
        if (strcmp(e->method, method)) continue;
        return query_ok(e->query, q ? q + 1 : NULL) ? NULL
                                                    : "this query string is not allowed here";
    }
    return path_known ? "this method is not allowed on this path"
                      : "not an API endpoint the agents use";
}

/* ---- what the sandbox's environment names ---- */

/* A local sandbox's own listener, handed to the proxy; a remote one reaches the proxy at
 * its public URL. */
#define LOCAL_URL "http://127.0.0.1:4000"
#define PROVIDER(key, base, path)                                                                  \
    {                                                                                              \
        key, base, LOCAL_URL path, path                                                            \
    }
static const struct {
    const char *key_var, *base_var, *base_url, *api_path;
} providers[LLM_NPROVIDERS] = {
    [LLM_ANTHROPIC] = PROVIDER("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "/anthropic"),
    [LLM_OPENAI] = PROVIDER("OPENAI_API_KEY", "OPENAI_BASE_URL", "/openai/v1"),
    [LLM_AMP] = PROVIDER("AMP_API_KEY", "AMP_URL", "/amp"),
};

const char *llm_key_var(enum llm_provider p)
{
    return providers[p].key_var;
}
const char *llm_base_var(enum llm_provider p)
{
    return providers[p].base_var;
}
const char *llm_base_url(enum llm_provider p)
{
    return providers[p].base_url;
}
const char *llm_api_path(enum llm_provider p)
{
    return providers[p].api_path;
}

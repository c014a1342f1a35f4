/* tests/fuzz/llm.c -- the LLM proxy's reading of bodies. Mode 0: a request body from the
 * sandbox through llm_body_scan() in pieces as the HTTP client asks for them (llm-fwd.c), with
 * want_usage: when the body is a JSON object, the body with the insertion must still be
 * one, and it may grow by at most llm_body_pad(). Mode 1: an upstream answer through
 * llm_usage_read(), whole (JSON) and per "data:" line (server-sent events).
 * Input: [mode][provider][piece size] then the bytes. */
#include <jansson.h>

#include "fuzz.h"
#include "proxy/llm-int.h"

static void request_body(enum llm_provider p, size_t piece, const uint8_t *data, size_t size)
{
    struct llm_body_scan sc = {.want_usage = p == LLM_OPENAI};
    struct jb_buf out = JB_BUF_INIT((size_t)-1);
    int inserted = 0;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        const char *ins = NULL;
        size_t k = llm_body_scan(&sc, (const char *)data + off, n, &ins);
        FUZZ_ASSERT(k <= n);
        if (jb_buf_append(&out, (const char *)data + off, k, NULL) < 0) abort();
        if (ins) {
            FUZZ_ASSERT(!inserted); /* once per body */
            inserted = 1;
            if (jb_buf_append(&out, ins, strlen(ins), NULL) < 0) abort();
        } else {
            FUZZ_ASSERT(k == n);
        }
        off += k;
    }
    char model[JB_MODEL_MAX];
    llm_body_model(&sc, model);
    for (const char *m = model; *m; m++)
        FUZZ_ASSERT(*m > ' ' && *m < 0x7f);
    size_t pad = llm_body_pad(p, "POST", "/v1/chat/completions");
    FUZZ_ASSERT(out.len <= size + pad);
    json_t *before = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(before)) {
        json_t *after = json_loadb(out.data, out.len, 0, NULL);
        if (!json_is_object(after))
            fprintf(stderr, "fuzz: the body with the insertion is no JSON object: %.*s\n",
                    (int)(out.len < 400 ? out.len : 400), out.data);
        FUZZ_ASSERT(json_is_object(after));
        json_decref(after);
    }
    json_decref(before);
    jb_buf_release(&out);
}

static void answer(enum llm_provider p, const uint8_t *data, size_t size)
{
    struct llm_usage u = {0};
    llm_usage_read(&u, p, (const char *)data, size);
    for (size_t i = 0; i < size;) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (data + i)) : size - i;
        if (n > 5 && !memcmp(data + i, "data:", 5))
            llm_usage_read(&u, p, (const char *)data + i + 5, n - 5);
        i += n + 1;
    }
    FUZZ_ASSERT(u.t.input >= 0 && u.t.output >= 0 && u.t.cache_read >= 0 && u.t.cache_write >= 0);
    FUZZ_ASSERT(strlen(u.model) < JB_MODEL_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    unsigned mode = fuzz_byte(&data, &size);
    enum llm_provider p = (enum llm_provider)(fuzz_byte(&data, &size) % LLM_NPROVIDERS);
    size_t piece = 1 + fuzz_byte(&data, &size) * 16;
    if (mode & 1)
        answer(p, data, size);
    else
        request_body(p, piece, data, size);
    return 0;
}

/* proxy/llm-usage.c -- what an upstream answer says was used (tokens of each kind the
 * provider bills, and the model), and what a request body names: its model and, for a
 * streamed Chat Completion, whether usage must be asked for. Both sides are read as
 * they stream past; neither is held whole. */
#include <jansson.h>
#include <string.h>

#include "proxy/llm-int.h"

static int64_t count_of(const json_t *o, const char *k, int *have)
{
    const json_t *v = json_object_get(o, k);
    if (have) *have = json_is_integer(v);
    int64_t n = (int64_t)json_integer_value(v);
    return n > 0 ? n : 0;
}

/* A model name as shown to people and stored: printable ASCII only, cut to fit. */
static void set_model(char out[JB_MODEL_MAX], const char *m, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < JB_MODEL_MAX; i++)
        out[i] = (m[i] > ' ' && m[i] < 0x7f) ? m[i] : '?';
    out[i] = '\0';
}

/* One usage object. OpenAI counts cached prompt tokens inside its prompt/input total;
 * Anthropic reports the three kinds apart, over several events (message_start, then the
 * running totals of message_delta): each field present replaces what was seen. */
static void read_usage(struct llm_usage *u, enum llm_provider p, const json_t *us)
{
    if (!json_is_object(us)) return;
    struct jb_tokens *t = &u->t;
    int have = 0;
    /* OpenAI: Chat Completions name them prompt/completion, Responses input/output; both
     * count the cached part inside the prompt. */
    int chat = json_object_get(us, "prompt_tokens") != NULL;
    if (chat || p == LLM_OPENAI) {
        const char *in_key = chat ? "prompt_tokens" : "input_tokens";
        const char *details = chat ? "prompt_tokens_details" : "input_tokens_details";
        int64_t cached = count_of(json_object_get(us, details), "cached_tokens", NULL);
        int64_t in = count_of(us, in_key, NULL);
        t->cache_read = cached < in ? cached : in;
        t->input = in - t->cache_read, t->cache_write = 0;
        t->output = count_of(us, chat ? "completion_tokens" : "output_tokens", NULL);
        return;
    }
    int64_t v = count_of(us, "input_tokens", &have);
    if (have) t->input = v;
    v = count_of(us, "cache_creation_input_tokens", &have);
    if (have) t->cache_write = v;
    v = count_of(us, "cache_read_input_tokens", &have);
    if (have) t->cache_read = v;
    v = count_of(us, "output_tokens", &have);
    if (have) t->output = v;
}

static void read_holder(struct llm_usage *u, enum llm_provider p, const json_t *h)
{
    if (!json_is_object(h)) return;
    const char *m = json_string_value(json_object_get(h, "model"));
    if (m && *m) set_model(u->model, m, strlen(m));
    read_usage(u, p, json_object_get(h, "usage"));
}

int llm_usage_read(struct llm_usage *u, enum llm_provider p, const char *data, size_t len)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j) return 0;
    /* The answer itself (a message, a completion, a chunk, message_delta), Anthropic's
     * message_start, the Responses API's events (response.completed), a JSON-RPC result. */
    read_holder(u, p, j);
    read_holder(u, p, json_object_get(j, "message"));
    read_holder(u, p, json_object_get(j, "response"));
    read_holder(u, p, json_object_get(j, "result"));
    const json_t *choices = json_object_get(j, "choices");
    int usage_only = json_is_array(choices) && json_array_size(choices) == 0 &&
                     json_is_object(json_object_get(j, "usage"));
    json_decref(j);
    return usage_only;
}

/* ---- the request body ---- */

static const char top_insert[] = ",\"stream_options\":{\"include_usage\":true}";

size_t llm_body_pad(enum llm_provider p, const char *method, const char *path)
{
    return p == LLM_OPENAI && !strcmp(method, "POST") && !strcmp(path, "/v1/chat/completions")
               ? sizeof top_insert - 1
               : 0;
}

enum { K_OTHER, K_MODEL, K_STREAM, K_STREAM_OPTIONS, K_INCLUDE_USAGE };

/* Keys are followed at the top level, and one level down inside stream_options. */
static int tracked(const struct llm_body_scan *sc)
{
    return sc->depth == 1 || (sc->depth == 2 && sc->in_options);
}

static void key_done(struct llm_body_scan *sc)
{
    sc->key[sc->key_len] = '\0';
    if (sc->depth == 2)
        sc->key_id = !strcmp(sc->key, "include_usage") ? K_INCLUDE_USAGE : K_OTHER;
    else
        sc->key_id = !strcmp(sc->key, "model")            ? K_MODEL
                     : !strcmp(sc->key, "stream")         ? K_STREAM
                     : !strcmp(sc->key, "stream_options") ? K_STREAM_OPTIONS
                                                          : K_OTHER;
}

/* A byte inside a string. 1 when the string ended with it. */
static int in_string(struct llm_body_scan *sc, char c)
{
    /* Escapes are decoded: "str\u0065am" is the key "stream" to the upstream too. */
    if (sc->uhex) {
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : 0;
        sc->ucode = sc->ucode * 16 + v;
        if (--sc->uhex) return 0;
        c = sc->ucode > 0 && sc->ucode < 0x80 ? (char)sc->ucode : '?';
    } else if (sc->esc) {
        sc->esc = 0;
        if (c == 'u') {
            sc->uhex = 4, sc->ucode = 0;
            return 0;
        }
        c = c == 'n'   ? '\n'
            : c == 't' ? '\t'
            : c == 'r' ? '\r'
            : c == 'b' ? '\b'
            : c == 'f' ? '\f'
                       : c;
    } else if (c == '\\') {
        sc->esc = 1;
        return 0;
    } else if (c == '"') {
        sc->in_str = 0;
        return 1;
    }
    if (!tracked(sc)) return 0;
    if (sc->want_key) {
        if (sc->key_len + 1 < sizeof sc->key) sc->key[sc->key_len++] = c;
    } else if (sc->depth == 1 && sc->key_id == K_MODEL && sc->model_len + 1 < JB_MODEL_MAX) {
        sc->model[sc->model_len++] = c;
    }
    return 0;
}

/* At the end of a streamed request, a stream_options of our own: the last of a key sent
 * twice is the one read, so a client's own (include_usage false, or two of them) cannot
 * keep the usage away. Its other stream options are dropped with it. */
static const char *insertion(const struct llm_body_scan *sc)
{
    return sc->want_usage && !sc->inserted && sc->depth == 1 && sc->stream ? top_insert : NULL;
}

/* A value starts with c (not a string, object or array) at a tracked level. */
static void literal(struct llm_body_scan *sc, char c)
{
    if (sc->key_id == K_STREAM) sc->stream = c == 't'; /* true, or anything else */
    if (sc->key_id == K_INCLUDE_USAGE) sc->client_usage = c == 't';
    sc->key_id = K_OTHER;
}

static void open_brace(struct llm_body_scan *sc, char c)
{
    if (sc->depth == 1 && !sc->want_key && sc->key_id == K_STREAM_OPTIONS && c == '{')
        sc->in_options = 1, sc->client_usage = 0; /* the last stream_options counts */
    sc->depth++;
    if (tracked(sc)) sc->want_key = 1, sc->key_id = K_OTHER;
}

static void close_brace(struct llm_body_scan *sc)
{
    if (sc->depth == 2 && sc->in_options) sc->in_options = 0, sc->want_key = 0;
    if (sc->depth > 0) sc->depth--;
    if (sc->depth == 1) sc->key_id = K_OTHER;
}

size_t llm_body_scan(struct llm_body_scan *sc, const char *p, size_t n, const char **inject)
{
    *inject = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (sc->in_str) {
            if (in_string(sc, c) && tracked(sc)) {
                if (sc->want_key)
                    key_done(sc);
                else if (sc->depth == 1 && sc->key_id == K_MODEL)
                    sc->model[sc->model_len] = '\0';
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '}' && (*inject = insertion(sc))) {
            sc->inserted = 1;
            return i; /* c itself is fed again, after the insertion */
        }
        if (c == '"') {
            sc->in_str = 1;
            if (tracked(sc) && sc->want_key) sc->key_len = 0;
            if (sc->depth == 1 && !sc->want_key && sc->key_id == K_MODEL) sc->model_len = 0;
        } else if (c == '{' || c == '[') {
            open_brace(sc, c);
        } else if (c == '}' || c == ']') {
            close_brace(sc);
        } else if (tracked(sc) && c == ':') {
            sc->want_key = 0;
        } else if (tracked(sc) && c == ',') {
            sc->want_key = 1, sc->key_id = K_OTHER;
        } else if (tracked(sc) && !sc->want_key) {
            literal(sc, c);
        }
    }
    return n;
}

void llm_body_model(const struct llm_body_scan *sc, char out[JB_MODEL_MAX])
{
    set_model(out, sc->model, sc->model_len);
}

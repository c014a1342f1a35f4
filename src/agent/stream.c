/* agent/stream.c -- incremental parser for the stream-json lines agent CLIs print.
 * Feed it bytes as they arrive; it emits agent_events for each complete line it understands.
 *
 * Lines are split on '\n' (a trailing '\r' is dropped) and kept in a buffer capped at
 * max_line; past the cap the rest of the line is discarded and counted once as too_long,
 * so a runaway line never aborts a run. Keys come in any order and null equals absent.
 * Line contents are never logged: they may hold secrets or user data. */
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"

#define DEFAULT_MAX_LINE (16u << 20)
#define SUMMARY_MAX      80         /* bytes of a tool input summary, before the ellipsis */
#define ERRORS_MAX       4096       /* bytes of a result's joined "errors" */
#define KEEP_LINE_BUF    (1u << 20) /* a line buffer grown past this is freed after use */

struct agent_stream {
    agent_event_fn cb;
    void *ud;
    struct jb_buf line; /* the current partial line; max = max_line */
    int discarding;     /* dropping the rest of a line that went over the cap */
    struct agent_stream_stats stats;
};

struct agent_stream *agent_stream_new(size_t max_line, agent_event_fn cb, void *ud)
{
    struct agent_stream *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->cb = cb;
    st->ud = ud;
    st->line = (struct jb_buf)JB_BUF_INIT(max_line ? max_line : DEFAULT_MAX_LINE);
    return st;
}

void agent_stream_free(struct agent_stream *st)
{
    if (!st) return;
    jb_buf_release(&st->line);
    free(st);
}

const struct agent_stream_stats *agent_stream_stats(const struct agent_stream *st)
{
    return &st->stats;
}

/* ---- small JSON accessors (borrowed values; NULL/0 when absent, null or mistyped) ---- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d > -9e18 && d < 9e18 ? (int64_t)d : 0;
    }
    return 0;
}

static void emit(struct agent_stream *st, struct agent_event *ev, const json_t *line)
{
    if (!ev->session_id) ev->session_id = jstr(line, "session_id");
    st->stats.events++;
    if (st->cb) st->cb(st->ud, ev);
}

/* ---- tool input summary ---- */

/* Copy s into out (size >= SUMMARY_MAX + 4) on one line: control characters become
 * spaces, at most SUMMARY_MAX bytes cut at a UTF-8 boundary, then "…" when cut. */
static void one_line(const char *s, char *out)
{
    size_t n = 0;
    for (; n < SUMMARY_MAX && s[n]; n++)
        out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? ' ' : s[n];
    if (s[n]) {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* not mid-character */
        memcpy(out + n, "\xe2\x80\xa6", 3);
        n += 3;
    }
    out[n] = '\0';
}

static void tool_summary(const json_t *input, char *out)
{
    static const char *const keys[] = {"command", "file_path", "path",   "pattern",
                                       "url",     "query",     "prompt", "description"};
    const char *s = NULL;
    if (json_is_string(input)) s = json_string_value(input);
    for (size_t i = 0; !s && i < JB_ARRAY_LEN(keys); i++)
        s = jstr(input, keys[i]);
    if (!s && json_is_object(input)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)input, key, v)
        {
            if ((s = json_string_value(v))) break;
        }
    }
    if (s)
        one_line(s, out);
    else
        out[0] = '\0';
}

/* ---- per-type handlers ---- */

static int is_subagent(const json_t *line)
{
    const json_t *p = json_object_get(line, "parent_tool_use_id");
    return p && !json_is_null(p);
}

static void on_system(struct agent_stream *st, const json_t *o, const char *subtype)
{
    struct agent_event ev = {.subtype = subtype};
    if (subtype && strcmp(subtype, "init") == 0) {
        ev.type = AGENT_EV_INIT;
        emit(st, &ev, o);
        return;
    }
    if (!subtype || strcmp(subtype, "api_retry") != 0) {
        st->stats.unknown++;
        return;
    }
    char text[160];
    const json_t *status = json_object_get(o, "error_status");
    const char *error = jstr(o, "error");
    int n = snprintf(text, sizeof text, "API retry %lld/%lld", (long long)jint(o, "attempt"),
                     (long long)jint(o, "max_retries"));
    if (json_is_integer(status))
        snprintf(text + n, sizeof text - (size_t)n, " (status %lld)",
                 (long long)json_integer_value(status));
    else if (error)
        snprintf(text + n, sizeof text - (size_t)n, " (%.60s)", error);
    ev.type = AGENT_EV_RETRY;
    ev.text = text;
    emit(st, &ev, o);
}

static void on_assistant(struct agent_stream *st, const json_t *o)
{
    if (is_subagent(o)) return;
    const json_t *content = json_object_get(json_object_get(o, "message"), "content");
    if (json_is_string(content)) {
        struct agent_event ev = {.type = AGENT_EV_TEXT, .text = json_string_value(content)};
        emit(st, &ev, o);
        return;
    }
    size_t i;
    const json_t *block;
    json_array_foreach(content, i, block)
    {
        const char *btype = jstr(block, "type");
        if (!btype) continue;
        if (strcmp(btype, "text") == 0 && jstr(block, "text")) {
            struct agent_event ev = {.type = AGENT_EV_TEXT, .text = jstr(block, "text")};
            emit(st, &ev, o);
        } else if (strcmp(btype, "tool_use") == 0) {
            char summary[SUMMARY_MAX + 4];
            tool_summary(json_object_get(block, "input"), summary);
            struct agent_event ev = {
                .type = AGENT_EV_TOOL_USE, .tool_name = jstr(block, "name"), .text = summary};
            emit(st, &ev, o);
        } /* thinking and unknown blocks are not reported */
    }
}

/* A tool result's content as text: the string, or the first text block of a list. */
static const char *tool_result_text(const json_t *content)
{
    if (json_is_string(content)) return json_string_value(content);
    size_t i;
    const json_t *block;
    json_array_foreach(content, i, block)
    {
        const char *btype = jstr(block, "type");
        if (btype && strcmp(btype, "text") == 0 && jstr(block, "text")) return jstr(block, "text");
    }
    return NULL;
}

static void on_user(struct agent_stream *st, const json_t *o)
{
    if (is_subagent(o)) return;
    const json_t *content = json_object_get(json_object_get(o, "message"), "content");
    size_t i;
    const json_t *block; /* a bare string content is the prompt echoed: nothing to report */
    json_array_foreach(content, i, block)
    {
        const char *btype = jstr(block, "type");
        if (!btype || strcmp(btype, "tool_result") != 0) continue;
        struct agent_event ev = {
            .type = AGENT_EV_TOOL_RESULT,
            .is_error = json_is_true(json_object_get(block, "is_error")),
            .text = tool_result_text(json_object_get(block, "content")),
        };
        emit(st, &ev, o);
    }
}

/* "errors" (a list of strings, or one string) joined with "; " into b; NULL when none. */
static const char *join_errors(const json_t *errors, struct jb_buf *b)
{
    if (json_is_string(errors)) return json_string_value(errors);
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *s = json_string_value(e);
        if (!s || !*s) continue;
        if (b->len && jb_buf_append(b, "; ", 2, NULL) < 0) break;
        size_t room = b->max - b->len, n = strlen(s);
        if (n <= room) {
            if (jb_buf_append(b, s, n, NULL) < 0) break;
            continue;
        }
        while (room > 0 && ((unsigned char)s[room] & 0xC0) == 0x80)
            room--; /* whole chars */
        jb_buf_append(b, s, room, NULL);
        break;
    }
    return b->len ? b->data : NULL;
}

static void on_result(struct agent_stream *st, const json_t *o, const char *subtype)
{
    struct jb_buf errors = JB_BUF_INIT(ERRORS_MAX);
    const json_t *usage = json_object_get(o, "usage");
    struct agent_event ev = {
        .type = AGENT_EV_RESULT,
        .text = jstr(o, "result"),
        .subtype = subtype,
        .is_error = json_is_true(json_object_get(o, "is_error")),
        .input_tokens = jint(usage, "input_tokens"),
        .output_tokens = jint(usage, "output_tokens"),
        .errors = join_errors(json_object_get(o, "errors"), &errors),
    };
    emit(st, &ev, o);
    jb_buf_release(&errors);
}

/* Claude Code asks before a tool runs (--permission-prompt-tool stdio): a can_use_tool
 * control request. Other control requests are not ours to answer. */
static void on_control_request(struct agent_stream *st, const json_t *o)
{
    const json_t *rq = json_object_get(o, "request");
    const char *id = jstr(o, "request_id"), *sub = jstr(rq, "subtype");
    const json_t *input = json_object_get(rq, "input");
    if (!id || !*id || !sub || strcmp(sub, "can_use_tool") != 0 || !jstr(rq, "tool_name") ||
        !json_is_object(input)) {
        st->stats.unknown++;
        return;
    }
    char *text = json_dumps(input, JSON_COMPACT);
    if (!text) {
        st->stats.unknown++;
        return;
    }
    struct agent_event ev = {.type = AGENT_EV_PERMISSION,
                             .request_id = id,
                             .tool_name = jstr(rq, "tool_name"),
                             .input_json = text,
                             .tool_use_id = jstr(rq, "tool_use_id")};
    emit(st, &ev, o);
    free(text);
}

static void on_control_cancel(struct agent_stream *st, const json_t *o)
{
    const char *id = jstr(o, "request_id");
    if (!id || !*id) {
        st->stats.unknown++;
        return;
    }
    struct agent_event ev = {.type = AGENT_EV_PERMISSION_CANCEL, .request_id = id};
    emit(st, &ev, o);
}

static void dispatch(struct agent_stream *st, const json_t *o)
{
    const char *type = jstr(o, "type"), *subtype = jstr(o, "subtype");
    if (!type)
        st->stats.unknown++;
    else if (strcmp(type, "system") == 0)
        on_system(st, o, subtype);
    else if (strcmp(type, "assistant") == 0)
        on_assistant(st, o);
    else if (strcmp(type, "user") == 0)
        on_user(st, o);
    else if (strcmp(type, "result") == 0)
        on_result(st, o, subtype);
    else if (strcmp(type, "control_request") == 0)
        on_control_request(st, o);
    else if (strcmp(type, "control_cancel_request") == 0)
        on_control_cancel(st, o);
    else
        st->stats.unknown++;
}

/* ---- lines ---- */

static void line_done(struct agent_stream *st)
{
    if (st->line.cap > KEEP_LINE_BUF)
        jb_buf_release(&st->line); /* one huge line must not pin its memory for the run */
    else
        jb_buf_reset(&st->line);
}

static void parse_line(struct agent_stream *st, const char *p, size_t n, int at_eof)
{
    st->stats.lines++;
    if (n && p[n - 1] == '\r') n--;
    size_t skip = 0;
    while (skip < n && (p[skip] == ' ' || p[skip] == '\t' || p[skip] == '\r'))
        skip++;
    if (skip == n) return; /* blank */
    json_error_t jerr;
    json_t *o = p[skip] == '{' ? json_loadb(p, n, JSON_ALLOW_NUL, &jerr) : NULL;
    if (!json_is_object(o)) {
        st->stats.not_json++;
        log_debug("agent stream: skipped %s line of %zu bytes (%s)", at_eof ? "unterminated" : "a",
                  n, p[skip] == '{' ? "bad JSON" : "not JSON");
        json_decref(o);
        return;
    }
    dispatch(st, o);
    json_decref(o);
}

void agent_stream_feed(struct agent_stream *st, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (!st->discarding && jb_buf_append(&st->line, data, n, NULL) < 0) {
            st->stats.too_long++;
            log_warn("agent stream: line over %zu bytes skipped", st->line.max);
            line_done(st);
            st->discarding = 1;
        }
        if (!nl) return;
        if (st->discarding) {
            st->stats.lines++;
            st->discarding = 0;
        } else {
            parse_line(st, st->line.data, st->line.len, 0);
        }
        line_done(st);
        data = nl + 1;
        len -= n + 1;
    }
}

void agent_stream_finish(struct agent_stream *st)
{
    if (st->discarding)
        st->stats.lines++; /* the too long tail was counted already */
    else if (st->line.len)
        parse_line(st, st->line.data, st->line.len, 1);
    st->discarding = 0;
    line_done(st);
}

/* tests/fuzz/web.c -- Web API answers: slack_web_answer() (the header lines, status and
 * body as slack_call_ex() judges them), then what the typed methods read from a success
 * (the messages of conversations.replies as slack_files_normalise() keeps their files).
 * Input: "HTTP/1.1 STATUS ...\r\n" and header lines up to a blank line, then the body; or
 * only a body (status 200). The last byte's low bit: SLACK_CALL_ONCE. */
#include "fuzz.h"
#include "slack/slack.h"

/* The status of the status line: "HTTP/x[.y] NNN". */
static long status_of(const char *head, size_t n)
{
    long st = 0;
    if (n < 5 || memcmp(head, "HTTP/", 5)) return 200;
    const char *sp = memchr(head, ' ', n);
    if (!sp) return 0;
    for (const char *p = sp + 1; p < head + n && p < sp + 4; p++) {
        if (*p < '0' || *p > '9') return 0;
        st = st * 10 + (*p - '0');
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    unsigned flags = fuzz_last(data, size) & 1 ? SLACK_CALL_ONCE : 0;
    const uint8_t *blank = size >= 4 ? memmem(data, size, "\r\n\r\n", 4) : NULL;
    size_t head_len =
        blank && size >= 5 && !memcmp(data, "HTTP/", 5) ? (size_t)(blank - data) + 4 : 0;
    long status = head_len ? status_of((const char *)data, head_len) : 200;
    json_t *r = NULL;
    char *code = NULL;
    long after = 0;
    struct jb_err err = {0};
    int rc =
        slack_web_answer("chat.postMessage", flags, status, (const char *)data, head_len,
                         (const char *)data + head_len, size - head_len, &r, &code, &after, &err);
    FUZZ_ASSERT(rc == 0 || rc == -1);
    FUZZ_ASSERT(after == -1 || (after >= 1 && after <= 86400));
    if (rc == 0) {
        FUZZ_ASSERT(json_is_object(r) && json_is_true(json_object_get(r, "ok")));
        json_t *msgs = json_object_get(r, "messages");
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            char *files = NULL;
            struct jb_strv skipped = {0};
            slack_files_normalise(json_object_get(m, "files"), 1 << 20, &files, &skipped, &err);
            free(files);
            jb_strv_free(&skipped);
        }
    } else {
        FUZZ_ASSERT(err.msg[0] && r == NULL);
    }
    json_decref(r);
    free(code);
    return 0;
}

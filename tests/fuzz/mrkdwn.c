/* tests/fuzz/mrkdwn.c -- the agent's Markdown to Slack mrkdwn
 * (slack_mrkdwn_from_markdown()), then slack_chunk() of the result, checking what slack.h
 * promises of the pieces: at most max_chars code points each, no UTF-8 sequence split
 * (valid UTF-8 in, valid UTF-8 out), and the text back byte for byte once the added fence
 * lines are removed. Input: the Markdown; its last byte sets max_chars. */
#include "fuzz.h"
#include "slack/slack.h"

#define REOPEN "```\n"

/* Valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF); code points in *count. */
static int utf8_valid(const char *s, size_t n, size_t *count)
{
    size_t i = 0, c = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        size_t k = b < 0x80             ? 1
                   : (b & 0xE0) == 0xC0 ? 2
                   : (b & 0xF0) == 0xE0 ? 3
                   : (b & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (!k || i + k > n) return 0;
        uint32_t cp = k == 1 ? b : k == 2 ? b & 0x1F : k == 3 ? b & 0x0F : b & 0x07;
        for (size_t j = 1; j < k; j++) {
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | ((unsigned char)s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k, c++;
    }
    if (count) *count = c;
    return 1;
}

/* Code points as chunk.c counts them: a lead byte with its continuation bytes, or any
 * other byte alone. */
static size_t chars_of(const char *s)
{
    size_t c = 0, n = strlen(s);
    for (size_t i = 0; i < n; c++) {
        unsigned char b = (unsigned char)s[i];
        size_t want = b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 1, j = i + 1;
        while (j < n && j - i < want && ((unsigned char)s[j] & 0xC0) == 0x80)
            j++;
        i = j;
    }
    return c;
}

/* Do pieces v[i..] give text[pos..] back, piece i starting with an added REOPEN when
 * reopened? Each piece may end with an added closing line, and then the next is reopened. */
static int rejoins(char *const *v, size_t i, size_t np, const char *text, size_t pos, size_t n,
                   int reopened)
{
    if (i == np) return pos == n && !reopened;
    const char *p = v[i];
    size_t len = strlen(p);
    if (reopened) {
        if (strncmp(p, REOPEN, strlen(REOPEN))) return 0;
        p += strlen(REOPEN), len -= strlen(REOPEN);
    }
    static const char *const closes[] = {"", "```", "\n```"};
    for (int c = 0; c < 3; c++) {
        size_t cl = strlen(closes[c]);
        if (cl > len || strcmp(p + len - cl, closes[c])) continue;
        size_t m = len - cl;
        if (m == 0 || pos + m > n || memcmp(text + pos, p, m)) continue;
        if (rejoins(v, i + 1, np, text, pos + m, n, c > 0)) return 1;
    }
    return 0;
}

static void check_chunks(const char *text, size_t max_chars)
{
    struct jb_strv out = {0};
    struct jb_err err = {0};
    size_t n = strlen(text);
    if (slack_chunk(text, max_chars, &out, &err) < 0) {
        fprintf(stderr, "fuzz: slack_chunk(%zu chars, max %zu) failed: %s\n", n, max_chars,
                err.msg);
        abort(); /* a reply that cannot be posted */
    }
    int valid = utf8_valid(text, n, NULL);
    for (size_t i = 0; i < out.n; i++) {
        FUZZ_ASSERT(out.v[i][0] != '\0');
        FUZZ_ASSERT(chars_of(out.v[i]) <= max_chars);
        if (valid) FUZZ_ASSERT(utf8_valid(out.v[i], strlen(out.v[i]), NULL));
    }
    FUZZ_ASSERT(n == 0 ? out.n == 0 : out.n > 0);
    if (out.n < 2000) FUZZ_ASSERT(rejoins(out.v, 0, out.n, text, 0, n, 0));
    jb_strv_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    size_t max_chars = SLACK_CHUNK_MIN + fuzz_last(data, size) % 64;
    char *md = fuzz_strndup(data, size);
    char *mrkdwn = slack_mrkdwn_from_markdown(md);
    if (!mrkdwn) abort();
    FUZZ_ASSERT(strlen(mrkdwn) <= 8 * strlen(md) + 65536 + 64 * 8); /* slack.h's bound */
    check_chunks(mrkdwn, max_chars);
    check_chunks(md, max_chars); /* chunking also sees text that is not converted */
    free(mrkdwn);
    free(md);
    return 0;
}

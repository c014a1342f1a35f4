/* slack/chunk.c -- split long mrkdwn into pieces Slack accepts, cutting at blank lines,
 * newlines or spaces, never inside a UTF-8 sequence, and closing/reopening ``` fences
 * across a cut so every piece renders on its own. */
#include <string.h>

#include "slack/slack.h"

#define REOPEN     "```\n" /* added at the start of a piece that begins inside a fence */
#define CLOSE_NL   "```"   /* added after a piece ending with a newline inside a fence */
#define CLOSE_NONL "\n```" /* added after a piece ending mid-line inside a fence */

/* Byte index after the code point at i: a lead byte and its continuation bytes; a stray
 * continuation or invalid byte counts as one character on its own. */
static size_t cp_next(const char *s, size_t i, size_t n)
{
    unsigned char c = (unsigned char)s[i];
    size_t want = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
    size_t j = i + 1;
    while (j < n && j - i < want && ((unsigned char)s[j] & 0xC0) == 0x80)
        j++;
    return j;
}

/* A run of 3+ backticks starting at i toggles "inside a fence". */
static int fence_at(const char *s, size_t i, size_t n)
{
    if (s[i] != '`' || (i > 0 && s[i - 1] == '`')) return 0;
    return i + 2 < n && s[i + 1] == '`' && s[i + 2] == '`';
}

struct cut {
    size_t end;   /* 0: none */
    int open;     /* inside a fence at end */
    size_t chars; /* code points from the piece's start to end */
};

/* The cut for a piece starting at pos (inside a fence when open) with room for budget
 * characters, closing fence included. Cuts inside a backtick run, right before a fence's
 * closing run, or before a fence just opened holds any content are last resorts. */
static struct cut find_cut(const char *s, size_t n, size_t pos, int open, size_t budget)
{
    struct cut blank = {0}, nl = {0}, sp = {0}, hard = {0}, any = {0}, last = {0};
    size_t chars = 0;
    int fence_line = 0, content = 1; /* on a fence's opening line; the fence holds text */
    for (size_t i = pos; i < n;) {
        if (fence_at(s, i, n) && (open = !open)) fence_line = 1, content = 0;
        if (!fence_line) content = 1;
        if (s[i] == '\n') fence_line = 0;
        i = cp_next(s, i, n);
        if (++chars > budget) break;
        if (i == n) return (struct cut){n, open, chars};
        size_t close = open ? strlen(s[i - 1] == '\n' ? CLOSE_NL : CLOSE_NONL) : 0;
        if (chars + close > budget) continue;
        struct cut c = {i, open, chars};
        last = c;
        if (open && (fence_at(s, i, n) || (s[i] == '\n' && i + 1 < n && fence_at(s, i + 1, n))))
            continue; /* the next piece would be "```\n```": an empty block */
        any = c;
        if ((s[i - 1] == '`' && s[i] == '`') || (open && !content)) continue;
        hard = c;
        if (s[i - 1] == ' ') sp = c;
        if (s[i - 1] == '\n') nl = c;
        if (s[i - 1] == '\n' && i - pos >= 2 && s[i - 2] == '\n') blank = c;
    }
    if (blank.end && 2 * blank.chars >= budget) return blank;
    if (nl.end) return nl;
    if (sp.end) return sp;
    return hard.end ? hard : any.end ? any : last;
}

/* Push text[pos, c->end) with the fence lines the cut needs. */
static int piece_push(struct jb_strv *out, const char *s, size_t pos, const struct cut *c,
                      int reopen, size_t n, struct jb_err *err)
{
    struct jb_buf b = JB_BUF_INIT((size_t)-1);
    int nl = s[c->end - 1] == '\n', rc = 0;
    if (reopen) rc = jb_buf_append(&b, REOPEN, strlen(REOPEN), err);
    if (rc == 0) rc = jb_buf_append(&b, s + pos, c->end - pos, err);
    if (rc == 0 && c->open && c->end < n)
        rc = jb_buf_append(&b, nl ? CLOSE_NL : CLOSE_NONL, strlen(nl ? CLOSE_NL : CLOSE_NONL), err);
    if (rc == 0) rc = jb_strv_push(out, b.data, err);
    jb_buf_release(&b);
    return rc;
}

int slack_chunk(const char *text, size_t max_chars, struct jb_strv *out, struct jb_err *err)
{
    if (!text) return jb_err_set(err, JB_EPROTO, "chunking: no text");
    if (max_chars < SLACK_CHUNK_MIN)
        return jb_err_set(err, JB_EPROTO, "chunking: %zu characters per piece is too few",
                          max_chars);
    size_t n = strlen(text), pos = 0, n0 = out->n;
    int open = 0;
    while (pos < n) {
        struct cut c = find_cut(text, n, pos, open, max_chars - (open ? strlen(REOPEN) : 0));
        if (!c.end || piece_push(out, text, pos, &c, open, n, err) < 0) {
            while (out->n > n0) /* leave out as it was */
                free(out->v[--out->n]);
            if (out->v) out->v[out->n] = NULL;
            return c.end ? -1 : jb_err_set(err, JB_EPROTO, "chunking: no cut found");
        }
        pos = c.end;
        open = c.open;
    }
    return 0;
}

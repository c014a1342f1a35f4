/* slack/mrkdwn.c -- the agent's Markdown to Slack mrkdwn, walking libcmark's parse tree.
 * Blocks are walked with one cmark iterator; each paragraph or heading's inlines with a
 * second. Output goes through put(), which writes the line prefixes of the open containers
 * ("> " for quotes, the item marker or 4 spaces for list items) at every line start. */
#include <cmark.h>
#include <ctype.h>
#include <string.h>

#include "slack/slack.h"

enum frame_kind { FR_QUOTE, FR_LIST, FR_ITEM };

struct frame {
    enum frame_kind kind;
    int pending;     /* FR_ITEM: the marker is not written yet */
    long long next;  /* FR_LIST: number of the next ordered item, -1 for bullets */
    char delim;      /* FR_LIST: '.' or ')' */
    char marker[32]; /* FR_ITEM: "• ", "◦ ", "▪ ", "12. " */
};

struct tilde { /* a "~~" in a text node, in document order */
    cmark_node *node;
    size_t off;
    int open, close, paired; /* can open (a non-space follows), can close, matched */
};

struct line {
    size_t start, end; /* byte range of a source line, terminator excluded */
};

struct render {
    struct jb_buf out, run; /* run: text of consecutive TEXT/HTML_INLINE nodes */
    struct frame *frames;
    size_t nframes, capframes;
    struct tilde *tildes;
    size_t ntildes, captildes, tcur;
    int line_start, failed, strong, emph, heading, lists, no_tables;
    enum jb_code code;
    const char *src;
    int line_no;     /* source line ... */
    size_t line_off; /* ... starting at this byte: table() reads lines in document order */
};

/* ---- output ---------------------------------------------------------------------- */

static void fail(struct render *r, enum jb_code code)
{
    if (!r->failed) r->code = code;
    r->failed = 1;
}

static void buf_add(struct render *r, struct jb_buf *b, const char *s, size_t n)
{
    struct jb_err e;
    if (!r->failed && jb_buf_append(b, s, n, &e) < 0) fail(r, e.code);
}

/* Room for one more element in *v (n used of *cap); 0, or -1 after fail(). */
static int grow(struct render *r, void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return 0;
    size_t c = *cap ? 2 * *cap : 16;
    void *p = realloc(*v, c * size);
    if (!p) return fail(r, JB_ENOMEM), -1;
    *v = p;
    *cap = c;
    return 0;
}

static void trim_spaces(struct jb_buf *b, size_t floor)
{
    while (b->len > floor && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
}

/* The prefixes of the open containers; a blank line gets them without trailing spaces. */
static void put_prefix(struct render *r, int blank)
{
    size_t start = r->out.len;
    for (size_t i = 0; i < r->nframes; i++) {
        struct frame *f = &r->frames[i];
        if (f->kind == FR_QUOTE) {
            buf_add(r, &r->out, "> ", 2);
        } else if (f->kind == FR_ITEM && f->pending && !blank) {
            buf_add(r, &r->out, f->marker, strlen(f->marker));
            f->pending = 0;
        } else if (f->kind == FR_ITEM) {
            buf_add(r, &r->out, "    ", 4);
        }
    }
    if (blank) trim_spaces(&r->out, start);
}

static void put(struct render *r, const char *s, size_t n)
{
    while (n && !r->failed) {
        if (r->line_start) put_prefix(r, s[0] == '\n');
        r->line_start = 0;
        const char *nl = memchr(s, '\n', n);
        size_t k = nl ? (size_t)(nl - s) + 1 : n;
        buf_add(r, &r->out, s, k);
        r->line_start = nl != NULL;
        s += k;
        n -= k;
    }
}

static void puts_(struct render *r, const char *s)
{
    put(r, s, strlen(s));
}

/* s with & < > escaped. */
static void put_esc(struct render *r, const char *s, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : NULL;
        if (!e) continue;
        put(r, s + done, i - done);
        puts_(r, e);
        done = i + 1;
    }
    put(r, s + done, n - done);
}

/* ---- Slack tokens ---------------------------------------------------------------- */

/* s[0..n) is an ID of upper-case letters and digits, optionally followed by |label. */
static int slack_id(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
        i++;
    return i > 0 && (i == n || s[i] == '|');
}

static int prefixed(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && memcmp(s, p, k) == 0;
}

/* Length of the Slack token (<@U…>, <#C…>, <!here>, <https://…|label>, …) at s, or 0. */
static size_t token_len(const char *s, size_t n)
{
    if (n < 3 || s[0] != '<') return 0;
    size_t end = 1;
    while (end < n && !strchr("<>\n", s[end]))
        end++;
    if (end == n || s[end] != '>') return 0;
    const char *b = s + 1;
    size_t bn = end - 1;
    const char *pipe = memchr(b, '|', bn);
    size_t bar = pipe ? (size_t)(pipe - b) : bn;
    int ok = 0;
    if (b[0] == '@' && bn > 1 && (b[1] == 'U' || b[1] == 'W')) ok = slack_id(b + 1, bn - 1);
    if (b[0] == '#' && bn > 1 && (b[1] == 'C' || b[1] == 'G')) ok = slack_id(b + 1, bn - 1);
    if (b[0] == '!') {
        static const char *const words[] = {"!here", "!channel", "!everyone"};
        for (size_t i = 0; i < JB_ARRAY_LEN(words); i++)
            ok |= bar == strlen(words[i]) && prefixed(b, bn, words[i]);
        ok |= (prefixed(b, bn, "!subteam^") && bn > 9) || (prefixed(b, bn, "!date^") && bn > 6);
    }
    if (prefixed(b, bn, "http://") || prefixed(b, bn, "https://") || prefixed(b, bn, "mailto:"))
        ok = bar < bn && bar > 7 && memchr(b, ' ', bar) == NULL;
    return ok ? end + 1 : 0;
}

/* Text: Slack tokens pass through, & < > are escaped elsewhere. */
static void put_text(struct render *r, const char *s, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        size_t t = s[i] == '<' ? token_len(s + i, n - i) : 0;
        if (!t) continue;
        put_esc(r, s + done, i - done);
        put(r, s + i, t);
        done = i + t;
        i += t - 1;
    }
    put_esc(r, s + done, n - done);
}

/* ---- strikethrough: pairing "~~" across the text nodes of one block --------------- */

static size_t tilde_run(const char *s, size_t i)
{
    size_t k = 0;
    while (s[i + k] == '~')
        k++;
    return k;
}

/* Is the inline neighbour (a sibling, NULL at the block edge) a non-space? */
static int solid_neighbour(cmark_node *sib)
{
    cmark_node_type t = sib ? cmark_node_get_type(sib) : CMARK_NODE_NONE;
    return sib && t != CMARK_NODE_SOFTBREAK && t != CMARK_NODE_LINEBREAK;
}

static void tilde_add(struct render *r, cmark_node *n, const char *s, size_t i)
{
    if (grow(r, (void **)&r->tildes, r->ntildes, &r->captildes, sizeof *r->tildes) < 0) return;
    int before = i ? !isspace((unsigned char)s[i - 1]) : solid_neighbour(cmark_node_previous(n));
    int after = s[i + 2] ? !isspace((unsigned char)s[i + 2]) : solid_neighbour(cmark_node_next(n));
    r->tildes[r->ntildes++] = (struct tilde){.node = n, .off = i, .open = after, .close = before};
}

/* Collect the "~~" runs of block's text nodes and pair closers with the nearest opener. */
static void tilde_scan(struct render *r, cmark_node *block)
{
    r->ntildes = r->tcur = 0;
    cmark_iter *it = cmark_iter_new(block);
    if (!it) return fail(r, JB_ENOMEM);
    for (cmark_event_type ev; (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE;) {
        cmark_node *n = cmark_iter_get_node(it);
        const char *s = cmark_node_get_type(n) == CMARK_NODE_TEXT ? cmark_node_get_literal(n) : 0;
        for (size_t i = 0; s && s[i]; i++) {
            size_t k = s[i] == '~' ? tilde_run(s, i) : 1;
            if (k == 2) tilde_add(r, n, s, i);
            i += k - 1;
        }
    }
    cmark_iter_free(it);
    size_t *stack = r->ntildes ? malloc(r->ntildes * sizeof *stack) : NULL, top = 0;
    if (r->ntildes && !stack) return fail(r, JB_ENOMEM);
    for (size_t i = 0; i < r->ntildes; i++) {
        struct tilde *t = &r->tildes[i];
        if (t->close && top)
            r->tildes[stack[--top]].paired = t->paired = 1;
        else if (t->open)
            stack[top++] = i;
    }
    free(stack);
}

/* A text (or inline HTML) node into the run, paired "~~" becoming "~". */
static void run_text(struct render *r, cmark_node *n)
{
    const char *s = cmark_node_get_literal(n);
    size_t done = 0, i = 0;
    for (; s && s[i]; i++) {
        size_t k = s[i] == '~' ? tilde_run(s, i) : 1;
        if (k == 2 && r->tcur < r->ntildes && r->tildes[r->tcur].node == n &&
            r->tildes[r->tcur].off == i && r->tildes[r->tcur++].paired) {
            buf_add(r, &r->run, s + done, i - done);
            buf_add(r, &r->run, "~", 1);
            done = i + 2;
        }
        i += k - 1;
    }
    buf_add(r, &r->run, s + done, i - done);
}

/* ---- inlines --------------------------------------------------------------------- */

static int is_type(cmark_node *n, cmark_node_type t)
{
    return n && cmark_node_get_type(n) == t;
}

/* ***x*** parses as emph(strong(x)); Slack wants *_x_*: the emph's markers go inside. */
static int emph_of_strong(cmark_node *emph)
{
    cmark_node *c = cmark_node_first_child(emph);
    return is_type(emph, CMARK_NODE_EMPH) && is_type(c, CMARK_NODE_STRONG) &&
           c == cmark_node_last_child(emph);
}

static void strong_mark(struct render *r, int on)
{
    int edge = on ? r->strong++ == 0 : --r->strong == 0;
    if (edge && !r->heading) puts_(r, "*");
}

static void emph_mark(struct render *r, int on)
{
    if (on ? r->emph++ == 0 : --r->emph == 0) puts_(r, "_");
}

/* Links <url|label> and images <url|alt> (the label's inlines follow, then ">"); an
 * autolink or empty label <url>, returning 1: the subtree is done (skip it). */
static int link_enter(struct render *r, cmark_node *n)
{
    const char *url = cmark_node_get_url(n);
    if (!url || !*url) return 0;
    cmark_node *c = cmark_node_first_child(n);
    const char *lit =
        is_type(c, CMARK_NODE_TEXT) && !cmark_node_next(c) ? cmark_node_get_literal(c) : NULL;
    int autolink = lit && (strcmp(lit, url) == 0 ||
                           (strncmp(url, "mailto:", 7) == 0 && strcmp(lit, url + 7) == 0));
    puts_(r, "<");
    put_esc(r, url, strlen(url));
    puts_(r, autolink || !c ? ">" : "|");
    return autolink || !c;
}

static void flush_run(struct render *r)
{
    put_text(r, r->run.data, r->run.len);
    jb_buf_reset(&r->run);
}

/* One inline event; returns 1 when n's subtree must be skipped. */
static int inline_event(struct render *r, cmark_node *n, int enter)
{
    cmark_node_type t = cmark_node_get_type(n);
    cmark_node *parent = cmark_node_parent(n);
    if (t == CMARK_NODE_TEXT || t == CMARK_NODE_HTML_INLINE) {
        run_text(r, n); /* raw HTML too: Slack shows it as text */
        cmark_node *next = cmark_node_next(n);
        if (!is_type(next, CMARK_NODE_TEXT) && !is_type(next, CMARK_NODE_HTML_INLINE)) flush_run(r);
    } else if (t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK) {
        puts_(r, "\n");
    } else if (t == CMARK_NODE_CODE) {
        const char *lit = cmark_node_get_literal(n);
        puts_(r, "`");
        put_esc(r, lit, strlen(lit));
        puts_(r, "`");
    } else if (t == CMARK_NODE_EMPH) {
        int swap = emph_of_strong(n);
        if (swap && enter) strong_mark(r, 1);
        emph_mark(r, enter);
        if (swap && !enter) strong_mark(r, 0);
    } else if (t == CMARK_NODE_STRONG && !emph_of_strong(parent)) {
        strong_mark(r, enter);
    } else if ((t == CMARK_NODE_LINK || t == CMARK_NODE_IMAGE) && enter) {
        return link_enter(r, n);
    } else if (t == CMARK_NODE_LINK || t == CMARK_NODE_IMAGE) {
        const char *url = cmark_node_get_url(n);
        if (url && *url) puts_(r, ">");
    }
    return 0;
}

static void render_inlines(struct render *r, cmark_node *block)
{
    tilde_scan(r, block);
    cmark_iter *it = cmark_iter_new(block);
    if (!it) return fail(r, JB_ENOMEM);
    for (cmark_event_type ev; (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE && !r->failed;) {
        cmark_node *n = cmark_iter_get_node(it);
        if (n != block && inline_event(r, n, ev == CMARK_EVENT_ENTER))
            cmark_iter_reset(it, n, CMARK_EVENT_EXIT);
    }
    cmark_iter_free(it);
}

/* ---- tables: a paragraph whose lines hold a header row and a |---| row ------------ */

/* Source line no (1-based) without the container prefix of a block at column col; -1
 * past the end. Lines are asked for in increasing order (the walk's), so a cursor does. */
static int line_get(struct render *r, int no, int col, int first, struct line *ret)
{
    const char *src = r->src;
    if (no < r->line_no) r->line_no = 1, r->line_off = 0;
    for (; r->line_no < no && src[r->line_off]; r->line_no++) {
        size_t k = r->line_off + strcspn(src + r->line_off, "\r\n");
        r->line_off = k + (src[k] ? 1 : 0) + (src[k] == '\r' && src[k + 1] == '\n');
    }
    if (r->line_no != no) return -1;
    struct line l = {r->line_off, r->line_off + strcspn(src + r->line_off, "\r\n")};
    for (int i = 1; i < col && l.start < l.end && (first || strchr(" \t>", src[l.start])); i++)
        l.start++;
    *ret = l;
    return 0;
}

/* Cells of a table row: of a header row (pipes not escaped with \\), or with delim of a
 * |---|:-:| row; -1 when it is no such row. */
static int row_cells(const char *s, size_t n, int delim)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (n > i && isspace((unsigned char)s[n - 1]))
        n--;
    int cells = 1, pipes = 0, dash = 0;
    if (i < n && s[i] == '|') i++, pipes++;
    if (n > i && s[n - 1] == '|' && (delim || s[n - 2] != '\\')) n--, pipes++;
    for (; i < n; i++) {
        int pipe = s[i] == '|' && (i == 0 || s[i - 1] != '\\');
        if (delim && (pipe ? !dash : !strchr(" \t:-", s[i]))) return -1;
        dash = pipe ? 0 : dash || s[i] == '-';
        cells += pipe, pipes += pipe;
    }
    return pipes && (!delim || dash) ? cells : -1;
}

static void render_blocks(struct render *r, cmark_node *root);

/* Lines before the table are re-parsed on their own and rendered as Markdown. */
static void render_source(struct render *r, const struct line *ls, size_t nl)
{
    struct jb_buf text = JB_BUF_INIT((size_t)-1);
    for (size_t i = 0; i < nl; i++) {
        buf_add(r, &text, r->src + ls[i].start, ls[i].end - ls[i].start);
        buf_add(r, &text, "\n", 1);
    }
    cmark_node *doc = r->failed ? NULL : cmark_parse_document(text.data, text.len, 0);
    jb_buf_release(&text);
    if (!doc) return fail(r, JB_ENOMEM);
    int no_tables = r->no_tables;
    r->no_tables = 1;
    render_blocks(r, doc);
    r->no_tables = no_tables;
    cmark_node_free(doc);
    puts_(r, "\n");
}

/* Render the paragraph as a table when it holds one; 0 when it does not. */
static int table(struct render *r, cmark_node *para)
{
    int first = cmark_node_get_start_line(para), last = cmark_node_get_end_line(para);
    int col = cmark_node_get_start_column(para);
    if (r->no_tables || first < 1 || last <= first) return 0;
    struct line *ls = calloc((size_t)(last - first + 1), sizeof *ls);
    if (!ls) return fail(r, JB_ENOMEM), 1;
    size_t nl = 0, head = 0;
    for (int no = first; no <= last; no++)
        if (line_get(r, no, col, no == first, &ls[nl++]) < 0) return free(ls), 0;
    while (head + 1 < nl &&
           (row_cells(r->src + ls[head].start, ls[head].end - ls[head].start, 0) < 0 ||
            row_cells(r->src + ls[head].start, ls[head].end - ls[head].start, 0) !=
                row_cells(r->src + ls[head + 1].start, ls[head + 1].end - ls[head + 1].start, 1)))
        head++;
    if (head + 1 < nl) {
        if (head) render_source(r, ls, head);
        puts_(r, "```\n");
        for (size_t i = head; i < nl; i++) {
            put_esc(r, r->src + ls[i].start, ls[i].end - ls[i].start);
            puts_(r, "\n");
        }
        puts_(r, "```");
    }
    free(ls);
    return head + 1 < nl;
}

/* ---- blocks ---------------------------------------------------------------------- */

static struct frame *push_frame(struct render *r, enum frame_kind kind)
{
    if (grow(r, (void **)&r->frames, r->nframes, &r->capframes, sizeof *r->frames) < 0) return NULL;
    r->frames[r->nframes] = (struct frame){.kind = kind};
    return &r->frames[r->nframes++];
}

static void item_enter(struct render *r)
{
    size_t li = r->nframes; /* the enclosing list's frame, if any (push may move it) */
    struct frame *f = push_frame(r, FR_ITEM);
    if (!f) return;
    struct frame *list = li ? &r->frames[li - 1] : NULL;
    f->pending = 1;
    if (list && list->kind == FR_LIST && list->next >= 0) {
        snprintf(f->marker, sizeof f->marker, "%lld%c ", list->next++, list->delim);
    } else {
        static const char *const bullets[] = {"• ", "◦ ", "▪ "};
        int level = r->lists - 1;
        level = level < 0 ? 0 : level > 2 ? 2 : level;
        snprintf(f->marker, sizeof f->marker, "%s", bullets[level]);
    }
}

static void list_enter(struct render *r, cmark_node *n)
{
    struct frame *f = push_frame(r, FR_LIST);
    r->lists++;
    if (!f) return;
    f->next = -1;
    if (cmark_node_get_list_type(n) == CMARK_ORDERED_LIST) {
        f->next = cmark_node_get_list_start(n);
        f->delim = cmark_node_get_list_delim(n) == CMARK_PAREN_DELIM ? ')' : '.';
    }
}

static void frame_exit(struct render *r)
{
    struct frame *f = r->nframes ? &r->frames[r->nframes - 1] : NULL;
    if (f && f->kind == FR_ITEM && f->pending) { /* an empty item still shows its marker */
        size_t start = r->out.len;
        put_prefix(r, 0);
        trim_spaces(&r->out, start);
        r->line_start = 0;
    }
    if (f && f->kind == FR_LIST) r->lists--;
    if (f) r->nframes--;
}

static void code_block(struct render *r, cmark_node *n)
{
    const char *lit = cmark_node_get_literal(n);
    size_t len = lit ? strlen(lit) : 0;
    puts_(r, "```\n");
    put_esc(r, lit, len);
    if (len && lit[len - 1] != '\n') puts_(r, "\n");
    puts_(r, "```");
}

/* A newline between sibling blocks, two when the source had a blank line between them. */
static void separate(struct render *r, cmark_node *n)
{
    cmark_node *prev = cmark_node_previous(n);
    if (!prev) return;
    int blank = cmark_node_get_start_line(n) > cmark_node_get_end_line(prev) + 1 ||
                cmark_node_get_end_column(prev) == 0;
    puts_(r, blank ? "\n\n" : "\n");
}

/* Entering a block; returns 1 when its children were rendered already. */
static int block_enter(struct render *r, cmark_node *n)
{
    const char *lit;
    size_t len;
    switch (cmark_node_get_type(n)) {
    case CMARK_NODE_BLOCK_QUOTE:
        push_frame(r, FR_QUOTE);
        return 0;
    case CMARK_NODE_LIST:
        list_enter(r, n);
        return 0;
    case CMARK_NODE_ITEM:
        item_enter(r);
        return 0;
    case CMARK_NODE_PARAGRAPH:
        if (!table(r, n)) render_inlines(r, n);
        return 1;
    case CMARK_NODE_HEADING:
        if (!cmark_node_first_child(n)) return 1;
        puts_(r, "*");
        r->heading = 1;
        render_inlines(r, n);
        r->heading = 0;
        puts_(r, "*");
        return 1;
    case CMARK_NODE_CODE_BLOCK:
        code_block(r, n);
        return 1;
    case CMARK_NODE_HTML_BLOCK:
        lit = cmark_node_get_literal(n);
        len = lit ? strlen(lit) : 0;
        while (len && (lit[len - 1] == '\n' || lit[len - 1] == '\r'))
            len--;
        put_text(r, lit, len); /* Slack shows no HTML: it is text */
        return 1;
    case CMARK_NODE_THEMATIC_BREAK:
        puts_(r, "──────────");
        return 1;
    default:
        return 0;
    }
}

static void render_blocks(struct render *r, cmark_node *root)
{
    cmark_iter *it = cmark_iter_new(root);
    if (!it) return fail(r, JB_ENOMEM);
    for (cmark_event_type ev; (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE && !r->failed;) {
        cmark_node *n = cmark_iter_get_node(it);
        if (n == root) continue;
        cmark_node_type t = cmark_node_get_type(n);
        if (ev == CMARK_EVENT_EXIT) {
            if (t == CMARK_NODE_BLOCK_QUOTE || t == CMARK_NODE_LIST || t == CMARK_NODE_ITEM)
                frame_exit(r);
            continue;
        }
        separate(r, n);
        if (block_enter(r, n) && cmark_node_first_child(n))
            cmark_iter_reset(it, n, CMARK_EVENT_EXIT);
    }
    cmark_iter_free(it);
}

char *slack_mrkdwn_from_markdown(const char *markdown)
{
    const char *md = markdown ? markdown : "";
    size_t len = strlen(md);
    size_t ceiling = len > ((size_t)-1 - 65536) / 8 ? (size_t)-1 : 8 * len + 65536;
    struct render r = {.out = JB_BUF_INIT(ceiling),
                       .run = JB_BUF_INIT(ceiling),
                       .line_start = 1,
                       .src = md,
                       .line_no = 1};
    r.no_tables = strchr(md, '|') == NULL;
    cmark_node *doc = r.failed ? NULL : cmark_parse_document(md, len, CMARK_OPT_VALIDATE_UTF8);
    doc ? render_blocks(&r, doc) : fail(&r, JB_ENOMEM);
    cmark_node_free(doc);
    free(r.frames);
    free(r.tildes);
    jb_buf_release(&r.run);
    if (!r.failed) return jb_buf_detach(&r.out, NULL);
    jb_buf_release(&r.out);
    if (r.code != JB_EPROTO) return NULL;
    struct render e = {.out = JB_BUF_INIT((size_t)-1)}; /* over the ceiling: escape only */
    put_esc(&e, md, len);
    return e.failed ? (jb_buf_release(&e.out), NULL) : jb_buf_detach(&e.out, NULL);
}

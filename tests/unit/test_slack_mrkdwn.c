/* tests/unit/test_slack_mrkdwn.c -- Markdown -> mrkdwn (every case of the shared
 * conformance file, plus edge cases and random input) and chunking (examples and a
 * property test over random text). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "slack/slack.h"
#include "conformance.h"

static void expect_mrkdwn(const char *md, const char *want)
{
    char *got = slack_mrkdwn_from_markdown(md);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "markdown:\n%s\n--- got:\n%s\n--- want:\n%s", md, got, want);
    free(got);
}

Test(slack_mrkdwn, conformance_cases)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    conformance_dir(dir);
    snprintf(path, sizeof path, "%s/slack/mrkdwn_cases.json", dir);
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    cr_assert(json_is_array(cases), "%s: %s", path, jerr.text);
    cr_assert_gt(json_array_size(cases), 30);
    size_t i, failed = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *md = json_string_value(json_object_get(c, "markdown"));
        const char *want = json_string_value(json_object_get(c, "mrkdwn"));
        cr_assert(name && md && want, "case %zu is malformed", i);
        char *got = slack_mrkdwn_from_markdown(md);
        cr_assert_not_null(got);
        if (strcmp(got, want) != 0) {
            failed++;
            cr_log_error("case \"%s\":\n--- got:\n%s\n--- want:\n%s", name, got, want);
        }
        free(got);
    }
    cr_expect_eq(failed, 0, "%zu of %zu mrkdwn cases differ", failed, json_array_size(cases));
    json_decref(cases);
}

Test(slack_mrkdwn, strikethrough_pairs_only)
{
    expect_mrkdwn("~~**a** b~~", "~*a* b~");
    expect_mrkdwn("~~open only", "~~open only");
    expect_mrkdwn("a ~~ b ~~ c", "a ~~ b ~~ c");
    expect_mrkdwn("a ~~~x~~~ b", "a ~~~x~~~ b");
    expect_mrkdwn("`~~code~~` ~~x~~", "`~~code~~` ~x~");
    expect_mrkdwn("~~a~~ and ~~b~~", "~a~ and ~b~");
}

Test(slack_mrkdwn, emphasis_nesting)
{
    expect_mrkdwn("**a *b* c**", "*a _b_ c*");
    expect_mrkdwn("*a **b** c*", "_a *b* c_");
    expect_mrkdwn("**_x_**", "*_x_*");
    expect_mrkdwn("# a *b* **c**", "*a _b_ c*");
}

Test(slack_mrkdwn, links_and_images)
{
    expect_mrkdwn("[](https://e.com)", "<https://e.com>");
    expect_mrkdwn("![](https://e.com/i.png)", "<https://e.com/i.png>");
    expect_mrkdwn("[a **b**](https://e.com)", "<https://e.com|a *b*>");
    expect_mrkdwn("<mailto:a@b.c>", "<mailto:a@b.c>");
    expect_mrkdwn("<a@b.c>", "<mailto:a@b.c>");
    expect_mrkdwn("see <https://e.com|the site> now", "see <https://e.com|the site> now");
    expect_mrkdwn("[x]()", "x");
}

Test(slack_mrkdwn, slack_tokens_and_html)
{
    expect_mrkdwn("<!here> look", "<!here> look");
    expect_mrkdwn("hi <!channel> and <!everyone>", "hi <!channel> and <!everyone>");
    expect_mrkdwn("team <!subteam^S0123|devs>", "team <!subteam^S0123|devs>");
    expect_mrkdwn("<div>x & y</div>", "&lt;div&gt;x &amp; y&lt;/div&gt;");
    expect_mrkdwn("a <b>bold</b> c", "a &lt;b&gt;bold&lt;/b&gt; c");
    expect_mrkdwn("<@u0lower> <@> <#> <!nope>",
                  "&lt;@u0lower&gt; &lt;@&gt; &lt;#&gt; &lt;!nope&gt;");
    expect_mrkdwn("&amp; &lt;@U1&gt;", "&amp; <@U1>");
    expect_mrkdwn(":tada: :+1::-1:", ":tada: :+1::-1:");
}

Test(slack_mrkdwn, blocks)
{
    expect_mrkdwn("a\n\n---\n\nb", "a\n\n──────────\n\nb");
    expect_mrkdwn("    indented code\n", "```\nindented code\n```");
    expect_mrkdwn("```\n```", "```\n```");
    expect_mrkdwn("- a\n\n- b", "• a\n\n• b");
    expect_mrkdwn("3) x\n4) y", "3) x\n4) y");
    expect_mrkdwn("-", "•");
    expect_mrkdwn("- a\n  ```\n  code\n  ```", "• a\n    ```\n    code\n    ```");
    expect_mrkdwn("> a\n>\n> b", "> a\n>\n> b");
    expect_mrkdwn("> - x\n>   - y", "> • x\n>     ◦ y");
    expect_mrkdwn("- a\n  - b\n    - c\n      - d", "• a\n    ◦ b\n        ▪ c\n            ▪ d");
    expect_mrkdwn("para\n- item", "para\n• item");
    expect_mrkdwn("Title\n=====\ntext", "*Title*\ntext");
    expect_mrkdwn("#", "");
    expect_mrkdwn(NULL, "");
}

Test(slack_mrkdwn, tables)
{
    expect_mrkdwn("a | b\n--|--\n1 | 2", "```\na | b\n--|--\n1 | 2\n```");
    expect_mrkdwn("Result **now**:\n| a | b |\n|---|---|\n| 1 | 2 |",
                  "Result *now*:\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n```");
    expect_mrkdwn("> | a |\n> |---|\n> | 1 |", "> ```\n> | a |\n> |---|\n> | 1 |\n> ```");
    expect_mrkdwn("- | a |\n  |---|", "• ```\n    | a |\n    |---|\n    ```");
    expect_mrkdwn("| a | b |\n|---|", "| a | b |\n|---|"); /* cell counts differ */
    expect_mrkdwn("a | b\nc | d", "a | b\nc | d");         /* no delimiter row */
    expect_mrkdwn("x\n\n| a |\n|:-:|\n| `<b>` |", "x\n\n```\n| a |\n|:-:|\n| `&lt;b&gt;` |\n```");
}

static char *repeat(const char *s, size_t times)
{
    size_t n = strlen(s);
    char *out = malloc(n * times + 1);
    cr_assert_not_null(out);
    for (size_t i = 0; i < times; i++)
        memcpy(out + i * n, s, n);
    out[n * times] = '\0';
    return out;
}

Test(slack_mrkdwn, pathological_nesting_does_not_crash)
{
    const char *units[] = {">", "> ", "- ", "*", "**", "[", "~~", "`", "<", "&", "1. ", "    - "};
    for (size_t i = 0; i < JB_ARRAY_LEN(units); i++) {
        char *s = repeat(units[i], 20000);
        char *out = slack_mrkdwn_from_markdown(s);
        cr_assert_not_null(out, "unit %s", units[i]);
        free(out);
        free(s);
    }
    /* deep quote with lazy continuation lines: falls back to escaped text */
    char *deep = repeat("> ", 5000), *lines = repeat("lazy line\n", 2000), *s = NULL;
    cr_assert_geq(asprintf(&s, "%sx\n%s", deep, lines), 0);
    char *out = slack_mrkdwn_from_markdown(s);
    cr_assert_not_null(out);
    cr_assert_leq(strlen(out), 8 * strlen(s) + 65536);
    free(out);
    free(s);
    free(deep);
    free(lines);
}

Test(slack_mrkdwn, random_input_does_not_crash)
{
    static const char *const atoms[] = {
        "*",    "_",   "~",  "~~", "`",      "```",     "\n",         "\n\n", " ", "  ",
        "- ",   "1. ", "> ", "#",  "|",      "---",     "[",          "]",    "(", ")",
        "!",    "<",   ">",  "&",  "@",      "U1",      "http://a.b", "é",    "💥", "x",
        "word", "\\",  ":",  "\t", "<@U0X>", "<!here>", "&amp;",      "\r\n"};
    srand(42);
    for (int round = 0; round < 3000; round++) {
        char buf[1024];
        size_t len = 0, n = (size_t)(rand() % 80);
        for (size_t i = 0; i < n; i++) {
            const char *a = atoms[rand() % (int)JB_ARRAY_LEN(atoms)];
            size_t k = strlen(a);
            if (len + k >= sizeof buf) break;
            memcpy(buf + len, a, k);
            len += k;
        }
        buf[len] = '\0';
        char *out = slack_mrkdwn_from_markdown(buf);
        cr_assert_not_null(out, "input: %s", buf);
        free(out);
    }
}

/* ---- chunking -------------------------------------------------------------------- */

static size_t cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t k = *p < 0x80             ? 1
                   : (*p & 0xE0) == 0xC0 ? 2
                   : (*p & 0xF0) == 0xE0 ? 3
                   : (*p & 0xF8) == 0xF0 ? 4
                                         : 0;
        if (!k) return 0;
        for (size_t i = 1; i < k; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += k;
    }
    return 1;
}

/* Fence parity of text[0, pos): runs of 3+ backticks toggle at their first backtick. */
static int fence_open_at(const char *text, size_t pos)
{
    int open = 0;
    for (size_t i = 0; i < pos; i++)
        if (text[i] == '`' && (i == 0 || text[i - 1] != '`') && text[i + 1] == '`' &&
            text[i + 2] == '`')
            open = !open;
    return open;
}

/* Can pieces k.. be read back as text[pos..]? A piece starting inside a fence begins with
 * an added "```\n"; one ending inside a fence (not the last) ends with an added "```" or
 * "\n```". Where both readings fit, try each. */
static int chunks_match(const char *text, size_t pos, const struct jb_strv *v, size_t k)
{
    size_t n = strlen(text);
    if (k == v->n) return pos == n;
    const char *c = v->v[k];
    size_t cl = strlen(c);
    if (k > 0 && fence_open_at(text, pos)) {
        if (strncmp(c, "```\n", 4) != 0) return 0;
        c += 4, cl -= 4;
    }
    static const char *const ends[] = {"", "```", "\n```"};
    for (size_t e = 0; e < JB_ARRAY_LEN(ends); e++) {
        size_t el = strlen(ends[e]), bl = cl - el;
        if (el > cl || strcmp(c + bl, ends[e]) != 0) continue;
        if (bl > n - pos || memcmp(c, text + pos, bl) != 0) continue;
        int open = k + 1 < v->n && fence_open_at(text, pos + bl);
        if (open != (el > 0)) continue; /* a fence is closed exactly when it is open */
        if (chunks_match(text, pos + bl, v, k + 1)) return 1;
    }
    return 0;
}

/* Every piece fits and is non-empty (and UTF-8 when the text is); together they give
 * the text back once the added fence lines are removed. */
static void check_chunks(const char *text, size_t max, const struct jb_strv *v, int valid)
{
    for (size_t k = 0; k < v->n; k++) {
        const char *c = v->v[k];
        size_t cl = strlen(c);
        cr_assert_gt(cl, 0, "piece %zu is empty", k);
        cr_assert_leq(cp_count(c, cl), max, "piece %zu: %zu chars > %zu", k, cp_count(c, cl), max);
        if (valid) cr_assert(utf8_valid(c), "piece %zu is not UTF-8", k);
    }
    cr_assert(chunks_match(text, 0, v, 0), "pieces do not give the text back (max %zu): %s", max,
              text);
}

static void chunk_expect(const char *text, size_t max, const char *const *want, size_t nwant)
{
    struct jb_strv v = JB_STRV_INIT;
    struct jb_err err = {0};
    cr_assert_eq(slack_chunk(text, max, &v, &err), 0, "%s", err.msg);
    check_chunks(text, max, &v, 1);
    cr_assert_eq(v.n, nwant, "got %zu pieces, first \"%s\"", v.n, v.n ? v.v[0] : "");
    for (size_t i = 0; i < nwant; i++)
        cr_expect_str_eq(v.v[i], want[i], "piece %zu", i);
    jb_strv_free(&v);
}

Test(slack_chunk, examples)
{
    chunk_expect("", 100, NULL, 0);
    chunk_expect("short", 100, (const char *[]){"short"}, 1);
    chunk_expect("aaaa aaaa\nbbbb bbbb\n\ncccc cccc\ndddd", 24,
                 (const char *[]){"aaaa aaaa\nbbbb bbbb\n\n", "cccc cccc\ndddd"}, 2);
    chunk_expect("aaaa\nbbbb\ncccc\ndddd eeee ffff", 16,
                 (const char *[]){"aaaa\nbbbb\ncccc\n", "dddd eeee ffff"}, 2);
    chunk_expect("aaaa bbbb cccc dddd eeee", 16, (const char *[]){"aaaa bbbb cccc ", "dddd eeee"},
                 2);
    chunk_expect("0123456789abcdefghij", 16, (const char *[]){"0123456789abcdef", "ghij"}, 2);
    chunk_expect("ééééééééééééééééééé", 16, (const char *[]){"éééééééééééééééé", "ééé"}, 2);
    chunk_expect(
        "```\nline1\nline2\nline3\n```\nafter", 16,
        (const char *[]){"```\nline1\n```", "```\nline2\n```", "```\nline3\n```\n", "after"}, 4);
    chunk_expect("```\n0123456789abcdefghij\n```", 16,
                 (const char *[]){"```\n01234567\n```", "```\n89abcdef\n```", "```\nghij\n```"}, 3);
}

Test(slack_chunk, rejects_tiny_max_and_keeps_out)
{
    struct jb_strv v = JB_STRV_INIT;
    struct jb_err err = {0};
    cr_assert_eq(jb_strv_push(&v, "keep", &err), 0);
    cr_assert_eq(slack_chunk("hello", SLACK_CHUNK_MIN - 1, &v, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_eq(slack_chunk(NULL, 100, &v, &err), -1);
    cr_assert_eq(v.n, 1);
    cr_assert_str_eq(v.v[0], "keep");
    cr_assert_eq(slack_chunk("more text here", 100, &v, &err), 0);
    cr_assert_eq(v.n, 2);
    jb_strv_free(&v);
}

Test(slack_chunk, backtick_runs_are_not_split)
{
    struct jb_strv v = JB_STRV_INIT;
    struct jb_err err = {0};
    const char *t = "aaaaaaaaaaaaa```bbbb";
    cr_assert_eq(slack_chunk(t, 16, &v, &err), 0, "%s", err.msg);
    check_chunks(t, 16, &v, 1);
    cr_assert_str_eq(v.v[0], "aaaaaaaaaaaaa"); /* not "aaaaaaaaaaaaa``" + "`bbbb" */
    jb_strv_free(&v);
    char *ticks = repeat("`", 100); /* a run longer than a piece must still be cut */
    cr_assert_eq(slack_chunk(ticks, 16, &v, &err), 0, "%s", err.msg);
    check_chunks(ticks, 16, &v, 1);
    jb_strv_free(&v);
    free(ticks);
}

static size_t random_text(char *buf, size_t cap, int valid)
{
    static const char *const atoms[] = {"a",
                                        "bc",
                                        "word",
                                        " ",
                                        "  ",
                                        "\n",
                                        "\n\n",
                                        "```",
                                        "```py\n",
                                        "\n```\n",
                                        "`",
                                        "é",
                                        "€",
                                        "💥",
                                        "ü",
                                        "~",
                                        "> ",
                                        "* ",
                                        "longerwordwithoutspaces"};
    size_t len = 0, n = (size_t)(rand() % 400);
    for (size_t i = 0; i < n; i++) {
        char raw[2] = {(char)(rand() % 255 + 1), 0};
        const char *a = !valid && rand() % 8 == 0 ? raw : atoms[rand() % (int)JB_ARRAY_LEN(atoms)];
        size_t k = strlen(a);
        if (len + k >= cap) break;
        memcpy(buf + len, a, k);
        len += k;
    }
    buf[len] = '\0';
    return len;
}

Test(slack_chunk, property_random_text)
{
    srand(7);
    char buf[4096];
    for (int round = 0; round < 4000; round++) {
        int valid = round % 4 != 3;
        random_text(buf, sizeof buf, valid);
        size_t max = SLACK_CHUNK_MIN + (size_t)(rand() % 200);
        struct jb_strv v = JB_STRV_INIT;
        struct jb_err err = {0};
        cr_assert_eq(slack_chunk(buf, max, &v, &err), 0, "%s", err.msg);
        check_chunks(buf, max, &v, valid);
        jb_strv_free(&v);
    }
}

Test(slack_chunk, long_message_at_slack_size)
{
    char *s = repeat("word ", 4000), *md = NULL;
    cr_assert_geq(asprintf(&md, "intro\n\n```\n%s\n```\n\n%s", s, s), 0);
    struct jb_strv v = JB_STRV_INIT;
    struct jb_err err = {0};
    cr_assert_eq(slack_chunk(md, 3900, &v, &err), 0, "%s", err.msg);
    check_chunks(md, 3900, &v, 1);
    cr_assert_geq(v.n, 11);
    jb_strv_free(&v);
    free(md);
    free(s);
}

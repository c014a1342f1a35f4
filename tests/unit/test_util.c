/* tests/unit/test_util.c -- util/: errors, buffers, string vectors, hashing, redaction,
 * control characters, files and PATH lookup. Tests that touch files get their own temp dir. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"
#include <openssl/evp.h>

static char tmpdir[PATH_MAX];

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/janebot-util-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
}

static void teardown(void)
{
    struct jb_err err = {0};
    cr_expect_eq(jb_rm_rf(tmpdir, &err), 0, "rm -rf %s: %s", tmpdir, err.msg);
}

TestSuite(util, .init = setup, .fini = teardown);

/* tmpdir/<rel>, into a caller's buffer. */
static const char *in_tmp(char *buf, size_t n, const char *rel)
{
    int w = snprintf(buf, n, "%s/%s", tmpdir, rel);
    cr_assert(w > 0 && (size_t)w < n, "path too long");
    return buf;
}

static void write_bytes(const char *path, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (size_t done = 0; done < n; done += sizeof chunk)
        cr_assert_eq(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);
}

/* ---- errors ---- */

Test(util, err_sys_appends_strerror)
{
    struct jb_err err = {0};
    errno = ENOENT;
    cr_assert_eq(jb_err_sys(&err, "cannot open %s", "/x"), -1);
    cr_assert_eq(err.code, JB_ESYS);
    cr_assert_eq(err.sys_errno, ENOENT);
    cr_assert_eq(errno, ENOENT, "errno is preserved");
    char want[256];
    snprintf(want, sizeof want, "cannot open /x: %s", strerror(ENOENT));
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(jb_err_sys(NULL, "no err"), -1, "NULL err is allowed");
}

Test(util, err_set_and_prefix_may_reuse_the_message)
{
    struct jb_err err = {0};
    jb_err_set(&err, JB_EPROTO, "bad %s", "line");
    cr_assert_eq(jb_err_set(&err, err.code, "agent: %s", err.msg), -1);
    cr_assert_str_eq(err.msg, "agent: bad line");
    cr_assert_eq(jb_err_prefix(&err, "turn %d", 3), -1);
    cr_assert_str_eq(err.msg, "turn 3: agent: bad line");
    cr_assert_eq(err.code, JB_EPROTO, "prefix keeps the code");
    cr_assert_str_eq(jb_strerror(JB_ENOTFOUND), "not found");
}

/* ---- buffers ---- */

Test(util, buf_ceiling_refuses_and_leaves_buffer_unchanged)
{
    struct jb_err err = {0};
    struct jb_buf b = JB_BUF_INIT(8);
    cr_assert_eq(jb_buf_append(&b, "12345", 5, &err), 0);
    cr_assert_eq(jb_buf_append(&b, "6789", 4, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO, "got %s", jb_strerror(err.code));
    cr_assert_eq(b.len, 5);
    cr_assert_str_eq(b.data, "12345");
    cr_assert_eq(jb_buf_append(&b, "678", 3, &err), 0, "exactly max fits");
    cr_assert_str_eq(b.data, "12345678");
    cr_assert_eq(jb_buf_append(&b, "9", 1, &err), -1);
    cr_assert_eq(jb_buf_append(&b, NULL, 0, &err), 0, "empty append at the ceiling");
    cr_assert_eq(b.len, 8);
    jb_buf_release(&b);
    cr_assert_eq(b.data, jb_buf_empty);
    cr_assert_eq(b.len, 0);
}

Test(util, buf_appendf_and_reset)
{
    struct jb_err err = {0};
    struct jb_buf b = JB_BUF_INIT(16);
    jb_buf_reset(&b); /* on a never-grown buffer */
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(jb_buf_appendf(&b, &err, "%d-%s", 42, "x"), 0);
    cr_assert_eq(jb_buf_appendf(&b, &err, "/%03d", 7), 0);
    cr_assert_str_eq(b.data, "42-x/007");
    cr_assert_eq(b.len, 8);
    cr_assert_eq(jb_buf_appendf(&b, &err, "%s", "123456789"), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_str_eq(b.data, "42-x/007");
    jb_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    jb_buf_release(&b);
}

Test(util, buf_detach_hands_over_memory)
{
    struct jb_err err = {0};
    struct jb_buf b = JB_BUF_INIT(1024);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(jb_buf_append(&b, "ab", 2, &err), 0);
    size_t len = 0;
    char *s = jb_buf_detach(&b, &len);
    cr_assert_not_null(s);
    cr_assert_eq(len, 200);
    cr_assert_eq(strlen(s), 200);
    cr_assert_eq(b.data, jb_buf_empty, "the buffer is reset");
    cr_assert_eq(b.len, 0);
    free(s);
    s = jb_buf_detach(&b, &len); /* empty: still a string the caller frees */
    cr_assert_str_eq(s, "");
    cr_assert_eq(len, 0);
    free(s);
}

/* ---- string vectors ---- */

Test(util, strv_push_and_free)
{
    struct jb_err err = {0};
    struct jb_strv s = JB_STRV_INIT;
    cr_assert_null(s.v);
    char word[] = "alpha";
    cr_assert_eq(jb_strv_push(&s, word, &err), 0);
    word[0] = 'X'; /* push copied it */
    cr_assert_eq(jb_strv_pushf(&s, &err, "n=%d", 5), 0);
    const char *more[] = {"c", "d", NULL};
    cr_assert_eq(jb_strv_pushv(&s, more, &err), 0);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(jb_strv_push(&s, "grow", &err), 0);
    cr_assert_eq(s.n, 44);
    cr_assert_str_eq(s.v[0], "alpha");
    cr_assert_str_eq(s.v[1], "n=5");
    cr_assert_str_eq(s.v[3], "d");
    cr_assert_null(s.v[s.n], "NULL-terminated");
    jb_strv_free(&s);
    cr_assert_null(s.v);
    cr_assert_eq(s.n, 0);
    jb_strv_free(&s); /* twice is fine */
}

Test(util, env_set_replaces)
{
    struct jb_err err = {0};
    struct jb_strv env = JB_STRV_INIT;
    cr_assert_eq(jb_env_set(&env, "AB", "long", &err), 0);
    cr_assert_eq(jb_env_set(&env, "A", "1", &err), 0);
    cr_assert_eq(jb_env_set(&env, "B", "2", &err), 0);
    cr_assert_eq(jb_env_set(&env, "A", "3", &err), 0);
    cr_assert_eq(env.n, 3);
    cr_assert_str_eq(jb_env_get(&env, "A"), "3");
    cr_assert_str_eq(jb_env_get(&env, "AB"), "long");
    cr_assert_str_eq(env.v[1], "A=3", "replaced in place");
    cr_assert_null(jb_env_get(&env, "C"));
    cr_assert_null(env.v[env.n]);
    jb_strv_free(&env);
}

/* ---- hashing ---- */

Test(util, sha256_matches_sha256sum)
{
    char hex[65];
    /* printf %s chat:x | sha256sum */
    jb_sha256_hex("chat:x", 6, hex);
    cr_assert_str_eq(hex, "9b953ff6c0e1c016e5e6b727dce74ea3392112310007b69b4ffc4ad27a94db9d");
    jb_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* janebot's own SHA-256 against OpenSSL's, at every length around the block and padding
 * boundaries (55, 56, 63, 64 ...) and on a few large inputs, and FIPS 180-4's examples. */
Test(util, sha256_matches_openssl_at_every_boundary)
{
    char hex[65];
    jb_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    jb_sha256_hex(two, strlen(two), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t big = 1000000 + 4099;
    unsigned char *data = malloc(big);
    cr_assert_not_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    size_t lens[300 + 4];
    size_t n = 0;
    for (size_t l = 0; l < 300; l++)
        lens[n++] = l;
    lens[n++] = 4096, lens[n++] = 65537, lens[n++] = 1000000, lens[n++] = big;
    for (size_t i = 0; i < n; i++) {
        unsigned char ours[32], theirs[32];
        unsigned int len = 0;
        jb_sha256(data, lens[i], ours);
        cr_assert_eq(EVP_Digest(data, lens[i], theirs, &len, EVP_sha256(), NULL), 1);
        cr_assert(memcmp(ours, theirs, 32) == 0, "SHA-256 of %zu bytes differs", lens[i]);
    }
    memset(data, 'a', 1000000);
    jb_sha256_hex(data, 1000000, hex);
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(data);
}

Test(util, uuid_v4_format)
{
    struct jb_err err = {0};
    char a[37], b[37];
    cr_assert_eq(jb_uuid_v4(a, &err), 0);
    cr_assert_eq(jb_uuid_v4(b, &err), 0);
    cr_assert_eq(strlen(a), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(a[i], '-', "%s", a);
        else
            cr_assert(strchr("0123456789abcdef", a[i]) && a[i], "%s: char %d", a, i);
    }
    cr_assert_eq(a[14], '4', "version nibble: %s", a);
    cr_assert(strchr("89ab", a[19]) != NULL, "variant: %s", a);
    cr_assert_str_neq(a, b);
}

/* ---- redaction ---- */

static void expect_redacted(const char *in, const char *secret)
{
    char *out = jb_redact(in);
    cr_assert_not_null(out);
    cr_expect_null(strstr(out, secret), "'%s' leaked in '%s'", secret, out);
    cr_expect_not_null(strstr(out, "[redacted]"), "'%s'", out);
    free(out);
}

static void expect_kept(const char *in)
{
    char *out = jb_redact(in);
    cr_assert_not_null(out);
    cr_expect_str_eq(out, in);
    free(out);
}

Test(util, redact_hides_secrets_and_tokens)
{
    jb_log_add_secret("hunter2-pass");
    expect_redacted("password is hunter2-pass, ok", "hunter2-pass");
    expect_redacted("xhunter2-passx", "hunter2-pass"); /* registered secrets: anywhere */
    expect_redacted("token xoxb-1234567890-abcdefgh here", "1234567890");
    expect_redacted("key=sk-ant-api03-abcdefghijkl", "abcdefghijkl");
    expect_redacted("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop");
    expect_kept("we use sk-learn for that");
    expect_kept("an ordinary sentence, with punctuation: 1-2-3.");
    expect_kept("");
    char *out = jb_redact("a Bearer abcdefghijklmnop b");
    cr_assert_str_eq(out, "a [redacted] b");
    free(out);
}

Test(util, redact_prefers_the_longest_secret)
{
    jb_log_add_secret("abcdef12");
    jb_log_add_secret("abcdef1234567");
    jb_log_add_secret("short"); /* under 6 bytes: ignored */
    expect_redacted("x abcdef1234567 y", "34567");
    expect_kept("a short word");
}

/* ---- control characters ---- */

static void expect_stripped(const char *in, const char *want)
{
    char *out = jb_strip_controls_dup(in);
    cr_assert_not_null(out);
    cr_expect_str_eq(out, want, "stripping %s", in);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", in);
    cr_expect_eq(jb_strip_controls(copy), strlen(want), "the new length");
    free(out);
}

Test(util, strip_controls_drops_every_control_and_keeps_utf8)
{
    /* OSC 52 (clipboard write), CSI (clear screen), OSC title: only the harmless text stays. */
    expect_stripped("\x1b]52;c;aGk=\x07\x1b[2Jhi", "]52;c;aGk=[2Jhi");
    expect_stripped("\x1b]0;title\x1b\\ok", "]0;title\\ok");
    expect_stripped("a\tb\nc\r\n\x01\x08\x0b\x0c\x7f.", "a\tb\nc\n.");
    /* C1 controls in UTF-8: CSI, OSC, ST, NEL. */
    expect_stripped("x\xc2\x9b"
                    "31my\xc2\x9d"
                    "0;t\xc2\x9c\xc2\x85.",
                    "x31my0;t.");
    /* UTF-8 text stays as it is, 0x80 and 0x9f continuation bytes included. */
    const char *text = "caf\xc3\xa9 \xc4\x80 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 "
                       "\xc2\xa0 \xe2\x80\x9f \xf4\x8f\xbf\xbf";
    expect_stripped(text, text);
    /* Bytes that are not well-formed UTF-8 become '?': a lone 8-bit CSI, an overlong ESC,
     * a surrogate, a cut sequence, past U+10FFFF. */
    expect_stripped("\x9b"
                    "2J",
                    "?2J");
    expect_stripped("\xc0\x9b[2J", "??[2J");
    expect_stripped("\xed\xa0\x80", "???");
    expect_stripped("ab\xe6\x97", "ab??");
    expect_stripped("\xf4\x90\x80\x80|\xf5\x80", "????|??");
    expect_stripped("", "");
    char *empty = jb_strip_controls_dup(NULL);
    cr_expect_str_eq(empty, "");
    free(empty);
}

Test(util, log_lines_lose_control_characters)
{
    char path[PATH_MAX], line[512] = "";
    FILE *f = fopen(in_tmp(path, sizeof path, "log"), "w+");
    cr_assert_not_null(f);
    jb_log_init(JB_LOG_DEBUG, f);
    log_warn("agent said: %s", "\x1b]52;c;aGk=\x07\x1b[2J\xc2\x9b"
                               "6n done");
    jb_log_init(JB_LOG_INFO, NULL);
    rewind(f);
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    cr_expect(strstr(line, "warn: agent said: ]52;c;aGk=[2J6n done\n"), "%s", line);
    for (const char *p = line; *p; p++)
        cr_expect((unsigned char)*p >= 0x20 || *p == '\n', "control byte %02x", *p);
}

/* ---- JSON log lines ---- */

Test(util, json_escape_quotes_backslashes_and_controls)
{
    struct jb_buf b = JB_BUF_INIT(1024);
    cr_assert_eq(jb_json_escape(&b, "a\"b\\c\nd\te\x01\x1f\x7f caf\xc3\xa9 </x>"), 0);
    cr_expect_str_eq(b.data, "a\\\"b\\\\c\\nd\\te\\u0001\\u001f\\u007f caf\xc3\xa9 </x>");
    jb_buf_reset(&b);
    cr_assert_eq(jb_json_escape(&b, ""), 0);
    cr_expect_str_eq(b.data, "");
    jb_buf_release(&b);
}

/* Every line logged to a file by fn, as written. */
static char *logged(enum jb_log_format fmt, void (*fn)(void))
{
    char path[PATH_MAX];
    FILE *f = fopen(in_tmp(path, sizeof path, "jsonlog"), "w+");
    cr_assert_not_null(f);
    jb_log_init(JB_LOG_DEBUG, f);
    jb_log_set_format(fmt);
    fn();
    jb_log_set_format(JB_LOG_TEXT);
    jb_log_init(JB_LOG_INFO, NULL);
    long n = ftell(f);
    char *all = calloc(1, (size_t)n + 1);
    rewind(f);
    cr_assert_eq(fread(all, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return all;
}

static void log_a_turn(void)
{
    jb_log_add_secret("pa55-w0rd-xyz");
    log_info("slack: plain \"quoted\" line\nwith a newline and \x1b[2J");
    jb_log_ctx_set("D1:1700.1 pa55-w0rd-xyz", "U1 xoxb-1234567890-abcdefgh");
    jb_log_ctx_turn(42);
    jb_log_event(JB_LOG_WARN, "turn.end", 1234, "turn ended: ok, key sk-ant-api03-abcdefghijkl");
    jb_log_ctx_clear();
    log_error("after the turn: pa55-w0rd-xyz");
}

Test(util, json_log_lines_have_fields_context_and_no_secrets)
{
    char *all = logged(JB_LOG_JSON, log_a_turn);
    cr_assert_null(strstr(all, "pa55-w0rd-xyz"), "%s", all);
    cr_assert_null(strstr(all, "1234567890-abcdefgh"), "%s", all);
    cr_assert_null(strstr(all, "abcdefghijkl"), "%s", all);
    json_t *lines[3] = {0};
    char *save = NULL, *line = strtok_r(all, "\n", &save);
    for (int i = 0; i < 3; i++, line = strtok_r(NULL, "\n", &save)) {
        cr_assert_not_null(line, "line %d missing", i);
        json_error_t je;
        lines[i] = json_loads(line, 0, &je);
        cr_assert_not_null(lines[i], "not JSON (%s): %s", je.text, line);
    }
    cr_assert_null(line, "one object per line: extra %s", line);
    const char *t = json_string_value(json_object_get(lines[0], "time"));
    cr_assert(t && strlen(t) == 24 && t[10] == 'T' && t[19] == '.' && t[23] == 'Z', "time %s", t);
    cr_expect_str_eq(json_string_value(json_object_get(lines[0], "level")), "info");
    cr_expect_str_eq(json_string_value(json_object_get(lines[0], "event")), "slack");
    cr_expect_str_eq(json_string_value(json_object_get(lines[0], "msg")),
                     "slack: plain \"quoted\" line\nwith a newline and [2J");
    cr_expect_null(json_object_get(lines[0], "thread"));
    cr_expect_null(json_object_get(lines[0], "turn"));
    cr_expect_str_eq(json_string_value(json_object_get(lines[1], "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(lines[1], "event")), "turn.end");
    cr_expect_str_eq(json_string_value(json_object_get(lines[1], "thread")),
                     "D1:1700.1 [redacted]");
    cr_expect_str_eq(json_string_value(json_object_get(lines[1], "user")), "U1 [redacted]");
    cr_expect_eq(json_integer_value(json_object_get(lines[1], "turn")), 42);
    cr_expect_eq(json_integer_value(json_object_get(lines[1], "duration_ms")), 1234);
    cr_expect_str_eq(json_string_value(json_object_get(lines[1], "msg")),
                     "turn ended: ok, key [redacted]");
    cr_expect_str_eq(json_string_value(json_object_get(lines[2], "event")), "log");
    cr_expect_null(json_object_get(lines[2], "user"), "the context ends with the turn");
    cr_expect_null(json_object_get(lines[2], "duration_ms"));
    for (int i = 0; i < 3; i++)
        json_decref(lines[i]);
    free(all);
}

Test(util, text_log_lines_stay_as_they_were_and_hide_secrets)
{
    char *all = logged(JB_LOG_TEXT, log_a_turn);
    cr_assert_null(strstr(all, "pa55-w0rd-xyz"), "%s", all);
    cr_assert_null(strstr(all, "abcdefghijkl"), "%s", all);
    cr_expect_not_null(strstr(all, " janebot warn: turn ended: ok, key [redacted]\n"), "%s", all);
    cr_expect_not_null(strstr(all, " janebot error: after the turn: [redacted]\n"), "%s", all);
    cr_expect_null(strchr(all, '{'), "%s", all);
    free(all);
}

Test(util, log_format_names)
{
    enum jb_log_format f = JB_LOG_TEXT;
    cr_expect_eq(jb_log_format_parse("json", &f), 0);
    cr_expect_eq(f, JB_LOG_JSON);
    cr_expect_eq(jb_log_format_parse("text", &f), 0);
    cr_expect_eq(f, JB_LOG_TEXT);
    cr_expect_eq(jb_log_format_parse("logfmt", &f), -1);
}

/* ---- files ---- */

Test(util, rm_rf_does_not_follow_symlinks)
{
    struct jb_err err = {0};
    char outside[PATH_MAX], target[PATH_MAX], tree[PATH_MAX], p[PATH_MAX];
    in_tmp(outside, sizeof outside, "outside");
    in_tmp(target, sizeof target, "outside/keep");
    in_tmp(tree, sizeof tree, "tree");
    cr_assert_eq(jb_mkdir_p(outside, 0700, &err), 0, "%s", err.msg);
    write_bytes(target, 1000);
    cr_assert_eq(jb_mkdir_p(in_tmp(p, sizeof p, "tree/a/b"), 0700, &err), 0, "%s", err.msg);
    write_bytes(in_tmp(p, sizeof p, "tree/a/b/f"), 1000);
    cr_assert_eq(symlink(target, in_tmp(p, sizeof p, "tree/link-file")), 0);
    cr_assert_eq(symlink(outside, in_tmp(p, sizeof p, "tree/a/link-dir")), 0);
    /* A read-only and an unreadable directory, as a sandboxed agent may leave them. */
    cr_assert_eq(jb_mkdir_p(in_tmp(p, sizeof p, "tree/ro/sub"), 0700, &err), 0);
    write_bytes(in_tmp(p, sizeof p, "tree/ro/sub/f"), 1000);
    cr_assert_eq(chmod(in_tmp(p, sizeof p, "tree/ro"), 0500), 0);
    cr_assert_eq(jb_mkdir_p(in_tmp(p, sizeof p, "tree/locked/inner"), 0700, &err), 0);
    cr_assert_eq(chmod(in_tmp(p, sizeof p, "tree/locked/inner"), 0), 0);
    cr_assert_eq(chmod(in_tmp(p, sizeof p, "tree/locked"), 0), 0);

    cr_assert_eq(jb_rm_rf(tree, &err), 0, "%s", err.msg);
    cr_assert_eq(access(tree, F_OK), -1, "tree is gone");
    cr_assert_eq(access(target, F_OK), 0, "the symlink's target survives");
    cr_assert_eq(access(outside, F_OK), 0);
    cr_assert_eq(jb_rm_rf(tree, &err), 0, "a missing path is not an error");
}

Test(util, disk_usage_counts_blocks)
{
    char dir[PATH_MAX], f[PATH_MAX];
    struct jb_err err = {0};
    cr_assert_eq(jb_mkdir_p(in_tmp(dir, sizeof dir, "du/x"), 0700, &err), 0, "%s", err.msg);
    write_bytes(in_tmp(f, sizeof f, "du/x/data"), 10000);
    cr_assert_gt(jb_disk_usage(in_tmp(dir, sizeof dir, "du")), 0);
    cr_assert_eq(jb_disk_usage(in_tmp(dir, sizeof dir, "missing")), -1);
}

Test(util, mkdir_p_and_files)
{
    struct jb_err err = {0};
    char p[PATH_MAX], f[PATH_MAX];
    cr_assert_eq(jb_mkdir_p(in_tmp(p, sizeof p, "m/n/o/"), 0700, &err), 0, "%s", err.msg);
    cr_assert_eq(jb_mkdir_p(p, 0700, &err), 0, "existing is fine");
    cr_assert_eq(jb_mkdir_p("", 0700, &err), -1);

    /* A stale temp file from a crash must not lend its mode to a secret. */
    in_tmp(f, sizeof f, "m/secret");
    char stale[PATH_MAX + 32];
    snprintf(stale, sizeof stale, "%s.tmp.%d", f, (int)getpid());
    write_bytes(stale, 1000);
    cr_assert_eq(chmod(stale, 0666), 0);
    cr_assert_eq(jb_write_file(f, "token", 5, 0600, &err), 0, "%s", err.msg);
    struct stat sb;
    cr_assert_eq(stat(f, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", (unsigned)(sb.st_mode & 0777));
    cr_assert_eq(access(stale, F_OK), -1);

    char *data = NULL;
    size_t len = 0;
    cr_assert_eq(jb_read_file(f, 100, &data, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(data, "token");
    free(data);
    cr_assert_eq(jb_read_file(f, 4, &data, &len, &err), -1);
    cr_assert_eq(err.code, JB_EPROTO);
    cr_assert_eq(jb_read_file(in_tmp(p, sizeof p, "nope"), 4, &data, &len, &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
}

Test(util, which_searches_path)
{
    char *sh = jb_which("sh", getenv("PATH"));
    cr_assert_not_null(sh);
    cr_assert_eq(sh[0], '/');
    cr_assert_eq(access(sh, X_OK), 0);
    cr_assert_str_eq(strrchr(sh, '/'), "/sh");
    free(sh);
    cr_assert_null(jb_which("janebot-no-such-tool-xyz", getenv("PATH")));
    cr_assert_null(jb_which("", NULL));
    char *abs = jb_which("/bin/sh", NULL);
    cr_assert_str_eq(abs, "/bin/sh");
    free(abs);
}

/* ---- time and formatting ---- */

Test(util, time_and_size_formatting)
{
    cr_assert_gt(jb_now_ms(), 1600000000000LL);
    cr_assert_gt(jb_mono_ms(), 0);
    char out[32];
    jb_fmt_time(0, out, sizeof out);
    cr_assert_str_eq(out, "-");
    jb_fmt_time(INT64_MAX, out, sizeof out); /* beyond struct tm: no crash */
    cr_assert_str_eq(out, "-");
    jb_fmt_time(1700000000, out, sizeof out);
    cr_assert_eq(strlen(out), 19, "%s", out);
    jb_fmt_size(512, out, sizeof out);
    cr_assert_str_eq(out, "512 B");
    jb_fmt_size(1536 * 1024, out, sizeof out);
    cr_assert_str_eq(out, "1.5 MiB");
}

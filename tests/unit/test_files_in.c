/* tests/unit/test_files_in.c -- files users share reaching the sandbox: the list kept from
 * files[] (with the conformance fixture), where the bot token may go, safe names in
 * ~/inbox/, and sandbox_put() never following what the sandbox planted. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "slack/slack.h"
#include "conformance.h"

#define TOKEN "xoxb-1111-2222-s3cretTok3nValue"

/* ---- files[] -> the kept list ----------------------------------------------------- */

static json_t *kept(const char *files_json, long long cap, struct jb_strv *skipped)
{
    json_t *files = json_loads(files_json, 0, NULL);
    cr_assert_not_null(files, "test input is JSON");
    char *out = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_files_normalise(files, cap, &out, skipped, &err), 0, "%s", err.msg);
    json_decref(files);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return j;
}

Test(files_in, only_downloadable_files_under_the_cap_are_kept)
{
    struct jb_strv skipped = JB_STRV_INIT;
    json_t *j =
        kept("[{\"name\":\"a.txt\",\"size\":5,\"mode\":\"hosted\",\"mimetype\":\"text/plain\","
             "  \"url_private_download\":\"https://files.slack.com/a\"},"
             " {\"name\":\"gone\",\"size\":5,\"mode\":\"tombstone\","
             "  \"url_private_download\":\"https://files.slack.com/b\"},"
             " {\"id\":\"F1\",\"mode\":\"hidden_by_limit\"},"
             " {\"name\":\"ext\",\"size\":5,\"mode\":\"external\","
             "  \"url_private_download\":\"https://files.slack.com/c\"},"
             " {\"name\":\"nourl\",\"size\":5,\"mode\":\"hosted\"},"
             " {\"name\":\"big.bin\",\"size\":31457280,\"mode\":\"hosted\","
             "  \"url_private_download\":\"https://files.slack.com/d\"},"
             " \"not an object\"]",
             20LL << 20, &skipped);
    cr_assert_not_null(j);
    cr_assert_eq(json_array_size(j), 1);
    json_t *f = json_array_get(j, 0);
    cr_assert_str_eq(json_string_value(json_object_get(f, "name")), "a.txt");
    cr_assert_str_eq(json_string_value(json_object_get(f, "url")), "https://files.slack.com/a");
    cr_assert_eq(json_integer_value(json_object_get(f, "size")), 5);
    cr_assert_str_eq(json_string_value(json_object_get(f, "mimetype")), "text/plain");
    cr_assert_eq(skipped.n, 1, "the big one is reported");
    cr_assert_str_eq(skipped.v[0], "big.bin (30.0 MiB)");
    json_decref(j);
    jb_strv_free(&skipped);
}

Test(files_in, nothing_kept_gives_NULL)
{
    cr_assert_null(kept("[]", 100, NULL));
    cr_assert_null(kept("[{\"id\":\"F1\",\"mode\":\"hidden_by_limit\"}]", 100, NULL));
    char *out = (char *)1;
    cr_assert_eq(slack_files_normalise(NULL, 100, &out, NULL, NULL), 0);
    cr_assert_null(out);
}

Test(files_in, the_file_share_fixture_gives_its_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    conformance_dir(dir);
    snprintf(path, sizeof path, "%s/slack/events_api_message_file_share.json", dir);
    json_t *frame = json_load_file(path, 0, NULL);
    cr_assert_not_null(frame, "%s", path);
    struct slack_message m = {0};
    struct jb_err err = {0};
    cr_assert_eq(slack_event_interpret(json_object_get(frame, "payload"), "U0JANEBOT", "B0JANEBOT",
                                       &m, NULL, &err),
                 1, "%s", err.msg);
    char *out = NULL;
    cr_assert_eq(slack_files_normalise(m.files, 20LL << 20, &out, NULL, &err), 0, "%s", err.msg);
    json_t *got = json_loads(out, 0, NULL);
    json_t *want =
        json_pack("[{s:s, s:s, s:i, s:s}]", "name", "build.log", "url",
                  "https://files.slack.com/files-pri/T0AB12CDE-F07LOGFILE1/download/build.log",
                  "size", 48213, "mimetype", "text/plain");
    cr_assert(json_equal(got, want), "kept %s", out);
    cr_assert(
        slack_file_url_trusted("https://slack.com/api/",
                               json_string_value(json_object_get(json_array_get(got, 0), "url"))));
    json_decref(got);
    json_decref(want);
    free(out);
    slack_message_release(&m);
    json_decref(frame);
}

/* ---- where the bot token may go ------------------------------------------------------ */

Test(files_in, the_token_goes_only_to_slacks_file_host_or_the_api_origin)
{
    const char *api = "https://slack.com/api/";
    cr_assert(slack_file_url_trusted(api, "https://files.slack.com/files-pri/T-F/download/a"));
    cr_assert(slack_file_url_trusted(api, "https://FILES.slack.com:443/x"));
    static const char *const bad[] = {
        "http://files.slack.com/x",             /* not TLS */
        "https://files.slack.com:8443/x",       /* another port */
        "https://files.slack.com.evil.test/x",  /* a look-alike */
        "https://evil.test/files.slack.com/x",  /* the name in the path */
        "https://files.slack.com@evil.test/x",  /* the name as a user */
        "https://u:p@files.slack.com/x",        /* credentials */
        "https://evil.test\\@files.slack.com/", /* a backslash trick */
        "ftp://files.slack.com/x",
        "file:///etc/passwd",
        "//files.slack.com/x",
        "files.slack.com/x",
        "",
        "https://slack.com.evil.test/api/x",
        "http://slack.com/api/x", /* the API's host, another scheme */
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++)
        cr_assert_not(slack_file_url_trusted(api, bad[i]), "%s must not get the token", bad[i]);
    cr_assert_not(slack_file_url_trusted(api, NULL));
    /* a test double of Slack: its own scheme, host and port only */
    const char *fake = "http://127.0.0.1:4567/api/";
    cr_assert(slack_file_url_trusted(fake, "http://127.0.0.1:4567/files-pri/T-F/download/a"));
    cr_assert_not(slack_file_url_trusted(fake, "http://127.0.0.1:4568/files-pri/x"));
    cr_assert_not(slack_file_url_trusted(fake, "https://127.0.0.1:4567/files-pri/x"));
    cr_assert_not(slack_file_url_trusted(fake, "http://localhost:4567/files-pri/x"));
    cr_assert_not(slack_file_url_trusted(NULL, "http://127.0.0.1:4567/x"));
}

Test(files_in, an_untrusted_url_is_refused_before_anything_is_sent)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files-pri/T-F/download/a", ntohs(a.sin_port));
    struct slack_download d = {.api_url = "https://slack.com/api/", .bot_token = TOKEN};
    struct jb_err err = {0};
    int fd = memfd_create("dl", MFD_CLOEXEC);
    cr_assert_eq(slack_file_download(&d, url, fd, 1 << 20, &err), -1);
    cr_assert_eq(err.code, JB_EDENIED);
    cr_assert_null(strstr(err.msg, "s3cret"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "127.0.0.1"), "names the host: %s", err.msg);
    cr_assert_eq(accept(ls, NULL, NULL), -1, "no connection may be made");
    cr_assert_eq(errno, EAGAIN);
    close(fd);
    close(ls);
}

/* ---- names in ~/inbox/ ------------------------------------------------------------- */

static void name_is(const char *in, const struct jb_strv *taken, const char *want)
{
    char out[SANDBOX_FILE_NAME_MAX + 1];
    sandbox_safe_name(in, taken, out);
    cr_assert_str_eq(out, want, "%s", in ? in : "(null)");
}

Test(files_in, safe_names)
{
    name_is("note.txt", NULL, "note.txt");
    name_is("../../etc/passwd", NULL, "passwd");
    name_is("dir/", NULL, "file");
    name_is("", NULL, "file");
    name_is(NULL, NULL, "file");
    name_is(".bashrc", NULL, "_bashrc");
    name_is("..", NULL, "_.");
    name_is("a\nb\tc\x7f.txt", NULL, "a_b_c_.txt");
    name_is("résumé.pdf", NULL, "résumé.pdf");
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char out[SANDBOX_FILE_NAME_MAX + 1];
    sandbox_safe_name(longname, NULL, out);
    cr_assert_eq(strlen(out), SANDBOX_FILE_NAME_MAX);
    /* a cut never splits a UTF-8 character */
    char wide[300] = "";
    for (int i = 0; i < 60; i++)
        strcat(wide, "é");
    sandbox_safe_name(wide, NULL, out);
    cr_assert_eq(strlen(out), 100);
    char shifted[300] = "a"; /* every boundary one further: byte 100 is inside a character */
    strcat(shifted, wide);
    sandbox_safe_name(shifted, NULL, out);
    cr_assert_eq(strlen(out), 99);
}

Test(files_in, names_taken_in_the_turn_get_a_number)
{
    struct jb_strv taken = JB_STRV_INIT;
    jb_strv_push(&taken, "a.txt", NULL);
    name_is("a.txt", &taken, "a-2.txt");
    jb_strv_push(&taken, "a-2.txt", NULL);
    name_is("x/a.txt", &taken, "a-3.txt");
    jb_strv_push(&taken, "Makefile", NULL);
    name_is("Makefile", &taken, "Makefile-2");
    char longname[120];
    memset(longname, 'y', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memcpy(longname + sizeof longname - 5, ".txt", 4);
    char first[SANDBOX_FILE_NAME_MAX + 1], second[SANDBOX_FILE_NAME_MAX + 1];
    sandbox_safe_name(longname, &taken, first);
    jb_strv_push(&taken, first, NULL);
    sandbox_safe_name(longname, &taken, second);
    cr_assert_str_neq(first, second);
    cr_assert_leq(strlen(second), SANDBOX_FILE_NAME_MAX);
    cr_assert_str_eq(second + strlen(second) - 6, "-2.txt");
    jb_strv_free(&taken);
}

/* ---- sandbox_put() on a home of this host ------------------------------------------ */

static char root[] = "/tmp/jb-files-in-XXXXXX";
static struct sandbox_ctx ctx;
static struct sandbox sb;

static void put_setup(void)
{
    cr_assert_not_null(mkdtemp(root));
    static char home[sizeof root + 8];
    snprintf(home, sizeof home, "%s/home", root);
    cr_assert_eq(mkdir(home, 0700), 0);
    ctx.ops = sandbox_ops_find("host"); /* a backend without a put() of its own */
    sb.ctx = &ctx;
    snprintf(sb.name, sizeof sb.name, "jane-000000000000");
    sb.home = home;
}

static void put_teardown(void)
{
    jb_rm_rf(root, NULL);
}

static int memfd_with(const char *text)
{
    int fd = memfd_create("put", MFD_CLOEXEC);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    return fd; /* offset at the end: sandbox_put reads from 0 anyway */
}

static char *read_at(const char *rel)
{
    char path[PATH_MAX], *data = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", sb.home, rel);
    return jb_read_file(path, 4096, &data, &len, NULL) == 0 ? data : NULL;
}

TestSuite(files_put, .init = put_setup, .fini = put_teardown);

Test(files_put, a_file_lands_in_the_inbox_and_replaces_an_older_one)
{
    struct jb_err err = {0};
    int fd = memfd_with("hello\n");
    cr_assert_eq(sandbox_put(&sb, "inbox/note.txt", fd, &err), 0, "%s", err.msg);
    char *got = read_at("inbox/note.txt");
    cr_assert_str_eq(got, "hello\n");
    free(got);
    close(fd);
    fd = memfd_with("v2");
    cr_assert_eq(sandbox_put(&sb, "inbox/note.txt", fd, &err), 0, "%s", err.msg);
    got = read_at("inbox/note.txt");
    cr_assert_str_eq(got, "v2");
    free(got);
    close(fd);
}

Test(files_put, bad_paths_are_refused)
{
    static const char *const bad[] = {"../x",   "inbox/../../x",        "/etc/x",        "inbox//x",
                                      "inbox/", ".ssh/authorized_keys", "inbox/.hidden", ""};
    int fd = memfd_with("x");
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        struct jb_err err = {0};
        cr_assert_eq(sandbox_put(&sb, bad[i], fd, &err), -1, "%s", bad[i]);
        cr_assert_eq(err.code, JB_EPROTO, "%s", bad[i]);
    }
    close(fd);
}

Test(files_put, symlinks_the_sandbox_planted_are_never_followed)
{
    char outside[256], link[PATH_MAX], target[PATH_MAX];
    snprintf(outside, sizeof outside, "%s/outside", root);
    cr_assert_eq(mkdir(outside, 0700), 0);
    snprintf(target, sizeof target, "%s/victim", outside);
    cr_assert_eq(jb_write_file(target, "precious", 8, 0600, NULL), 0);
    /* the inbox itself a symlink out of the home: refused */
    snprintf(link, sizeof link, "%s/inbox", sb.home);
    cr_assert_eq(symlink(outside, link), 0);
    struct jb_err err = {0};
    int fd = memfd_with("evil");
    cr_assert_eq(sandbox_put(&sb, "inbox/victim", fd, &err), -1);
    char *data = NULL;
    size_t len;
    cr_assert_eq(jb_read_file(target, 64, &data, &len, NULL), 0);
    cr_assert_str_eq(data, "precious");
    free(data);
    /* a file in the inbox that is a symlink out: replaced, not written through */
    cr_assert_eq(unlink(link), 0);
    cr_assert_eq(mkdir(link, 0700), 0);
    snprintf(link, sizeof link, "%s/inbox/note.txt", sb.home);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(sandbox_put(&sb, "inbox/note.txt", fd, &err), 0, "%s", err.msg);
    cr_assert_eq(jb_read_file(target, 64, &data, &len, NULL), 0);
    cr_assert_str_eq(data, "precious");
    free(data);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISREG(st.st_mode), "the link was replaced by the file");
    data = read_at("inbox/note.txt");
    cr_assert_str_eq(data, "evil");
    free(data);
    close(fd);
}

/* tests/unit/test_sprites.c -- pure helpers of the Sprites backend (sandbox/sprites*.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "sandbox/sprites-int.h"

Test(sprites, escape_keeps_unreserved_and_encodes_the_rest)
{
    struct jb_buf b = JB_BUF_INIT(4096);
    cr_assert_eq(sprites_escape(&b, "a-Z_0.~ /=&?%\xc3\xa9", NULL), 0);
    cr_assert_str_eq(b.data, "a-Z_0.~%20%2F%3D%26%3F%25%C3%A9");
    jb_buf_release(&b);
}

Test(sprites, policy_allows_listed_hosts_then_denies_everything)
{
    char *p = sprites_policy_json(" github.com, *.example.com:443,,", NULL);
    cr_assert_str_eq(p, "{\"rules\":[{\"action\":\"allow\",\"domain\":\"github.com\"},"
                        "{\"action\":\"allow\",\"domain\":\"*.example.com\"},"
                        "{\"action\":\"deny\",\"domain\":\"*\"}]}");
    free(p);
    p = sprites_policy_json("", NULL); /* nothing allowed: only the deny */
    cr_assert_str_eq(p, "{\"rules\":[{\"action\":\"deny\",\"domain\":\"*\"}]}");
    free(p);
}

Test(sprites, exec_path_carries_argv_dir_env_and_stdin)
{
    const char *argv[] = {"sh", "-c", "echo hi", NULL}, *env[] = {"PATH=/bin:/usr/bin", NULL};
    struct jb_buf b = JB_BUF_INIT(4096);
    cr_assert_eq(sprites_exec_path("jane-0123456789ab", argv, env, "/home/sprite", &b, NULL), 0);
    cr_assert_str_eq(b.data, "/v1/sprites/jane-0123456789ab/exec?tty=false&stdin=true"
                             "&max_run_after_disconnect=10s&cmd=sh&cmd=-c&cmd=echo%20hi&path=sh"
                             "&dir=%2Fhome%2Fsprite&env=PATH%3D%2Fbin%3A%2Fusr%2Fbin");
    jb_buf_release(&b);
    const char *none[] = {NULL};
    struct jb_buf c = JB_BUF_INIT(4096);
    cr_assert_eq(sprites_exec_path("x", none, NULL, NULL, &c, NULL), -1);
    jb_buf_release(&c);
}

Test(sprites, not_found_includes_the_500_quirk)
{
    cr_assert(sprites_is_not_found(404, ""));
    cr_assert(sprites_is_not_found(500, "{\"error\":\"failed to retrieve sprite\"}"));
    cr_assert_not(sprites_is_not_found(500, "{\"error\":\"internal\"}"));
    cr_assert_not(sprites_is_not_found(503, "failed to retrieve"));
    cr_assert_not(sprites_is_not_found(200, ""));
}

Test(sprites, parse_time)
{
    cr_assert_eq(sprites_parse_time("2026-01-13T10:30:00Z"), 1768300200);
    cr_assert_eq(sprites_parse_time("2026-01-13T10:30:00.123Z"), 1768300200);
    cr_assert_eq(sprites_parse_time("garbage"), 0);
    cr_assert_eq(sprites_parse_time(NULL), 0);
}

Test(sprites, client_needs_a_token_and_an_http_url)
{
    struct sprites *sp = NULL;
    struct jb_err e = {0};
    cr_assert_eq(sprites_client_new(NULL, "", &sp, &e), -1);
    cr_assert(strstr(e.msg, "SPRITES_TOKEN"));
    cr_assert_eq(sprites_client_new("ftp://x", "tok-123456", &sp, &e), -1);
    cr_assert_eq(sprites_client_new("http://127.0.0.1:9/", "tok-123456", &sp, &e), 0);
    cr_assert_str_eq(sp->api_url, "http://127.0.0.1:9");
    cr_assert_str_eq(sp->bearer, "Bearer tok-123456");
    sprites_client_free(sp);
}

Test(sprites, checkpoint_streams_are_judged_by_their_last_word)
{
    char why[256];
    const char ok[] = "{\"type\":\"info\",\"data\":\"Creating checkpoint...\"}\n\nnot json\n"
                      "{\"type\":\"complete\",\"data\":\"Environment restarting\"}";
    cr_assert_eq(sprites_ndjson_result(ok, why, sizeof why), 0);
    const char bad[] = "{\"type\":\"info\",\"data\":\"x\"}\n{\"type\":\"error\",\"error\":\"sprite_"
                       "not_routable\"}\n";
    cr_assert_eq(sprites_ndjson_result(bad, why, sizeof why), -1);
    cr_assert_str_eq(why, "sprite_not_routable");
    /* cut short: neither done nor failed (the caller looks it up) */
    cr_assert_eq(sprites_ndjson_result("{\"type\":\"info\"}\n", why, sizeof why), 1);
    cr_assert(strstr(why, "without"));
    cr_assert_eq(sprites_ndjson_result("", why, sizeof why), 1);
}

/* Found by the fuzz target (tests/fuzz/corpus/sprites/crash-ndjson-empty-error): an error
 * event whose text is empty gave an empty reason. */
Test(sprites, checkpoint_error_without_text_still_says_what_failed)
{
    char why[256];
    const char empty[] = "{\"type\":\"error\",\"error\":\"\",\"data\":\"\"}\n";
    cr_assert_eq(sprites_ndjson_result(empty, why, sizeof why), -1);
    cr_assert_str_eq(why, "the stream reported an error without text");
    const char in_data[] = "{\"type\":\"error\",\"error\":\"\",\"data\":\"disk full\"}\n";
    cr_assert_eq(sprites_ndjson_result(in_data, why, sizeof why), -1);
    cr_assert_str_eq(why, "disk full");
}

Test(sprites, retry_after_comes_from_the_structured_429_body)
{
    cr_assert_eq(sprites_retry_after_ms("{\"error\":\"sprite_creation_rate_limited\","
                                        "\"retry_after_seconds\":42}"),
                 42000);
    cr_assert_eq(sprites_retry_after_ms("{\"error\":\"x\"}"), 0);
    cr_assert_eq(sprites_retry_after_ms("rate limited"), 0);
    cr_assert_eq(sprites_retry_after_ms(NULL), 0);
    cr_assert_eq(sprites_retry_after_ms("{\"retry_after_seconds\":-5}"), 0);
}

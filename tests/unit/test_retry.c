/* tests/unit/test_retry.c -- util/retry.c: the one retry schedule and Retry-After. */
#include <criterion/criterion.h>
#include <string.h>

#include "util/util.h"

Test(retry, backoff_doubles_with_jitter_in_the_upper_half_and_stops_at_the_cap)
{
    struct jb_retry r = {.base_ms = 100, .cap_ms = 1000};
    long lo[] = {50, 100, 200, 400, 500, 500, 500};
    long hi[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (int n = 0; n < 7; n++)
        for (int k = 0; k < 200; k++) {
            long d = jb_retry_backoff(&r, n);
            cr_assert(d >= lo[n] && d <= hi[n], "n=%d: %ld not in [%ld, %ld]", n, d, lo[n], hi[n]);
        }
}

Test(retry, jitter_spreads_clients_that_failed_together)
{
    struct jb_retry r = {.base_ms = 1000};
    long first = jb_retry_backoff(&r, 3), differs = 0;
    for (int k = 0; k < 50; k++)
        differs += jb_retry_backoff(&r, 3) != first;
    cr_assert_gt(differs, 0, "50 waits were all %ld ms", first);
}

Test(retry, retries_are_counted_up_to_the_limit_and_reset_after_a_success)
{
    struct jb_retry r = {.base_ms = 1, .max_retries = 3};
    for (int i = 0; i < 3; i++)
        cr_assert_geq(jb_retry_next(&r, 0), 1);
    cr_assert_eq(jb_retry_next(&r, 0), JB_RETRY_STOP);
    cr_assert_eq(r.retries, 3);
    jb_retry_reset(&r);
    cr_assert_geq(jb_retry_next(&r, 0), 1);
}

Test(retry, a_longer_wait_asked_for_is_honoured_and_a_too_long_one_ends_it)
{
    struct jb_retry r = {.base_ms = 10, .ask_max_ms = 60000};
    cr_assert_eq(jb_retry_next(&r, 30000), 30000);
    long d = jb_retry_next(&r, 1); /* asked less than the backoff: the backoff wins */
    cr_assert(d >= 10 && d <= 20, "%ld", d);
    cr_assert_eq(jb_retry_next(&r, 120000), JB_RETRY_ASKED);
    cr_assert_eq(r.retries, 2);
}

Test(retry, no_wait_ends_past_the_deadline)
{
    struct jb_retry r = {.base_ms = 5000, .deadline = jb_mono_ms() + 2000};
    cr_assert_eq(jb_retry_next(&r, 0), JB_RETRY_STOP);
    cr_assert_eq(jb_retry_next(&r, 2400), JB_RETRY_STOP); /* backoff (>= 2500) is longer */
    struct jb_retry q = {.base_ms = 1, .deadline = jb_mono_ms() + 2000};
    cr_assert_eq(jb_retry_next(&q, 10000), JB_RETRY_ASKED);
    cr_assert_leq(jb_retry_next(&q, 0), 2);
}

Test(retry, retry_after_headers_are_seconds_or_an_http_date)
{
    time_t now = 1768300200; /* 2026-01-13T10:30:00Z */
    cr_assert_eq(jb_retry_after_ms(" 2\r\n", now), 2000);
    cr_assert_eq(jb_retry_after_ms("0.5", now), 500);
    cr_assert_eq(jb_retry_after_ms("120", now), 120000);
    cr_assert_eq(jb_retry_after_ms("Tue, 13 Jan 2026 10:30:05 GMT\r\n", now), 5000);
    cr_assert_eq(jb_retry_after_ms("Tue, 13 Jan 2026 10:29:00 GMT", now), 0);
    cr_assert_eq(jb_retry_after_ms("soon", now), 0);
    cr_assert_eq(jb_retry_after_ms("5 minutes", now), 0);
    cr_assert_eq(jb_retry_after_ms("-3", now), 0);
    cr_assert_eq(jb_retry_after_ms("86400", now), 0);
    cr_assert_eq(jb_retry_after_ms("", now), 0);
    cr_assert_eq(jb_retry_after_ms(NULL, now), 0);
}

static struct jb_http_header hdr(const char *name, const char *value)
{
    return (struct jb_http_header){
        .name = name, .name_len = strlen(name), .value = value, .value_len = strlen(value)};
}

Test(retry, the_retry_after_of_a_header_list_is_the_last_one_named_so)
{
    time_t now = 1768300200;
    struct jb_http_header h[] = {hdr("Retry-After", "9"), hdr("Retry-After-Extra", "7"),
                                 hdr("retry-AFTER", "3 "), hdr("X", "1")};
    const struct jb_http_header *ra = jb_http_header_get(h, 4, "retry-after");
    cr_assert_eq(ra, &h[2]);
    cr_assert_null(jb_http_header_get(h, 4, "retry"));
    cr_assert_null(jb_http_header_get(h, 0, "x"));
    /* The value needs no NUL of its own: "30" of "300" is read as 30. */
    struct jb_http_header cut = {
        .name = "Retry-After", .name_len = 11, .value = "300", .value_len = 2};
    cr_assert_eq(jb_retry_after_header_ms(&cut, now), 30000);
    cr_assert_eq(jb_retry_after_header_ms(ra, now), 3000);
    char longv[200];
    memset(longv, '1', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    struct jb_http_header big = hdr("Retry-After", longv);
    cr_assert_eq(jb_retry_after_header_ms(&big, now), 0);
}

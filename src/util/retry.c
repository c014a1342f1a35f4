/* util/retry.c -- the one retry schedule (see util.h): jittered exponential backoff, a
 * limit on retries, a deadline, and Retry-After. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

long jb_retry_backoff(const struct jb_retry *r, int n)
{
    long base = r->base_ms > 0 ? r->base_ms : 1;
    long d = base;
    for (int i = 0; i < n && (r->cap_ms <= 0 || d < r->cap_ms) && d < (1L << 40); i++)
        d *= 2;
    if (r->cap_ms > 0 && d > r->cap_ms) d = r->cap_ms;
    uint32_t rnd = 0;
    if (jb_random_bytes(&rnd, sizeof rnd, NULL) < 0) rnd = (uint32_t)jb_mono_ms();
    return d - d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1));
}

long jb_retry_next(struct jb_retry *r, long asked_ms)
{
    if (r->max_retries > 0 && r->retries >= r->max_retries) return JB_RETRY_STOP;
    if (asked_ms > 0 && r->ask_max_ms > 0 && asked_ms > r->ask_max_ms) return JB_RETRY_ASKED;
    long wait = jb_retry_backoff(r, r->retries);
    if (asked_ms > wait) wait = asked_ms;
    if (r->deadline && jb_mono_ms() + wait > r->deadline)
        return asked_ms > 0 && asked_ms == wait ? JB_RETRY_ASKED : JB_RETRY_STOP;
    r->retries++;
    return wait;
}

void jb_retry_reset(struct jb_retry *r)
{
    r->retries = 0;
}

long jb_retry_after_ms(const char *value, time_t now)
{
    while (value && (*value == ' ' || *value == '\t'))
        value++;
    if (!value || !*value) return 0;
    double secs;
    if (*value >= '0' && *value <= '9') {
        char *end;
        secs = strtod(value, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end) return 0;
    } else { /* an HTTP date, the line's end and trailing blanks cut */
        char date[64];
        size_t n = strlen(value);
        while (n && strchr(" \t\r\n", value[n - 1]))
            n--;
        if (n >= sizeof date) return 0;
        memcpy(date, value, n);
        date[n] = '\0';
        time_t t = jb_http_date(date);
        if (t < 0) return 0;
        secs = (double)(t - now);
    }
    return secs > 0 && secs < 86400 ? (long)(secs * 1000) : 0;
}

long jb_retry_after_header_ms(const struct jb_http_header *h, time_t now)
{
    char v[128];
    if (h->value_len >= sizeof v) return 0;
    memcpy(v, h->value, h->value_len);
    v[h->value_len] = '\0';
    return jb_retry_after_ms(v, now);
}

void jb_sleep_ms(long ms)
{
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

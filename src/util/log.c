/* util/log.c -- the process-wide logger. Every line passes through jb_strip_controls()
 * and then jb_redact(), so neither a terminal escape from outside (an agent's output, a
 * peer's error text) nor a secret registered with jb_log_add_secret() (or shaped like a
 * known token) reaches the log, whoever formats it. */
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

#define MAX_SECRETS 32

static struct {
    pthread_mutex_t mu;
    enum jb_log_level min;
    FILE *out;
    char *secrets[MAX_SECRETS];
    size_t nsecrets;
} logger = {.mu = PTHREAD_MUTEX_INITIALIZER, .min = JB_LOG_INFO};

void jb_log_init(enum jb_log_level min, FILE *out)
{
    pthread_mutex_lock(&logger.mu);
    __atomic_store_n(&logger.min, min, __ATOMIC_RELAXED); /* jb_log reads it unlocked */
    logger.out = out;
    pthread_mutex_unlock(&logger.mu);
}

int jb_log_level_parse(const char *s, enum jb_log_level *ret)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < JB_ARRAY_LEN(names); i++)
        if (strcasecmp(s, names[i]) == 0) return *ret = (enum jb_log_level)i, 0;
    return -1;
}

void jb_log_add_secret(const char *value)
{
    if (!value || strlen(value) < 6) return;
    pthread_mutex_lock(&logger.mu);
    int known = 0;
    for (size_t i = 0; i < logger.nsecrets; i++)
        if (strcmp(logger.secrets[i], value) == 0) known = 1;
    if (!known && logger.nsecrets < MAX_SECRETS) {
        char *copy = strdup(value);
        if (copy) logger.secrets[logger.nsecrets++] = copy;
    }
    pthread_mutex_unlock(&logger.mu);
}

/* Token shapes hidden even when nobody registered them. */
static const char *const token_prefixes[] = {"xoxb-",   "xoxp-", "xoxa-",  "xapp-",
                                             "sk-ant-", "sk-",   "sgamp_", "Bearer "};

static int token_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* Length of a token starting at p, or 0 when p does not start one. */
static size_t token_at(const char *p, const char *start)
{
    if (p > start && token_char((unsigned char)p[-1])) return 0; /* mid-word */
    for (size_t i = 0; i < JB_ARRAY_LEN(token_prefixes); i++) {
        size_t pl = strlen(token_prefixes[i]);
        if (strncmp(p, token_prefixes[i], pl) != 0) continue;
        size_t n = pl;
        while (token_char((unsigned char)p[n]))
            n++;
        if (n - pl >= 8) return n; /* short tails are ordinary words ("sk-learn") */
    }
    return 0;
}

char *jb_redact(const char *s)
{
    static const char mask[] = "[redacted]";
    struct jb_buf b = JB_BUF_INIT(SIZE_MAX / 2);
    pthread_mutex_lock(&logger.mu);
    const char *p = s;
    while (*p) {
        /* The longest match: with secrets "abcdef" and "abcdefghij", hiding only the
         * first would print the other's tail. */
        size_t skip = 0;
        for (size_t i = 0; i < logger.nsecrets; i++) {
            size_t l = strlen(logger.secrets[i]);
            if (l > skip && strncmp(p, logger.secrets[i], l) == 0) skip = l;
        }
        if (!skip) skip = token_at(p, s);
        int rc =
            skip ? jb_buf_append(&b, mask, sizeof mask - 1, NULL) : jb_buf_append(&b, p, 1, NULL);
        if (rc < 0) {
            pthread_mutex_unlock(&logger.mu);
            jb_buf_release(&b);
            return NULL;
        }
        p += skip ? skip : 1;
    }
    pthread_mutex_unlock(&logger.mu);
    return jb_buf_detach(&b, NULL);
}

void jb_log(enum jb_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < __atomic_load_n(&logger.min, __ATOMIC_RELAXED) || lvl > JB_LOG_ERROR) return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    jb_strip_controls(line); /* first: redaction must see the text as it will be printed */
    jb_autofree char *clean = jb_redact(line);
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
    pthread_mutex_lock(&logger.mu);
    FILE *out = logger.out ? logger.out : stderr;
    fprintf(out, "%s janebot %s: %s\n", ts, names[lvl], clean ? clean : "(log line lost)");
    fflush(out);
    pthread_mutex_unlock(&logger.mu);
}

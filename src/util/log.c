/* util/log.c -- the process-wide logger, in text or JSON lines. Every field of a line
 * passes through jb_strip_controls() and then jb_redact(), so neither a terminal escape from
 * outside (an agent's output, a peer's error text) nor a secret registered with jb_log_add_secret()
 * (or shaped like a known token) reaches the log, whoever formats it. */
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
    enum jb_log_format format;
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

int jb_log_format_parse(const char *s, enum jb_log_format *ret)
{
    if (strcasecmp(s, "text") == 0) return *ret = JB_LOG_TEXT, 0;
    if (strcasecmp(s, "json") == 0) return *ret = JB_LOG_JSON, 0;
    return -1;
}

void jb_log_set_format(enum jb_log_format f)
{
    __atomic_store_n(&logger.format, f, __ATOMIC_RELAXED);
}

/* Per thread: the turn a worker runs. Copies, so no caller's lifetime matters. */
static _Thread_local struct {
    char thread[160], user[64];
    int64_t turn;
} log_ctx;

void jb_log_ctx_set(const char *thread, const char *user)
{
    snprintf(log_ctx.thread, sizeof log_ctx.thread, "%s", thread ? thread : "");
    snprintf(log_ctx.user, sizeof log_ctx.user, "%s", user ? user : "");
    log_ctx.turn = 0;
}

void jb_log_ctx_turn(int64_t turn_id)
{
    log_ctx.turn = turn_id;
}

void jb_log_ctx_clear(void)
{
    log_ctx.thread[0] = log_ctx.user[0] = '\0';
    log_ctx.turn = 0;
}

int jb_json_escape(struct jb_buf *b, const char *s)
{
    const char *run = s; /* bytes copied as they are */
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        if (jb_buf_append(b, run, (size_t)(p - run), NULL) < 0) return -1;
        if (!c) return 0;
        int rc;
        if (c == '"' || c == '\\')
            rc = jb_buf_appendf(b, NULL, "\\%c", c);
        else if (c == '\n')
            rc = jb_buf_append(b, "\\n", 2, NULL);
        else if (c == '\t')
            rc = jb_buf_append(b, "\\t", 2, NULL);
        else
            rc = jb_buf_appendf(b, NULL, "\\u%04x", c);
        if (rc < 0) return -1;
        run = p + 1;
    }
}

/* A field as the log shows it: controls stripped, then secrets redacted. Caller frees;
 * NULL when out of memory. */
static char *log_clean(const char *s)
{
    jb_autofree char *plain = jb_strip_controls_dup(s);
    return plain ? jb_redact(plain) : NULL;
}

/* The event of a plain line: its module when it starts with one ("slack: …"), else "log". */
static void default_event(const char *msg, char *out, size_t n)
{
    size_t i = 0;
    while (i < 16 && (islower((unsigned char)msg[i]) || msg[i] == '-' || msg[i] == '_'))
        i++;
    if (i >= 2 && msg[i] == ':' && msg[i + 1] == ' ')
        snprintf(out, n, "%.*s", (int)i, msg);
    else
        snprintf(out, n, "log");
}

static int json_field(struct jb_buf *b, const char *name, const char *raw)
{
    jb_autofree char *clean = log_clean(raw);
    if (!clean || jb_buf_appendf(b, NULL, ",\"%s\":\"", name) < 0 || jb_json_escape(b, clean) < 0)
        return -1;
    return jb_buf_append(b, "\"", 1, NULL);
}

/* One JSON object (without the newline) into b. */
static int json_line(struct jb_buf *b, const char *level, const char *event, int64_t duration_ms,
                     const char *msg)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", gmtime_r(&now.tv_sec, &tm));
    if (jb_buf_appendf(b, NULL, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", ts,
                       now.tv_nsec / 1000000, level) < 0 ||
        json_field(b, "event", event) < 0 || json_field(b, "msg", msg) < 0 ||
        (log_ctx.thread[0] && json_field(b, "thread", log_ctx.thread) < 0) ||
        (log_ctx.user[0] && json_field(b, "user", log_ctx.user) < 0) ||
        (log_ctx.turn && jb_buf_appendf(b, NULL, ",\"turn\":%lld", (long long)log_ctx.turn) < 0) ||
        (duration_ms >= 0 &&
         jb_buf_appendf(b, NULL, ",\"duration_ms\":%lld", (long long)duration_ms) < 0))
        return -1;
    return jb_buf_append(b, "}", 1, NULL);
}

static void text_line(struct jb_buf *b, const char *level, const char *msg)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
    jb_autofree char *clean = log_clean(msg);
    jb_buf_appendf(b, NULL, "%s janebot %s: %s", ts, level, clean ? clean : "(log line lost)");
}

static void log_emit(enum jb_log_level lvl, const char *event, int64_t duration_ms, const char *fmt,
                     va_list ap)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < __atomic_load_n(&logger.min, __ATOMIC_RELAXED) || lvl > JB_LOG_ERROR) return;
    char msg[4096], dflt[24] = "log";
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct jb_buf b = JB_BUF_INIT(64u << 10);
    if (__atomic_load_n(&logger.format, __ATOMIC_RELAXED) == JB_LOG_JSON) {
        if (!event) default_event(msg, dflt, sizeof dflt);
        if (json_line(&b, names[lvl], event ? event : dflt, duration_ms, msg) < 0) {
            jb_buf_reset(&b);
            jb_buf_appendf(&b, NULL,
                           "{\"level\":\"%s\",\"event\":\"log\",\"msg\":\"(log line "
                           "lost)\"}",
                           names[lvl]);
        }
    } else {
        text_line(&b, names[lvl], msg);
    }
    pthread_mutex_lock(&logger.mu);
    FILE *out = logger.out ? logger.out : stderr;
    fprintf(out, "%s\n", b.data);
    fflush(out);
    pthread_mutex_unlock(&logger.mu);
    jb_buf_release(&b);
}

void jb_log(enum jb_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, NULL, -1, fmt, ap);
    va_end(ap);
}

void jb_log_event(enum jb_log_level lvl, const char *event, int64_t duration_ms, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, event, duration_ms, fmt, ap);
    va_end(ap);
}

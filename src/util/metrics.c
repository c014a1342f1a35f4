/* util/metrics.c -- the metrics registry and its Prometheus text rendering (format 0.0.4).
 *
 * Families are a fixed table (names, help, type, label names, buckets). Each family holds
 * up to METRICS_SERIES label combinations; values are atomics, so a hook costs one lookup
 * under the registry's mutex and one atomic add. Past the cap a family's new label values
 * all count under "other": a label is never allowed to grow without bound. */
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "util/util.h"

#define METRICS_SERIES   48
#define METRICS_LABEL    48 /* bytes of a label value, NUL included; longer ones are cut */
#define METRICS_BUCKETS  12
#define METRICS_SCRAPERS 4

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct family {
    const char *name, *help;
    enum kind kind;
    const char *label[2]; /* names, NULL when unused */
    const double *bounds; /* histograms: upper bounds in seconds, increasing */
    size_t nbounds;
};

static const double turn_bounds[] = {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
static const double ack_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,   0.25,   0.5,   1,    2.5,   5};

static const struct family families[JB_M_COUNT] = {
    [JB_M_EVENTS_RECEIVED] = {"janebot_events_received_total",
                              "Socket Mode envelopes received, by type.",
                              COUNTER,
                              {"type"}},
    [JB_M_EVENTS_ACKED] = {"janebot_events_acked_total",
                           "Socket Mode envelopes acknowledged, by type.",
                           COUNTER,
                           {"type"}},
    [JB_M_EVENTS_DEDUPED] = {"janebot_events_deduped_total",
                             "Slack events dropped as seen before (redeliveries, twins of a post).",
                             COUNTER},
    [JB_M_TURNS] = {"janebot_turns_total", "Turns finished, by outcome.", COUNTER, {"outcome"}},
    [JB_M_TURN_SECONDS] = {"janebot_turn_duration_seconds",
                           "Time from a turn's start to its answer or failure.",
                           HISTOGRAM,
                           {NULL},
                           turn_bounds,
                           JB_ARRAY_LEN(turn_bounds)},
    [JB_M_ACK_SECONDS] = {"janebot_socket_ack_seconds",
                          "Time from reading a Socket Mode envelope to sending its ack.",
                          HISTOGRAM,
                          {NULL},
                          ack_bounds,
                          JB_ARRAY_LEN(ack_bounds)},
    [JB_M_QUEUE_MESSAGES] = {"janebot_queue_messages",
                             "Accepted messages waiting for or in a turn.", GAUGE},
    [JB_M_QUEUE_LANES] = {"janebot_queue_threads",
                          "Threads whose next turn waits for a free worker.", GAUGE},
    [JB_M_TURNS_RUNNING] = {"janebot_turns_running", "Turns running now.", GAUGE},
    [JB_M_SANDBOXES] = {"janebot_sandboxes",
                        "Sandboxes by backend and state (busy: a turn runs in it).",
                        GAUGE,
                        {"backend", "state"}},
    [JB_M_PROXY_REQUESTS] = {"janebot_proxy_requests_total",
                             "Requests through the egress and LLM proxies, by verdict.",
                             COUNTER,
                             {"proxy", "verdict"}},
    [JB_M_PROXY_BYTES] = {"janebot_proxy_bytes_total",
                          "Bytes through the egress and LLM proxies, by direction.",
                          COUNTER,
                          {"proxy", "direction"}},
    [JB_M_LLM_TOKENS] = {"janebot_llm_tokens_total",
                         "LLM tokens used through the LLM proxy.",
                         COUNTER,
                         {"kind"}},
    [JB_M_SLACK_CALLS] = {"janebot_slack_api_calls_total",
                          "Slack Web API requests sent, by method.",
                          COUNTER,
                          {"method"}},
    [JB_M_SLACK_RETRIES] = {"janebot_slack_api_retries_total",
                            "Slack Web API requests repeated after 429, 5xx or network errors.",
                            COUNTER,
                            {"method"}},
    [JB_M_SLACK_ERRORS] = {"janebot_slack_api_errors_total",
                           "Slack Web API calls that failed, by method and kind.",
                           COUNTER,
                           {"method", "kind"}},
    [JB_M_SOCKET_CONNECTED] = {"janebot_socket_connected",
                               "1 while a Socket Mode connection is open.", GAUGE},
    [JB_M_SOCKET_CONNECTS] = {"janebot_socket_connects_total",
                              "Socket Mode connections opened (reconnects included).", COUNTER},
    [JB_M_SPRITES_ERRORS] = {"janebot_sprites_api_errors_total",
                             "Sprites API requests that failed, by kind.",
                             COUNTER,
                             {"kind"}},
};

struct series {
    char label[2][METRICS_LABEL];
    atomic_int_least64_t value;                        /* counters and gauges */
    atomic_uint_least64_t bucket[METRICS_BUCKETS + 1]; /* histograms, not cumulative */
    atomic_uint_least64_t sum_us;
};

struct scraper {
    void (*fn)(void *ud, struct jb_metrics *m);
    void *ud;
};

struct jb_metrics {
    pthread_mutex_t mu;        /* series lookup and creation */
    pthread_mutex_t scrape_mu; /* the scrapers, and one render at a time */
    char version[64];
    atomic_size_t n[JB_M_COUNT];
    struct series s[JB_M_COUNT][METRICS_SERIES];
    struct scraper scrapers[METRICS_SCRAPERS];
};

int jb_metrics_new(const char *version, struct jb_metrics **ret, struct jb_err *err)
{
    struct jb_metrics *m = calloc(1, sizeof *m);
    if (!m) return jb_err_set(err, JB_ENOMEM, "metrics registry");
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->scrape_mu, NULL);
    snprintf(m->version, sizeof m->version, "%s", version ? version : "");
    *ret = m;
    return 0;
}

void jb_metrics_free(struct jb_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->scrape_mu);
    free(m);
}

static void label_copy(char dst[METRICS_LABEL], const char *v)
{
    snprintf(dst, METRICS_LABEL, "%s", v ? v : "");
}

/* The series of family id with labels (l1, l2), made on first use; the shared "other"
 * series once the family is full. Never NULL. A series that exists is found without the
 * lock (series are only appended, each published by the atomic store of n after its labels
 * are written), so counting on a hot path (the Slack ack) never waits for another thread;
 * only making a new one locks. */
static struct series *series_get(struct jb_metrics *m, enum jb_metric id, const char *l1,
                                 const char *l2)
{
    char want[2][METRICS_LABEL];
    label_copy(want[0], families[id].label[0] ? l1 : NULL);
    label_copy(want[1], families[id].label[1] ? l2 : NULL);
    size_t seen = atomic_load(&m->n[id]);
    for (size_t i = 0; i < seen; i++)
        if (!strcmp(m->s[id][i].label[0], want[0]) && !strcmp(m->s[id][i].label[1], want[1]))
            return &m->s[id][i];
    pthread_mutex_lock(&m->mu);
    size_t n = atomic_load(&m->n[id]);
    struct series *found = NULL;
    for (size_t i = 0; i < n && !found; i++)
        if (!strcmp(m->s[id][i].label[0], want[0]) && !strcmp(m->s[id][i].label[1], want[1]))
            found = &m->s[id][i];
    if (!found && n >= METRICS_SERIES - 1) { /* the last slot is "other" */
        label_copy(want[0], families[id].label[0] ? "other" : NULL);
        label_copy(want[1], families[id].label[1] ? "other" : NULL);
        for (size_t i = 0; i < n && !found; i++)
            if (!strcmp(m->s[id][i].label[0], want[0]) && !strcmp(m->s[id][i].label[1], want[1]))
                found = &m->s[id][i];
    }
    if (!found) {
        found = &m->s[id][n];
        memcpy(found->label, want, sizeof want);
        atomic_store(&m->n[id], n + 1);
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

void jb_metrics_add(struct jb_metrics *m, enum jb_metric id, const char *l1, const char *l2,
                    int64_t n)
{
    if (!m || id >= JB_M_COUNT || families[id].kind == HISTOGRAM) return;
    atomic_fetch_add(&series_get(m, id, l1, l2)->value, n);
}

void jb_metrics_set(struct jb_metrics *m, enum jb_metric id, const char *l1, const char *l2,
                    int64_t v)
{
    if (!m || id >= JB_M_COUNT || families[id].kind != GAUGE) return;
    atomic_store(&series_get(m, id, l1, l2)->value, v);
}

void jb_metrics_reset(struct jb_metrics *m, enum jb_metric id)
{
    if (!m || id >= JB_M_COUNT || families[id].kind != GAUGE) return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < atomic_load(&m->n[id]); i++)
        atomic_store(&m->s[id][i].value, 0);
    pthread_mutex_unlock(&m->mu);
}

void jb_metrics_observe(struct jb_metrics *m, enum jb_metric id, double seconds)
{
    if (!m || id >= JB_M_COUNT || families[id].kind != HISTOGRAM) return;
    const struct family *f = &families[id];
    if (!(seconds >= 0)) seconds = 0; /* NaN and negative (a clock step) count as 0 */
    size_t b = 0;
    while (b < f->nbounds && seconds > f->bounds[b])
        b++;
    struct series *s = series_get(m, id, NULL, NULL);
    atomic_fetch_add(&s->bucket[b], 1);
    atomic_fetch_add(&s->sum_us, (uint64_t)(seconds * 1e6 + 0.5));
}

int jb_metrics_on_scrape(struct jb_metrics *m, void (*fn)(void *ud, struct jb_metrics *m), void *ud)
{
    if (!m) return 0;
    pthread_mutex_lock(&m->scrape_mu);
    int rc = -1;
    for (size_t i = 0; i < METRICS_SCRAPERS && rc < 0; i++)
        if (!m->scrapers[i].fn) m->scrapers[i] = (struct scraper){fn, ud}, rc = 0;
    pthread_mutex_unlock(&m->scrape_mu);
    return rc;
}

void jb_metrics_off_scrape(struct jb_metrics *m, void *ud)
{
    if (!m) return;
    pthread_mutex_lock(&m->scrape_mu); /* waits for a scrape using it */
    for (size_t i = 0; i < METRICS_SCRAPERS; i++)
        if (m->scrapers[i].fn && m->scrapers[i].ud == ud) m->scrapers[i] = (struct scraper){0};
    pthread_mutex_unlock(&m->scrape_mu);
}

/* ---- rendering ---- */

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static int put_label_value(struct jb_buf *out, const char *v, struct jb_err *err)
{
    for (const char *p = v; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (jb_buf_append(out, esc ? esc : p, esc ? 2 : 1, err) < 0) return -1;
    }
    return 0;
}

/* {a="x",b="y"} (with an extra le="..." when le is set), or nothing without labels. */
static int put_labels(struct jb_buf *out, const struct family *f, const struct series *s,
                      const char *le, struct jb_err *err)
{
    int any = 0;
    for (size_t i = 0; i < 2; i++) {
        if (!f->label[i]) continue;
        if (jb_buf_appendf(out, err, "%s%s=\"", any++ ? "," : "{", f->label[i]) < 0 ||
            put_label_value(out, s->label[i], err) < 0 || jb_buf_append(out, "\"", 1, err) < 0)
            return -1;
    }
    if (le && jb_buf_appendf(out, err, "%sle=\"%s\"", any++ ? "," : "{", le) < 0) return -1;
    return any ? jb_buf_append(out, "}", 1, err) : 0;
}

static int put_histogram(struct jb_buf *out, const struct family *f, const struct series *s,
                         struct jb_err *err)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += atomic_load(&s->bucket[b]);
        if (b < f->nbounds)
            snprintf(le, sizeof le, "%g", f->bounds[b]);
        else
            snprintf(le, sizeof le, "+Inf");
        if (jb_buf_appendf(out, err, "%s_bucket", f->name) < 0 ||
            put_labels(out, f, s, le, err) < 0 ||
            jb_buf_appendf(out, err, " %" PRIu64 "\n", cum) < 0)
            return -1;
    }
    uint64_t us = atomic_load(&s->sum_us);
    if (jb_buf_appendf(out, err, "%s_sum", f->name) < 0 || put_labels(out, f, s, NULL, err) < 0 ||
        jb_buf_appendf(out, err, " %" PRIu64 ".%06" PRIu64 "\n", us / 1000000, us % 1000000) < 0 ||
        jb_buf_appendf(out, err, "%s_count", f->name) < 0 || put_labels(out, f, s, NULL, err) < 0 ||
        jb_buf_appendf(out, err, " %" PRIu64 "\n", cum) < 0)
        return -1;
    return 0;
}

static int put_family(struct jb_metrics *m, enum jb_metric id, struct jb_buf *out,
                      struct jb_err *err)
{
    const struct family *f = &families[id];
    /* A family without labels always has its one series, so it reads 0 from the start. */
    if (!f->label[0] && atomic_load(&m->n[id]) == 0) series_get(m, id, NULL, NULL);
    size_t n = atomic_load(&m->n[id]);
    if (n == 0) return 0;
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (jb_buf_appendf(out, err, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                       types[f->kind]) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct series *s = &m->s[id][i];
        if (f->kind == HISTOGRAM) {
            if (put_histogram(out, f, s, err) < 0) return -1;
        } else if (jb_buf_appendf(out, err, "%s", f->name) < 0 ||
                   put_labels(out, f, s, NULL, err) < 0 ||
                   jb_buf_appendf(out, err, " %" PRId64 "\n", (int64_t)atomic_load(&s->value)) <
                       0) {
            return -1;
        }
    }
    return 0;
}

/* ---- the process, as an on-call engineer expects to see it ---- */

static long long proc_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long long size = 0, rss = -1;
    if (!f) return -1;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2) rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

static long long proc_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Seconds since the epoch at which the process started: its start in clock ticks after
 * boot (/proc/self/stat, field 22) plus the boot time (/proc/stat's btime). */
static double proc_start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    unsigned long long start = 0;
    /* after ")": state (3), then fields 4..21, then starttime (22) */
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                     "%*d %*d %*d %llu",
                     &start) != 1)
        return -1;
    long long btime = -1;
    f = fopen("/proc/stat", "re");
    if (!f) return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1) break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return btime < 0 || hz <= 0 ? -1 : (double)btime + (double)start / (double)hz;
}

static int put_process(const struct jb_metrics *m, struct jb_buf *out, struct jb_err *err)
{
    long long rss = proc_rss_bytes(), fds = proc_open_fds();
    double start = proc_start_time();
    if (rss >= 0 && jb_buf_appendf(out, err,
                                   "# HELP process_resident_memory_bytes Resident memory size in "
                                   "bytes.\n# TYPE process_resident_memory_bytes gauge\n"
                                   "process_resident_memory_bytes %lld\n",
                                   rss) < 0)
        return -1;
    if (fds >= 0 && jb_buf_appendf(out, err,
                                   "# HELP process_open_fds Number of open file descriptors.\n"
                                   "# TYPE process_open_fds gauge\nprocess_open_fds %lld\n",
                                   fds) < 0)
        return -1;
    if (start >= 0 && jb_buf_appendf(out, err,
                                     "# HELP process_start_time_seconds Start time of the process "
                                     "since unix epoch in seconds.\n# TYPE "
                                     "process_start_time_seconds gauge\n"
                                     "process_start_time_seconds %.2f\n",
                                     start) < 0)
        return -1;
    if (jb_buf_appendf(out, err,
                       "# HELP janebot_build_info The running janebot's version (always 1).\n"
                       "# TYPE janebot_build_info gauge\njanebot_build_info{version=\"") < 0 ||
        put_label_value(out, m->version, err) < 0 || jb_buf_appendf(out, err, "\"} 1\n") < 0)
        return -1;
    return 0;
}

int jb_metrics_render(struct jb_metrics *m, struct jb_buf *out, struct jb_err *err)
{
    pthread_mutex_lock(&m->scrape_mu);
    for (size_t i = 0; i < METRICS_SCRAPERS; i++)
        if (m->scrapers[i].fn) m->scrapers[i].fn(m->scrapers[i].ud, m);
    int rc = 0;
    for (int id = 0; id < JB_M_COUNT && rc == 0; id++)
        rc = put_family(m, (enum jb_metric)id, out, err);
    if (rc == 0) rc = put_process(m, out, err);
    pthread_mutex_unlock(&m->scrape_mu);
    return rc;
}

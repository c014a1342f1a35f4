/* cmd/usage.c -- `janebot usage`: LLM tokens per user, thread and model as the proxy
 * counted them, with their cost by the configured prices; `--json` for machines. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/core.h"
#include "core/policy.h"
#include "store/store.h"

static const char *model_name(const char *m)
{
    return *m ? m : "(not named)";
}

/* "$0.1234", "no price", or "-" when no prices are set at all. */
static void cost_cell(const struct prices *ps, const char *model, const struct jb_tokens *t,
                      char *out, size_t n, double *sum)
{
    const struct price *p = prices_find(ps, model);
    if (!ps->n)
        snprintf(out, n, "-");
    else if (!p)
        snprintf(out, n, "no price");
    else {
        double usd = price_cost(p, t);
        *sum += usd;
        snprintf(out, n, "$%.4f", usd);
    }
}

static void print_row(const char *user, const char *thread, const char *model, int64_t requests,
                      const struct jb_tokens *t, const char *cost)
{
    printf("%-14s  %-28s  %-26s  %8lld  %10lld  %11lld  %10lld  %10lld  %11lld  %10s\n", user,
           thread, model, (long long)requests, (long long)t->input, (long long)t->cache_write,
           (long long)t->cache_read, (long long)t->output, (long long)jb_tokens_total(t), cost);
}

static void print_table(const struct prices *ps, const struct usage_row *v, size_t n)
{
    char cost[32];
    double sum = 0, ignored = 0;
    struct jb_tally by_model = {0};
    printf("%-14s  %-28s  %-26s  %8s  %10s  %11s  %10s  %10s  %11s  %10s\n", "USER", "THREAD KEY",
           "MODEL", "REQUESTS", "INPUT", "CACHE WRITE", "CACHE READ", "OUTPUT", "TOTAL", "COST");
    for (size_t i = 0; i < n; i++) {
        cost_cell(ps, v[i].model, &v[i].t, cost, sizeof cost, &ignored);
        print_row(v[i].user_id, v[i].thread_key, model_name(v[i].model), v[i].requests, &v[i].t,
                  cost);
        jb_tally_add(&by_model, v[i].model, &v[i].t, v[i].requests);
    }
    if (!n) return;
    printf("\nper model:\n");
    for (size_t i = 0; i < by_model.n; i++) {
        const struct jb_model_tokens *m = &by_model.m[i];
        cost_cell(ps, m->model, &m->t, cost, sizeof cost, &sum);
        print_row("", "", model_name(m->model), m->requests, &m->t, cost);
    }
    if (ps->n) printf("\ntotal cost: $%.4f\n", sum);
}

static int print_json(const struct prices *ps, const struct usage_row *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const struct price *p = prices_find(ps, v[i].model);
        const struct jb_tokens *t = &v[i].t;
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "user", v[i].user_id, "thread",
            v[i].thread_key, "model", v[i].model, "requests", (json_int_t)v[i].requests,
            "input_tokens", (json_int_t)t->input, "cache_write_tokens", (json_int_t)t->cache_write,
            "cache_read_tokens", (json_int_t)t->cache_read, "output_tokens", (json_int_t)t->output,
            "total_tokens", (json_int_t)jb_tokens_total(t), "cost_usd",
            p ? json_real(price_cost(p, t)) : json_null());
        if (!o || json_array_append_new(a, o) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    char *s = a ? json_dumps(a, JSON_INDENT(1)) : NULL;
    json_decref(a);
    if (!s) {
        fprintf(stderr, "janebot: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

int cmd_usage(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"since", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return cmd_usage_error(cmd, "unexpected argument %s", argv[optind]);
    const char *since = vals['s'];
    int y, m, d;
    char tail;
    if (since && (sscanf(since, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 ||
                  d < 1 || d > 31 || strlen(since) != 10))
        return cmd_usage_error(cmd, "--since %s: expected a date like 2026-11-01", since);
    struct jb_config cfg;
    struct store *st = NULL;
    if (cmd_open_store(&cfg, &st) < 0) return 1;
    struct usage_row *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    struct policy *pol = NULL;
    rc = policy_load(&cfg, &pol, &err) < 0 || store_usage_list(st, since, &v, &n, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else if (vals['j'])
        rc = print_json(&pol->prices, v, n);
    else
        print_table(&pol->prices, v, n);
    usage_rows_free(v, n);
    policy_unref(pol);
    store_close(st);
    config_release(&cfg);
    return rc;
}

/* core/prices.c -- what LLM tokens cost, per model: JANEBOT_PRICES (or the config file's
 * `prices:`), "MODEL=IN:OUT[:CACHE_WRITE:CACHE_READ],…" in USD per million tokens. A
 * MODEL ending in '*' covers every model that starts with the rest; an exact name wins,
 * then the longest prefix. Cache prices left out are the input price (never less than
 * what a provider bills for them). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/policy.h"

static int price_number(const char *s, const char *end, double *ret)
{
    char buf[32];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e = NULL;
    errno = 0;
    double v = strtod(buf, &e);
    if (errno || *e || !isfinite(v) || v < 0 || v > 1e6) return -1;
    *ret = v;
    return 0;
}

/* "IN:OUT[:CW:CR]" of s[0, n) into p. */
static int price_numbers(const char *s, size_t n, struct price *p)
{
    double v[4];
    size_t k = 0;
    const char *end = s + n;
    while (k < 4) {
        const char *colon = memchr(s, ':', (size_t)(end - s));
        const char *stop = colon ? colon : end;
        if (price_number(s, stop, &v[k++]) < 0) return -1;
        if (!colon) break;
        s = colon + 1;
        if (k == 4) return -1; /* a fifth number */
    }
    if (k != 2 && k != 4) return -1;
    p->in = v[0], p->out = v[1];
    p->cache_write = k == 4 ? v[2] : v[0];
    p->cache_read = k == 4 ? v[3] : v[0];
    return 0;
}

int price_parse_one(const char *model, size_t mlen, const char *nums, size_t nlen,
                    struct price *ret)
{
    *ret = (struct price){0};
    if (mlen == 0 || mlen >= sizeof ret->model) return -1;
    for (size_t i = 0; i < mlen; i++)
        if (model[i] <= ' ' || model[i] >= 0x7f || model[i] == ',' || model[i] == '=' ||
            (model[i] == '*' && i + 1 != mlen))
            return -1;
    memcpy(ret->model, model, mlen);
    if (model[mlen - 1] == '*') ret->prefix = 1, ret->model[mlen - 1] = '\0';
    return price_numbers(nums, nlen, ret);
}

int prices_add(struct prices *ps, const struct price *p)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].prefix == p->prefix && !strcmp(ps->v[i].model, p->model)) {
            ps->v[i] = *p; /* the later one wins */
            return 0;
        }
    struct price *nv = realloc(ps->v, (ps->n + 1) * sizeof *nv);
    if (!nv) return -1;
    ps->v = nv;
    ps->v[ps->n++] = *p;
    return 0;
}

int prices_parse(const char *spec, struct prices *ret, struct jb_err *err)
{
    struct prices ps = {0};
    for (const char *s = spec; s && *s;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        struct price p;
        if (!eq || price_parse_one(s, (size_t)(eq - s), eq + 1, n - (size_t)(eq - s) - 1, &p) < 0) {
            prices_release(&ps);
            return jb_err_set(err, JB_ECONFIG,
                              "JANEBOT_PRICES: \"%.*s\": expected MODEL=IN:OUT or "
                              "MODEL=IN:OUT:CACHE_WRITE:CACHE_READ (USD per million tokens; "
                              "MODEL may end in '*'), entries separated by ','",
                              (int)(n > 120 ? 120 : n), s);
        }
        if (prices_add(&ps, &p) < 0) {
            prices_release(&ps);
            return jb_err_set(err, JB_ENOMEM, "prices");
        }
        s = comma ? comma + 1 : s + n;
    }
    *ret = ps;
    return 0;
}

void prices_release(struct prices *ps)
{
    free(ps->v);
    *ps = (struct prices){0};
}

const struct price *prices_find(const struct prices *ps, const char *model)
{
    const struct price *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; model && i < ps->n; i++) {
        const struct price *p = &ps->v[i];
        size_t len = strlen(p->model);
        if (!p->prefix && !strcmp(p->model, model)) return p;
        if (p->prefix && !strncmp(p->model, model, len) && (!best || len > best_len))
            best = p, best_len = len;
    }
    return best;
}

double price_cost(const struct price *p, const struct jb_tokens *t)
{
    return ((double)t->input * p->in + (double)t->output * p->out +
            (double)t->cache_write * p->cache_write + (double)t->cache_read * p->cache_read) /
           1e6;
}

/* "11 in + 100 cache write + 1000 cache read / 7 out" */
static int tokens_text(struct jb_buf *b, const struct jb_tokens *t)
{
    return jb_buf_appendf(b, NULL, "%lld in", (long long)t->input) < 0 ||
                   (t->cache_write && jb_buf_appendf(b, NULL, " + %lld cache write",
                                                     (long long)t->cache_write) < 0) ||
                   (t->cache_read &&
                    jb_buf_appendf(b, NULL, " + %lld cache read", (long long)t->cache_read) < 0) ||
                   jb_buf_appendf(b, NULL, " / %lld out", (long long)t->output) < 0
               ? -1
               : 0;
}

/* ", $0.0012" or ", no price"; nothing when no prices are set at all. */
static int cost_text(struct jb_buf *b, const struct prices *ps, const struct jb_model_tokens *m,
                     double *sum, int *unpriced)
{
    if (!ps->n) return 0;
    const struct price *p = prices_find(ps, m->model);
    if (!p) {
        *unpriced = 1;
        return jb_buf_appendf(b, NULL, ", no price");
    }
    double usd = price_cost(p, &m->t);
    *sum += usd;
    return jb_buf_appendf(b, NULL, ", $%.4f", usd);
}

char *prices_usage_text(const struct prices *ps, const struct jb_tally *ty)
{
    struct jb_tokens all = jb_tally_sum(ty);
    if (!jb_tokens_total(&all)) return NULL;
    struct jb_buf b = JB_BUF_INIT(1 << 16), per = JB_BUF_INIT(1 << 16);
    double sum = 0;
    int unpriced = 0, bad = 0;
    for (size_t i = 0; i < ty->n && !bad; i++) {
        const struct jb_model_tokens *m = &ty->m[i];
        bad = jb_buf_appendf(&per, NULL, "%s%s: ", i ? "; " : "",
                             *m->model ? m->model : "(model not named)") < 0 ||
              tokens_text(&per, &m->t) < 0 || cost_text(&per, ps, m, &sum, &unpriced) < 0;
    }
    if (ty->n == 1) { /* one model: its line is the total */
        bad = bad || jb_buf_appendf(&b, NULL, "tokens: %s", per.data ? per.data : "") < 0;
    } else {
        bad = bad || jb_buf_appendf(&b, NULL, "tokens: ") < 0 || tokens_text(&b, &all) < 0;
        if (!bad && ps->n && sum > 0)
            bad = jb_buf_appendf(&b, NULL, " · $%.4f%s", sum,
                                 unpriced ? " + tokens with no price" : "") < 0;
        if (!bad) bad = jb_buf_appendf(&b, NULL, " (%s)", per.data ? per.data : "") < 0;
    }
    jb_buf_release(&per);
    char *s = bad ? NULL : jb_buf_detach(&b, NULL);
    jb_buf_release(&b);
    return s;
}

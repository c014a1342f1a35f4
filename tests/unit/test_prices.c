/* Prices per model (core/prices.c): the list, which entry a model gets, costs, and the
 * line a turn's answer ends with. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/policy.h"

static struct prices parse_ok(const char *spec)
{
    struct prices ps;
    struct jb_err err = {0};
    cr_assert_eq(prices_parse(spec, &ps, &err), 0, "%s: %s", spec, err.msg);
    return ps;
}

Test(prices, an_exact_name_wins_then_the_longest_prefix)
{
    struct prices ps =
        parse_ok("claude-*=1:2,claude-sonnet-4*=3:15:3.75:0.3,claude-sonnet-4-5=4:16");
    cr_expect_eq(prices_find(&ps, "claude-sonnet-4-5")->in, 4);
    cr_expect_eq(prices_find(&ps, "claude-sonnet-4-6")->in, 3);
    cr_expect_eq(prices_find(&ps, "claude-haiku")->in, 1);
    cr_expect_null(prices_find(&ps, "gpt-5"));
    const struct price *p = prices_find(&ps, "claude-sonnet-4-6");
    struct jb_tokens t = {.input = 11, .cache_write = 100, .cache_read = 1000, .output = 7};
    double want = (11 * 3 + 100 * 3.75 + 1000 * 0.3 + 7 * 15) / 1e6;
    cr_expect(price_cost(p, &t) > want - 1e-12 && price_cost(p, &t) < want + 1e-12);
    /* Cache prices left out are the input price. */
    p = prices_find(&ps, "claude-haiku");
    cr_expect(p->cache_write == 1 && p->cache_read == 1);
    prices_release(&ps);
}

Test(prices, a_bad_list_names_the_entry)
{
    static const char *const bad[] = {"m",     "m=1",    "m=1:2:3", "m=1:2:3:4:5",  "=1:2",
                                      "m=x:2", "m=-1:2", "a*b=1:2", "m=1:2,,n=1:2", "m=1e400:2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct prices ps = {0};
        struct jb_err err = {0};
        cr_expect_eq(prices_parse(bad[i], &ps, &err), -1, "%s was taken", bad[i]);
        cr_expect_eq(err.code, JB_ECONFIG);
        cr_expect(strstr(err.msg, "JANEBOT_PRICES") && strstr(err.msg, "MODEL=IN:OUT"), "%s",
                  err.msg);
    }
}

Test(prices, the_footer_shows_each_model_and_says_no_price)
{
    struct prices ps = parse_ok("claude-x=3:15:3.75:0.3");
    struct jb_tally ty = {0};
    struct jb_tokens a = {.input = 11, .cache_write = 100, .cache_read = 1000, .output = 7};
    jb_tally_add(&ty, "claude-x", &a, 1);
    char *s = prices_usage_text(&ps, &ty);
    cr_expect_str_eq(s, "tokens: claude-x: 11 in + 100 cache write + 1000 cache read / 7 out, "
                        "$0.0008");
    free(s);
    struct jb_tokens b = {.input = 5, .output = 2};
    jb_tally_add(&ty, "other", &b, 1);
    s = prices_usage_text(&ps, &ty);
    cr_expect_str_eq(s, "tokens: 16 in + 100 cache write + 1000 cache read / 9 out · $0.0008 + "
                        "tokens with no price (claude-x: 11 in + 100 cache write + 1000 cache "
                        "read / 7 out, $0.0008; other: 5 in / 2 out, no price)");
    free(s);
    struct prices none = {0};
    s = prices_usage_text(&none, &ty);
    cr_expect(s && !strchr(s, '$') && !strstr(s, "no price"), "%s", s);
    free(s);
    struct jb_tally empty = {0};
    cr_expect_null(prices_usage_text(&ps, &empty));
    prices_release(&ps);
}

Test(prices, a_tally_keeps_eight_models_and_adds_up_the_rest)
{
    struct jb_tally ty = {0};
    struct jb_tokens one = {.input = 1};
    char name[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "m%d", i);
        jb_tally_add(&ty, name, &one, 1);
    }
    cr_expect_eq(ty.n, JB_TALLY_MAX);
    cr_expect_eq(jb_tally_sum(&ty).input, 12);
    cr_expect_str_eq(ty.m[JB_TALLY_MAX - 1].model, "(other models)");
}

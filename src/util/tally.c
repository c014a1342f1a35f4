/* util/tally.c -- LLM token counts, per model, as the proxy counts them and a turn adds
 * them up. Fixed size: a tally is a value, copied into results without ownership. */
#include <string.h>

#include "util/util.h"

int64_t jb_tokens_total(const struct jb_tokens *t)
{
    return t->input + t->cache_write + t->cache_read + t->output;
}

void jb_tokens_add(struct jb_tokens *into, const struct jb_tokens *t)
{
    into->input += t->input, into->cache_write += t->cache_write;
    into->cache_read += t->cache_read, into->output += t->output;
}

static const char other_models[] = "(other models)";

void jb_tally_add(struct jb_tally *ty, const char *model, const struct jb_tokens *t,
                  int64_t requests)
{
    char name[JB_MODEL_MAX];
    snprintf(name, sizeof name, "%s", model ? model : "");
    size_t i = 0;
    while (i < ty->n && strcmp(ty->m[i].model, name))
        i++;
    if (i == ty->n && ty->n == JB_TALLY_MAX) { /* full: the last entry takes the rest */
        i = JB_TALLY_MAX - 1;
        snprintf(ty->m[i].model, sizeof ty->m[i].model, "%s", other_models);
    } else if (i == ty->n) {
        ty->n++;
        ty->m[i] = (struct jb_model_tokens){0};
        memcpy(ty->m[i].model, name, sizeof name);
    }
    jb_tokens_add(&ty->m[i].t, t);
    ty->m[i].requests += requests;
}

void jb_tally_merge(struct jb_tally *into, const struct jb_tally *from)
{
    for (size_t i = 0; i < from->n; i++)
        jb_tally_add(into, from->m[i].model, &from->m[i].t, from->m[i].requests);
}

struct jb_tokens jb_tally_sum(const struct jb_tally *ty)
{
    struct jb_tokens sum = {0};
    for (size_t i = 0; i < ty->n; i++)
        jb_tokens_add(&sum, &ty->m[i].t);
    return sum;
}

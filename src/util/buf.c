/* util/buf.c -- growable byte buffers with a ceiling, and string vectors. */
#include <string.h>

#include "util.h"

char jb_buf_empty[1];

int jb_buf_append(struct jb_buf *b, const void *p, size_t n, struct jb_err *err)
{
    if (n > b->max - b->len) return jb_err_set(err, JB_EPROTO, "more than %zu bytes", b->max);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->cap ? b->data : NULL, cap);
        if (!d) return jb_err_set(err, JB_ENOMEM, "buffer of %zu bytes", cap);
        if (!b->cap) d[0] = '\0';
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n); /* p may be NULL when n is 0 */
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int jb_buf_appendf(struct jb_buf *b, struct jb_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) return jb_err_set(err, JB_ENOMEM, "formatting");
    int rc = jb_buf_append(b, s, (size_t)n, err);
    free(s);
    return rc;
}

void jb_buf_reset(struct jb_buf *b)
{
    b->len = 0;
    if (b->cap) b->data[0] = '\0'; /* jb_buf_empty is shared by all threads: never write it */
}

void jb_buf_release(struct jb_buf *b)
{
    if (b->cap) free(b->data);
    b->data = jb_buf_empty;
    b->len = b->cap = 0;
}

char *jb_buf_detach(struct jb_buf *b, size_t *len_out)
{
    char *d = b->cap ? b->data : strdup("");
    if (len_out) *len_out = b->len;
    b->data = jb_buf_empty;
    b->len = b->cap = 0;
    return d;
}

/* ---- string vectors ---- */

static int strv_take(struct jb_strv *s, char *str, struct jb_err *err)
{
    if (!str) return jb_err_set(err, JB_ENOMEM, "string vector");
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            free(str);
            return jb_err_set(err, JB_ENOMEM, "string vector");
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
    return 0;
}

int jb_strv_push(struct jb_strv *s, const char *str, struct jb_err *err)
{
    return strv_take(s, strdup(str), err);
}

int jb_strv_pushf(struct jb_strv *s, struct jb_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *str = NULL;
    if (vasprintf(&str, fmt, ap) < 0) str = NULL;
    va_end(ap);
    return strv_take(s, str, err);
}

int jb_strv_pushv(struct jb_strv *s, const char *const *strs, struct jb_err *err)
{
    for (; strs && *strs; strs++)
        if (jb_strv_push(s, *strs, err) < 0) return -1;
    return 0;
}

void jb_strv_free(struct jb_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (struct jb_strv)JB_STRV_INIT;
}

static ssize_t env_find(const struct jb_strv *env, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->v[i], name, nl) == 0 && env->v[i][nl] == '=') return (ssize_t)i;
    return -1;
}

int jb_env_set(struct jb_strv *env, const char *name, const char *value, struct jb_err *err)
{
    char *kv = NULL;
    if (asprintf(&kv, "%s=%s", name, value) < 0) return jb_err_set(err, JB_ENOMEM, "env");
    ssize_t i = env_find(env, name);
    if (i < 0) return strv_take(env, kv, err);
    free(env->v[i]);
    env->v[i] = kv;
    return 0;
}

const char *jb_env_get(const struct jb_strv *env, const char *name)
{
    ssize_t i = env_find(env, name);
    return i < 0 ? NULL : env->v[i] + strlen(name) + 1;
}

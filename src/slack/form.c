/* slack/form.c -- the body of a Web API call: JSON, or application/x-www-form-urlencoded for
 * the methods that want a form (objects and arrays then go as JSON text in their field,
 * as Slack's docs say). */
#include <string.h>

#include "slack.h"

#define BODY_MAX ((size_t)32 << 20)

/* Text of one form value (caller frees): strings as they are, arrays and objects as JSON. */
static char *form_value(const json_t *v)
{
    char *s = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? NULL : s;
    case JSON_REAL:
        return asprintf(&s, "%.17g", json_real_value(v)) < 0 ? NULL : s;
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    default:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

static int form_append(struct jb_buf *b, const char *s, size_t n, struct jb_err *err)
{
    jb_autofree char *e = jb_url_escape(s, n);
    if (!e) return jb_err_set(err, JB_ENOMEM, "form encoding");
    return jb_buf_append(b, e, strlen(e), err);
}

/* args as key=value&…, null values left out; caller frees. */
static char *form_encode(const json_t *args, struct jb_err *err)
{
    struct jb_buf b = JB_BUF_INIT(BODY_MAX);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)args, k, v)
    {
        if (json_is_null(v)) continue;
        jb_autofree char *s = form_value(v);
        if (!s) return jb_buf_release(&b), jb_err_set(err, JB_ENOMEM, "form encoding"), NULL;
        if ((b.len && jb_buf_append(&b, "&", 1, err) < 0) ||
            form_append(&b, k, strlen(k), err) < 0 || jb_buf_append(&b, "=", 1, err) < 0 ||
            form_append(&b, s, strlen(s), err) < 0)
            return jb_buf_release(&b), NULL;
    }
    char *out = jb_buf_detach(&b, NULL);
    if (!out) jb_err_set(err, JB_ENOMEM, "form encoding");
    return out;
}

char *slack_request_body(const json_t *args, unsigned flags, struct jb_err *err)
{
    if (args && !json_is_object(args))
        return jb_err_set(err, JB_EPROTO, "arguments must be a JSON object"), NULL;
    if (args && (flags & SLACK_CALL_FORM)) return form_encode(args, err);
    char *s =
        !args ? strdup((flags & SLACK_CALL_FORM) ? "" : "{}") : json_dumps(args, JSON_COMPACT);
    if (!s) jb_err_set(err, JB_ENOMEM, "encoding the arguments");
    return s;
}

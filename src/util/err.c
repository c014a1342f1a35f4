/* util/err.c -- struct jb_err: a code for the program, a message for people. */
#include <errno.h>
#include <string.h>

#include "util.h"

const char *jb_strerror(enum jb_code c)
{
    switch (c) {
    case JB_OK:
        return "ok";
    case JB_ENOMEM:
        return "out of memory";
    case JB_ESYS:
        return "system error";
    case JB_EPROTO:
        return "bad input";
    case JB_ETIMEOUT:
        return "timed out";
    case JB_EDENIED:
        return "denied";
    case JB_ECONFIG:
        return "bad configuration";
    case JB_ENOTFOUND:
        return "not found";
    case JB_ECANCEL:
        return "cancelled";
    case JB_EUNAVAIL:
        return "unavailable";
    case JB_EBUSY:
        return "busy";
    }
    return "unknown error";
}

/* Formats through a copy: callers may pass err->msg itself as an argument. */
static void err_vset(struct jb_err *err, enum jb_code c, const char *fmt, va_list ap)
{
    char msg[sizeof err->msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    err->code = c;
    memcpy(err->msg, msg, sizeof msg);
}

int jb_err_set(struct jb_err *err, enum jb_code c, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, c, fmt, ap);
    va_end(ap);
    err->sys_errno = 0;
    return -1;
}

int jb_err_sys(struct jb_err *err, const char *fmt, ...)
{
    int saved = errno;
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, JB_ESYS, fmt, ap);
    va_end(ap);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(saved));
    err->sys_errno = saved;
    errno = saved;
    return -1;
}

int jb_err_prefix(struct jb_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    char prefix[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap); /* args may point into err->msg */
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    memcpy(err->msg, prefix, sizeof prefix);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, ": %s", old);
    return -1;
}

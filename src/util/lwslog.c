/* util/lwslog.c -- libwebsockets' own log lines go through janebot's logger (and so its
 * redaction): errors as warnings, the rest at debug. lws keeps one log setting for the
 * whole process, so the Slack socket and the Sprites exec client share this. */
#include <libwebsockets.h>
#include <pthread.h>
#include <string.h>

#include "util/util.h"

static void lws_log_emit(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (level & LLL_ERR)
        log_warn("websocket: %s", msg);
    else
        log_debug("websocket: %s", msg);
}

static pthread_once_t lws_log_once = PTHREAD_ONCE_INIT;

static void lws_log_setup(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
}

void jb_lws_log_init(void)
{
    pthread_once(&lws_log_once, lws_log_setup);
}

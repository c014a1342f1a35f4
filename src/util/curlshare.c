/* util/curlshare.c -- a libcurl share handle for connections, DNS and TLS sessions,
 * usable from many threads at once (one mutex per kind of shared data). Reusing
 * connections saves a TCP (and TLS) handshake per request. */
#include <curl/curl.h>
#include <pthread.h>

#include "util/util.h"

struct jb_curl_share {
    CURLSH *sh;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void lock(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
    (void)c, (void)a; /* exclusive either way */
    pthread_mutex_lock(&((struct jb_curl_share *)u)->locks[d]);
}

static void unlock(CURL *c, curl_lock_data d, void *u)
{
    (void)c;
    pthread_mutex_unlock(&((struct jb_curl_share *)u)->locks[d]);
}

struct jb_curl_share *jb_curl_share_new(struct jb_err *err)
{
    struct jb_curl_share *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "curl share"), NULL;
    for (size_t i = 0; i < JB_ARRAY_LEN(s->locks); i++)
        pthread_mutex_init(&s->locks[i], NULL);
    CURLSHcode rc = (s->sh = curl_share_init()) ? CURLSHE_OK : CURLSHE_NOMEM;
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, lock);
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, unlock);
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (!rc) rc = curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (rc) {
        jb_err_set(err, JB_EUNAVAIL, "curl share: %s", curl_share_strerror(rc));
        jb_curl_share_free(s);
        return NULL;
    }
    return s;
}

void *jb_curl_share_handle(struct jb_curl_share *s)
{
    return s ? s->sh : NULL;
}

void jb_curl_share_free(struct jb_curl_share *s)
{
    if (!s) return;
    if (s->sh) curl_share_cleanup(s->sh);
    for (size_t i = 0; i < JB_ARRAY_LEN(s->locks); i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s);
}

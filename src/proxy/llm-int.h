/* proxy/llm-int.h -- private to the LLM proxy (llm.c, llm-fwd.c). */
#ifndef JB_LLM_INT_H
#define JB_LLM_INT_H

#include <pthread.h>

#include "proxy/proxy-int.h"

struct store;

struct llm_proxy {
    struct llm_config cfg;       /* strings owned */
    struct store *st;            /* tokens and usage; guarded by st_mu */
    struct jb_curl_share *share; /* upstream connections kept alive across requests */
    pthread_mutex_t st_mu;
};

#define LLM_MAX_HEADERS 100

/* One parsed request from a sandbox. Pointers into the request buffer. */
struct llm_request {
    enum llm_provider provider;
    char method[16];
    char path[4096];                /* upstream path with query, e.g. "/v1/messages?beta=true" */
    char *headers[LLM_MAX_HEADERS]; /* "Name: value" lines, NUL-terminated, no CRLF */
    size_t nheaders;
    const char *body;
    size_t body_len;
};

struct llm_usage {
    int64_t input, output;
    long status;
};

/* Forward rq to the provider's upstream with the real key and stream the answer to fd.
 * -1 (nothing sent to fd yet) when the upstream could not be reached. */
int llm_forward(const struct llm_proxy *px, const struct llm_request *rq, int fd,
                struct llm_usage *u, struct jb_err *err);

#endif

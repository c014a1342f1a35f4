/* sandbox/input.c -- a command's live stdin: bytes a caller adds while the command runs,
 * taken by the backend's exec loop (the local pipe, the Sprites websocket). One mutex
 * guards everything; the loop polls it on its own tick, so no wake-up is needed. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

struct sandbox_input {
    pthread_mutex_t mu;
    char *data; /* bytes added, not yet taken */
    size_t len, cap;
    uint64_t added, delivered; /* byte counts since the start */
    int closing;               /* no more bytes: stdin closes once data is delivered */
    int ended;                 /* the exec is over: nothing is taken any more */
};

int sandbox_input_new(struct sandbox_input **ret, struct jb_err *err)
{
    struct sandbox_input *in = calloc(1, sizeof *in);
    if (!in) return jb_err_set(err, JB_ENOMEM, "live stdin");
    pthread_mutex_init(&in->mu, NULL);
    *ret = in;
    return 0;
}

void sandbox_input_free(struct sandbox_input *in)
{
    if (!in) return;
    pthread_mutex_destroy(&in->mu);
    free(in->data);
    free(in);
}

int sandbox_input_write(struct sandbox_input *in, const char *data, size_t len, uint64_t *ret_end,
                        struct jb_err *err)
{
    pthread_mutex_lock(&in->mu);
    int rc = -1;
    if (in->closing || in->ended) {
        jb_err_set(err, JB_EUNAVAIL, "the command's stdin is closed");
    } else if (in->len + len > SANDBOX_INPUT_MAX) {
        jb_err_set(err, JB_EUNAVAIL, "the command is not reading its stdin");
    } else {
        if (in->len + len > in->cap) {
            size_t cap = in->cap ? in->cap : 4096;
            while (cap < in->len + len)
                cap *= 2;
            char *p = realloc(in->data, cap);
            if (!p) {
                pthread_mutex_unlock(&in->mu);
                return jb_err_set(err, JB_ENOMEM, "live stdin");
            }
            in->data = p, in->cap = cap;
        }
        memcpy(in->data + in->len, data, len);
        in->len += len;
        in->added += len;
        if (ret_end) *ret_end = in->added;
        rc = 0;
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}

void sandbox_input_close(struct sandbox_input *in)
{
    pthread_mutex_lock(&in->mu);
    in->closing = 1;
    pthread_mutex_unlock(&in->mu);
}

uint64_t sandbox_input_delivered(struct sandbox_input *in)
{
    pthread_mutex_lock(&in->mu);
    uint64_t n = in->delivered;
    pthread_mutex_unlock(&in->mu);
    return n;
}

/* Drop n taken bytes from the front; the caller holds mu. */
static void consumed(struct sandbox_input *in, size_t n)
{
    memmove(in->data, in->data + n, in->len - n);
    in->len -= n;
    in->delivered += n;
}

int sandbox_input_busy(struct sandbox_input *in)
{
    pthread_mutex_lock(&in->mu);
    int busy = in->len > 0 || in->closing;
    pthread_mutex_unlock(&in->mu);
    return busy;
}

int sandbox_input_to_fd(struct sandbox_input *in, int fd)
{
    pthread_mutex_lock(&in->mu);
    int rc = 0;
    if (in->len) {
        ssize_t w = write(fd, in->data, in->len);
        if (w > 0) consumed(in, (size_t)w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) rc = -1;
    }
    if (rc == 0 && in->closing && !in->len) rc = 1;
    pthread_mutex_unlock(&in->mu);
    return rc;
}

size_t sandbox_input_take(struct sandbox_input *in, char *buf, size_t max, int *ret_finished)
{
    pthread_mutex_lock(&in->mu);
    size_t n = in->len < max ? in->len : max;
    memcpy(buf, in->data, n);
    consumed(in, n);
    *ret_finished = in->closing && !in->len;
    pthread_mutex_unlock(&in->mu);
    return n;
}

void sandbox_input_end(struct sandbox_input *in)
{
    pthread_mutex_lock(&in->mu);
    in->ended = 1;
    pthread_mutex_unlock(&in->mu);
}

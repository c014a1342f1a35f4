/* sandbox/sprites-exec.c -- one command over the Sprites WebSocket exec protocol (non-TTY):
 * binary messages are <stream id><payload>: 0 stdin and 4 stdin EOF from us; 1 stdout,
 * 2 stderr and 3 exit (one byte; none means 0) from the sprite; JSON text messages are ignored
 * except
 * {"type":"exit","exit_code":N}. One lws context per exec, serviced by the calling thread;
 * a 50 ms tick checks the deadline and cancel flag, (passthrough) reads stdin and sends
 * what a live stdin (sandbox_exec.input) has for the command.
 * On a deadline or cancel: a {"type":"signal","signal":"SIGKILL"} message, then up to 2 s
 * for the exit frame, then the socket is closed (the sprite kills what outlives it after
 * max_run_after_disconnect). */
#include <jansson.h>
#include <libwebsockets.h>
#include <poll.h>
#include <string.h>

#include "sandbox/sprites-int.h"

#define TICK_US       (50 * LWS_US_PER_MS)
#define CHUNK         16384
#define TEXT_MAX      65536
#define KILL_GRACE_MS 2000

struct wsx {
    struct sprites *sp;
    struct sandbox_exec *x;
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t tick;
    size_t in_off;      /* of x->stdin_data sent */
    struct jb_buf pend; /* passthrough stdin read, not yet sent */
    int stdin_eof, eof_sent;
    int established, closed;
    struct sprites_rx rx; /* the messages read */
    int want_kill, kill_sent;
    int64_t kill_at;
    long http_status;
    char why[256];
    int64_t t0;
    int no_answer; /* not upgraded within sp->health_ms */
    int (*stop)(void *ud);
    void *stop_ud;
};

static void tail_add(struct sprites_rx *rx, const char *p, size_t n)
{
    char *t = rx->x->stderr_tail;
    size_t cap = sizeof rx->x->stderr_tail - 1;
    if (n >= cap) {
        memcpy(t, p + n - cap, cap);
        rx->tail_len = cap;
    } else {
        if (rx->tail_len + n > cap) {
            size_t drop = rx->tail_len + n - cap;
            memmove(t, t + drop, rx->tail_len - drop);
            rx->tail_len -= drop;
        }
        memcpy(t + rx->tail_len, p, n);
        rx->tail_len += n;
    }
    t[rx->tail_len] = '\0';
}

static void on_payload(struct sprites_rx *rx, const char *p, size_t n)
{
    if (rx->exit_pending && n) {
        rx->x->exit_code = (unsigned char)p[0];
        rx->got_exit = 1, rx->exit_pending = 0;
        return;
    }
    if (!n) return;
    if (rx->msg_id == 1) {
        if (rx->x->passthrough)
            jb_write_all(1, p, n); /* the caller's own stdout: nothing to do on error */
        else if (rx->x->on_stdout)
            rx->x->on_stdout(rx->x->ud, p, n);
    } else if (rx->msg_id == 2) {
        if (rx->x->passthrough)
            jb_write_all(2, p, n);
        else
            tail_add(rx, p, n);
    }
}

static void on_text(struct sprites_rx *rx)
{
    json_t *j = json_loadb(rx->text.data, rx->text.len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *code = json_object_get(j, "exit_code");
    if (type && !strcmp(type, "exit") && json_is_integer(code)) {
        rx->x->exit_code = (int)(json_integer_value(code) & 0xff);
        rx->got_exit = 1;
    }
    json_decref(j);
}

int sprites_rx_fragment(struct sprites_rx *rx, int binary, int final, const char *in, size_t len)
{
    if (!rx->msg_open) {
        rx->msg_open = 1;
        rx->msg_id = binary ? (len ? (unsigned char)in[0] : 0) : -1;
        if (rx->msg_id >= 0 && len) in++, len--;
        if (rx->msg_id == 3) rx->exit_pending = 1;
        jb_buf_reset(&rx->text);
    }
    if (rx->msg_id == -1) {
        if (jb_buf_append(&rx->text, in, len, NULL) < 0) jb_buf_reset(&rx->text);
    } else {
        on_payload(rx, in, len);
    }
    if (final) {
        rx->msg_open = 0;
        if (rx->msg_id == -1) on_text(rx);
        if (rx->exit_pending) /* the bare [3]: both SDKs read an empty status as 0 */
            rx->x->exit_code = 0, rx->got_exit = 1;
        rx->exit_pending = 0;
    }
    return rx->got_exit;
}

void sprites_rx_release(struct sprites_rx *rx)
{
    jb_buf_release(&rx->text);
}

/* Returns -1 (close) once the exit status is in. */
static int on_receive(struct wsx *w, struct lws *wsi, const char *in, size_t len)
{
    int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    return sprites_rx_fragment(&w->rx, lws_frame_is_binary(wsi), final, in, len) ? -1 : 0;
}

static int send_msg(struct lws *wsi, int id, const char *p, size_t n, int text)
{
    unsigned char *buf = malloc(LWS_PRE + 1 + n);
    if (!buf) return -1;
    size_t off = 0;
    if (id >= 0) buf[LWS_PRE] = (unsigned char)id, off = 1;
    memcpy(buf + LWS_PRE + off, p, n);
    int k = lws_write(wsi, buf + LWS_PRE, off + n, text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    free(buf);
    return k < (int)(off + n) ? -1 : 0;
}

static int on_writable(struct wsx *w, struct lws *wsi)
{
    if (w->want_kill) {
        if (!w->kill_sent) { /* then wait a little for the exit frame; tick_cb closes */
            static const char sig[] = "{\"type\":\"signal\",\"signal\":\"SIGKILL\"}";
            w->kill_sent = 1;
            return send_msg(wsi, -1, sig, sizeof sig - 1, 1);
        }
        return 0;
    }
    struct sandbox_exec *x = w->x;
    if (x->passthrough && w->pend.len) {
        size_t n = w->pend.len < CHUNK ? w->pend.len : CHUNK;
        if (send_msg(wsi, 0, w->pend.data, n, 0) < 0) return -1;
        memmove(w->pend.data, w->pend.data + n, w->pend.len - n);
        w->pend.len -= n;
        w->pend.data[w->pend.len] = '\0';
    } else if (!x->passthrough && x->stdin_data && w->in_off < x->stdin_len) {
        size_t n = x->stdin_len - w->in_off < CHUNK ? x->stdin_len - w->in_off : CHUNK;
        if (send_msg(wsi, 0, x->stdin_data + w->in_off, n, 0) < 0) return -1;
        w->in_off += n;
    } else if (!x->passthrough && x->input && !w->eof_sent && sandbox_input_busy(x->input)) {
        char buf[CHUNK]; /* the live stdin: its bytes, then EOF once it is closed */
        int finished = 0;
        size_t n = sandbox_input_take(x->input, buf, sizeof buf, &finished);
        if (n && send_msg(wsi, 0, buf, n, 0) < 0) return -1;
        if (!n && finished) {
            w->eof_sent = 1;
            return send_msg(wsi, 4, "", 0, 0);
        }
    } else if (!w->eof_sent && !x->input && (!x->passthrough || w->stdin_eof)) {
        w->eof_sent = 1;
        return send_msg(wsi, 4, "", 0, 0);
    } else {
        return 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
        jb_tls_trust_system_cas(user); /* user: the vhost's client SSL_CTX */
        return 0;
    }
    struct wsx *w = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = (unsigned char **)in, *end = *p + len;
        return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                            (unsigned char *)w->sp->bearer,
                                            (int)strlen(w->sp->bearer), p, end)
                   ? -1
                   : 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->established = 1;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(w, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writable(w, wsi);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        w->http_status = lws_http_client_http_response(wsi);
        snprintf(w->why, sizeof w->why, "%s", in ? (const char *)in : "connection error");
        w->closed = 1, w->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (wsi == w->wsi) w->closed = 1, w->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"janebot-sprites", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = 15, /* as the SDKs: ping after 15 s idle, dead after 45 s */
    .secs_since_valid_hangup = 45,
};

static void read_stdin(struct wsx *w)
{
    if (w->stdin_eof || w->pend.len >= (256u << 10)) return;
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) return;
    if (pfd.revents & POLLNVAL) {
        w->stdin_eof = 1;
        return;
    }
    char buf[65536];
    ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0)
        w->stdin_eof = 1;
    else if (jb_buf_append(&w->pend, buf, (size_t)n, NULL) < 0)
        w->stdin_eof = 1;
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct wsx *w = lws_container_of(sul, struct wsx, tick);
    struct sandbox_exec *x = w->x;
    if (!w->want_kill) {
        int64_t at = x->cancel_at_ms ? atomic_load(x->cancel_at_ms) : 0;
        if ((x->cancel && atomic_load(x->cancel)) || (at && jb_mono_ms() >= at))
            w->want_kill = x->cancelled = 1;
        else if (x->deadline_ms && jb_mono_ms() >= x->deadline_ms)
            w->want_kill = x->timed_out = 1;
        else if (w->stop && w->stop(w->stop_ud))
            w->want_kill = 1; /* the caller's reason is in x already */
        else if (!w->established && jb_mono_ms() - w->t0 > w->sp->health_ms)
            w->want_kill = w->no_answer = 1;
        if (w->want_kill) w->kill_at = jb_mono_ms();
    }
    if (w->wsi) {
        if (w->want_kill && (!w->established || jb_mono_ms() - w->kill_at > KILL_GRACE_MS))
            lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        else if (w->want_kill || (x->passthrough && w->established && !w->eof_sent) ||
                 (x->input && w->established && !w->eof_sent && sandbox_input_busy(x->input))) {
            if (x->passthrough && !w->want_kill) read_stdin(w);
            lws_callback_on_writable(w->wsi);
        }
    }
    lws_sul_schedule(w->ctx, 0, &w->tick, tick_cb, TICK_US);
}

static int connect_ws(struct wsx *w, const char *path, struct jb_err *err)
{
    char base[1024];
    snprintf(base, sizeof base, "%s", w->sp->api_url);
    const char *proto = NULL, *host = NULL, *prefix = NULL;
    int port = 0;
    if (lws_parse_uri(base, &proto, &host, &port, &prefix) != 0)
        return jb_err_set(err, JB_ECONFIG, "SPRITES_API_URL is not a URL");
    jb_autofree char *full = NULL, *hostport = NULL;
    if (asprintf(&full, "%s%s%s", *prefix ? "/" : "", prefix, path) < 0) full = NULL;
    int tls = !strcmp(proto, "https");
    if (asprintf(&hostport, (port == (tls ? 443 : 80)) ? "%s" : "%s:%d", host, port) < 0)
        hostport = NULL;
    if (!full || !hostport) return jb_err_set(err, JB_ENOMEM, "exec url");
    struct lws_client_connect_info ci = {
        .context = w->ctx,
        .address = host,
        .port = port,
        .path = full,
        .host = hostport,
        .origin = hostport,
        .protocol = NULL,
        .pwsi = &w->wsi,
        .ssl_connection = tls ? LCCSCF_USE_SSL : 0,
        .retry_and_idle_policy = &keepalive,
        .local_protocol_name = protocols[0].name,
    };
    if (!lws_client_connect_via_info(&ci) && !w->closed) {
        w->closed = 1;
        snprintf(w->why, sizeof w->why, "cannot connect");
    }
    return 0;
}

static int finish(struct wsx *w, long *http_status, struct jb_err *err)
{
    struct sandbox_exec *x = w->x;
    if (w->rx.got_exit) return SPR_EXEC_DONE;
    if (w->no_answer) {
        jb_err_set(err, JB_ETIMEOUT,
                   "the sprite did not answer within %ld s (JANEBOT_SPRITES_HEALTH_TIMEOUT): it "
                   "may be starting, or the Sprites API is degraded; try again in a minute",
                   w->sp->health_ms / 1000);
        return SPR_EXEC_NOT_STARTED;
    }
    if (x->timed_out || x->cancelled || (w->stop && w->stop(w->stop_ud))) {
        x->exit_code = 128 + 9, x->term_signal = 9;
        return SPR_EXEC_DONE;
    }
    if (!w->established) {
        *http_status = w->http_status;
        if (w->http_status)
            jb_err_set(err, JB_EUNAVAIL, "exec could not start (%s, HTTP %ld)", w->why,
                       w->http_status);
        else
            jb_err_set(err, JB_EUNAVAIL, "exec could not start (%s)", w->why);
        return SPR_EXEC_NOT_STARTED;
    }
    jb_err_set(err, JB_EUNAVAIL,
               "the connection to the sprite dropped before the command finished (no exit "
               "status); it is not re-run, since it may have had effects");
    return SPR_EXEC_FAILED;
}

static int add_param(struct jb_buf *b, const char *k, const char *v, struct jb_err *err)
{
    if (jb_buf_appendf(b, err, "&%s=", k) < 0) return -1;
    return sprites_escape(b, v, err);
}

int sprites_exec_path(const char *name, const char *const *argv, const char *const *env,
                      const char *dir, struct jb_buf *b, struct jb_err *err)
{
    if (!argv || !argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (jb_buf_appendf(b, err, "/v1/sprites/") < 0 || sprites_escape(b, name, err) < 0 ||
        jb_buf_appendf(b, err, "/exec?tty=false&stdin=true&max_run_after_disconnect=10s") < 0)
        return -1;
    for (const char *const *a = argv; *a; a++)
        if (add_param(b, "cmd", *a, err) < 0) return -1;
    if (add_param(b, "path", argv[0], err) < 0 || (dir && add_param(b, "dir", dir, err) < 0))
        return -1;
    for (const char *const *e = env; e && *e; e++)
        if (add_param(b, "env", *e, err) < 0) return -1;
    return 0;
}

int sprites_ws_exec(struct sprites *sp, const char *path, struct sandbox_exec *x,
                    int (*stop)(void *ud), void *stop_ud, long *http_status, struct jb_err *err)
{
    jb_lws_log_init();
    int64_t t0 = jb_mono_ms();
    struct wsx w = {.sp = sp,
                    .x = x,
                    .pend = JB_BUF_INIT(1u << 20),
                    .rx = {.x = x, .text = JB_BUF_INIT(TEXT_MAX)},
                    .t0 = t0,
                    .stop = stop,
                    .stop_ud = stop_ud};
    *http_status = 0;
    x->stderr_tail[0] = '\0';
    struct lws_context_creation_info info = {
        .port = CONTEXT_PORT_NO_LISTEN,
        .protocols = protocols,
        .gid = -1,
        .uid = -1,
        /* A context per exec: the CAs are looked up per handshake, not the whole bundle
         * parsed each time (jb_tls_trust_system_cas()). */
        .options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS,
        /* lws otherwise sizes (and fills) its fd tables for the whole fd limit, two 8-byte
         * entries per fd: 320 KiB resident at 20,000 fds. It holds one socket and its own
         * wake-up pipe. */
        .fd_limit_per_thread = 16,
        .user = &w,
    };
    if (!(w.ctx = lws_create_context(&info)))
        return jb_err_set(err, JB_ESYS, "cannot create a WebSocket context"), SPR_EXEC_NOT_STARTED;
    int rc = connect_ws(&w, path, err);
    if (rc == 0) {
        lws_sul_schedule(w.ctx, 0, &w.tick, tick_cb, TICK_US);
        while (!w.closed)
            if (lws_service(w.ctx, 0) < 0) break;
        lws_sul_cancel(&w.tick);
        rc = finish(&w, http_status, err);
        if (x->input && rc != SPR_EXEC_NOT_STARTED) sandbox_input_end(x->input);
    } else {
        rc = SPR_EXEC_NOT_STARTED;
    }
    lws_context_destroy(w.ctx);
    jb_buf_release(&w.pend);
    sprites_rx_release(&w.rx);
    x->wall_ms = jb_mono_ms() - t0;
    return rc;
}

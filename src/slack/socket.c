/* slack/socket.c -- the Socket Mode connection, on a libwebsockets event loop of its own.
 *
 * One thread owns the lws context and every connection; it never blocks except for the
 * apps.connections.open call that precedes a connection. Connections:
 *   CONNECTING --hello--> LIVE --disconnect(refresh|warning)--> RETIRING (a new one is
 *   opened; this one is closed once the new one says hello) --closed--> gone.
 * An abrupt close of the last live connection schedules a reconnect with jittered
 * backoff (1 s doubling to 30 s); link_disabled waits 5 minutes.
 * Every envelope with an envelope_id is acknowledged, on the connection it came from,
 * right after the callback returns: the callback stores the event first (durability),
 * and one it could not store is left unacknowledged, so Slack sends it again. */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "slack/slack.h"

#define MAX_FRAME (4u << 20)
#define MAX_CONNS 4

struct ack {
    char *text;
    const char *type; /* the envelope's type, for the metrics; NULL: not counted */
    double t0;        /* monotonic seconds when its frame was read */
    struct ack *next;
};

struct conn {
    struct slack_socket *s;
    struct lws *wsi;
    int live, retiring;
    int dropping; /* a message over the cap came: nothing more is read from this one */
    struct jb_buf frame;
    struct ack *acks, *acks_tail;
};

struct slack_socket {
    struct slack_web *web;
    slack_envelope_fn fn;
    void *ud;
    struct lws_context *ctx;
    pthread_t thread;
    atomic_int stop;
    struct conn *conns[MAX_CONNS];
    lws_sorted_usec_list_t reconnect;
    struct jb_retry backoff; /* reconnects: 1 s doubling to 30 s, jittered */
    int link_disabled;
    struct jb_metrics *metrics; /* the web client's, or NULL */
    atomic_int connected;       /* a connection said hello and is open */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *envelope_type_name(enum slack_envelope_type t)
{
    switch (t) {
    case SLACK_ENV_EVENTS_API:
        return "events_api";
    case SLACK_ENV_SLASH_COMMANDS:
        return "slash_commands";
    case SLACK_ENV_INTERACTIVE:
        return "interactive";
    default:
        return "other";
    }
}

/* connected: whether any connection that said hello is still open (the socket thread). */
static void update_connected(struct slack_socket *s)
{
    int any = 0;
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && s->conns[i]->live) any = 1;
    atomic_store(&s->connected, any);
    jb_metrics_set(s->metrics, JB_M_SOCKET_CONNECTED, NULL, NULL, any);
}

static void schedule_connect(struct slack_socket *s, int delay_ms);

static void conn_free(struct conn *c)
{
    struct slack_socket *s = c->s;
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] == c) s->conns[i] = NULL;
    while (c->acks) {
        struct ack *a = c->acks;
        c->acks = a->next;
        free(a->text);
        free(a);
    }
    jb_buf_release(&c->frame);
    free(c);
}

static int live_count(const struct slack_socket *s)
{
    int n = 0;
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && !s->conns[i]->retiring) n++;
    return n;
}

static struct ack *queue_ack(struct conn *c, char *text)
{
    struct ack *a = calloc(1, sizeof *a);
    if (!a || !text) {
        free(a);
        free(text);
        log_error("slack: out of memory for an ack");
        return NULL;
    }
    a->text = text;
    if (c->acks_tail)
        c->acks_tail->next = a;
    else
        c->acks = a;
    c->acks_tail = a;
    lws_callback_on_writable(c->wsi);
    return a;
}

/* A new connection said hello: connections being retired may go now. */
static void retire_old(struct slack_socket *s, struct conn *fresh)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = s->conns[i];
        if (c && c != fresh && c->retiring && c->wsi)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2);
    }
}

static void on_disconnect(struct conn *c, const char *reason)
{
    struct slack_socket *s = c->s;
    log_info("slack: disconnect requested (%s)", reason ? reason : "no reason");
    c->retiring = 1;
    if (reason && !strcmp(reason, "link_disabled")) {
        s->link_disabled = 1;
        log_error("slack: Socket Mode is disabled for this app (link_disabled); enable it in the "
                  "app's settings. Retrying in 5 minutes");
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
        schedule_connect(s, 300000);
        return;
    }
    if (reason && !strcmp(reason, "too_many_websockets")) {
        log_warn("slack: too many connections for this app token: is another janebot running "
                 "with it?");
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
        schedule_connect(s, 5000);
        return;
    }
    schedule_connect(s, 0); /* refresh_requested, warning: the new one first */
}

static void on_frame(struct conn *c, const char *text, size_t len)
{
    struct slack_envelope env;
    char *envelope_id = NULL;
    struct jb_err err = {0};
    double t0 = mono_s();
    if (slack_envelope_parse(text, len, &env, &envelope_id, &err) < 0) {
        log_warn("slack: malformed frame (%s)%s", err.msg, envelope_id ? ", acknowledged" : "");
        if (envelope_id) queue_ack(c, slack_ack_json(envelope_id, NULL));
        free(envelope_id);
        return;
    }
    free(envelope_id);
    if (env.type == SLACK_ENV_HELLO) {
        c->live = 1;
        update_connected(c->s);
        jb_metrics_add(c->s->metrics, JB_M_SOCKET_CONNECTS, NULL, NULL, 1);
        jb_retry_reset(&c->s->backoff);
        c->s->link_disabled = 0;
        jb_log_event(JB_LOG_INFO, "slack.connected", -1, "slack: connected (Socket Mode)");
        retire_old(c->s, c);
    } else if (env.type == SLACK_ENV_DISCONNECT) {
        on_disconnect(c, env.disconnect_reason);
    } else if (env.envelope_id) {
        const char *type = envelope_type_name(env.type);
        jb_metrics_add(c->s->metrics, JB_M_EVENTS_RECEIVED, type, NULL, 1);
        json_t *payload = NULL;
        if (c->s->fn(c->s->ud, &env, &payload) == 0) {
            struct ack *a = queue_ack(c, slack_ack_json(env.envelope_id, payload));
            if (a) a->type = type, a->t0 = t0;
            jb_log_event(JB_LOG_DEBUG, "slack.acked", (int64_t)((mono_s() - t0) * 1000),
                         "slack: envelope %s acked", env.envelope_id);
        }
        json_decref(payload);
    }
    slack_envelope_release(&env);
}

/* A message (all its fragments) over MAX_FRAME: none of it may be read, and its later
 * fragments must not be taken for messages of their own, so nothing more is read from
 * this connection; it is closed (1009, message too big) from the writable callback (lws
 * 4.1 does not survive a close from inside a receive) and a new one is dialled
 * (on_closed()). Its envelope is not acknowledged: Slack sends it again, then gives up. */
static int over_cap(struct conn *c, struct lws *wsi)
{
    log_warn("slack: a message over %u bytes: dropped whole, reconnecting", MAX_FRAME);
    jb_buf_reset(&c->frame);
    c->dropping = 1;
    static const char why[] = "message too big";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why, sizeof why - 1);
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(struct conn *c, struct lws *wsi, const void *in, size_t len)
{
    struct jb_err err = {0};
    if (c->dropping) return 0;
    if (jb_buf_append(&c->frame, in, len, &err) < 0) return over_cap(c, wsi);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    on_frame(c, c->frame.data, c->frame.len);
    jb_buf_reset(&c->frame);
    return 0;
}

static int on_writable(struct conn *c, struct lws *wsi)
{
    if (c->dropping) return -1; /* close now (over_cap()) */
    struct ack *a = c->acks;
    if (!a) return 0;
    size_t n = strlen(a->text);
    unsigned char *buf = malloc(LWS_PRE + n);
    if (!buf) return -1;
    memcpy(buf + LWS_PRE, a->text, n);
    int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
    free(buf);
    if (w < (int)n) return -1;
    if (a->type) {
        jb_metrics_add(c->s->metrics, JB_M_EVENTS_ACKED, a->type, NULL, 1);
        jb_metrics_observe(c->s->metrics, JB_M_ACK_SECONDS, mono_s() - a->t0);
    }
    c->acks = a->next;
    if (!c->acks) c->acks_tail = NULL;
    free(a->text);
    free(a);
    if (c->acks) lws_callback_on_writable(wsi);
    return 0;
}

static void on_closed(struct slack_socket *s, struct conn *c, const char *why)
{
    int was_live = c->live && !c->retiring;
    jb_log_event(JB_LOG_INFO, "slack.disconnected", -1, "slack: connection closed (%s)", why);
    conn_free(c);
    update_connected(s);
    if (!atomic_load(&s->stop) && live_count(s) == 0 && !s->link_disabled) {
        schedule_connect(s, was_live ? 0 : (int)jb_retry_next(&s->backoff, 0));
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
        jb_tls_trust_system_cas(user); /* user: the vhost's client SSL_CTX */
        return 0;
    }
    struct conn *c = user; /* our own, given as the connection's userdata */
    struct slack_socket *s = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return c ? on_receive(c, wsi, in, len) : 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c && atomic_load(&s->stop)) return -1;
        return c ? on_writable(c, wsi) : 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) on_closed(s, c, in ? (const char *)in : "connection error");
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) on_closed(s, c, "closed");
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (atomic_load(&s->stop))
            for (int i = 0; i < MAX_CONNS; i++)
                if (s->conns[i] && s->conns[i]->wsi) lws_callback_on_writable(s->conns[i]->wsi);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"janebot-slack", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = 20, /* ping when idle; a dead link is noticed within a minute */
    .secs_since_valid_hangup = 60,
};

/* Dial a new connection: a fresh URL from apps.connections.open every time. */
static void connect_now(struct slack_socket *s)
{
    struct jb_err err = {0};
    char *url = NULL;
    int slot = -1;
    for (int i = 0; i < MAX_CONNS && slot < 0; i++)
        if (!s->conns[i]) slot = i;
    if (slot < 0 || slack_connections_open(s->web, &url, &err) < 0) {
        if (slot >= 0) log_warn("slack: cannot open a connection: %s", err.msg);
        schedule_connect(s, (int)jb_retry_next(&s->backoff, 0));
        return;
    }
    const char *proto = NULL, *host = NULL, *path = NULL;
    int port = 0;
    char pathbuf[2048];
    struct conn *c = calloc(1, sizeof *c);
    if (!c || lws_parse_uri(url, &proto, &host, &port, &path) != 0) {
        log_warn("slack: apps.connections.open gave an unusable URL");
        free(c);
        free(url);
        schedule_connect(s, 5000);
        return;
    }
    snprintf(pathbuf, sizeof pathbuf, "/%s", path);
    c->s = s;
    c->frame = (struct jb_buf)JB_BUF_INIT(MAX_FRAME);
    struct lws_client_connect_info ci = {
        .context = s->ctx,
        .address = host,
        .port = port,
        .path = pathbuf,
        .host = host,
        .origin = host,
        .protocol = NULL,
        .userdata = c,
        .pwsi = &c->wsi,
        .ssl_connection = strcmp(proto, "wss") == 0 ? LCCSCF_USE_SSL : 0,
        .retry_and_idle_policy = &keepalive,
        .local_protocol_name = protocols[0].name,
    };
    s->conns[slot] = c;
    if (!lws_client_connect_via_info(&ci)) {
        /* CONNECTION_ERROR already ran and freed c when lws got that far. */
        if (s->conns[slot] == c) {
            conn_free(c);
            schedule_connect(s, 1000);
        }
    }
    free(url);
}

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
    struct slack_socket *s = lws_container_of(sul, struct slack_socket, reconnect);
    if (!atomic_load(&s->stop)) connect_now(s);
}

/* Jittered: +0..25 % so many bots do not reconnect in step. */
static void schedule_connect(struct slack_socket *s, int delay_ms)
{
    unsigned r = 0;
    jb_random_bytes(&r, sizeof r, NULL);
    int64_t us = (int64_t)delay_ms * 1000;
    us += delay_ms ? (int64_t)(r % (unsigned)(delay_ms / 4 + 1)) * 1000 : 0;
    lws_sul_schedule(s->ctx, 0, &s->reconnect, reconnect_cb, us);
}

static void *socket_main(void *p)
{
    struct slack_socket *s = p;
    schedule_connect(s, 0);
    while (!atomic_load(&s->stop))
        if (lws_service(s->ctx, 0) < 0) break;
    return NULL;
}

int slack_socket_start(struct slack_web *w, slack_envelope_fn fn, void *ud,
                       struct slack_socket **ret, struct jb_err *err)
{
    struct slack_socket *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "slack socket");
    s->web = w, s->fn = fn, s->ud = ud;
    s->metrics = slack_web_metrics(w);
    s->backoff = (struct jb_retry){.base_ms = 1000, .cap_ms = 30000};
    jb_lws_log_init();
    struct lws_context_creation_info info = {
        .port = CONTEXT_PORT_NO_LISTEN,
        .protocols = protocols,
        .gid = -1,
        .uid = -1,
        /* The CAs are ours to load: jb_tls_trust_system_cas(). */
        .options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS,
        /* lws otherwise sizes (and fills) its fd tables for the whole fd limit, two 8-byte
         * entries per fd: 320 KiB resident at 20,000 fds. It holds MAX_CONNS sockets and its own
         * wake-up pipe. */
        .fd_limit_per_thread = 16,
        .user = s,
    };
    if (!(s->ctx = lws_create_context(&info))) {
        free(s);
        return jb_err_set(err, JB_ESYS, "cannot create the WebSocket context");
    }
    if (pthread_create(&s->thread, NULL, socket_main, s) != 0) {
        lws_context_destroy(s->ctx);
        free(s);
        return jb_err_set(err, JB_ESYS, "cannot start the Slack connection thread");
    }
    *ret = s;
    return 0;
}

int slack_socket_connected(const struct slack_socket *s)
{
    return s ? atomic_load(&s->connected) : 0;
}

void slack_socket_stop(struct slack_socket *s)
{
    if (!s) return;
    atomic_store(&s->stop, 1);
    lws_cancel_service(s->ctx);
    pthread_join(s->thread, NULL);
    lws_context_destroy(s->ctx); /* closes the connections: CLOSED frees each conn */
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i]) conn_free(s->conns[i]);
    free(s);
}

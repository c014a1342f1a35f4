/* proxy/llm-approve.c -- the approval endpoint a `command` agent calls on its own loopback
 * before it uses a tool (POST /janebot/approve, see proxy.h). Only the exec's own run
 * token is accepted; the thread and the user come from the session, never from the
 * request. The request waits (its thread blocks) until the decider answers; when the
 * agent hangs up meanwhile, the ask ends as a deny. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <string.h>

#include "proxy/llm-int.h"

#define APPROVE_BODY_WAIT_MS 10000
#define TOOL_NAME_MAX        128

void llm_proxy_set_approver(struct llm_proxy *px, llm_approve_fn *fn, void *ud)
{
    px->approve = fn;
    px->approve_ud = ud;
}

int llm_is_approve_target(const char *target)
{
    return target && !strcmp(target, LLM_APPROVE_PATH);
}

static void reply_json(int fd, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *b = text ? text : "{}";
    char head[200];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Error", strlen(b));
    int64_t dl = jb_mono_ms() + 5000;
    if (px_send_all(fd, head, (size_t)n, dl) == 0) px_send_all(fd, b, strlen(b), dl);
    free(text);
    json_decref(body);
}

static void reply_error(int fd, int status, const char *msg)
{
    reply_json(fd, status, json_pack("{s:s}", "error", msg));
    px_linger(fd);
}

/* 1 once the agent closed its end (or the session shut the socket down). */
static int peer_gone(void *ud)
{
    int fd = *(int *)ud;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) return 1;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* The body as JSON {"tool": NAME, "input": ...}: 0 with *ret (owned), or -1 answered. */
static int read_body(int fd, struct llm_in *in, json_t **ret)
{
    long long want = in->rq.clen;
    if (in->rq.has_te || want <= 0)
        return reply_error(fd, 411, "send a JSON body with a Content-Length"), -1;
    if ((size_t)want > LLM_APPROVE_BODY_MAX) return reply_error(fd, 413, "body over 64 KiB"), -1;
    /* On the heap for this request only: a thread-local buffer would be part of every
     * thread the process starts (64 KiB each, resident once the thread's TLS is set up). */
    jb_autofree char *buf = malloc((size_t)want + 1);
    if (!buf) return reply_error(fd, 503, "out of memory; try again"), -1;
    size_t len = in->rest_len < (size_t)want ? in->rest_len : (size_t)want;
    memcpy(buf, in->rest, len);
    if (px_read_until(fd, buf, (size_t)want, &len, (size_t)want,
                      jb_mono_ms() + APPROVE_BODY_WAIT_MS) < 0)
        return reply_error(fd, 408, "the body did not arrive in time"), -1;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    const char *tool = json_string_value(json_object_get(j, "tool"));
    size_t tl = tool ? strlen(tool) : 0;
    if (!json_is_object(j) || !tool || tl == 0 || tl > TOOL_NAME_MAX ||
        strspn(tool, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:") != tl) {
        json_decref(j);
        return reply_error(fd, 400,
                           "expected {\"tool\": NAME, \"input\": {...}} with a tool name of "
                           "letters, digits, _ - . : (at most 128)"),
               -1;
    }
    *ret = j;
    return 0;
}

void llm_approve_serve(struct llm_session *s, int fd, struct llm_in *in)
{
    size_t tlen = 0;
    const char *tok = llm_presented_token(&in->rq, &tlen);
    if (strcmp(in->rq.method, "POST") != 0) return reply_error(fd, 405, "use POST");
    if (!llm_token_is(s, tok, tlen)) {
        log_warn("approvals %s: an ask with a token that is not this sandbox's", s->thread_key);
        return reply_error(fd, 401, "invalid token for this sandbox");
    }
    struct llm_verdict v;
    llm_verdict(s, &v);
    if (v.why && v.status == 401) return reply_error(fd, 401, v.why);
    json_t *body = NULL;
    if (read_body(fd, in, &body) < 0) return;
    json_t *input = json_object_get(body, "input");
    char *input_json = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    struct llm_approve_q q = {.thread_key = s->thread_key,
                              .user = s->user,
                              .tool = json_string_value(json_object_get(body, "tool")),
                              .input_json = input_json ? input_json : "{}",
                              .gone = peer_gone,
                              .gone_ud = &fd};
    struct llm_approve_a a = {.answer = "deny"};
    snprintf(a.who, sizeof a.who, "janebot");
    snprintf(a.reason, sizeof a.reason, "nobody can approve here (no frontend asks)");
    if (s->px->approve) s->px->approve(s->px->approve_ud, &q, &a);
    reply_json(fd, 200,
               json_pack("{s:s, s:b, s:s, s:s}", "decision", a.answer, "allowed", a.allowed, "by",
                         a.who, "reason", a.reason));
    free(input_json);
    json_decref(body);
    shutdown(fd, SHUT_WR);
}

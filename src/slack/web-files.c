/* slack/web-files.c -- the typed Web API methods on top of slack_call_ex() (web.c): auth,
 * messages, reactions, whole threads (conversations.replies) and files (the external upload
 * flow; downloads of files users shared, which go to files.slack.com, not the Web API). Each builds
 * its arguments, picks the encoding and retry class, and reads its fields. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slack.h"

#define REPLIES_LIMIT     200
#define REPLIES_MAX_PAGES 50

/* Build arguments with json_pack; a NULL string argument or invalid UTF-8 fails here. */
static json_t *args_pack(struct jb_err *err, const char *method, const char *fmt, ...)
{
    json_error_t je;
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(&je, 0, fmt, ap);
    va_end(ap);
    if (!j) jb_err_set(err, JB_EPROTO, "%s: bad arguments: %s", method, je.text);
    return j;
}

/* Copy string field key of r into *ret (caller frees); a missing field is an error when
 * required, else *ret is NULL. */
static int take_string(const json_t *r, const char *key, int required, const char *method,
                       char **ret, struct jb_err *err)
{
    const char *s = json_string_value(json_object_get(r, key));
    if (!s && required)
        return jb_err_set(err, JB_EPROTO, "%s: no \"%s\" in the answer", method, key);
    char *d = s ? strdup(s) : NULL;
    if (s && !d) return jb_err_set(err, JB_ENOMEM, "%s", method);
    *ret = d;
    return 0;
}

int slack_auth_test(struct slack_web *w, char **ret_user_id, char **ret_bot_id, struct jb_err *err)
{
    jb_auto(json_decrefp) json_t *r = NULL;
    jb_autofree char *uid = NULL;
    jb_autofree char *bid = NULL;
    if (slack_call_ex(w, "auth.test", NULL, SLACK_CALL_FORM, NULL, &r, NULL, err) < 0 ||
        take_string(r, "user_id", 1, "auth.test", &uid, err) < 0 ||
        take_string(r, "bot_id", 0, "auth.test", &bid, err) < 0)
        return -1;
    if (ret_user_id) *ret_user_id = TAKE_PTR(uid);
    if (ret_bot_id) *ret_bot_id = TAKE_PTR(bid);
    return 0;
}

int slack_connections_open(struct slack_web *w, char **ret_url, struct jb_err *err)
{
    const char *m = "apps.connections.open";
    jb_auto(json_decrefp) json_t *r = NULL;
    jb_autofree char *url = NULL;
    if (slack_call_ex(w, m, NULL, SLACK_CALL_FORM | SLACK_CALL_APP_TOKEN, NULL, &r, NULL, err) <
            0 ||
        take_string(r, "url", 1, m, &url, err) < 0)
        return -1;
    *ret_url = TAKE_PTR(url);
    return 0;
}

int slack_post_message(struct slack_web *w, const char *channel, const char *thread_ts,
                       const char *mrkdwn, char **ret_ts, struct jb_err *err)
{
    return slack_post_message_meta(w, channel, thread_ts, mrkdwn, NULL, ret_ts, err);
}

int slack_post_message_meta(struct slack_web *w, const char *channel, const char *thread_ts,
                            const char *mrkdwn, const char *metadata, char **ret_ts,
                            struct jb_err *err)
{
    const char *m = "chat.postMessage";
    jb_auto(json_decrefp) json_t *args =
        args_pack(err, m, "{s:s, s:s*, s:s, s:b, s:s*}", "channel", channel, "thread_ts", thread_ts,
                  "text", mrkdwn, "unfurl_links", 0, "metadata", metadata);
    jb_auto(json_decrefp) json_t *r = NULL;
    jb_autofree char *ts = NULL;
    if (!args || slack_call_ex(w, m, args, SLACK_CALL_ONCE, NULL, &r, NULL, err) < 0 ||
        take_string(r, "ts", 1, m, &ts, err) < 0)
        return -1;
    if (ret_ts) *ret_ts = TAKE_PTR(ts);
    return 0;
}

int slack_update_message(struct slack_web *w, const char *channel, const char *ts,
                         const char *mrkdwn, struct jb_err *err)
{
    jb_auto(json_decrefp) json_t *args = args_pack(err, "chat.update", "{s:s, s:s, s:s}", "channel",
                                                   channel, "ts", ts, "text", mrkdwn);
    if (!args) return -1;
    return slack_call_ex(w, "chat.update", args, 0, NULL, NULL, NULL, err);
}

int slack_delete_message(struct slack_web *w, const char *channel, const char *ts,
                         struct jb_err *err)
{
    jb_auto(json_decrefp) json_t *args =
        args_pack(err, "chat.delete", "{s:s, s:s}", "channel", channel, "ts", ts);
    if (!args) return -1;
    return slack_call_ex(w, "chat.delete", args, 0, NULL, NULL, NULL, err);
}

int slack_reaction(struct slack_web *w, const char *channel, const char *ts, const char *name,
                   int add, struct jb_err *err)
{
    static const char *const ok_add[] = {"already_reacted", NULL};
    static const char *const ok_remove[] = {"no_reaction", NULL};
    const char *m = add ? "reactions.add" : "reactions.remove";
    size_t n = name ? strlen(name) : 0;
    if (n > 2 && name[0] == ':' && name[n - 1] == ':') /* ":eyes:" -> "eyes" */
        name++, n -= 2;
    jb_auto(json_decrefp) json_t *args = args_pack(err, m, "{s:s, s:s, s:s#}", "channel", channel,
                                                   "timestamp", ts, "name", name, (int)n);
    if (!args) return -1;
    int rc = slack_call_ex(w, m, args, 0, add ? ok_add : ok_remove, NULL, NULL, err);
    return rc < 0 ? -1 : 0;
}

/* Append the messages of one page to all, skipping any ts already seen. */
static int append_messages(json_t *all, json_t *seen, const json_t *msgs, struct jb_err *err)
{
    size_t i;
    json_t *m;
    if (msgs && !json_is_array(msgs))
        return jb_err_set(err, JB_EPROTO, "conversations.replies: \"messages\" is no array");
    json_array_foreach(msgs, i, m)
    {
        const char *ts = json_string_value(json_object_get(m, "ts"));
        if (!json_is_object(m) || !ts || json_object_get(seen, ts)) continue;
        if (json_array_append(all, m) < 0 || json_object_set_new(seen, ts, json_true()) < 0)
            return jb_err_set(err, JB_ENOMEM, "conversations.replies");
    }
    return 0;
}

int slack_thread_replies(struct slack_web *w, const char *channel, const char *thread_ts,
                         json_t **ret, struct jb_err *err)
{
    static const char *const ok_errors[] = {"thread_not_found", NULL};
    const char *m = "conversations.replies";
    jb_auto(json_decrefp) json_t *all = json_array();
    jb_auto(json_decrefp) json_t *seen = json_object(); /* ts -> true */
    jb_autofree char *cursor = NULL;
    if (!all || !seen) return jb_err_set(err, JB_ENOMEM, "%s", m);
    for (int page = 0;; page++) {
        if (page == REPLIES_MAX_PAGES) {
            log_warn("slack %s: thread %s has over %d pages; keeping the first %zu messages", m,
                     thread_ts, REPLIES_MAX_PAGES, json_array_size(all));
            break;
        }
        jb_auto(json_decrefp) json_t *args =
            args_pack(err, m, "{s:s, s:s, s:i, s:s*, s:b}", "channel", channel, "ts", thread_ts,
                      "limit", REPLIES_LIMIT, "cursor", cursor, "include_all_metadata", 1);
        jb_auto(json_decrefp) json_t *r = NULL;
        int rc = args ? slack_call_ex(w, m, args, SLACK_CALL_FORM, ok_errors, &r, NULL, err) : -1;
        if (rc < 0) return -1;
        if (rc == 1) break; /* thread_not_found: nothing (more) to read */
        if (append_messages(all, seen, json_object_get(r, "messages"), err) < 0) return -1;
        const char *next = json_string_value(
            json_object_get(json_object_get(r, "response_metadata"), "next_cursor"));
        if (!next || !*next) break;
        free(cursor);
        if (!(cursor = strdup(next))) return jb_err_set(err, JB_ENOMEM, "%s", m);
    }
    *ret = TAKE_PTR(all);
    return 0;
}

/* Step 1: an upload URL and file id for len bytes. */
static int upload_url(struct slack_web *w, const char *filename, size_t len, char **ret_url,
                      char **ret_id, struct jb_err *err)
{
    const char *m = "files.getUploadURLExternal";
    jb_auto(json_decrefp) json_t *args =
        args_pack(err, m, "{s:s, s:I}", "filename", filename, "length", (json_int_t)len);
    jb_auto(json_decrefp) json_t *r = NULL;
    jb_autofree char *url = NULL;
    jb_autofree char *id = NULL;
    if (!args || slack_call_ex(w, m, args, SLACK_CALL_FORM, NULL, &r, NULL, err) < 0 ||
        take_string(r, "upload_url", 1, m, &url, err) < 0 ||
        take_string(r, "file_id", 1, m, &id, err) < 0)
        return -1;
    *ret_url = TAKE_PTR(url);
    *ret_id = TAKE_PTR(id);
    return 0;
}

int slack_upload_fd(struct slack_web *w, const char *channel, const char *thread_ts, int fd,
                    const char *name, struct jb_err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return jb_err_sys(err, "upload %s", name);
    if (!S_ISREG(st.st_mode))
        return jb_err_set(err, JB_EPROTO, "upload %s: not a regular file", name);
    if ((uint64_t)st.st_size > SLACK_UPLOAD_MAX) {
        char sz[32];
        jb_fmt_size((long long)st.st_size, sz, sizeof sz);
        return jb_err_set(err, JB_EDENIED, "upload %s: %s is over the 100 MiB limit", name, sz);
    }
    jb_autofree char *url = NULL;
    jb_autofree char *id = NULL;
    if (upload_url(w, name, (size_t)st.st_size, &url, &id, err) < 0 ||
        slack_web_post_file(w, url, fd, (size_t)st.st_size, err) < 0)
        return jb_err_prefix(err, "upload %s", name);
    const char *m = "files.completeUploadExternal";
    jb_auto(json_decrefp) json_t *args =
        args_pack(err, m, "{s:[{s:s, s:s}], s:s, s:s*}", "files", "id", id, "title", name,
                  "channel_id", channel, "thread_ts", thread_ts);
    if (!args || slack_call_ex(w, m, args, SLACK_CALL_ONCE, NULL, NULL, NULL, err) < 0)
        return jb_err_prefix(err, "upload %s", name);
    return 0;
}

int slack_upload_file(struct slack_web *w, const char *channel, const char *thread_ts,
                      const char *path, const char *filename, struct jb_err *err)
{
    /* O_NOFOLLOW: a sandboxed agent must not turn a symlink into a host file upload;
     * O_NONBLOCK: opening a FIFO must not hang (it then fails the S_ISREG check). */
    jb_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return jb_err_sys(err, "upload %s", path);
    const char *slash = strrchr(path, '/');
    const char *name = filename && *filename ? filename : slash ? slash + 1 : path;
    return slack_upload_fd(w, channel, thread_ts, fd, name, err);
}

/* ---- downloads of files users shared ----------------------------------------------- */

#define DOWNLOAD_TIMEOUT_MS 120000L
#define FILES_HOST          "files.slack.com"

/* u is a place the token may go: decided on the parse the request is then made with
 * (jb_http_request() parses the same URL with the same parser), so no second parser can
 * read the host differently. */
static int origin_trusted(const char *api_url, const struct jb_url *u)
{
    if (u->https && !u->ipv6 && !strcasecmp(u->host, FILES_HOST) && u->port == 443) return 1;
    struct jb_url api = {0};
    const char *why;
    int ok = api_url && jb_url_parse(api_url, strlen(api_url), &api, &why) == 0 &&
             jb_url_same_origin(u, &api);
    jb_url_release(&api);
    return ok;
}

int slack_file_url_trusted(const char *api_url, const char *url)
{
    struct jb_url u = {0};
    const char *why;
    int ok = url && jb_url_parse(url, strlen(url), &u, &why) == 0 && origin_trusted(api_url, &u);
    jb_url_release(&u);
    return ok;
}

struct dl_sink {
    int fd;
    long long max, got; /* max < 0: no limit */
    int over, failed, html;
};

static int dl_head(void *ud, int status, const char *reason, size_t reason_len,
                   const struct jb_http_header *hdr, size_t nhdr)
{
    struct dl_sink *k = ud;
    (void)status, (void)reason, (void)reason_len;
    const struct jb_http_header *ct = jb_http_header_get(hdr, nhdr, "content-type");
    k->html = ct && ct->value_len >= 9 && !strncasecmp(ct->value, "text/html", 9);
    return 0;
}

static int dl_write(void *ud, const char *p, size_t len)
{
    struct dl_sink *k = ud;
    if (k->max >= 0 && k->got + (long long)len > k->max) {
        k->over = 1;
        return -1; /* stops the transfer */
    }
    if (jb_write_all(k->fd, p, len) < 0) {
        k->failed = 1;
        return -1;
    }
    k->got += (long long)len;
    return 0;
}

/* The verdict on a finished transfer (rc of jb_http_request(), net its error). */
static int dl_result(int rc, const struct jb_http_resp *rs, const struct jb_err *net,
                     const struct dl_sink *k, const char *host, long long max, struct jb_err *err)
{
    if (k->over || rs->too_big) {
        char sz[32];
        jb_fmt_size(max, sz, sizeof sz);
        return jb_err_set(err, JB_EDENIED, "download from %s: larger than %s", host, sz);
    }
    if (k->failed) return jb_err_sys(err, "download from %s: cannot write the file", host);
    if (rc < 0)
        return jb_err_set(err, net->code == JB_ETIMEOUT ? JB_ETIMEOUT : JB_EUNAVAIL,
                          "download from %s: %s", host, net->msg);
    if (rs->status < 200 || rs->status > 299)
        return jb_err_set(err, JB_EUNAVAIL, "download from %s: HTTP %d", host, rs->status);
    if (k->html)
        return jb_err_set(err, JB_EDENIED,
                          "download from %s: Slack answered with its sign-in page: the app "
                          "needs the files:read scope",
                          host);
    return 0;
}

static void http_freep(struct jb_http **h)
{
    jb_http_free(*h);
}

int slack_file_download(const struct slack_download *d, const char *url, int fd,
                        long long max_bytes, struct jb_err *err)
{
    struct jb_url u = {0};
    const char *why;
    int parsed = url && jb_url_parse(url, strlen(url), &u, &why) == 0;
    char host[256];
    snprintf(host, sizeof host, "%s", parsed ? u.host : "?");
    int trusted = parsed && origin_trusted(d->api_url, &u);
    jb_url_release(&u);
    if (!trusted)
        return jb_err_set(err, JB_EDENIED,
                          "refused to download from %s: files come only from " FILES_HOST, host);
    if (!d->bot_token || !*d->bot_token)
        return jb_err_set(err, JB_ECONFIG, "download from %s: no SLACK_BOT_TOKEN", host);
    jb_auto(http_freep) struct jb_http *own = d->http ? NULL : jb_http_new(1, err);
    if (!d->http && !own) return -1;
    jb_autofree char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", d->bot_token) < 0)
        return auth = NULL, jb_err_set(err, JB_ENOMEM, "download from %s", host);
    const char *hdrs[] = {auth, NULL};
    struct dl_sink k = {.fd = fd, .max = max_bytes};
    /* No redirect is followed: one must not move the token. */
    struct jb_http_req rq = {.url = url,
                             .headers = hdrs,
                             .on_head = dl_head,
                             .on_body = dl_write,
                             .ud = &k,
                             .connect_timeout_ms = 10000,
                             .timeout_ms = d->timeout_ms > 0 ? d->timeout_ms : DOWNLOAD_TIMEOUT_MS,
                             .max_body = max_bytes > 0 ? max_bytes : 0};
    struct jb_http_resp rs = {0};
    struct jb_err net = {0};
    int rc = jb_http_request(d->http ? d->http : own, &rq, &rs, &net);
    explicit_bzero(auth, strlen(auth));
    return dl_result(rc, &rs, &net, &k, host, max_bytes, err);
}

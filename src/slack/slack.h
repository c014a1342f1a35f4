/* slack/slack.h -- Slack's wire formats: Socket Mode envelopes, Events API payloads, the
 * Web API (HTTP/1.1, util.h), Markdown -> mrkdwn (libcmark) and message chunking.
 * Knows nothing of agents or sandboxes. Tokens appear in no log line or error. */
#ifndef JB_SLACK_H
#define JB_SLACK_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ---- Socket Mode envelopes (events.c) -------------------------------------------- */

enum slack_envelope_type {
    SLACK_ENV_HELLO,
    SLACK_ENV_DISCONNECT,
    SLACK_ENV_EVENTS_API,
    SLACK_ENV_SLASH_COMMANDS,
    SLACK_ENV_INTERACTIVE,
    SLACK_ENV_OTHER, /* unknown type: acked (if it has an envelope_id) and ignored */
};

struct slack_envelope {
    enum slack_envelope_type type;
    char *envelope_id;       /* NULL for hello/disconnect */
    char *disconnect_reason; /* "warning", "refresh_requested", "link_disabled", … */
    int retry_attempt;
    char *retry_reason;
    int accepts_response_payload;
    json_t *payload; /* owned; NULL when absent */
};

/* Frames longer than this are refused without parsing (Slack's are a few KiB). */
#define SLACK_FRAME_MAX (16u << 20)

/* Parse one WebSocket text frame. -1 with JB_EPROTO when it is not a JSON object with a
 * string "type"; when an envelope_id could still be read, *ret_envelope_id (caller frees)
 * gets it so the frame can be acked anyway. */
/* Details: *ret (the caller's; free its contents with slack_envelope_release()) is written
 * only on success. ret_envelope_id may be NULL; when not, it is set to NULL first. An
 * events_api, slash_commands or interactive frame needs an envelope_id and an object
 * "payload" (else -1, with the id handed out when present). disconnect_reason and
 * retry_reason are NULL when absent. An unknown type gives SLACK_ENV_OTHER with its
 * envelope_id (may be NULL) and payload (any JSON, may be NULL). Never reads past len. */
int slack_envelope_parse(const char *text, size_t len, struct slack_envelope *ret,
                         char **ret_envelope_id, struct jb_err *err);
void slack_envelope_release(struct slack_envelope *e);
/* {"envelope_id": "…"} (plus "payload" when payload != NULL, borrowed); caller frees.
 * Compact JSON; NULL when envelope_id is NULL or not UTF-8, or out of memory. */
char *slack_ack_json(const char *envelope_id, const json_t *payload);

/* A user message the bot should act on, from an events_api payload. All owned. */
struct slack_message {
    char *event_id;   /* the callback's event_id (redeliveries share it) */
    char *dedupe_key; /* "CHANNEL:TS" of the message: app_mention and message of one
                         post share it */
    char *team, *channel, *channel_type, *user, *ts;
    char *thread_ts;   /* the thread's parent ts (thread_ts, else ts) */
    char *thread_key;  /* "CHANNEL:THREAD_TS" */
    char *text;        /* the prompt: bot mention removed, &amp; &lt; &gt; unescaped, trimmed */
    int is_mention;    /* app_mention, or a message that mentions the bot */
    int in_thread;     /* the message was a reply inside an existing thread */
    int followup_only; /* a channel file_share/thread_broadcast reply that does not mention
                          the bot: act on it only when thread_key is a thread the bot is
                          already in, else drop it */
    json_t *files;     /* owned array or NULL (file_share keeps its files[]) */
};
/* Frees every field and zeroes *m; accepts NULL and half-filled messages. */
void slack_message_release(struct slack_message *m);

/* Decide what an events_api payload means. Returns 1 and fills *ret for a message to act
 * on; 0 for one to ignore, with *why (static string: "bot message", "edit", "own
 * message", "unsupported event", …); -1 with JB_EPROTO for a malformed payload.
 * bot_user_id/bot_id come from auth.test. Messages count only in DMs (channel_type im)
 * or as app_mention; a plain channel message that is not a mention is ignored.
 * Details: *ret (the caller's; release with slack_message_release()) is written only when
 * 1 is returned. why may be NULL. payload and the ids are borrowed; bot_user_id/bot_id may
 * be NULL (then no own-message check on that field). Ignored (0): payload.type other than
 * event_callback ("not an event_callback"), events other than app_mention/message
 * ("unsupported event"), the bot's own posts ("own message": user == bot_user_id or
 * bot_id == bot_id), other bots ("bot message": bot_id set or subtype bot_message),
 * message_changed or an "edited" object ("edit"), message_deleted ("deletion"),
 * subtypes other than file_share/thread_broadcast ("unsupported subtype"), hidden events
 * ("hidden message"), and outside DMs message events with no subtype, or a file_share /
 * thread_broadcast that neither mentions the bot nor replies in a thread ("not addressed
 * to the bot"). An empty prompt is still returned (text ""): the caller decides.
 * -1 (JB_EPROTO) when payload is no object, the event no object, event_id, channel, ts
 * or user is missing; JB_ENOMEM. channel_type is NULL when absent (app_mention). */
int slack_event_interpret(const json_t *payload, const char *bot_user_id, const char *bot_id,
                          struct slack_message *ret, const char **why, struct jb_err *err);

/* One button click (an interactive envelope's block_actions payload). All owned. */
struct slack_block_action {
    char *action_id, *value; /* the first action's; value "" when the button had none */
    char *user;              /* who clicked */
    char *channel;           /* container.channel_id, else channel.id */
    char *message_ts;        /* container.message_ts (may be NULL: not on a message) */
    char *thread_ts;         /* container.thread_ts, or NULL */
};
void slack_block_action_release(struct slack_block_action *a);
/* Read a block_actions payload: 1 with *ret filled; 0 when it is another interactive kind
 * (view_submission, shortcut, ...: *why says which); -1 with JB_EPROTO when it is hostile
 * or broken (no user id, no actions, fields of the wrong type or over 2,000 bytes). */
int slack_block_action_parse(const json_t *payload, struct slack_block_action *ret,
                             const char **why, struct jb_err *err);

/* A reaction added to a message, from an events_api payload. All owned. */
struct slack_reaction {
    char *event_id;  /* the callback's event_id (redeliveries share it) */
    char *user;      /* who reacted */
    char *reaction;  /* the emoji's name without colons: "x" */
    char *channel;   /* the message's channel */
    char *ts;        /* the message's ts */
    char *item_user; /* who wrote the message; NULL when Slack did not say */
};
/* Frees every field and zeroes *r; accepts NULL and half-filled reactions. */
void slack_reaction_release(struct slack_reaction *r);
/* 1 when payload is an event_callback of a reaction_added event (whatever it says). */
int slack_event_is_reaction(const json_t *payload);
/* A reaction_added event: 1 and *ret filled (the caller's; release with
 * slack_reaction_release()) for a reaction on a message; 0 with *why (static string) for
 * one on something else (a file: "not on a message"). -1 with JB_EPROTO when event_id,
 * user, reaction, item, its channel or its ts is missing or no string; JB_ENOMEM. */
int slack_reaction_interpret(const json_t *payload, struct slack_reaction *ret, const char **why,
                             struct jb_err *err);

/* Files shared in a file_share message, as the small list janebot keeps with it: a compact
 * JSON array of {"name","url","size","mimetype"} (url: url_private_download) into *ret_json
 * (caller frees; NULL when no file is left). Kept: objects with a url_private_download, an
 * integer size >= 0 and a mode other than tombstone, hidden_by_limit or external (these
 * carry no bytes). A name that is missing becomes the file id. Files over max_bytes are not
 * kept: "NAME (SIZE)" of each is pushed to skipped (the caller's; may be NULL) so the user
 * can be told. files may be NULL or no array (nothing kept). JB_ENOMEM, JB_EPROTO. */
int slack_files_normalise(const json_t *files, long long max_bytes, char **ret_json,
                          struct jb_strv *skipped, struct jb_err *err);

/* ---- Markdown -> mrkdwn, chunking (mrkdwn.c, chunk.c) ----------------------------- */

/* Convert the agent's Markdown to Slack mrkdwn using libcmark's parse tree: bold, italic,
 * strike, inline code, fences, links <url|text>, lists, quotes, headings as bold lines,
 * tables as code blocks; & < > escaped outside of user mentions (<@U…>, <#C…>, <!here>)
 * and emoji (:name:) which stay intact. Caller frees; NULL only when out of memory. */
/* Details: the rules are those of conformance/slack/mrkdwn_cases.json and its README:
 * ~~x~~ -> ~x~ (paired ~~ only), ***x*** -> *_x_*, images -> <url|alt>, autolinks stay
 * <url>, bullets • ◦ ▪ with 4 spaces per level, thematic breaks a line of ─, raw HTML as
 * escaped text, and Slack tokens (<@U…>, <#C…>, <!here>, <!subteam^…>, <!date^…>,
 * <https://…|label>) passed through. Source line breaks and single blank lines between
 * blocks are kept; nothing is wrapped or truncated. markdown NULL is treated as "".
 * When the result would exceed 8 times the input plus 64 KiB (pathological nesting), the
 * input is returned escaped and otherwise unconverted. Thread-safe. */
char *slack_mrkdwn_from_markdown(const char *markdown);

/* Split text into pieces of at most max_chars characters (UTF-8 code points), at line
 * boundaries where possible; a piece that ends inside a ``` fence closes it and the next
 * reopens it. Nothing is lost. Pieces are pushed to out (the caller's). */
/* Details: cut preference: after a blank line (when that keeps the piece at least half
 * full), after the last newline, after the last space, else at the last code point
 * boundary that fits. A piece never ends inside a UTF-8 sequence or a run of backticks
 * (unless such a run alone exceeds the room). A run of 3+ backticks toggles "inside a
 * fence"; a piece cut inside one ends with an added "```" line ("```" after a newline,
 * else "\n```") and the next starts with an added "```\n". Removing those added fence
 * lines and concatenating gives text back byte for byte. Empty text pushes nothing.
 * -1 with JB_EPROTO when max_chars < SLACK_CHUNK_MIN; JB_ENOMEM. On error out is
 * unchanged. Thread-safe. */
#define SLACK_CHUNK_MIN 16
int slack_chunk(const char *text, size_t max_chars, struct jb_strv *out, struct jb_err *err);

/* ---- Web API (web.c, web-files.c) ---------------------------------------------------- */

struct slack_web_opts {
    const char *api_url;        /* SLACK_API_URL, ends with '/': "https://slack.com/api/" */
    const char *bot_token;      /* xoxb-… */
    const char *app_token;      /* xapp-… (apps.connections.open only) */
    int max_retries;            /* for 5xx / network errors (0 = default 3) */
    long timeout_ms;            /* per request (0 = default 15000); uploads get more, see below */
    long backoff_ms;            /* first retry delay, doubled per retry, jittered (0 = 500) */
    struct jb_metrics *metrics; /* calls, retries and errors by method (borrowed; NULL: none) */
};

struct slack_web;
/* Copies the options. Thread-safe: calls may come from several threads at once.
 * *ret is the caller's; free with slack_web_free(). */
int slack_web_new(const struct slack_web_opts *o, struct slack_web **ret, struct jb_err *err);
void slack_web_free(struct slack_web *w);
/* The options' metrics registry (borrowed), or NULL. */
struct jb_metrics *slack_web_metrics(const struct slack_web *w);
/* The HTTP client of w, borrowed (for downloads on its kept-alive connections). */
struct jb_http *slack_web_http(const struct slack_web *w);

/* POST one method. args (borrowed, may be NULL) is sent as JSON, or form-encoded when
 * form is 1 (read methods). 429: waits Retry-After and retries; 5xx, non-JSON and
 * network errors: retries with jittered backoff up to max_retries. ok:true -> 0 and
 * *ret (owned; may be NULL to discard). ok:false -> -1, err->msg "METHOD: ERROR" and
 * *ret_error (caller frees, may be NULL) the error code. Logged once with method and
 * error code, never a token. */
int slack_call(struct slack_web *w, const char *method, const json_t *args, int form, int app_token,
               json_t **ret, char **ret_error, struct jb_err *err);

/* Flags for slack_call_ex(). */
#define SLACK_CALL_FORM      1u /* form-encoded body (read methods) */
#define SLACK_CALL_APP_TOKEN 2u /* the xapp- token (apps.connections.open) */
/* Not idempotent (chat.postMessage, files.completeUploadExternal): retried only when Slack
 * certainly did not act on the request (connection never made, HTTP 429, or an answer saying
 * service_unavailable / request_timeout). When the request may have been processed but no
 * usable answer came back (timeout or dropped connection after sending, another 5xx, a body
 * that is not JSON) the call is not repeated: -1 with JB_ETIMEOUT, outcome unknown. */
#define SLACK_CALL_ONCE 4u
/* slack_call() with flags. tolerate (borrowed, may be NULL) is a NULL-terminated list of
 * expected error codes: for those the call returns 1, logs nothing and leaves err untouched
 * (*ret_error is still set). Auth errors (not_authed, invalid_auth, token_revoked,
 * token_expired, account_inactive, missing_scope, …) give JB_EDENIED, other ok:false answers
 * JB_EPROTO, 429/5xx/network trouble that outlasts the retries JB_EUNAVAIL. Any thread. */
int slack_call_ex(struct slack_web *w, const char *method, const json_t *args, unsigned flags,
                  const char *const *tolerate, json_t **ret, char **ret_error, struct jb_err *err);
/* A call that never waits, for work a caller may skip or redo later (status messages):
 * one attempt, no backoff, no sleep. HTTP 429, or a method still inside a Retry-After
 * window another call got, gives -1 with JB_EBUSY at once and retry_after_s (>= 1) the
 * seconds to wait; the window is recorded for every caller of that method as with any 429.
 * stop (may be NULL, borrowed): once it is nonzero a transfer in progress is abandoned
 * within about a second (-1, JB_ECANCEL). Other failures are slack_call_ex()'s, without
 * its retries. */
struct slack_nowait {
    const atomic_int *stop;
    long timeout_ms;    /* of the request; 0: the client's */
    long retry_after_s; /* out: 0 unless rate limited */
};
int slack_call_nowait(struct slack_web *w, const char *method, const json_t *args, unsigned flags,
                      struct slack_nowait *nw, json_t **ret, char **ret_error, struct jb_err *err);
/* The request body of a call (form.c): args (an object or NULL) as compact JSON, or with
 * SLACK_CALL_FORM as key=value&… (null values left out; arrays and objects as JSON text).
 * Caller frees; NULL with err filled. */
char *slack_request_body(const json_t *args, unsigned flags, struct jb_err *err);
/* The parser of one Web API answer, without the network: the entry point of the fuzz
 * target (tests/fuzz/). head (head_len bytes of header lines, "HTTP/1.1 200 OK\r\n…") and
 * the body are judged as slack_call_ex() judges a finished exchange (flags: SLACK_CALL_ONCE
 * counts); *retry_after_s gets the Retry-After seconds (-1: none). 0 with *ret (owned; may
 * be NULL to discard) for ok:true; -1 with err for anything else, JB_EUNAVAIL where
 * slack_call_ex() would retry; *ret_error as slack_call_ex() sets it. */
int slack_web_answer(const char *method, unsigned flags, long status, const char *head,
                     size_t head_len, const char *body, size_t body_len, json_t **ret,
                     char **ret_error, long *retry_after_s, struct jb_err *err);
/* POST len bytes of fd (read with pread from offset 0; fd stays the caller's) as the raw
 * body to url, an upload_url from files.getUploadURLExternal. No token is sent. HTTP 200 is
 * success; 429, 5xx and network errors are retried like slack_call(). The time limit is
 * timeout_ms plus 8 ms per KiB. */
int slack_web_post_file(struct slack_web *w, const char *url, int fd, size_t len,
                        struct jb_err *err);

/* auth.test (form-encoded). *ret_user_id / *ret_bot_id (caller frees; either pointer may be
 * NULL) are the bot user and bot id; *ret_bot_id is NULL when the answer has none. */
int slack_auth_test(struct slack_web *w, char **ret_user_id, char **ret_bot_id, struct jb_err *err);
/* apps.connections.open with the app token; *ret_url (caller frees) is good for one dial. */
int slack_connections_open(struct slack_web *w, char **ret_url, struct jb_err *err);
/* thread_ts may be NULL. *ret_ts (caller frees, may be NULL) is the new message's ts.
 * Sent with unfurl_links false. Called with SLACK_CALL_ONCE so a retry never double-posts:
 * -1 with JB_ETIMEOUT means the message may or may not have been posted (timeout or lost
 * connection after sending); the caller decides whether to check the thread or post again. */
int slack_post_message(struct slack_web *w, const char *channel, const char *thread_ts,
                       const char *mrkdwn, char **ret_ts, struct jb_err *err);
/* The same with message metadata (a JSON object {event_type, event_payload} as text,
 * borrowed; NULL: none): conversations.replies returns it (slack_thread_replies asks for
 * it), so the bot can find its own messages again. */
int slack_post_message_meta(struct slack_web *w, const char *channel, const char *thread_ts,
                            const char *mrkdwn, const char *metadata, char **ret_ts,
                            struct jb_err *err);
int slack_update_message(struct slack_web *w, const char *channel, const char *ts,
                         const char *mrkdwn, struct jb_err *err);
int slack_delete_message(struct slack_web *w, const char *channel, const char *ts,
                         struct jb_err *err);
/* already_reacted / no_reaction count as success. name goes without colons (":eyes:" is
 * accepted and stripped). */
int slack_reaction(struct slack_web *w, const char *channel, const char *ts, const char *name,
                   int add, struct jb_err *err);
/* Every message of a thread, oldest first, following next_cursor (limit 200 per page),
 * duplicates by ts dropped; thread_not_found gives an empty array. At most 50 pages: a longer
 * thread yields its first 10,000 messages and a warning in the log. *ret (owned) is a JSON
 * array of message objects. */
int slack_thread_replies(struct slack_web *w, const char *channel, const char *thread_ts,
                         json_t **ret, struct jb_err *err);
/* files.getUploadURLExternal, POST the bytes, files.completeUploadExternal into the
 * thread (thread_ts may be NULL: shared into the channel). path (opened with O_NOFOLLOW;
 * must be a regular file) is read, never kept; filename NULL means path's last component.
 * Files over SLACK_UPLOAD_MAX bytes are refused up front: -1 with JB_EDENIED. The last
 * step is SLACK_CALL_ONCE (single-use on Slack's side), so JB_ETIMEOUT means "may have
 * been shared". */
#define SLACK_UPLOAD_MAX ((size_t)100 << 20) /* 100 MiB */
int slack_upload_file(struct slack_web *w, const char *channel, const char *thread_ts,
                      const char *path, const char *filename, struct jb_err *err);
/* The same for a file already open (read from its current offset; the caller keeps fd). */
int slack_upload_fd(struct slack_web *w, const char *channel, const char *thread_ts, int fd,
                    const char *name, struct jb_err *err);

/* Downloading a file users shared (web-files.c). The bot token goes only where Slack keeps
 * files: https://files.slack.com (port 443), or the scheme, host and port of api_url (a
 * test double of Slack). Every other URL is refused before anything is sent, so a crafted
 * payload cannot carry the token elsewhere. */
struct slack_download {
    const char *api_url;   /* SLACK_API_URL (borrowed) */
    const char *bot_token; /* xoxb-… (borrowed, secret) */
    long timeout_ms;       /* whole download (0 = default 120000) */
    struct jb_http *http;  /* borrowed (slack_web_http()), or NULL: one made per download */
};
/* 1 when url may receive the bot token (see above), 0 when not (also for a URL that does
 * not parse, has a user name or password, or is neither http nor https). Pure. */
int slack_file_url_trusted(const char *api_url, const char *url);
/* GET url with "Authorization: Bearer <bot token>" and write the body to fd (the caller's,
 * written from its current offset). Refused (JB_EDENIED, nothing sent) when url is not
 * trusted. Redirects are not followed. Fails unless the answer is 2xx; a text/html answer
 * is Slack's sign-in page (JB_EDENIED: "the app needs the files:read scope"); a body over
 * max_bytes stops the download (JB_EDENIED). Errors name the host, never the token. */
int slack_file_download(const struct slack_download *d, const char *url, int fd,
                        long long max_bytes, struct jb_err *err);

/* ---- Socket Mode connection (socket.c) ------------------------------------------- */

struct slack_socket;
/* Called on the socket thread for each envelope that carries an envelope_id, before it
 * is acknowledged. Must be quick: store the event, don't work on it. Returns 0 to ack it,
 * with *payload (set or NULL; the socket takes ownership) in the ack, or -1 to leave it
 * unacknowledged, so Slack sends it again (the event could not be stored). Malformed
 * frames are acknowledged without a call. env->type is never HELLO or DISCONNECT here. */
typedef int (*slack_envelope_fn)(void *ud, const struct slack_envelope *env, json_t **payload);

/* Connect (apps.connections.open, then the WebSocket) on a thread of its own and keep
 * connected: a refresh or warning opens the new connection before the old one closes;
 * an abrupt drop reconnects with jittered backoff; link_disabled retries only slowly.
 * *ret is the caller's; slack_socket_stop() closes and joins. */
int slack_socket_start(struct slack_web *w, slack_envelope_fn fn, void *ud,
                       struct slack_socket **ret, struct jb_err *err);
void slack_socket_stop(struct slack_socket *s);
/* 1 while a connection has said hello and is open (any thread; NULL gives 0). */
int slack_socket_connected(const struct slack_socket *s);

#endif

/* slack/events.c -- Socket Mode envelopes, their acks, and what an events_api payload asks
 * the bot to do (which messages start or continue a turn, which are ignored and why). */
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "slack/slack.h"

/* A string member of o, borrowed; NULL when absent or not a string. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Copy s (may be NULL) into *dst; -1 with JB_ENOMEM. */
static int dup_into(char **dst, const char *s, struct jb_err *err)
{
    *dst = NULL;
    if (s && !(*dst = strdup(s))) return jb_err_set(err, JB_ENOMEM, "copying a Slack field");
    return 0;
}

/* ---- envelopes ------------------------------------------------------------------- */

static enum slack_envelope_type envelope_type(const char *t)
{
    static const struct {
        const char *name;
        enum slack_envelope_type type;
    } types[] = {
        {"hello", SLACK_ENV_HELLO},
        {"disconnect", SLACK_ENV_DISCONNECT},
        {"events_api", SLACK_ENV_EVENTS_API},
        {"slash_commands", SLACK_ENV_SLASH_COMMANDS},
        {"interactive", SLACK_ENV_INTERACTIVE},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(types); i++)
        if (strcmp(t, types[i].name) == 0) return types[i].type;
    return SLACK_ENV_OTHER;
}

/* Reject a frame, handing out its envelope_id (if any) so it can still be acked. */
static int frame_reject(const char *id, char **ret_envelope_id, struct jb_err *err,
                        const char *what)
{
    if (id && ret_envelope_id) *ret_envelope_id = strdup(id); /* NULL on ENOMEM: no ack */
    return jb_err_set(err, JB_EPROTO, "Socket Mode frame: %s", what);
}

/* Fill e from a parsed frame whose "type" is known to be a string. */
static int envelope_fill(const json_t *root, struct slack_envelope *e, struct jb_err *err)
{
    const json_t *retry = json_object_get(root, "retry_attempt");
    if (json_is_integer(retry)) {
        json_int_t r = json_integer_value(retry);
        e->retry_attempt = r < 0 ? 0 : r > INT_MAX ? INT_MAX : (int)r;
    }
    e->accepts_response_payload = json_is_true(json_object_get(root, "accepts_response_payload"));
    int has_id = e->type != SLACK_ENV_HELLO && e->type != SLACK_ENV_DISCONNECT;
    if (dup_into(&e->envelope_id, has_id ? jstr(root, "envelope_id") : NULL, err) < 0 ||
        dup_into(&e->retry_reason, jstr(root, "retry_reason"), err) < 0)
        return -1;
    if (e->type == SLACK_ENV_DISCONNECT &&
        dup_into(&e->disconnect_reason, jstr(root, "reason"), err) < 0)
        return -1;
    json_t *payload = json_object_get(root, "payload");
    if (payload && !json_is_null(payload)) e->payload = json_incref(payload);
    return 0;
}

int slack_envelope_parse(const char *text, size_t len, struct slack_envelope *ret,
                         char **ret_envelope_id, struct jb_err *err)
{
    if (ret_envelope_id) *ret_envelope_id = NULL;
    if (!text) return jb_err_set(err, JB_EPROTO, "Socket Mode frame: no text");
    if (len > SLACK_FRAME_MAX)
        return jb_err_set(err, JB_EPROTO, "Socket Mode frame of %zu bytes (limit %u)", len,
                          SLACK_FRAME_MAX);
    json_error_t jerr;
    jb_auto(json_decrefp) json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return jb_err_set(err, JB_EPROTO, "Socket Mode frame is not JSON: %s (line %d)", jerr.text,
                          jerr.line);
    if (!json_is_object(root)) return frame_reject(NULL, NULL, err, "not a JSON object");
    const char *id = jstr(root, "envelope_id");
    const char *type = jstr(root, "type");
    if (!type) return frame_reject(id, ret_envelope_id, err, "no string \"type\"");

    struct slack_envelope e = {.type = envelope_type(type)};
    if (e.type == SLACK_ENV_EVENTS_API || e.type == SLACK_ENV_SLASH_COMMANDS ||
        e.type == SLACK_ENV_INTERACTIVE) {
        if (!id) return frame_reject(NULL, NULL, err, "envelope without envelope_id");
        if (!json_is_object(json_object_get(root, "payload")))
            return frame_reject(id, ret_envelope_id, err, "envelope without a payload object");
    }
    if (envelope_fill(root, &e, err) < 0) {
        slack_envelope_release(&e);
        return -1;
    }
    *ret = e;
    return 0;
}

void slack_envelope_release(struct slack_envelope *e)
{
    if (!e) return;
    free(e->envelope_id);
    free(e->disconnect_reason);
    free(e->retry_reason);
    json_decref(e->payload);
    *e = (struct slack_envelope){0};
}

char *slack_ack_json(const char *envelope_id, const json_t *payload)
{
    if (!envelope_id) return NULL;
    jb_auto(json_decrefp) json_t *ack = json_object();
    json_t *id = json_string(envelope_id); /* NULL for invalid UTF-8 */
    if (!ack || json_object_set_new(ack, "envelope_id", id) < 0) return NULL;
    if (payload && json_object_set_new(ack, "payload", json_deep_copy(payload)) < 0) return NULL;
    return json_dumps(ack, JSON_COMPACT);
}

/* ---- events_api payloads --------------------------------------------------------- */

void slack_message_release(struct slack_message *m)
{
    if (!m) return;
    char **fields[] = {&m->event_id,     &m->dedupe_key, &m->team, &m->channel,
                       &m->channel_type, &m->user,       &m->ts,   &m->thread_ts,
                       &m->thread_key,   &m->text};
    for (size_t i = 0; i < JB_ARRAY_LEN(fields); i++)
        free(*fields[i]);
    json_decref(m->files);
    *m = (struct slack_message){0};
}

static inline void message_releasep(struct slack_message *m)
{
    slack_message_release(m);
}

/* Length of a mention of user id at s ("<@ID>" or "<@ID|label>"), 0 when s is none. */
static size_t mention_len(const char *s, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (!n || s[0] != '<' || s[1] != '@' || strncmp(s + 2, id, n) != 0) return 0;
    const char *p = s + 2 + n;
    if (*p == '>') return (size_t)(p + 1 - s);
    if (*p != '|') return 0;
    p += strcspn(p, "<>");
    return *p == '>' ? (size_t)(p + 1 - s) : 0;
}

static int mentions(const char *text, const char *id)
{
    for (const char *p = strchr(text, '<'); p; p = strchr(p + 1, '<'))
        if (mention_len(p, id)) return 1;
    return 0;
}

/* The prompt: mentions of the bot removed, &amp; &lt; &gt; unescaped, trimmed. */
static char *prompt_text(const char *text, const char *bot_user_id)
{
    static const struct {
        const char *esc;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}};
    char *out = malloc(strlen(text) + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = text; *p;) {
        size_t m = mention_len(p, bot_user_id);
        if (m) {
            p += m;
            if (*p == ' ' && (o == out || o[-1] == ' ')) p++; /* "a <@B> b" -> "a b" */
            continue;
        }
        size_t i = 0;
        while (i < JB_ARRAY_LEN(ents) && strncmp(p, ents[i].esc, strlen(ents[i].esc)) != 0)
            i++;
        if (i < JB_ARRAY_LEN(ents)) {
            *o++ = ents[i].c;
            p += strlen(ents[i].esc);
        } else {
            *o++ = *p++;
        }
    }
    while (o > out && isspace((unsigned char)o[-1]))
        o--;
    *o = '\0';
    size_t lead = strspn(out, " \t\r\n\v\f");
    memmove(out, out + lead, (size_t)(o - out) - lead + 1);
    return out;
}

static int present(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);
    return v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v));
}

static int str_eq(const char *a, const char *b)
{
    return a && b && *a && strcmp(a, b) == 0;
}

/* Why a message-like event is not user text for the bot, or NULL when it is. */
static const char *ignore_reason(const json_t *ev, const char *bot_user_id, const char *bot_id)
{
    const char *type = jstr(ev, "type");
    if (!type || (strcmp(type, "app_mention") != 0 && strcmp(type, "message") != 0))
        return "unsupported event";
    if (str_eq(jstr(ev, "user"), bot_user_id) || str_eq(jstr(ev, "bot_id"), bot_id))
        return "own message";
    if (present(ev, "bot_id")) return "bot message";
    if (present(ev, "subtype")) {
        const char *sub = jstr(ev, "subtype");
        if (!sub) return "unsupported subtype";
        if (strcmp(sub, "bot_message") == 0) return "bot message";
        if (strcmp(sub, "message_changed") == 0) return "edit";
        if (strcmp(sub, "message_deleted") == 0) return "deletion";
        if (strcmp(sub, "file_share") != 0 && strcmp(sub, "thread_broadcast") != 0)
            return "unsupported subtype";
    }
    if (json_is_true(json_object_get(ev, "hidden"))) return "hidden message";
    if (present(ev, "edited")) return "edit";
    return NULL;
}

/* Fill the fields that come straight from the event. */
static int message_fields(const json_t *payload, const json_t *ev, struct slack_message *m,
                          struct jb_err *err)
{
    const char *channel = jstr(ev, "channel"), *ts = jstr(ev, "ts"), *user = jstr(ev, "user");
    if (!channel || !*channel || !ts || !*ts || !user || !*user)
        return jb_err_set(err, JB_EPROTO, "message event without channel, ts or user");
    const char *thread_ts = jstr(ev, "thread_ts");
    if (!thread_ts || !*thread_ts) thread_ts = ts;
    const char *team = jstr(ev, "team");
    if (!team) team = jstr(payload, "team_id");
    if (dup_into(&m->event_id, jstr(payload, "event_id"), err) < 0 ||
        dup_into(&m->team, team, err) < 0 || dup_into(&m->channel, channel, err) < 0 ||
        dup_into(&m->channel_type, jstr(ev, "channel_type"), err) < 0 ||
        dup_into(&m->user, user, err) < 0 || dup_into(&m->ts, ts, err) < 0 ||
        dup_into(&m->thread_ts, thread_ts, err) < 0)
        return -1;
    if (asprintf(&m->dedupe_key, "%s:%s", channel, ts) < 0) m->dedupe_key = NULL;
    if (asprintf(&m->thread_key, "%s:%s", channel, thread_ts) < 0) m->thread_key = NULL;
    if (!m->dedupe_key || !m->thread_key) return jb_err_set(err, JB_ENOMEM, "message keys");
    m->in_thread = strcmp(thread_ts, ts) != 0;
    json_t *files = json_object_get(ev, "files");
    if (json_is_array(files)) m->files = json_incref(files);
    return 0;
}

int slack_event_interpret(const json_t *payload, const char *bot_user_id, const char *bot_id,
                          struct slack_message *ret, const char **why, struct jb_err *err)
{
    const char *unused;
    if (!why) why = &unused;
    *why = NULL;
    if (!json_is_object(payload)) return jb_err_set(err, JB_EPROTO, "payload is not an object");
    const char *ptype = jstr(payload, "type");
    if (!ptype || strcmp(ptype, "event_callback") != 0) {
        *why = "not an event_callback";
        return 0;
    }
    const json_t *ev = json_object_get(payload, "event");
    if (!json_is_object(ev)) return jb_err_set(err, JB_EPROTO, "event_callback without event");
    if (!jstr(payload, "event_id") || !*jstr(payload, "event_id"))
        return jb_err_set(err, JB_EPROTO, "event_callback without event_id");
    if ((*why = ignore_reason(ev, bot_user_id, bot_id))) return 0;

    jb_auto(message_releasep) struct slack_message m = {0};
    if (message_fields(payload, ev, &m, err) < 0) return -1;
    const char *text = jstr(ev, "text");
    if (!text) text = "";
    int mention_event = strcmp(jstr(ev, "type"), "app_mention") == 0;
    m.is_mention = mention_event || mentions(text, bot_user_id);
    if (!mention_event && !str_eq(m.channel_type, "im")) {
        /* Outside DMs a plain message counts only through its app_mention event; a
         * file_share or thread_broadcast counts when it mentions the bot or replies in a
         * thread (then only if the thread is the bot's: followup_only). */
        if (!present(ev, "subtype") || (!m.is_mention && !m.in_thread)) {
            *why = "not addressed to the bot";
            return 0;
        }
        m.followup_only = !m.is_mention;
    }
    if (!(m.text = prompt_text(text, bot_user_id)))
        return jb_err_set(err, JB_ENOMEM, "message text");
    *ret = m;
    m = (struct slack_message){0};
    return 1;
}

/* ---- reaction_added ---------------------------------------------------------------- */

void slack_reaction_release(struct slack_reaction *r)
{
    if (!r) return;
    char **fields[] = {&r->event_id, &r->user, &r->reaction, &r->channel, &r->ts, &r->item_user};
    for (size_t i = 0; i < JB_ARRAY_LEN(fields); i++)
        free(*fields[i]);
    *r = (struct slack_reaction){0};
}

static inline void reaction_releasep(struct slack_reaction *r)
{
    slack_reaction_release(r);
}

int slack_event_is_reaction(const json_t *payload)
{
    const char *ptype = jstr(payload, "type");
    const char *type = jstr(json_object_get(payload, "event"), "type");
    return ptype && type && !strcmp(ptype, "event_callback") && !strcmp(type, "reaction_added");
}

/* A non-empty string member of o, or NULL. */
static const char *jstr_set(const json_t *o, const char *key)
{
    const char *s = jstr(o, key);
    return s && *s ? s : NULL;
}

int slack_reaction_interpret(const json_t *payload, struct slack_reaction *ret, const char **why,
                             struct jb_err *err)
{
    const char *unused;
    if (!why) why = &unused;
    *why = NULL;
    if (!slack_event_is_reaction(payload))
        return jb_err_set(err, JB_EPROTO, "not a reaction_added event_callback");
    const json_t *ev = json_object_get(payload, "event");
    const json_t *item = json_object_get(ev, "item");
    const char *event_id = jstr_set(payload, "event_id"), *user = jstr_set(ev, "user");
    const char *reaction = jstr_set(ev, "reaction");
    if (!event_id || !user || !reaction || !json_is_object(item))
        return jb_err_set(err, JB_EPROTO,
                          "reaction_added without event_id, user, reaction or item object");
    const char *itype = jstr(item, "type");
    if (!itype || strcmp(itype, "message") != 0) {
        *why = "not on a message";
        return 0;
    }
    const char *channel = jstr_set(item, "channel"), *ts = jstr_set(item, "ts");
    if (!channel || !ts || strlen(channel) > 40 || strlen(ts) > 40)
        return jb_err_set(err, JB_EPROTO, "reaction_added on a message without channel or ts");
    jb_auto(reaction_releasep) struct slack_reaction r = {0};
    if (dup_into(&r.event_id, event_id, err) < 0 || dup_into(&r.user, user, err) < 0 ||
        dup_into(&r.reaction, reaction, err) < 0 || dup_into(&r.channel, channel, err) < 0 ||
        dup_into(&r.ts, ts, err) < 0 || dup_into(&r.item_user, jstr_set(ev, "item_user"), err) < 0)
        return -1;
    *ret = r;
    r = (struct slack_reaction){0};
    return 1;
}

/* ---- files[] of file_share (protocol doc 2.6) ------------------------------------- */

/* 1 when a file can be downloaded at all: it has a url_private_download and is not a
 * placeholder (tombstone: deleted; hidden_by_limit: over the workspace's plan; external:
 * lives on another service, no bytes at Slack). */
static int file_fetchable(const json_t *f)
{
    const char *mode = jstr(f, "mode");
    const char *url = jstr(f, "url_private_download");
    if (!url || !*url) return 0;
    return !mode || (strcmp(mode, "tombstone") != 0 && strcmp(mode, "hidden_by_limit") != 0 &&
                     strcmp(mode, "external") != 0);
}

static int skip_big(struct jb_strv *skipped, const char *name, long long size, struct jb_err *err)
{
    char sz[32], line[512];
    jb_fmt_size(size, sz, sizeof sz);
    snprintf(line, sizeof line, "%s (%s)", name, sz);
    return skipped ? jb_strv_push(skipped, line, err) : 0;
}

int slack_files_normalise(const json_t *files, long long max_bytes, char **ret_json,
                          struct jb_strv *skipped, struct jb_err *err)
{
    *ret_json = NULL;
    if (!json_is_array(files)) return 0;
    jb_auto(json_decrefp) json_t *out = json_array();
    if (!out) return jb_err_set(err, JB_ENOMEM, "files");
    size_t i;
    const json_t *f;
    json_array_foreach(files, i, f)
    {
        const json_t *jsize = json_object_get(f, "size");
        const char *name = jstr(f, "name");
        if (!json_is_object(f) || !file_fetchable(f) || !json_is_integer(jsize) ||
            json_integer_value(jsize) < 0)
            continue;
        if (!name || !*name) name = jstr(f, "id") ? jstr(f, "id") : "file";
        long long size = (long long)json_integer_value(jsize);
        if (size > max_bytes) {
            if (skip_big(skipped, name, size, err) < 0) return -1;
            continue;
        }
        const char *mime = jstr(f, "mimetype");
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "url",
                              jstr(f, "url_private_download"), "size", (json_int_t)size, "mimetype",
                              mime ? mime : "application/octet-stream");
        if (!o || json_array_append_new(out, o) < 0)
            return jb_err_set(err, JB_EPROTO, "file %zu: name or URL is not UTF-8", i);
    }
    if (json_array_size(out) == 0) return 0;
    if (!(*ret_json = json_dumps(out, JSON_COMPACT))) return jb_err_set(err, JB_ENOMEM, "files");
    return 0;
}

/* ---- interactive payloads: block_actions ---------------------------------------------- */

#define ACTION_FIELD_MAX 2000 /* a button value's limit; nothing we read is longer */

void slack_block_action_release(struct slack_block_action *a)
{
    if (!a) return;
    free(a->action_id);
    free(a->value);
    free(a->user);
    free(a->channel);
    free(a->message_ts);
    free(a->thread_ts);
    *a = (struct slack_block_action){0};
}

/* A string field of o that is absent (NULL, when optional) or a string of printable
 * length; -1 when present with another type or too long. */
static int action_field(const json_t *o, const char *key, int required, char **out,
                        struct jb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return jb_err_set(err, JB_EPROTO, "block_actions: no %s", key);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || strlen(s) > ACTION_FIELD_MAX)
        return jb_err_set(err, JB_EPROTO, "block_actions: %s is not a string of at most %d bytes",
                          key, ACTION_FIELD_MAX);
    return dup_into(out, s, err);
}

int slack_block_action_parse(const json_t *payload, struct slack_block_action *ret,
                             const char **why, struct jb_err *err)
{
    if (!json_is_object(payload)) return jb_err_set(err, JB_EPROTO, "interactive: no payload");
    const char *kind = jstr(payload, "type"); /* an interactive payload's, not an event's */
    if (!kind) return jb_err_set(err, JB_EPROTO, "interactive: payload without a type");
    if (strcmp(kind, "block_actions") != 0) {
        if (why) *why = "not block_actions";
        return 0;
    }
    json_t *actions = json_object_get(payload, "actions");
    json_t *first = json_array_get(actions, 0);
    json_t *user = json_object_get(payload, "user");
    json_t *box = json_object_get(payload, "container");
    json_t *chan = json_object_get(payload, "channel");
    if (!json_is_object(first) || !json_is_object(user))
        return jb_err_set(err, JB_EPROTO, "block_actions: no user or no actions");
    struct slack_block_action a = {0};
    int rc = action_field(first, "action_id", 1, &a.action_id, err) < 0 ||
                     action_field(first, "value", 0, &a.value, err) < 0 ||
                     action_field(user, "id", 1, &a.user, err) < 0 ||
                     (json_is_object(box) &&
                      (action_field(box, "channel_id", 0, &a.channel, err) < 0 ||
                       action_field(box, "message_ts", 0, &a.message_ts, err) < 0 ||
                       action_field(box, "thread_ts", 0, &a.thread_ts, err) < 0)) ||
                     (!a.channel && json_is_object(chan) &&
                      action_field(chan, "id", 0, &a.channel, err) < 0)
                 ? -1
                 : 0;
    if (rc == 0 && !a.value) rc = dup_into(&a.value, "", err);
    if (rc == 0 && !a.channel) rc = jb_err_set(err, JB_EPROTO, "block_actions: no channel");
    if (rc < 0) {
        slack_block_action_release(&a);
        return -1;
    }
    *ret = a;
    return 1;
}

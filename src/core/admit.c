/* core/admit.c -- what the bot does with a message a frontend received: ignore it,
 * refuse it (allowlist), run a thread command (`status`, `abort`/`stop`), hold it back
 * (rate limit) or store and queue it for a turn; and the channel-wide commands. The
 * frontend renders the decision; it decides nothing itself. */
#include <ctype.h>
#include <string.h>

#include "core/core-int.h"
#include "core/policy.h"

enum thread_cmd { CMD_NONE, CMD_STATUS, CMD_ABORT };

/* "status", "abort" or "stop" alone in a message of a thread. */
static enum thread_cmd thread_command(const char *text)
{
    char word[16];
    size_t n = 0;
    while (*text && isspace((unsigned char)*text))
        text++;
    while (*text && !isspace((unsigned char)*text) && n < sizeof word - 1)
        word[n++] = (char)tolower((unsigned char)*text++);
    word[n] = '\0';
    while (*text && isspace((unsigned char)*text))
        text++;
    if (*text) return CMD_NONE;
    if (!strcmp(word, "status")) return CMD_STATUS;
    if (!strcmp(word, "abort") || !strcmp(word, "stop")) return CMD_ABORT;
    return CMD_NONE;
}

/* A message that runs no turn: recorded once (a redelivery or the twin event of the same
 * post is a duplicate), then refused, a command, or empty. */
static int answer_only(struct core *c, const struct core_msg *m, int allowed, enum thread_cmd cmd,
                       struct core_decision *d, struct jb_err *err)
{
    int seen = core_event_once(c, m->event_id, m->dedupe_key, err);
    if (seen < 0) return -1;
    if (seen) {
        d->verdict = CORE_DUPLICATE;
    } else if (!allowed) {
        d->verdict = CORE_REFUSED;
    } else if (cmd == CMD_STATUS) {
        d->verdict = CORE_STATUS;
        core_status(c, m->thread_key, d->text, sizeof d->text);
    } else if (cmd == CMD_ABORT) {
        d->verdict = core_abort(c, m->thread_key, m->user) ? CORE_ABORTED : CORE_NOT_RUNNING;
    } else {
        d->verdict = CORE_EMPTY;
    }
    return 0;
}

/* Over RATE_LIMIT_PER_MINUTE (core_submit_event() recorded it as seen, so its twin event
 * is dropped too): answered with when to retry; nothing is stored for a turn, no sandbox is
 * made. */
static void rate_limited(struct core *c, int retry_s, struct core_decision *d)
{
    struct policy *p = core_policy_get(c);
    policy_rate_message(retry_s, p->rate_per_minute, d->text, sizeof d->text);
    policy_unref(p);
    d->verdict = CORE_RATE_LIMITED;
    d->retry_s = retry_s;
}

static int decide(struct core *c, const struct core_msg *m, struct core_decision *d,
                  struct jb_err *err)
{
    *d = (struct core_decision){.verdict = CORE_IGNORED};
    if (m->followup_only && !core_knows_thread(c, m->thread_key)) return 0;
    enum thread_cmd cmd = thread_command(m->text);
    int allowed = core_allowed(c, m->user, m->channel);
    if (!allowed || cmd != CMD_NONE || (!*m->text && !m->files))
        return answer_only(c, m, allowed, cmd, d, err);
    /* One store transaction: a redelivered or twin event is found before a token is spent. */
    int retry_s = 0;
    int rc = core_submit_event(c, m->event_id, m->dedupe_key, m->thread_key, m->user, m->text,
                               m->ref, m->files, &retry_s, err);
    if (rc < 0) return -1; /* the store fails: the frontend says so, once */
    if (rc == 3)
        rate_limited(c, retry_s, d);
    else
        d->verdict = rc == 1 ? CORE_DUPLICATE : rc == 2 ? CORE_PASSED : CORE_QUEUED;
    return 0;
}

int core_message(struct core *c, const struct core_msg *m, struct core_decision *d,
                 struct jb_err *err)
{
    int rc = decide(c, m, d, err);
    if (rc == 0 && d->verdict == CORE_DUPLICATE)
        jb_metrics_add(c->metrics, JB_M_EVENTS_DEDUPED, NULL, NULL, 1);
    return rc;
}

void core_channel_command(struct core *c, const char *user, const char *channel, const char *text,
                          struct core_channel_answer *a)
{
    *a = (struct core_channel_answer){.cmd = CORE_CMD_HELP};
    if (text) sscanf(text, " %31s", a->word);
    if (!core_allowed(c, user, channel)) {
        a->refused = 1;
        return;
    }
    /* Thread keys of a channel start with its id: "C123:1700000000.000100". */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s:", channel);
    if (!strcmp(a->word, "status")) {
        a->cmd = CORE_CMD_STATUS;
        core_running_count(c, prefix, &a->running, &a->running_here);
    } else if (!strcmp(a->word, "cancel") || !strcmp(a->word, "stop")) {
        a->cmd = CORE_CMD_CANCEL;
        a->cancelled = core_abort_user(c, prefix, user);
    } else if (*a->word && strcmp(a->word, "help") != 0) {
        a->cmd = CORE_CMD_UNKNOWN;
    }
}

/* frontend/frontend.h -- where answers go: a table of frontends ("terminal" now, Slack
 * later). The core calls these from worker threads; implementations serialise output.
 * Every text is plain markdown from the agent; a frontend renders it its own way. */
#ifndef JB_FRONTEND_H
#define JB_FRONTEND_H

#include <stdio.h>

#include "util/util.h"

struct frontend;

/* refs[i] is the frontend's reference to the i-th message of a turn (Slack: "CHANNEL:TS"),
 * or NULL; n >= 1. Everything is borrowed for the call. */
struct frontend_ops {
    int version;      /* 1 */
    const char *name; /* "terminal", "slack" */
    /* Work on a turn started: the agent is running. */
    void (*started)(struct frontend *fe, const char *thread_key, const char *user,
                    const char *const *refs, size_t n);
    /* Progress while the agent works: a tool in use, a retry, a wait. */
    void (*progress)(struct frontend *fe, const char *thread_key, const char *status);
    /* The answer of a turn. */
    int (*answer)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                  const char *markdown, struct jb_err *err);
    /* A turn failed; message is short, friendly and already free of secrets. */
    int (*fail)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                const char *message, struct jb_err *err);
    /* The turn is over and recorded (after answer() or fail()): ok or not. Optional. */
    void (*finished)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                     int ok);
    /* A reply that is not an agent's answer (status, refusals, notes). */
    int (*notice)(struct frontend *fe, const char *thread_key, const char *text,
                  struct jb_err *err);
    /* A file the agent left in its outbox, open for reading (borrowed); NULL when the
     * frontend cannot deliver files (then they stay in the outbox). */
    int (*upload)(struct frontend *fe, const char *thread_key, int fd, const char *name,
                  struct jb_err *err);
    /* Optional: what was said in the thread before the bot joined it (the first turn of a
     * conversation started inside an existing thread), as text for the agent; caller
     * frees; NULL when there is nothing. */
    char *(*context)(struct frontend *fe, const char *thread_key, const char *ref);
    /* Optional: download a file a user shared (url from the message's files) into fd (the
     * caller's, written from its offset), at most max bytes. NULL when the frontend has no
     * files (terminal). Errors are fit for the user: no secrets in them. */
    int (*fetch)(struct frontend *fe, const char *url, int fd, long long max, struct jb_err *err);
};

/* Files users share are fetched up to this size each; larger ones are skipped (and the user
 * told) when the message comes in. */
#define FRONTEND_FILE_MAX (20LL << 20) /* 20 MiB */

struct frontend {
    const struct frontend_ops *ops;
    void *priv;
};

/* An answer (or notice) is posted in Slack as at most this many messages of
 * MAX_RESPONSE_LENGTH characters: a longer one gets the first ones, then the whole text as
 * the file SLACK_ANSWER_FILE and a last message saying it was cut. A hostile or confused
 * agent cannot make the bot flood a channel. */
#define SLACK_ANSWER_MESSAGES_MAX 4
#define SLACK_ANSWER_FILE         "answer.md"

struct jb_config;
struct slack_web;
/* The Slack frontend: posts through w (borrowed), mrkdwn in chunks of
 * cfg->max_response_length, reactions, one status message per running thread, uploads.
 * Owned by the caller; release with frontend_slack_free(). */
struct frontend *frontend_slack_new(struct slack_web *w, const struct jb_config *cfg,
                                    struct jb_err *err);
void frontend_slack_free(struct frontend *fe);
/* `janebot serve`'s Slack side (serve.c): Socket Mode events to the core, its decisions
 * and answers back to Slack. cmd/serve.c runs the process around it. */
struct core;
struct slack_serve;
/* Signs in (auth.test) and makes the frontend. *ret is the caller's: slack_serve_free().
 * Errors say what to fix (the token, Slack's address). */
int slack_serve_new(const struct jb_config *cfg, struct slack_serve **ret, struct jb_err *err);
/* The frontend to give core_new(); owned by sv. */
struct frontend *slack_serve_frontend(struct slack_serve *sv);
/* Queues what the last run accepted but did not answer, then opens the socket: events
 * go to core (borrowed until slack_serve_stop()). */
int slack_serve_start(struct slack_serve *sv, struct core *core, struct jb_err *err);
/* Closes the socket: no event reaches the core afterwards. */
void slack_serve_stop(struct slack_serve *sv);
void slack_serve_free(struct slack_serve *sv); /* accepts NULL */

/* The terminal frontend: answers to out, progress to err only when show_progress.
 * Owned by the caller; release with frontend_terminal_free(). NULL when out of memory. */
struct frontend *frontend_terminal_new(FILE *out, FILE *err, int show_progress);
void frontend_terminal_free(struct frontend *fe);

#endif

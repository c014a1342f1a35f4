/* frontend/frontend.h -- the two frontends, the terminal and Slack: each implements the
 * seam the core defines (struct frontend_ops, core/core.h); the core calls them from worker
 * threads, and the implementations serialise their output. */
#ifndef JB_FRONTEND_H
#define JB_FRONTEND_H

#include <stdio.h>

#include "core/core.h"
#include "util/util.h"

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
                                    const char *bot_user, struct jb_err *err);
void frontend_slack_free(struct frontend *fe);
/* `janebot serve`'s Slack side (serve.c): Socket Mode events to the core, its decisions
 * and answers back to Slack. cmd/serve.c runs the process around it. */
struct core;
struct slack_serve;
/* Signs in (auth.test) and makes the frontend; metrics (borrowed, may be NULL) counts the
 * Web API calls and the Socket Mode events. *ret is the caller's: slack_serve_free().
 * Errors say what to fix (the token, Slack's address). */
int slack_serve_new(const struct jb_config *cfg, struct jb_metrics *metrics,
                    struct slack_serve **ret, struct jb_err *err);
/* The frontend to give core_new(); owned by sv. */
struct frontend *slack_serve_frontend(struct slack_serve *sv);
/* Queues what the last run accepted but did not answer, then opens the socket: events
 * go to core (borrowed until slack_serve_stop()). */
int slack_serve_start(struct slack_serve *sv, struct core *core, struct jb_err *err);
/* 1 while Socket Mode is connected (any thread). */
int slack_serve_connected(struct slack_serve *sv);
/* Closes the socket: no event reaches the core afterwards. Accepts NULL. */
void slack_serve_stop(struct slack_serve *sv);
/* Closes the socket, waits for replies being sent, removes the status messages still up
 * (within about 2 s) and frees sv. No turn may be running. Accepts NULL. */
void slack_serve_free(struct slack_serve *sv);

/* The terminal frontend: answers to out, progress to err only when show_progress.
 * Owned by the caller; release with frontend_terminal_free(). NULL when out of memory. */
struct frontend *frontend_terminal_new(FILE *out, FILE *err, int show_progress);
void frontend_terminal_free(struct frontend *fe);
/* `janebot chat` asks approvals on the terminal: the question is printed, and the next line
 * typed is its answer (y: allow once, a: allow for this thread, n: deny). 1 with the id of
 * the question shown now (copied into id, n bytes), 0 when none waits. */
int frontend_terminal_question(struct frontend *fe, char *id, size_t n);
/* The input ended: a question from now on is denied at once (nobody can answer). */
void frontend_terminal_input_closed(struct frontend *fe);

#endif

/* frontend/status.h -- the status writer of the Slack frontend (status.c): one thread that
 * owns the "Working on it…" message of every running turn. Callers (worker threads, the
 * exec's output callbacks) only record the newest status; the writer talks to Slack. */
#ifndef JB_FRONTEND_STATUS_H
#define JB_FRONTEND_STATUS_H

#include "util/util.h"

struct slack_web;
struct status_writer;

/* Start the writer thread; it posts through w (borrowed; must outlive the writer). NULL with
 * err filled when the thread cannot start. Release with status_writer_free(). */
struct status_writer *status_writer_new(struct slack_web *w, struct jb_err *err);
/* Stop the writer: status messages still up are removed while Slack answers within about
 * two seconds, then any call in flight is abandoned and the thread joined. NULL is fine. */
void status_writer_free(struct status_writer *sw);

/* None of these waits on Slack: each takes the writer's mutex for a few pointer moves.
 * thread_key is "CHANNEL:THREAD_TS" (borrowed); other keys are ignored. */
/* A turn started in thread_key: a status message is to be posted in the thread. */
void status_writer_begin(struct status_writer *sw, const char *thread_key);
/* The newest status of the turn (plain markdown, borrowed); replaces one not yet shown. */
void status_writer_set(struct status_writer *sw, const char *thread_key, const char *status);
/* The turn is over: its status message is removed and never updated again; one not yet
 * posted is never posted. */
void status_writer_end(struct status_writer *sw, const char *thread_key);

#endif

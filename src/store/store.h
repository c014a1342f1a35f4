/* store/store.h -- SQLite state: versioned migrations, sessions, the message inbox and
 * the per-turn audit.
 *
 * One struct store is one connection; open one per thread that touches the database
 * (WAL: one writer, many readers; busy timeout 5 s). Writes are short transactions.
 * Opening applies pending migrations and refuses a database newer than this binary.
 *
 * Errors: "store: <what>: <sqlite's message>" with JB_ETIMEOUT when the database stayed
 * locked past the busy timeout, JB_ENOMEM, else JB_ESYS; JB_ENOTFOUND for a missing row;
 * JB_EPROTO for a state or outcome not listed below. Outputs are written only on success. */
#ifndef JB_STORE_H
#define JB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct store;

#define STORE_SCHEMA_VERSION 10

/* SQLite's process-wide memory settings for a long-running process with several
 * connections; before any store_open() and before other threads start (SQLite refuses it
 * once it is in use, and then its defaults stay: this only costs memory). */
void store_tune_memory(void);
/* Creates the file (mode 0600) if needed; refuses a symlink. *ret is the caller's; close
 * with store_close(). JB_ECONFIG when the schema is newer than STORE_SCHEMA_VERSION. */
int store_open(const char *path, struct store **ret, struct jb_err *err);
void store_close(struct store *st);
int store_schema_version(struct store *st); /* PRAGMA user_version */
/* Whether the database takes a write now: a row is written in a transaction that is then
 * rolled back (nothing stays). 0, or -1 with err (locked, read-only, disk full…). */
int store_write_check(struct store *st, struct jb_err *err);
/* For a connection whose writes are on a latency path (the one that stores Slack events
 * before they are acknowledged): never checkpoint the WAL inside a commit on st (SQLite's
 * automatic checkpoint, an fsync in the middle of a write); a thread of st's own, on a
 * connection of its own, checkpoints (PASSIVE) whenever st's commits have taken the WAL
 * past 1000 pages. And while another connection holds the write lock, retry every 50 us
 * (backing off to 1 ms) instead of SQLite's 1-100 ms sleeps, within the same 5 s. Durability
 * of commits is unchanged. store_close(st) stops the thread. 0, or -1 with err. */
int store_low_latency(struct store *st, struct jb_err *err);

/* ---- sessions: thread key -> agent conversation ---- */

struct session_row {
    char *thread_key;
    char *agent;
    char *agent_session_id; /* NULL until the agent told us one */
    char *sandbox;
    int64_t turns;
    int64_t created_at, last_active; /* Unix ms */
};
void session_row_release(struct session_row *r);
void session_rows_free(struct session_row *v, size_t n);

/* 0 and *ret filled when found; -1 with JB_ENOTFOUND when there is none. */
int store_session_get(struct store *st, const char *thread_key, struct session_row *ret,
                      struct jb_err *err);
/* Record a finished turn: creates the row if needed, sets agent, sandbox and (when not
 * NULL) the session id, increments turns, touches last_active. */
int store_session_touch(struct store *st, const char *thread_key, const char *agent,
                        const char *agent_session_id, const char *sandbox, struct jb_err *err);
/* Forget the agent conversation (its transcript is gone); the row stays.
 * clear_id and delete: JB_ENOTFOUND when there is no such session. */
int store_session_clear_id(struct store *st, const char *thread_key, struct jb_err *err);
int store_session_delete(struct store *st, const char *thread_key, struct jb_err *err);
/* Ordered by last_active, newest first. *ret freed with session_rows_free(). */
int store_session_list(struct store *st, struct session_row **ret, size_t *ret_n,
                       struct jb_err *err);

/* ---- inbox: every accepted message, until its turn has run ---- */

struct inbox_msg {
    int64_t id;
    char *thread_key;
    char *user_id;
    char *text;
    char *ref;           /* frontend reference, or NULL */
    char *files;         /* files shared with it (JSON array, see store_inbox_add), or NULL */
    int64_t received_at; /* Unix ms */
    int answering;       /* its answer was being sent when the process stopped */
};
void inbox_msgs_free(struct inbox_msg *v, size_t n); /* the strings and v */
void inbox_msg_release(struct inbox_msg *m);         /* m's strings; m is zeroed */

/* ref (may be NULL): the frontend's reference to the message. files (may be NULL): the
 * files shared with it, a JSON array of {"name","url","size","mimetype"} kept as given. */
int store_inbox_add(struct store *st, const char *thread_key, const char *user_id, const char *text,
                    const char *ref, const char *files, int64_t *ret_id, struct jb_err *err);
/* Record a Slack event that runs no turn (a command, a refusal): 0 the first time, 1 when
 * that event or that post was seen before, -1 on error. */
int store_event_seen(struct store *st, const char *event_id, const char *dedupe_key,
                     struct jb_err *err);
/* 1 when that Slack event or that post was already recorded (store_event_seen/accept),
 * 0 when not, -1 on error. Reads only. */
int store_event_known(struct store *st, const char *event_id, const char *dedupe_key,
                      struct jb_err *err);
/* A Slack event, exactly once: in one transaction, record event_id and dedupe_key and add
 * the message to the inbox. Returns 0 (added, *ret_id set), 1 when that event or that
 * post was accepted before (nothing added), -1 on error. store_event_admit() without a
 * rate bucket. */
int store_event_accept(struct store *st, const char *event_id, const char *dedupe_key,
                       const char *thread_key, const char *user_id, const char *text,
                       const char *ref, const char *files, int64_t *ret_id, struct jb_err *err);
/* state: "done" or "failed". JB_ENOTFOUND for an unknown id. */
int store_inbox_finish(struct store *st, int64_t id, const char *state, struct jb_err *err);
/* The message's answer is about to be sent: a pending message becomes "answering" (still
 * pending for store_inbox_pending(), with answering set), so that after a crash the
 * caller can look whether the answer got out before sending it again. */
int store_inbox_answering(struct store *st, int64_t id, struct jb_err *err);
/* One pending (or answering) message by id: 0 and *ret filled (its strings are the
 * caller's: inbox_msg_release()); JB_ENOTFOUND when there is no such message or it is
 * finished. */
int store_inbox_get(struct store *st, int64_t id, struct inbox_msg *ret, struct jb_err *err);
/* Pending messages whose thread key starts with prefix ("" or NULL = all; compared
 * literally, no wildcards), oldest first. *ret freed with inbox_msgs_free(). */
int store_inbox_pending(struct store *st, const char *prefix, struct inbox_msg **ret, size_t *ret_n,
                        struct jb_err *err);

/* ---- turn audit ---- */

int store_turn_begin(struct store *st, const char *thread_key, const char *user_id,
                     const char *sandbox, int64_t *ret_id, struct jb_err *err);
/* outcome: "ok", "error", "timeout", "cancelled", "no_answer". JB_ENOTFOUND for an
 * unknown id. */
int store_turn_end(struct store *st, int64_t id, const char *outcome, int exit_status,
                   int64_t input_tokens, int64_t output_tokens, struct jb_err *err);

struct turn_row {
    int64_t id;
    char *thread_key, *user_id, *sandbox, *outcome; /* outcome NULL while running */
    char *backend;                                  /* NULL for turns before migration 5 */
    int64_t started_at, ended_at, duration_ms;      /* ended_at 0 while running */
    int64_t exec_ms;                                /* wall time in the sandbox; 0 unknown */
    int exit_status;
};
void turn_rows_free(struct turn_row *v, size_t n);
/* Newest first, at most limit rows; thread_key NULL = all threads. *ret freed with
 * turn_rows_free(). */
int store_turn_list(struct store *st, const char *thread_key, size_t limit, struct turn_row **ret,
                    size_t *ret_n, struct jb_err *err);
/* Turns left running by a crash are closed as "interrupted"; returns how many, or -1.
 * Call at start-up, before any turn begins. */
int store_turn_close_stale(struct store *st, struct jb_err *err);

/* ---- scoped LLM tokens and usage (tokens.c) ---- */

/* hash: hex sha256 of the token; times Unix ms. */
int store_token_add(struct store *st, const char *hash, const char *thread_key, const char *user,
                    const char *sandbox, int64_t expires_at, struct jb_err *err);
/* 0 and *ret_thread (caller frees) when the token is known, unrevoked and unexpired;
 * -1 with JB_EDENIED (revoked or expired: the message says which) or JB_ENOTFOUND. */
int store_token_check(struct store *st, const char *hash, char **ret_thread, struct jb_err *err);
/* One request through the LLM proxy, as counted. */
struct llm_request_use {
    const char *thread_key, *user, *provider, *model; /* user NULL: "?"; model "" unknown */
    long status;
    struct jb_tokens t;
};
/* A request went through: recorded with its model and tokens under today's (UTC) date,
 * added to the token's own counts (in: every prompt token, cached or not), and the
 * token's expiry pushed to expires_at. */
int store_llm_request_add(struct store *st, const char *hash, const struct llm_request_use *u,
                          int64_t expires_at, struct jb_err *err);
/* Revoke one token (hash) or every token of a thread (thread_key); returns how many. */
int store_token_revoke(struct store *st, const char *hash, const char *thread_key,
                       struct jb_err *err);

struct token_row {
    char *thread_key, *user_id, *sandbox;
    int64_t created_at, expires_at, last_used;
    int revoked;
    int64_t input_tokens, output_tokens;
};
void token_rows_free(struct token_row *v, size_t n);
int store_token_list(struct store *st, struct token_row **ret, size_t *ret_n, struct jb_err *err);

/* Rows of days before `before` ("YYYY-MM-DD") become one per day, user, thread, provider
 * and model (totals kept, "requests" says how many). */
int store_llm_requests_fold(struct store *st, const char *before, struct jb_err *err);
/* Tokens of every kind a user spent today (UTC): what the daily cap counts. */
int store_usage_today(struct store *st, const char *user, int64_t *ret_total, struct jb_err *err);
struct usage_row {
    char *user_id, *thread_key, *model; /* model "" when the provider named none */
    struct jb_tokens t;
    int64_t requests;
};
void usage_rows_free(struct usage_row *v, size_t n);
/* Totals per user, thread and model since day ("YYYY-MM-DD", NULL = all), biggest first.
 * *ret freed with usage_rows_free(). */
int store_usage_list(struct store *st, const char *since, struct usage_row **ret, size_t *ret_n,
                     struct jb_err *err);

/* ---- approvals (approvals.c) ---- */

/* One decision about a tool the agent wanted to use. Strings borrowed. */
struct approval_row {
    const char *thread_key, *requester, *tool;
    const char *input_sha256; /* of the tool's input, never the input itself */
    const char *answer;       /* "allow_once", "allow_thread", "deny" */
    const char *decided_by;   /* a user id, or "timeout", "stop" */
    const char *reason;       /* may be NULL */
    const char *domain;       /* an egress ask: "name:port"; NULL for a tool */
    int64_t asked_at, decided_at;
};
int store_approval_add(struct store *st, const struct approval_row *r, struct jb_err *err);
/* How many decisions the thread has (for `janebot` audits and tests). */
int store_approval_count(struct store *st, const char *thread_key, int64_t *ret,
                         struct jb_err *err);
/* "Allow for this thread": tool (as the agent names it) needs no more asking there. */
int store_allow_add(struct store *st, const char *thread_key, const char *tool, const char *by,
                    struct jb_err *err);
/* 1 when the thread allowed tool, 0 when not, -1 on error. */
int store_allow_has(struct store *st, const char *thread_key, const char *tool, struct jb_err *err);
/* ---- the thread's own egress list (egress.c) ---- */

/* A name a person let the thread's sandbox reach ("Allow for this thread"). Owned. */
struct egress_row {
    char *name;     /* normalised host name */
    char *added_by; /* the user id who allowed it */
    int64_t added_at;
};
void egress_rows_free(struct egress_row *v, size_t n);
/* Add name (normalised) to the thread's list; adding it again updates who and when. */
int store_egress_add(struct store *st, const char *thread_key, const char *name, const char *by,
                     struct jb_err *err);
/* 1 when name is on the thread's list, 0 when not, -1 on error. */
int store_egress_has(struct store *st, const char *thread_key, const char *name,
                     struct jb_err *err);
/* The thread's names, sorted. *ret (NULL when none) freed with egress_rows_free(). */
int store_egress_list(struct store *st, const char *thread_key, struct egress_row **ret,
                      size_t *ret_n, struct jb_err *err);
/* Remove name: -1 with JB_ENOTFOUND (and a message saying so) when it is not listed. */
int store_egress_remove(struct store *st, const char *thread_key, const char *name,
                        struct jb_err *err);

/* Forget the thread's allowances, its own egress list and its decisions (with its sandbox). */
int store_allow_forget(struct store *st, const char *thread_key, struct jb_err *err);

/* ---- retention (retention.c) ---- */

#define STORE_EVENTS_MIN_DAYS 7   /* Slack event ids: dedupe outlives any redelivery */
#define STORE_USAGE_FOLD_DAYS 31  /* per-request usage rows, when nothing is deleted */
#define STORE_USAGE_KEEP_DAYS 400 /* daily usage totals: a year and a month */
/* Rows each table lost. */
struct store_retention {
    int64_t events, inbox, turns, tokens, usage, approvals;
};
/* Forget the history older than days (Unix ms now_ms): Slack event ids (never younger
 * than STORE_EVENTS_MIN_DAYS), finished inbox messages, ended turns, expired or revoked
 * LLM tokens; per-request LLM usage is folded into daily totals, kept for
 * STORE_USAGE_KEEP_DAYS. Pending messages, running turns and live tokens always stay.
 * days <= 0: nothing is deleted (usage is still folded after STORE_USAGE_FOLD_DAYS).
 * ret (may be NULL): what went. Logs what went (info) or why not (warn). */
int store_retention_run(struct store *st, int64_t now_ms, int days, struct store_retention *ret,
                        struct jb_err *err);

/* ---- rate-limit buckets (buckets.c) ---- */

/* The stored state of one token bucket; fn decides. found is 0 when key has none yet.
 * fn returns what store_bucket_update() returns (>= 0), after updating *tokens and
 * *updated_ms, which are then stored; a negative return stores nothing. */
typedef int (*store_bucket_fn)(void *ud, int found, double *tokens, int64_t *updated_ms);
/* Read, let fn update, and write the bucket of key in one write transaction (so two
 * processes sharing the database cannot both spend the last token). Returns fn's result,
 * or -1 with err. */
int store_bucket_update(struct store *st, const char *key, store_bucket_fn fn, void *ud,
                        struct jb_err *err);
/* A Slack event for a turn, as store_event_accept() records it and with its sender's rate
 * bucket taken, all in one write transaction (one commit before the event's ack). Borrowed;
 * bucket_key NULL: no rate limit. */
struct store_admit {
    const char *event_id, *dedupe_key, *thread_key, *user_id, *text, *ref, *files;
    const char *bucket_key;
    store_bucket_fn bucket_fn;
    void *bucket_ud;
};
/* 0: recorded and added to the inbox (*ret_id, may be NULL); 1: that event or that post
 * was recorded before (nothing changed); 2: rate limited (bucket_fn said 1): the event is
 * recorded, nothing is added; -1: error, nothing recorded. A bucket that cannot be read or
 * written lets the message through: it is added, and bucket_err says why. */
int store_event_admit(struct store *st, const struct store_admit *a, int64_t *ret_id,
                      struct jb_err *bucket_err, struct jb_err *err);

/* ---- remote sandboxes (remote.c): thread -> sprite, and the warm pool ---- */

struct sandbox_name_row {
    char *thread_key, *name;
    char *golden;                  /* checkpoint id of its state after set-up, or NULL */
    char *setup_hash;              /* which set-up made it, or NULL */
    int64_t created_at, last_used; /* Unix ms */
};
void sandbox_name_row_release(struct sandbox_name_row *r);
void sandbox_name_rows_free(struct sandbox_name_row *v, size_t n);
/* By thread key (or, with by_name, by the sprite's name). JB_ENOTFOUND when none. */
int store_name_get(struct store *st, const char *key, int by_name, struct sandbox_name_row *ret,
                   struct jb_err *err);
/* Insert or replace the row of thread_key; golden and setup_hash may be NULL. */
int store_name_set(struct store *st, const char *thread_key, const char *name, const char *golden,
                   const char *setup_hash, struct jb_err *err);
int store_name_touch(struct store *st, const char *thread_key, struct jb_err *err);
/* JB_ENOTFOUND when thread_key has no row. */
int store_name_delete(struct store *st, const char *thread_key, struct jb_err *err);
/* Every row, by name. *ret freed with sandbox_name_rows_free(). */
int store_name_list(struct store *st, struct sandbox_name_row **ret, size_t *ret_n,
                    struct jb_err *err);

/* A pool sprite, set up (setup_hash) and ready to claim. */
int store_pool_add(struct store *st, const char *name, const char *golden, const char *setup_hash,
                   struct jb_err *err);
/* In one write transaction: take the oldest ready pool sprite made by setup_hash, remove
 * it from the pool and make it thread_key's (*ret filled, the caller's to release).
 * JB_ENOTFOUND when the pool has none. */
int store_pool_claim(struct store *st, const char *thread_key, const char *setup_hash,
                     struct sandbox_name_row *ret, struct jb_err *err);
/* Names of the pool's sprites; with stale_for != NULL only those not made by it. */
int store_pool_names(struct store *st, const char *stale_for, struct jb_strv *ret,
                     struct jb_err *err);
int store_pool_remove(struct store *st, const char *name, struct jb_err *err);

/* ---- host uids of local sandboxes (uids.c) ---- */

#define STORE_UID_OFFSETS 65536 /* offsets 0..65535 above JANEBOT_SANDBOX_UID_BASE */
/* The uid offset of sandbox name: its own when it has one, else the smallest offset no
 * other sandbox holds, recorded in the same write transaction (so two processes sharing the
 * database never hand out one offset twice). JB_EUNAVAIL when all are taken. */
int store_uid_get(struct store *st, const char *name, int *ret_offset, struct jb_err *err);
/* Give name's offset back (the sandbox is gone); 0 also when it had none. */
int store_uid_free(struct store *st, const char *name, struct jb_err *err);

/* The backend and wall time of a turn's agent run (exec_ms). JB_ENOTFOUND for an unknown id. */
int store_turn_exec(struct store *st, int64_t id, const char *backend, int64_t exec_ms,
                    struct jb_err *err);

#endif

/* core/policy.h -- what the admin allows: per-user rate limits, concurrent turns per
 * user, who may use the bot, and per channel its MCP servers and tool profile. Built
 * from the environment and the config file (JANEBOT_CONFIG, YAML; see cfgfile.c); the
 * environment wins over the file.
 *
 * A struct policy is an immutable, reference-counted snapshot. The core holds the
 * current one; a worker takes a reference for the length of what it does
 * (core_policy_get() ... policy_unref()), so `serve` can swap in a new snapshot on
 * SIGHUP (core_policy_reload()) while turns keep the one they started with. */
#ifndef JB_CORE_POLICY_H
#define JB_CORE_POLICY_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>

#include "agent/agent.h"
#include "util/util.h"

struct jb_config;
struct core;

struct policy_channel {
    char *id;                  /* "default" or a channel id (C…, G…, D…) */
    int line;                  /* its line in the config file; 0 when built in */
    struct jb_strv mcp;        /* names of the MCP servers it may use */
    struct jb_strv allow;      /* AGENT_TOOLS_ALLOW: the tool names */
    char *mcp_json;            /* those servers' definitions, {"name": {...}} */
    char *agent_name;          /* the channel's agent ("amp", "claude", "command"), or NULL */
    struct jb_strv egress;     /* names added to JANEBOT_EGRESS_ALLOW for this channel */
    char *egress_csv;          /* the same, comma-joined, or NULL when none */
    struct jb_strv approve;    /* tools or classes needing a person's yes (approve.c) */
    struct jb_strv approvers;  /* Slack user ids who may answer besides the requester */
    int approve_timeout_s;     /* unanswered after this = deny */
    int egress_approval;       /* a name off the allowlist is asked about in the thread */
    struct agent_policy agent; /* what adapters get; points into this struct */
};

/* USD per million tokens of one model (or of every model starting with `model`). */
struct price {
    char model[JB_MODEL_MAX];
    int prefix;
    double in, out, cache_write, cache_read;
};
struct prices {
    struct price *v; /* owned */
    size_t n;
};

struct policy {
    atomic_int refs;
    struct prices prices;      /* JANEBOT_PRICES / prices; none: costs are not shown */
    char *path;                /* the config file read, or NULL */
    int rate_per_minute;       /* RATE_LIMIT_PER_MINUTE / rate_limit_per_minute; 0 = off */
    int max_turns_per_user;    /* JANEBOT_MAX_TURNS_PER_USER / max_turns_per_user; 0 = no cap */
    json_t *mcp_servers;       /* declared servers: name -> definition (owned) */
    const char *mcp_from;      /* where the servers come from (static string, for messages) */
    struct policy_channel *ch; /* ch[0] is "default" */
    size_t nch;
    struct jb_strv allowed_users, allowed_channels; /* empty = everyone */
};

/* ---- prices (prices.c) ---- */

/* spec: "MODEL=IN:OUT[:CACHE_WRITE:CACHE_READ],…" (JANEBOT_PRICES). JB_ECONFIG names the
 * entry that is wrong. ret->v is the caller's: prices_release(). */
int prices_parse(const char *spec, struct prices *ret, struct jb_err *err);
/* One entry: model[0, mlen) (may end in '*') and "IN:OUT[:CW:CR]" nums[0, nlen). -1 bad. */
int price_parse_one(const char *model, size_t mlen, const char *nums, size_t nlen,
                    struct price *ret);
int prices_add(struct prices *ps, const struct price *p); /* replaces the same model's */
void prices_release(struct prices *ps);
/* The price of model: its own entry, else the longest prefix entry; NULL when none. */
const struct price *prices_find(const struct prices *ps, const char *model);
double price_cost(const struct price *p, const struct jb_tokens *t); /* USD */
/* "tokens: 30 in + … / 15 out · $0.0003 (model-a: 20 in / 10 out, $0.0002; model-b: …)",
 * costs only when ps has prices ("no price" for a model it does not name). NULL when ty
 * counted nothing (or no memory). Caller frees. */
char *prices_usage_text(const struct prices *ps, const struct jb_tally *ty);

/* Build a snapshot from cfg's environment and the config file: JANEBOT_CONFIG when set
 * (it must exist), else <state dir>/janebot.yaml when present. Errors (JB_ECONFIG) name
 * the variable, or the file, line and key. *ret has one reference (the caller's). */
int policy_load(const struct jb_config *cfg, struct policy **ret, struct jb_err *err);
/* A snapshot with the built-in defaults only (no file, no environment); NULL when out of
 * memory. For tests and as a base. */
struct policy *policy_new_default(void);
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p); /* accepts NULL */

/* The config file's values into p (cfgfile.c): called by policy_load() before the
 * environment is applied. Errors name path, line and key. */
int policy_read_file(struct policy *p, const char *path, struct jb_err *err);
/* Check channel server names against p->mcp_servers and fill each channel's mcp_json
 * and agent policy; call once every value is in. */
int policy_finish(struct policy *p, struct jb_err *err);

/* The channel part of a thread key: "C123:1700.1" -> C123's entry; "chat:…", unknown
 * channels and DMs without an entry of their own -> "default". Borrowed from p. */
const struct policy_channel *policy_channel_for(const struct policy *p, const char *thread_key);
/* ALLOWED_USER_IDS / ALLOWED_CHANNEL_IDS (or the file's lists): 1 when allowed. */
int policy_allowed(const struct policy *p, const char *user, const char *channel);
/* `janebot config check`: the effective configuration, secrets shown as "set (hidden)". */
void policy_print(const struct policy *p, const struct jb_config *cfg, FILE *out);

/* ---- approvals: the config's tool classes (approve.c) ---- */

#define APPROVE_TIMEOUT_DEFAULT_S 600
#define APPROVE_TIMEOUT_MAX_S     86400
/* One `approve:` entry: a tool name (letters, digits, _ -), "edit" (the file-editing
 * tools), "mcp:NAME" (every tool of that MCP server) or "*". NULL when valid, else why
 * not (static text). */
const char *approve_class_check(const char *entry);
/* 1 when tool (as the agent names it: "Bash", "Edit", "mcp__github__create_issue") is
 * covered by the entry; tool names compare without regard to case. */
int approve_class_matches(const char *entry, const char *tool);
/* 1 when any entry of list covers tool. */
int approve_list_matches(const struct jb_strv *list, const char *tool);
/* "90", "90s", "10m", "1h" into seconds (1 .. APPROVE_TIMEOUT_MAX_S): 0, or -1. */
int approve_parse_duration(const char *s, int *ret_s);

/* ---- token bucket: capacity = limit, refilled at limit per minute ---- */

struct rate_bucket {
    double tokens;
    int64_t updated_ms; /* wall clock of the last update */
};
/* Spend one token at now_ms. A new bucket (found 0) starts full. 0 when spent; 1 when
 * empty, with *ret_retry_s the whole seconds until a token is back (at least 1). A clock
 * that went backwards refills nothing. limit 0 always allows. */
int rate_bucket_take(struct rate_bucket *b, int found, int limit, int64_t now_ms, int *ret_retry_s);

/* ---- the core's current snapshot (policy.c; the core must exist) ---- */

/* A new reference to the current snapshot; never NULL. Any thread. */
struct policy *core_policy_get(struct core *c);
/* Load the configuration again; on success swap it in (new turns use it, running turns
 * keep theirs), else keep the old one and return -1 with err. */
int core_policy_reload(struct core *c, struct jb_err *err);
/* Spend one of the user's tokens (the bucket lives in the store). 0 allowed; 1 rate
 * limited, *ret_retry_s set; -1 error (the caller lets the message through). */
int core_rate_take(struct core *c, const char *user, int *ret_retry_s, struct jb_err *err);
/* The user's bucket, for a store transaction that spends a token as core_rate_take() does
 * (store_event_admit()): 1 with its key in key (n bytes) and t ready for core_take_fn();
 * 0 when the current policy has no limit; -1 (err) when the user id is too long. */
struct core_take {
    int limit, retry_s; /* retry_s: set by core_take_fn() when it says 1 (limited) */
};
int core_rate_bucket(struct core *c, const char *user, char *key, size_t n, struct core_take *t,
                     struct jb_err *err);
/* A store_bucket_fn: ud is the struct core_take of core_rate_bucket(). */
int core_take_fn(void *ud, int found, double *tokens, int64_t *updated_ms);
/* policy_allowed() on the current snapshot. */
int core_allowed(struct core *c, const char *user, const char *channel);
/* The user-facing refusal: "rate limited … try again in N seconds" into buf. */
void policy_rate_message(int retry_s, int limit, char *buf, size_t n);

#endif

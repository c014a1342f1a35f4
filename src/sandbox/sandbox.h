/* sandbox/sandbox.h -- one sandbox per thread, behind a table of backends.
 *
 * A backend ("local": bubblewrap; "host": no isolation, explicit opt-in; "sprites": a
 * remote VM per thread) gives each thread key a named sandbox with a persistent home, runs
 * commands in it with streamed output and an exit status, lists and removes them.
 * sandbox/ is a leaf: it knows no configuration file, proxy or database. It is given its
 * options (struct sandbox_opts) and the services it uses (struct sandbox_services: the
 * egress and LLM proxies' registration of one exec, the store's records of uids and
 * sprites) by its caller, the core, which owns the proxies and the store. Callers:
 *   1. sandbox_ctx_init() once (chooses and checks the backend);
 *   2. sandbox_ensure(thread_key) -> struct sandbox * (creates the home if needed);
 *   3. fill a struct sandbox_exec (SANDBOX_EXEC_INIT), sandbox_exec() it: always returns
 *      after every process of the run is gone;
 *   4. sandbox_free().
 * Thread-safety: a ctx is read-only after init and may be shared by worker threads; a
 * struct sandbox belongs to one thread at a time. */
#ifndef JB_SANDBOX_H
#define JB_SANDBOX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#include <sys/types.h>

/* "jane-" + first 12 hex digits of sha256(thread_key): the thread's own name. A remote
 * backend may serve a thread from a warm pool sprite ("jane-pool-" + 12 hex) instead;
 * struct sandbox's name is then that one. */
#define SANDBOX_NAME_LEN 32
void sandbox_name_for(const char *thread_key, char out[SANDBOX_NAME_LEN]);
/* 1 when s looks like a sandbox name, either form (so `sandbox rm` can take a name). */
int sandbox_is_name(const char *s);
/* "chat:x" (a thread key) or "jane-…" (a name) -> the sandbox name. */
void sandbox_name_of(const char *key_or_name, char out[SANDBOX_NAME_LEN]);

/* A read-only file placed at an absolute path inside the sandbox for one exec. */
struct sandbox_file {
    const char *path;
    const char *data;
    size_t len;
};

/* ---- a live stdin (input.c): what a caller writes to a command while it runs ----
 * The caller makes one, hands it to sandbox_exec (sandbox_exec.input) and may write to it
 * from any thread while the exec runs; the backend delivers the bytes in order after
 * stdin_data, and closes the command's stdin once the caller closed the input and
 * everything was delivered (or the command exits). Free it after sandbox_exec returned. */
struct sandbox_input;
/* Bytes written and not yet delivered are capped: a command that does not read its stdin
 * cannot make janebot buffer without end. */
#define SANDBOX_INPUT_MAX (1u << 20)
/* *ret is the caller's: sandbox_input_free(). */
int sandbox_input_new(struct sandbox_input **ret, struct jb_err *err);
void sandbox_input_free(struct sandbox_input *in);
/* Add bytes for the command's stdin. 0, with *ret_end (may be NULL) the byte count up to
 * the end of these bytes (compare with sandbox_input_delivered()); -1 with JB_EUNAVAIL,
 * nothing added, when the input was closed, the exec ended or SANDBOX_INPUT_MAX bytes
 * wait; JB_ENOMEM. Thread-safe. */
int sandbox_input_write(struct sandbox_input *in, const char *data, size_t len, uint64_t *ret_end,
                        struct jb_err *err);
/* No more bytes: the command's stdin closes once those written are delivered. */
void sandbox_input_close(struct sandbox_input *in);
/* Bytes handed to the command so far (into its pipe, or sent to the remote exec). */
uint64_t sandbox_input_delivered(struct sandbox_input *in);
/* For backends: 1 when there are bytes to deliver, or stdin is to be closed. */
int sandbox_input_busy(struct sandbox_input *in);
/* For backends: write what waits to the non-blocking fd. 1 when stdin should now be closed
 * (closed and all delivered), 0 when not yet, -1 when the fd failed (EPIPE). */
int sandbox_input_to_fd(struct sandbox_input *in, int fd);
/* For backends: move up to max bytes into buf (counted delivered); *ret_finished is 1 when
 * stdin should then be closed. Returns how many. */
size_t sandbox_input_take(struct sandbox_input *in, char *buf, size_t max, int *ret_finished);
/* For backends, when the exec is over: every later write fails. */
void sandbox_input_end(struct sandbox_input *in);

/* sandbox_exec.disk_full: what a home of its own had run out of. */
#define SANDBOX_DISK_FULL_BYTES 1 /* space */
#define SANDBOX_DISK_FULL_FILES 2 /* inodes */

/* Where a local exec's start-up time goes: CLOCK_MONOTONIC nanoseconds stamped at each
 * step (the sandbox has no time namespace, so its stamps compare with the host's); 0 for a
 * step not reached. For benchmarks (bench/bench-exec.c); an exec without it stamps nothing
 * and gives the sandbox nothing more. */
enum sandbox_step {
    SANDBOX_STEP_START,   /* the backend's exec began */
    SANDBOX_STEP_SECCOMP, /* the seccomp filters are in the exec's memfds */
    SANDBOX_STEP_PROXIES, /* its egress listener and LLM token are registered */
    SANDBOX_STEP_SPAWN,   /* staged, bwrap's arguments and the cgroup made: forking */
    SANDBOX_STEP_INIT,    /* inside: janebot's init runs (bwrap's set-up is done) */
    SANDBOX_STEP_COMMAND, /* inside: listeners handed, limits and filter set; command starts */
    SANDBOX_STEP_REAPED,  /* every process of the run is gone */
    SANDBOX_STEP_DONE,    /* the exec's cgroup, listener and token are released */
    SANDBOX_NSTEPS
};
struct sandbox_timing {
    int64_t ns[SANDBOX_NSTEPS];
};
int64_t sandbox_clock_ns(void);

struct sandbox_exec {
    /* in */
    struct sandbox_timing *timing; /* stamped when set (local backend); may be NULL */
    const char *const *argv;       /* argv[0]: absolute path or a name looked up on PATH inside */
    const char *const *env;        /* extra NAME=VALUE; the backend sets HOME, PATH, USER, LANG */
    const char *stdin_data;        /* written to the command's stdin, which is then closed */
    size_t stdin_len;
    /* A live stdin (may be NULL): delivered after stdin_data; stdin then stays open until
     * the input is closed. Not with passthrough. */
    struct sandbox_input *input;
    int passthrough; /* 1: stdin/stdout/stderr are the caller's own fds 0/1/2 */
    const struct sandbox_file *files;
    size_t nfiles;
    const char *const *ro_paths; /* host paths visible read-only at the same path, or NULL */
    int64_t deadline_ms;         /* jb_mono_ms() value; 0 = none */
    const atomic_int *cancel;    /* non-zero kills the run; may be NULL */
    /* A later kill (may be NULL): once non-zero and jb_mono_ms() passes it, the run is
     * killed as by cancel. For a stop asked of the command first (an interrupt line on its
     * live stdin), with the kill as the fallback. */
    const _Atomic int64_t *cancel_at_ms;
    const char *user;         /* who the exec runs for (token accounting); may be NULL */
    const char *egress_extra; /* names added to the egress allowlist (comma list), or NULL */
    void (*on_stdout)(void *ud, const char *data, size_t len); /* chunks as they arrive */
    void *ud;
    /* out (valid when sandbox_exec() returned 0) */
    int exit_code;   /* 0..255; 128+N when killed by signal N */
    int term_signal; /* the signal, or 0 */
    int timed_out, cancelled;
    int over_quota;          /* stopped: the home went over JANEBOT_SANDBOX_DISK_MB */
    int oom_killed;          /* a process was killed: the sandbox's memory was full */
    int disk_full;           /* the home's own file system was full when the run
                                ended, SANDBOX_DISK_FULL_*: writes failed (ENOSPC) */
    long long disk_left;     /* then: bytes (or inodes) it had left */
    const char *llm_refused; /* stopped: the LLM proxy refused the exec's token (why) */
    struct jb_tally llm;     /* tokens used through the LLM proxy, per model */
    char stderr_tail[4096];  /* last bytes of stderr, NUL-terminated (not in passthrough) */
    int64_t wall_ms;
};
#define SANDBOX_EXEC_INIT                                                                          \
    {                                                                                              \
        .argv = NULL                                                                               \
    }

struct sandbox_info {
    char name[SANDBOX_NAME_LEN];
    char *thread_key;     /* owned */
    const char *backend;  /* static */
    long long size_bytes; /* -1 when unknown */
    int64_t last_used;    /* Unix seconds, 0 when never */
};
void sandbox_info_free(struct sandbox_info *v, size_t n);

struct sandbox_ctx;
struct sandbox {
    const struct sandbox_ctx *ctx;
    char name[SANDBOX_NAME_LEN];
    char *thread_key; /* owned */
    char *dir;        /* host directory of this sandbox: <root>/<name>; owned */
    char *home;       /* host path of the home; owned */
    char *run_dir;    /* where sandbox_file paths go ("/run/janebot" inside); owned */
    int lock_fd;      /* shared lock on the sandbox's directory (lock.c), or -1 */
    int home_fd;      /* a home of its own (local, root): its mounted root, open while this
                         struct lives so the mount stays in use; -1 otherwise */
    long host_uid;    /* local, root: the sandbox's host uid; -1 otherwise */
};

/* ---- what a backend is given: options and services ---- */

/* The settings the backends read, filled from the configuration by the core
 * (core_sandbox_opts()). Strings are borrowed and must outlive the context. */
struct sandbox_opts {
    const char *backend;       /* JANEBOT_SANDBOX: "local" | "host" | "sprites" */
    const char *state_dir;     /* sandboxes live in <state_dir>/sandboxes */
    const char *config_file;   /* JANEBOT_CONFIG, or NULL: never shown inside a sandbox */
    const char *path_env;      /* host: the PATH commands are found on */
    int allow_local_execution; /* host: ALLOW_LOCAL_EXECUTION */
    /* local limits (JANEBOT_SANDBOX_*) */
    int max_procs, max_file_mb, memory_mb, as_mb, cpu_s, disk_mb, tmp_mb;
    int nice; /* niceness of everything in a sandbox (local, host): janebot itself goes first */
    long uid_base; /* as root: host uids of sandboxes start here */
    /* sprites */
    const char *egress_allow;        /* names a sandbox may reach, comma list; never NULL */
    const char *sprites_api_url;     /* NULL: the public API */
    const char *sprites_token;       /* secret */
    const char *sprites_setup;       /* shell run once in each new sprite; NULL or "": none */
    const char *sprites_setup_allow; /* names reachable during the set-up, or NULL */
    int sprites_pool;                /* warm sprites kept ready while serving */
    int sprites_health_s;            /* an exec must be answered within this */
    const char *public_url;          /* where sprites reach the LLM proxy, or NULL */
    struct jb_metrics *metrics;      /* Sprites API errors (borrowed), or NULL */
};

struct sandbox_egress; /* the caller's: one exec's listener on the egress proxy */
struct sandbox_llm;    /* the caller's: one exec's session on the LLM proxy */

/* What an exec asks of the LLM proxy. */
struct sandbox_llm_req {
    const char *sock_path; /* a local exec's own socket to listen on; NULL: a remote sandbox,
                              reached by name over the proxy's TCP listener */
    const char *thread_key, *user;
    const char *sandbox; /* the sandbox's name */
    uid_t owner;         /* the socket's owner, or (uid_t)-1 */
};

/* Which sprite serves a thread (and the warm pool), as the store keeps it. */
struct sandbox_sprite_row {
    char *thread_key, *name;
    char *golden;      /* checkpoint id of its state after set-up, or NULL */
    int64_t last_used; /* Unix ms */
};
void sandbox_sprite_row_release(struct sandbox_sprite_row *r);
void sandbox_sprite_rows_free(struct sandbox_sprite_row *v, size_t n);

/* The services a backend uses, filled by the core: each is a function and the table's ud.
 * Thread-safe (called from every worker). A member a backend does not use may be NULL. */
struct sandbox_services {
    void *ud;
    /* ---- the egress proxy (local): a listener at sock_path (socket chowned to owner
     * unless (uid_t)-1) for thread_key's exec, allowing the global list plus extra_csv
     * (NULL: none). Closing it drops its connections. */
    int (*egress_open)(void *ud, const char *sock_path, const char *thread_key,
                       const char *extra_csv, uid_t owner, struct sandbox_egress **ret,
                       struct jb_err *err);
    void (*egress_close)(void *ud, struct sandbox_egress *e);
    /* ---- the LLM proxy: a scoped token for one exec. NAME=VALUE entries the exec's
     * environment takes (base URLs and the token, replacing the adapter's names) are
     * pushed to env. *ret is NULL when the host offers no provider (env untouched). */
    int (*llm_open)(void *ud, const struct sandbox_llm_req *rq, struct jb_strv *env,
                    struct sandbox_llm **ret, struct jb_err *err);
    /* Why the proxy refused the exec's token ("revoked", "over the daily budget"), or NULL. */
    const char *(*llm_refused)(void *ud, struct sandbox_llm *s);
    void (*llm_usage)(void *ud, struct sandbox_llm *s, struct jb_tally *ret); /* a copy */
    void (*llm_close)(void *ud, struct sandbox_llm *s); /* revokes; accepts NULL */
    /* ---- the store: host uid offsets of local sandboxes (as root) */
    int (*uid_get)(void *ud, const char *name, int *ret_offset, struct jb_err *err);
    int (*uid_free)(void *ud, const char *name, struct jb_err *err);
    /* ---- the store: thread -> sprite (by thread key, or with by_name by the sprite's
     * name; JB_ENOTFOUND when none) and the warm pool. Rows are the caller's. */
    int (*name_get)(void *ud, const char *key, int by_name, struct sandbox_sprite_row *ret,
                    struct jb_err *err);
    int (*name_set)(void *ud, const char *thread_key, const char *name, const char *golden,
                    const char *setup_hash, struct jb_err *err);
    int (*name_touch)(void *ud, const char *thread_key, struct jb_err *err);
    int (*name_delete)(void *ud, const char *thread_key, struct jb_err *err);
    int (*name_list)(void *ud, struct sandbox_sprite_row **ret, size_t *ret_n, struct jb_err *err);
    int (*pool_add)(void *ud, const char *name, const char *golden, const char *setup_hash,
                    struct jb_err *err);
    int (*pool_claim)(void *ud, const char *thread_key, const char *setup_hash,
                      struct sandbox_sprite_row *ret, struct jb_err *err);
    int (*pool_names)(void *ud, const char *stale_for, struct jb_strv *ret, struct jb_err *err);
    int (*pool_remove)(void *ud, const char *name, struct jb_err *err);
};

struct sandbox_ops {
    int version;      /* 1 */
    const char *name; /* "local", "host" */
    /* Can this backend run here? -1 with a message saying what to install or set. */
    int (*available)(const struct sandbox_ctx *ctx, struct jb_err *err);
    /* Make the sandbox exist (idempotent); sb->name/dir/home are filled in already. */
    int (*ensure)(struct sandbox *sb, struct jb_err *err);
    int (*exec)(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err);
    /* One report() per check for `janebot doctor` (ok: 1 ok, 0 failed, -1 a warning: it
     * runs, with less protection); returns the number that failed. */
    int (*doctor)(const struct sandbox_ctx *ctx,
                  void (*report)(void *ud, int ok, const char *what, const char *detail), void *ud);
    /* Optional: per-context state (the local backend's egress proxy), set up once by
     * sandbox_ctx_init() and torn down by sandbox_ctx_release(). May be NULL. */
    int (*ctx_init)(struct sandbox_ctx *ctx, struct jb_err *err);
    void (*ctx_release)(struct sandbox_ctx *ctx);
    /* Optional: list and remove through the backend itself (a remote API). NULL: the
     * sandboxes are the directories under the context's root. */
    int (*list)(const struct sandbox_ctx *ctx, struct sandbox_info **ret, size_t *ret_n,
                struct jb_err *err);
    int (*remove)(const struct sandbox_ctx *ctx, const char *key_or_name, struct jb_err *err);
    /* Optional: called by the generic remove (forget=1) and reset (forget=0) before they
     * delete <root>/<name> or its home: let go of the home (the local backend unmounts and
     * deletes its disk image) and, with forget, of what is kept for the name (its uid). */
    int (*home_drop)(const struct sandbox_ctx *ctx, const char *name, const char *dir, int forget,
                     struct jb_err *err);
    /* Optional: put a thread's sandbox back to its state right after set-up. NULL: its
     * home is emptied. */
    int (*reset)(const struct sandbox_ctx *ctx, const char *thread_key, struct jb_err *err);
    /* Optional: build the reference ("golden") sandbox new ones are made like; a short
     * report goes to out. NULL: the backend has none (an error says so). */
    int (*golden)(const struct sandbox_ctx *ctx, char *out, size_t n, struct jb_err *err);
    /* Optional: sandbox_outbox() for a home that is not on this host. */
    int (*outbox)(struct sandbox *sb, size_t max_files, long long max_bytes,
                  int (*deliver)(void *ud, int fd, const char *name),
                  void (*skipped)(void *ud, const char *name, const char *why), void *ud);
    /* Optional: sandbox_put() for a home that is not on this host. */
    int (*put)(struct sandbox *sb, const char *relpath, int fd, struct jb_err *err);
};

struct sandbox_ctx {
    const struct sandbox_opts *opts;    /* borrowed */
    const struct sandbox_services *svc; /* borrowed */
    const struct sandbox_ops *ops;
    int serving; /* a long-running process (chat, serve): background work may start */
    char *root;  /* <state dir>/sandboxes; owned */
    void *priv;  /* the backend's, from ctx_init */
};

const struct sandbox_ops *sandbox_ops_find(const char *name); /* NULL if unknown */
/* Choose the backend o->backend; with check=1 also prove that it can run here (a probe
 * sandbox for "local"), so a long-running process fails closed at start (and background
 * work, the warm pool, may start). o and svc are borrowed and must outlive ctx. */
int sandbox_ctx_init(struct sandbox_ctx *ctx, const struct sandbox_opts *o,
                     const struct sandbox_services *svc, int check, struct jb_err *err);
/* `janebot doctor`: the backend's checks, without a context (see sandbox_ops.doctor). */
int sandbox_doctor(const struct sandbox_opts *o,
                   void (*report)(void *ud, int ok, const char *what, const char *detail),
                   void *ud);
void sandbox_ctx_release(struct sandbox_ctx *ctx);
/* *ret is the caller's, freed with sandbox_free(). For local and host sandboxes it holds
 * the sandbox's lock until then (sandbox_remove/reset are refused meanwhile); while a
 * removal or reset runs, this waits for it (up to a minute, then JB_EBUSY) and then
 * starts on a fresh sandbox. */
int sandbox_ensure(const struct sandbox_ctx *ctx, const char *thread_key, struct sandbox **ret,
                   struct jb_err *err);
void sandbox_free(struct sandbox *sb);
/* 0 when the command ran (see x->exit_code), -1 when it could not be started. */
int sandbox_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err);
/* Remove by thread key or by name; JB_ENOTFOUND when there is none, JB_EBUSY while it is
 * in use (a struct sandbox of it exists, in this process or another: a turn runs). */
/* What a user is told when x->disk_full: why the sandbox is full and what to do; "" when
 * it is not. quota_mb: JANEBOT_SANDBOX_DISK_MB. */
void sandbox_disk_full_msg(const struct sandbox_exec *x, int quota_mb, char *out, size_t n);
/* Remove by thread key or by name; JB_ENOTFOUND when there is none. */
int sandbox_remove(const struct sandbox_ctx *ctx, const char *key_or_name, struct jb_err *err);
/* Back to the state after set-up: every file the agent made in the thread's sandbox is
 * gone (the caller forgets the agent's conversation). JB_ENOTFOUND when there is none,
 * JB_EBUSY while it is in use. */
int sandbox_reset(const struct sandbox_ctx *ctx, const char *thread_key, struct jb_err *err);
/* Build the backend's golden sandbox (see sandbox_ops.golden); report as there. */
int sandbox_golden(const struct sandbox_ctx *ctx, char *out, size_t n, struct jb_err *err);
/* Files the agent left in ~/outbox: each regular file (symlinks and other kinds are never
 * followed) of at most max_bytes, up to max_files, is passed to deliver() open for reading,
 * with its name; delivered files move to ~/outbox/sent/. Files skipped (too big,
 * too many, not regular) are reported through skipped(). Returns how many were delivered. */
int sandbox_outbox(struct sandbox *sb, size_t max_files, long long max_bytes,
                   int (*deliver)(void *ud, int fd, const char *name),
                   void (*skipped)(void *ud, const char *name, const char *why), void *ud);
/* Put the bytes of fd (read with pread from offset 0; fd stays the caller's) at relpath
 * under the sandbox's home ("inbox/a.txt" -> ~/inbox/a.txt), replacing what was there;
 * missing directories are made. Every component of relpath must be a plain name (no "",
 * ".", "..", leading '.'): JB_EPROTO otherwise. The home is the sandbox's: nothing in it is
 * followed (a planted symlink makes the call fail or is replaced, never written through),
 * and what is made belongs to the home's owner, so the agent can read and remove it. */
int sandbox_put(struct sandbox *sb, const char *relpath, int fd, struct jb_err *err);
/* A name for a file put in the sandbox (~/inbox/<name>), from a name a user gave: the part
 * after the last '/', control characters as '_', a leading '.' as '_', "file" when empty,
 * at most SANDBOX_FILE_NAME_MAX bytes (cut at a UTF-8 character boundary). When the result
 * is in taken (may be NULL: the names already given in this turn), a number is added before
 * the extension: "a.txt" -> "a-2.txt", "a-3.txt", … Pure. */
#define SANDBOX_FILE_NAME_MAX 100
void sandbox_safe_name(const char *name, const struct jb_strv *taken,
                       char out[SANDBOX_FILE_NAME_MAX + 1]);
/* Remove every sandbox unused for more than idle_s seconds (those in use are kept, and
 * those keep(keep_ud, thread_key) says 1 for, asked right before each removal: a turn
 * runs or waits in that thread; keep may be NULL); the thread keys of those removed are
 * pushed to removed (the caller's). Returns how many, or -1. */
int sandbox_gc(const struct sandbox_ctx *ctx, int64_t idle_s,
               int (*keep)(void *keep_ud, const char *thread_key), void *keep_ud,
               struct jb_strv *removed, struct jb_err *err);
/* *ret is the caller's, freed with sandbox_info_free(). */
int sandbox_list(const struct sandbox_ctx *ctx, struct sandbox_info **ret, size_t *ret_n,
                 struct jb_err *err);

/* 0 when path (the agent CLI's file or install tree) may be shown read-only in a local
 * sandbox; -1 (JB_EDENIED, saying what to move where) when it is not clean and absolute,
 * overlaps the state dir, holds janebot's working directory or the config file, or holds
 * a .env file or a mount point (ropath.c). Every bind of x->ro_paths is checked so. */
int sandbox_ro_path_check(const struct sandbox_opts *o, const char *path, struct jb_err *err);

/* `janebot sandbox-init`: the first process inside a local sandbox (see init.c). Not for
 * people; never returns (execs the command, or exits 125/126/127). handoff: gives a
 * proxy's listener inside to the host (proxy.h's proxy_hand_over(): listen_fd to the
 * host proxy behind the Unix socket unix_path; 0, or -1 with err). */
typedef int (*sandbox_handoff_fn)(int listen_fd, const char *unix_path, struct jb_err *err);
_Noreturn int sandbox_init_main(int argc, char **argv, sandbox_handoff_fn handoff);

#endif

/* store/store.c -- opening the SQLite database: file mode, pragmas, versioned migrations,
 * and the prepare/bind/run helpers the table files (sessions.c, inbox.c, turns.c) share. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "store/store-int.h"

/* migrations[i] brings user_version from i to i+1. Append only: a released migration is
 * never edited, since databases out there already ran it. */
static const char *const migrations[] = {
    /* 1: sessions, inbox, turn audit. Times are Unix milliseconds. */
    "CREATE TABLE sessions ("
    "  thread_key TEXT PRIMARY KEY,"
    "  agent TEXT NOT NULL,"
    "  agent_session_id TEXT,"
    "  sandbox TEXT NOT NULL,"
    "  turns INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_active INTEGER NOT NULL);"
    "CREATE TABLE inbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  thread_key TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  finished_at INTEGER);"
    "CREATE INDEX inbox_state ON inbox (state, id);"
    "CREATE TABLE turns ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  thread_key TEXT NOT NULL,"
    "  user_id TEXT,"
    "  sandbox TEXT,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER,"
    "  outcome TEXT,"
    "  exit_status INTEGER,"
    "  duration_ms INTEGER,"
    "  input_tokens INTEGER,"
    "  output_tokens INTEGER);"
    "CREATE INDEX turns_thread ON turns (thread_key);",
    /* 2: the frontend's reference to a message (Slack "CHANNEL:TS"), and the Slack events
     * already accepted, so a redelivery or the same post seen twice runs once. */
    "ALTER TABLE inbox ADD COLUMN ref TEXT;"
    "CREATE TABLE slack_events ("
    "  event_id TEXT PRIMARY KEY,"
    "  dedupe_key TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX slack_events_dedupe ON slack_events (dedupe_key);",
    /* 3: scoped LLM tokens (only their sha256) and token usage per day, user and thread. */
    "CREATE TABLE llm_tokens ("
    "  hash TEXT PRIMARY KEY,"
    "  thread_key TEXT NOT NULL,"
    "  user_id TEXT,"
    "  sandbox TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  last_used INTEGER,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX llm_tokens_thread ON llm_tokens (thread_key);"
    "CREATE TABLE llm_usage ("
    "  day TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  thread_key TEXT NOT NULL,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  requests INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (day, user_id, thread_key));",
    /* 4: per-user rate-limit token buckets (core/policy.c), kept across restarts. */
    "CREATE TABLE rate_buckets ("
    "  key TEXT PRIMARY KEY,"
    "  tokens REAL NOT NULL,"
    "  updated_at INTEGER NOT NULL);",
    /* 5: remote sandboxes (sprites): which sprite serves a thread (a claimed pool sprite
     * keeps its own name) and its golden checkpoint; warm pool sprites ready to claim; the
     * backend and exec wall time of each turn. */
    "CREATE TABLE sandbox_names ("
    "  thread_key TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  golden TEXT,"
    "  setup_hash TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL);"
    "CREATE TABLE sandbox_pool ("
    "  name TEXT PRIMARY KEY,"
    "  golden TEXT,"
    "  setup_hash TEXT NOT NULL,"
    "  ready_at INTEGER NOT NULL);"
    "ALTER TABLE turns ADD COLUMN backend TEXT;"
    "ALTER TABLE turns ADD COLUMN exec_ms INTEGER;",
    /* 6: files shared with a message ([{"name","url","size","mimetype"}] JSON, or NULL), kept
     * with it so a restart still fetches them when the turn runs. */
    "ALTER TABLE inbox ADD COLUMN files TEXT;",
    /* 7: the host uid of each local sandbox (as root): JANEBOT_SANDBOX_UID_BASE + uid_offset,
     * never shared by two sandboxes; the row goes when the sandbox is removed. */
    "CREATE TABLE sandbox_uids ("
    "  name TEXT PRIMARY KEY,"
    "  uid_offset INTEGER NOT NULL UNIQUE CHECK (uid_offset BETWEEN 0 AND 65535),"
    "  created_at INTEGER NOT NULL);",
    /* 8: LLM usage per request, with the model and every kind of token the provider bills
     * (cache writes and reads apart). The daily totals of before are carried over as rows
     * of their day with no model ("requests" says how many requests a row stands for). */
    "CREATE TABLE llm_requests ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  day TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  thread_key TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cache_write_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cache_read_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  requests INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX llm_requests_day_user ON llm_requests (day, user_id);"
    "INSERT INTO llm_requests (at, day, user_id, thread_key, provider, model, input_tokens,"
    "  output_tokens, requests) SELECT 0, day, user_id, thread_key, '', '', input_tokens,"
    "  output_tokens, requests FROM llm_usage;"
    "DROP TABLE llm_usage;",
    /* 9: approvals: every decision about a tool the agent wanted (who, what, when), and the
     * tools a person allowed for the rest of a thread. */
    "CREATE TABLE approvals ("
    "  id INTEGER PRIMARY KEY,"
    "  thread_key TEXT NOT NULL,"
    "  requester TEXT,"
    "  tool TEXT NOT NULL,"
    "  input_sha256 TEXT NOT NULL,"
    "  answer TEXT NOT NULL,"
    "  decided_by TEXT NOT NULL,"
    "  reason TEXT,"
    "  asked_at INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL);"
    "CREATE INDEX approvals_thread ON approvals (thread_key);"
    "CREATE TABLE approval_allow ("
    "  thread_key TEXT NOT NULL,"
    "  tool TEXT NOT NULL,"
    "  allowed_by TEXT NOT NULL,"
    "  allowed_at INTEGER NOT NULL,"
    "  PRIMARY KEY (thread_key, tool));",
    /* 10: egress approval: the names a person let one thread's sandbox reach ("Allow for
     * this thread"), never the channel's; and the name:port an audited ask was about. */
    "CREATE TABLE egress_allow ("
    "  thread_key TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  added_by TEXT NOT NULL,"
    "  added_at INTEGER NOT NULL,"
    "  PRIMARY KEY (thread_key, name));"
    "ALTER TABLE approvals ADD COLUMN domain TEXT;",
};
_Static_assert(JB_ARRAY_LEN(migrations) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must equal the number of migrations");

/* ---- helpers shared by the table files ---- */

int store_fail(struct store *st, struct jb_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int rc = sqlite3_errcode(st->db) & 0xff;
    enum jb_code code = JB_ESYS;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        code = JB_ETIMEOUT;
    else if (rc == SQLITE_NOMEM)
        code = JB_ENOMEM;
    int sys = sqlite3_system_errno(st->db);
    jb_err_set(err, code, "store: %s: %s", what, sqlite3_errmsg(st->db));
    if (code == JB_ESYS) err->sys_errno = sys;
    return -1;
}

static int bind_one(sqlite3_stmt *s, int i, const struct store_arg *a)
{
    if (a->type == 'i') return sqlite3_bind_int64(s, i, a->i);
    if (!a->s) return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, a->s, -1, SQLITE_STATIC);
}

int store_prepare(struct store *st, const char *sql, const struct store_args *args,
                  sqlite3_stmt **ret)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, 0, &s, NULL) != SQLITE_OK) return -1;
    for (size_t i = 0; args && i < args->n; i++) {
        if (bind_one(s, (int)i + 1, &args->v[i]) != SQLITE_OK) {
            sqlite3_finalize(s); /* keeps the bind error's message on the connection */
            return -1;
        }
    }
    *ret = s;
    return 0;
}

int store_hot(struct store *st, enum store_hot which, const char *sql,
              const struct store_args *args, sqlite3_stmt **ret)
{
    sqlite3_stmt *s = st->hot[which];
    if (!s && sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
        return -1;
    st->hot[which] = s;
    for (size_t i = 0; args && i < args->n; i++) {
        if (bind_one(s, (int)i + 1, &args->v[i]) != SQLITE_OK) {
            sqlite3_clear_bindings(s); /* keeps the bind error's message on the connection */
            return -1;
        }
    }
    *ret = s;
    return 0;
}

void store_hot_done(sqlite3_stmt *s)
{
    if (!s) return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Step s to its end: the last row's first column (a RETURNING id) into *ret_id, the rows
 * changed into *ret_changes (both may be NULL). 0, or -1 with sqlite's message left on the
 * connection. */
static int step_all(struct store *st, sqlite3_stmt *s, int64_t *ret_id, int64_t *ret_changes)
{
    int64_t id = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    if (rc != SQLITE_DONE) return -1;
    if (ret_id) *ret_id = id;
    if (ret_changes) *ret_changes = sqlite3_changes64(st->db);
    return 0;
}

int store_hot_run(struct store *st, enum store_hot which, const char *sql,
                  const struct store_args *args, int64_t *ret_id, int64_t *ret_changes)
{
    sqlite3_stmt *s = NULL;
    if (store_hot(st, which, sql, args, &s) < 0) return -1;
    int rc = step_all(st, s, ret_id, ret_changes);
    store_hot_done(s); /* on failure the message stays on the connection */
    return rc;
}

void store_lock(struct store *st)
{
    sqlite3_mutex_enter(sqlite3_db_mutex(st->db));
}

void store_unlock(struct store *st)
{
    sqlite3_mutex_leave(sqlite3_db_mutex(st->db));
}

int store_run(struct store *st, const char *sql, const struct store_args *args, int64_t *ret_id,
              int64_t *ret_changes)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, args, &s) < 0) return -1;
    return step_all(st, s, ret_id, ret_changes);
}

int store_col_dup(sqlite3_stmt *s, int col, char **ret)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) {
        *ret = NULL;
        return 0;
    }
    const unsigned char *t = sqlite3_column_text(s, col);
    char *c = t ? strdup((const char *)t) : NULL;
    if (!c) return -1;
    *ret = c;
    return 0;
}

void *store_grow(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return v;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *nv = reallocarray(v, cap2, elem);
    if (nv) *cap = cap2;
    return nv;
}

/* ---- schema version and migrations ---- */

static int read_version(struct store *st, int *ret, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "PRAGMA user_version", NULL, &s) < 0 || sqlite3_step(s) != SQLITE_ROW)
        return store_fail(st, err, "cannot read the schema version of %s", st->path);
    *ret = sqlite3_column_int(s, 0);
    return 0;
}

int store_schema_version(struct store *st)
{
    int v;
    return read_version(st, &v, NULL) < 0 ? -1 : v;
}

static int too_new(struct store *st, int v, struct jb_err *err)
{
    return jb_err_set(err, JB_ECONFIG,
                      "database %s has schema version %d but this janebot knows only up to %d: "
                      "upgrade janebot (or point JANEBOT_STATE_DIR elsewhere)",
                      st->path, v, STORE_SCHEMA_VERSION);
}

/* Apply the next migration in its own write transaction. BEGIN IMMEDIATE takes the write
 * lock first, so of two processes opening a fresh database one migrates and the other
 * waits, then finds the version already raised. */
static int migrate_step(struct store *st, struct jb_err *err)
{
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot lock %s to migrate it", st->path);
    int v;
    if (read_version(st, &v, err) < 0) goto rollback;
    if (v >= 0 && v < STORE_SCHEMA_VERSION) {
        /* PRAGMA takes no bound parameters; the value is our own integer. */
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(st->db, set, NULL, NULL, NULL) != SQLITE_OK) {
            store_fail(st, err, "cannot migrate %s from schema version %d to %d", st->path, v,
                       v + 1);
            goto rollback;
        }
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        store_fail(st, err, "cannot commit the migration of %s", st->path);
        goto rollback;
    }
    if (v < STORE_SCHEMA_VERSION)
        log_info("store: %s migrated to schema version %d", st->path, v + 1);
    return 0;
rollback:
    /* err already holds the first failure; ROLLBACK would overwrite sqlite's message. */
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int store_migrate(struct store *st, struct jb_err *err)
{
    for (;;) {
        int v;
        if (read_version(st, &v, err) < 0) return -1;
        if (v > STORE_SCHEMA_VERSION) return too_new(st, v, err);
        if (v == STORE_SCHEMA_VERSION) return 0;
        if (migrate_step(st, err) < 0) return -1;
    }
}

/* ---- open and close ---- */

/* The database holds users' messages: 0600 whatever the umask. SQLite creates -wal and
 * -shm with the main file's mode, so fixing it before WAL is on covers those too. */
static int secure_mode(struct store *st, const struct stat *before, struct jb_err *err)
{
    if (!before) {
        if (chmod(st->path, 0600) < 0) return jb_err_sys(err, "store: cannot chmod %s", st->path);
        return 0;
    }
    if ((before->st_mode & 0077) == 0) return 0;
    log_warn("store: %s was readable by others (mode %03o); setting 0600", st->path,
             (unsigned)(before->st_mode & 0777));
    if (chmod(st->path, 0600) < 0)
        log_warn("store: cannot chmod %s: %s", st->path, strerror(errno));
    return 0;
}

static int configure(struct store *st, struct jb_err *err)
{
    /* Other connections (one per thread, or another process) may hold the write lock
     * briefly; wait for it rather than fail. Set first: switching to WAL needs a lock. */
    sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
    /* Refuse a newer database before touching it (switching to WAL writes its header). */
    int v;
    if (read_version(st, &v, err) < 0) return -1;
    if (v > STORE_SCHEMA_VERSION) return too_new(st, v, err);
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "PRAGMA journal_mode = WAL", NULL, &s) < 0)
        return store_fail(st, err, "cannot set up %s", st->path);
    /* Switching to WAL can answer SQLITE_BUSY without calling the busy handler (a lock
     * upgrade that could deadlock), e.g. when two processes open a new database at once:
     * retry within the same 5 s the busy timeout gives everything else. */
    int rc;
    int64_t deadline = jb_mono_ms() + 5000;
    while ((rc = sqlite3_step(s)) == SQLITE_BUSY && jb_mono_ms() < deadline) {
        sqlite3_reset(s);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot set up %s", st->path);
    const char *mode = (const char *)sqlite3_column_text(s, 0);
    if (!mode || strcmp(mode, "wal") != 0)
        log_warn("store: %s: WAL unavailable (journal mode %s); writers will block readers",
                 st->path, mode ? mode : "?");
    /* A small page cache per connection (SQLite's default is 2 MiB each, and serve opens
     * one per worker, plus the intake's, the services' and the LLM proxy's): the hot pages
     * are the B-tree roots and the inbox's tail, and a miss is a pread() served by the
     * kernel's page cache, which all connections share. -256: 256 KiB (a backlog of
     * 10,000 new threads filled 512 KiB of the intake's, for no gain in its latency). */
    if (sqlite3_exec(st->db,
                     "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
                     "PRAGMA cache_size = -256",
                     NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot set up %s", st->path);
    return 0;
}

/* No page cache memory set aside per connection: SQLite otherwise allocates 20 pages
 * (87 KiB) in one block at each connection's first read, and keeps the block for the
 * connection's life however little of it is used. Without it, each page is allocated as it
 * is read (up to the connection's cache_size) and freed back to malloc when the cache is
 * dropped -- in WAL mode, whenever another connection wrote since -- so connections reuse
 * each other's memory. Measured: serve at 200/s in bench/serve-memory.py, 0.5 MiB less
 * peak RSS with its 8 connections. */
void store_tune_memory(void)
{
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK)
        log_warn("store: SQLite was already in use; its default page cache blocks stay");
}

/* Everything after allocation; on failure the caller closes the half-built st. */
static int store_connect(struct store *st, const char *path, const struct stat *before,
                         struct jb_err *err)
{
    if (!(st->path = strdup(path))) return jb_err_set(err, JB_ENOMEM, "store: opening %s", path);
    /* FULLMUTEX: safe even if a caller shares a connection by mistake. NOFOLLOW: a link
     * planted at the path must not redirect our writes. SQLite opens with O_CLOEXEC. */
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        if (!st->db) return jb_err_set(err, JB_ENOMEM, "store: opening %s", path);
        return store_fail(st, err, "cannot open %s", path);
    }
    if (secure_mode(st, before, err) < 0 || configure(st, err) < 0 || store_migrate(st, err) < 0)
        return -1;
    return 0;
}

int store_open(const char *path, struct store **ret, struct jb_err *err)
{
    struct stat before;
    int existed = lstat(path, &before) == 0;
    if (existed && S_ISLNK(before.st_mode))
        return jb_err_set(err, JB_ECONFIG, "store: %s is a symlink; refusing to follow it", path);
    struct store *st = calloc(1, sizeof *st);
    if (!st) return jb_err_set(err, JB_ENOMEM, "store: opening %s", path);
    if (store_connect(st, path, existed ? &before : NULL, err) < 0) {
        store_close(st);
        return -1;
    }
    *ret = st;
    return 0;
}

int store_write_check(struct store *st, struct jb_err *err)
{
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "write check");
    int rc = sqlite3_exec(st->db,
                          "INSERT INTO slack_events (event_id, dedupe_key, received_at) "
                          "VALUES (' write check', ' write check', 0)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) store_fail(st, err, "write check");
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : -1;
}

void store_close(struct store *st)
{
    if (!st) return;
    store_checkpoint_stop(st);
    for (int i = 0; i < STORE_HOT_N; i++)
        sqlite3_finalize(st->hot[i]);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        log_warn("store: closing %s: %s", st->path, sqlite3_errmsg(st->db));
    free(st->path);
    free(st);
}

/* store/inbox.c -- the inbox: every accepted message is written here before it is
 * acknowledged, and stays "pending" until its turn has run, so a restart can replay it. */
#include <string.h>

#include "store/store-int.h"

void inbox_msg_release(struct inbox_msg *m)
{
    free(m->thread_key);
    free(m->user_id);
    free(m->text);
    free(m->ref);
    free(m->files);
    *m = (struct inbox_msg){0};
}

void inbox_msgs_free(struct inbox_msg *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        inbox_msg_release(&v[i]);
    free(v);
}

int store_inbox_add(struct store *st, const char *thread_key, const char *user_id, const char *text,
                    const char *ref, const char *files, int64_t *ret_id, struct jb_err *err)
{
    /* RETURNING, not sqlite3_last_insert_rowid(): that one is per connection and would
     * race if a connection were ever shared. */
    static const char sql[] =
        "INSERT INTO inbox (thread_key, user_id, text, received_at, ref, files)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
    int64_t id = 0;
    store_lock(st);
    int rc = store_hot_run(st, HOT_INBOX_ADD, sql,
                           &STORE_ARGS(ARG_T(thread_key), ARG_T(user_id), ARG_T(text),
                                       ARG_I(jb_now_ms()), ARG_T(ref), ARG_T(files)),
                           &id, NULL);
    if (rc < 0) store_fail(st, err, "cannot add a message of %s to the inbox", thread_key);
    store_unlock(st);
    if (rc == 0 && ret_id) *ret_id = id;
    return rc;
}

int store_inbox_finish(struct store *st, int64_t id, const char *state, struct jb_err *err)
{
    if (!state || (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0))
        return jb_err_set(err, JB_EPROTO, "store: inbox state must be done or failed, not %s",
                          state ? state : "(null)");
    int64_t n = 0;
    if (store_run(st, "UPDATE inbox SET state = ?2, finished_at = ?3 WHERE id = ?1",
                  &STORE_ARGS(ARG_I(id), ARG_T(state), ARG_I(jb_now_ms())), NULL, &n) < 0)
        return store_fail(st, err, "cannot finish inbox message %lld", (long long)id);
    if (n == 0) return jb_err_set(err, JB_ENOTFOUND, "store: no inbox message %lld", (long long)id);
    return 0;
}

int store_inbox_answering(struct store *st, int64_t id, struct jb_err *err)
{
    if (store_run(st, "UPDATE inbox SET state = 'answering' WHERE id = ?1 AND state = 'pending'",
                  &STORE_ARGS(ARG_I(id)), NULL, NULL) < 0)
        return store_fail(st, err, "cannot mark inbox message %lld as answering", (long long)id);
    return 0;
}

/* What msg_from_row() reads, in its order. */
#define INBOX_MSG_COLUMNS                                                                          \
    "SELECT id, thread_key, user_id, text, received_at, ref, files, state = 'answering'"

/* -1 only when out of memory; m is then empty. */
static int msg_from_row(sqlite3_stmt *s, struct inbox_msg *m)
{
    *m = (struct inbox_msg){
        .id = sqlite3_column_int64(s, 0),
        .received_at = sqlite3_column_int64(s, 4),
        .answering = sqlite3_column_int(s, 7),
    };
    if (store_col_dup(s, 1, &m->thread_key) < 0 || store_col_dup(s, 2, &m->user_id) < 0 ||
        store_col_dup(s, 3, &m->text) < 0 || store_col_dup(s, 5, &m->ref) < 0 ||
        store_col_dup(s, 6, &m->files) < 0) {
        inbox_msg_release(m);
        return -1;
    }
    return 0;
}

int store_inbox_pending(struct store *st, const char *prefix, struct inbox_msg **ret, size_t *ret_n,
                        struct jb_err *err)
{
    /* substr, not LIKE: '_' and '%' occur in keys and must match literally. */
    static const char sql[] = INBOX_MSG_COLUMNS " FROM inbox"
                                                " WHERE state IN ('pending', 'answering')"
                                                " AND substr(thread_key, 1, length(?1)) = ?1"
                                                " ORDER BY id";
    if (!prefix) prefix = "";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_T(prefix)), &s) < 0)
        return store_fail(st, err, "cannot read the inbox");
    struct inbox_msg *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct inbox_msg *nv = store_grow(v, &cap, n, sizeof *v);
        if (!nv || msg_from_row(s, &nv[n]) < 0) {
            inbox_msgs_free(nv ? nv : v, n);
            return jb_err_set(err, JB_ENOMEM, "store: reading the inbox");
        }
        v = nv;
        n++;
    }
    if (rc != SQLITE_DONE) {
        inbox_msgs_free(v, n);
        return store_fail(st, err, "cannot read the inbox");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int store_inbox_get(struct store *st, int64_t id, struct inbox_msg *ret, struct jb_err *err)
{
    static const char sql[] =
        INBOX_MSG_COLUMNS " FROM inbox WHERE id = ?1 AND state IN ('pending', 'answering')";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, &STORE_ARGS(ARG_I(id)), &s) < 0)
        return store_fail(st, err, "cannot read inbox message %lld", (long long)id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return jb_err_set(err, JB_ENOTFOUND, "store: inbox message %lld is not pending",
                          (long long)id);
    if (rc != SQLITE_ROW)
        return store_fail(st, err, "cannot read inbox message %lld", (long long)id);
    if (msg_from_row(s, ret) < 0) return jb_err_set(err, JB_ENOMEM, "store: reading the inbox");
    return 0;
}

static const char event_seen_sql[] = "INSERT INTO slack_events (event_id, dedupe_key, received_at)"
                                     " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/* Inside store_event_admit()'s transaction: 0 taken or no bucket, 1 limited, and a bucket
 * that could not be read or written lets the message through (bucket_err says why), unless
 * the failure ended the transaction: -1. */
static int admit_bucket(struct store *st, const struct store_admit *a, struct jb_err *bucket_err,
                        struct jb_err *err)
{
    if (!a->bucket_key) return 0;
    int rc = store_bucket_take(st, a->bucket_key, a->bucket_fn, a->bucket_ud, bucket_err);
    if (rc >= 0) return rc;
    if (sqlite3_get_autocommit(st->db))
        return jb_err_set(err, JB_ESYS, "store: event %s: %s", a->event_id, bucket_err->msg);
    return 0;
}

int store_event_admit(struct store *st, const struct store_admit *a, int64_t *ret_id,
                      struct jb_err *bucket_err, struct jb_err *err)
{
    store_lock(st);
    int64_t n = 0;
    int rc = -1;
    if (store_hot_run(st, HOT_BEGIN, "BEGIN IMMEDIATE", NULL, NULL, NULL) < 0 ||
        store_hot_run(st, HOT_EVENT_SEEN, event_seen_sql,
                      &STORE_ARGS(ARG_T(a->event_id), ARG_T(a->dedupe_key), ARG_I(jb_now_ms())),
                      NULL, &n) < 0) {
        store_fail(st, err, "cannot accept event %s", a->event_id);
        goto out;
    }
    if (n == 0) { /* that event, or that post under another event, was accepted before */
        rc = 1;
        goto out;
    }
    int limited = admit_bucket(st, a, bucket_err, err);
    if (limited < 0) goto out;
    if (!limited &&
        store_inbox_add(st, a->thread_key, a->user_id, a->text, a->ref, a->files, ret_id, err) < 0)
        goto out;
    if (store_hot_run(st, HOT_COMMIT, "COMMIT", NULL, NULL, NULL) < 0) {
        store_fail(st, err, "cannot accept event %s", a->event_id);
        goto out;
    }
    rc = limited ? 2 : 0;
out:
    if (rc != 0 && rc != 2 && !sqlite3_get_autocommit(st->db))
        store_hot_run(st, HOT_ROLLBACK, "ROLLBACK", NULL, NULL, NULL);
    store_unlock(st);
    return rc;
}

int store_event_accept(struct store *st, const char *event_id, const char *dedupe_key,
                       const char *thread_key, const char *user_id, const char *text,
                       const char *ref, const char *files, int64_t *ret_id, struct jb_err *err)
{
    struct store_admit a = {.event_id = event_id,
                            .dedupe_key = dedupe_key,
                            .thread_key = thread_key,
                            .user_id = user_id,
                            .text = text,
                            .ref = ref,
                            .files = files};
    return store_event_admit(st, &a, ret_id, NULL, err);
}

int store_event_seen(struct store *st, const char *event_id, const char *dedupe_key,
                     struct jb_err *err)
{
    int64_t n = 0;
    if (store_run(st, event_seen_sql,
                  &STORE_ARGS(ARG_T(event_id), ARG_T(dedupe_key), ARG_I(jb_now_ms())), NULL,
                  &n) < 0)
        return store_fail(st, err, "cannot record event %s", event_id);
    return n == 0;
}

int store_event_known(struct store *st, const char *event_id, const char *dedupe_key,
                      struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st,
                      "SELECT 1 FROM slack_events WHERE event_id = ?1 OR dedupe_key = ?2 LIMIT 1",
                      &STORE_ARGS(ARG_T(event_id), ARG_T(dedupe_key)), &s) < 0)
        return store_fail(st, err, "cannot look up event %s", event_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return store_fail(st, err, "cannot look up event %s", event_id);
}

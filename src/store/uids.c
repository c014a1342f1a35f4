/* store/uids.c -- the host uid of each local sandbox when janebot runs as root: an offset
 * above JANEBOT_SANDBOX_UID_BASE handed out once per sandbox name and held until the
 * sandbox is removed, so no two sandboxes share a uid (and with it the kernel's per-user
 * limits: processes, inotify instances, message queues). */
#include <string.h>

#include "store/store-int.h"

/* The offset name already holds: 0 and *ret set, 1 when it has none, -1 on error. */
static int uid_lookup(struct store *st, const char *name, int *ret, struct jb_err *err)
{
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, "SELECT uid_offset FROM sandbox_uids WHERE name = ?1",
                      &STORE_ARGS(ARG_T(name)), &s) < 0)
        return store_fail(st, err, "cannot read the uid of %s", name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return 1;
    if (rc != SQLITE_ROW) return store_fail(st, err, "cannot read the uid of %s", name);
    *ret = sqlite3_column_int(s, 0);
    return 0;
}

/* The smallest offset nobody holds: 0 when free, else one past a held offset whose
 * successor is free (both lookups use the UNIQUE index). */
static int uid_smallest_free(struct store *st, int64_t *ret, struct jb_err *err)
{
    static const char sql[] =
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM sandbox_uids WHERE uid_offset = 0) THEN 0"
        " ELSE (SELECT MIN(a.uid_offset) + 1 FROM sandbox_uids a WHERE NOT EXISTS"
        " (SELECT 1 FROM sandbox_uids b WHERE b.uid_offset = a.uid_offset + 1)) END";
    store_autostmt sqlite3_stmt *s = NULL;
    if (store_prepare(st, sql, NULL, &s) < 0 || sqlite3_step(s) != SQLITE_ROW)
        return store_fail(st, err, "cannot find a free sandbox uid");
    *ret = sqlite3_column_int64(s, 0);
    return 0;
}

static int uid_get_locked(struct store *st, const char *name, int *ret, struct jb_err *err)
{
    int rc = uid_lookup(st, name, ret, err);
    if (rc <= 0) return rc;
    int64_t off = 0;
    if (uid_smallest_free(st, &off, err) < 0) return -1;
    if (off >= STORE_UID_OFFSETS)
        return jb_err_set(
            err, JB_EUNAVAIL,
            "all %d sandbox uids (JANEBOT_SANDBOX_UID_BASE + 0..%d) are taken: remove "
            "sandboxes no longer needed (janebot sandbox gc / rm)",
            STORE_UID_OFFSETS, STORE_UID_OFFSETS - 1);
    if (store_run(st, "INSERT INTO sandbox_uids (name, uid_offset, created_at) VALUES (?1, ?2, ?3)",
                  &STORE_ARGS(ARG_T(name), ARG_I(off), ARG_I(jb_now_ms())), NULL, NULL) < 0)
        return store_fail(st, err, "cannot record the uid of %s", name);
    *ret = (int)off;
    return 0;
}

int store_uid_get(struct store *st, const char *name, int *ret_offset, struct jb_err *err)
{
    /* Most calls find the sandbox's own row: read it without taking the write lock. */
    int rc = uid_lookup(st, name, ret_offset, err);
    if (rc <= 0) return rc;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(st, err, "cannot lock the sandbox uids");
    int off = 0;
    rc = uid_get_locked(st, name, &off, err);
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_fail(st, err, "cannot commit the uid of %s", name);
    if (rc < 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    *ret_offset = off;
    return 0;
}

int store_uid_free(struct store *st, const char *name, struct jb_err *err)
{
    if (store_run(st, "DELETE FROM sandbox_uids WHERE name = ?1", &STORE_ARGS(ARG_T(name)), NULL,
                  NULL) < 0)
        return store_fail(st, err, "cannot free the uid of %s", name);
    return 0;
}

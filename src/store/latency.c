/* store/latency.c -- a connection on a latency path (store_low_latency()): no checkpoint
 * inside its commits, and no coarse sleeps while another connection holds the write lock.
 *
 * Checkpoints. SQLite runs an
 * automatic checkpoint inside the COMMIT that takes the WAL past 1000 pages: copying the
 * pages back and fsync()ing the database, milliseconds of work charged to whichever write
 * happened to cross the line. On the connection that stores Slack events before they are
 * acknowledged, that lands in the ack's tail. store_checkpoint_offload() turns the
 * automatic checkpoint off there; its WAL hook (called after each commit, with the WAL's
 * size) wakes a thread of our own that checkpoints on a connection of its own instead.
 * PASSIVE: it never waits for or blocks the writers; what it could not copy is copied next
 * time. Durability is unchanged: the commit itself is what it was (same journal mode and
 * synchronous setting); only who copies the WAL into the database later changes. */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "store/store-int.h"

enum { CHECKPOINT_PAGES = 1000 }; /* SQLite's own default for the automatic checkpoint */

struct store_checkpointer {
    struct store *conn; /* the checkpointing thread's own connection */
    pthread_t thr;
    sem_t wake;           /* posted by the WAL hook: sem_post takes no lock */
    atomic_int requested; /* 1 while a wake-up is posted and not yet taken */
    atomic_int stop;
};

static void *checkpoint_main(void *p)
{
    struct store_checkpointer *ck = p;
    for (;;) {
        while (sem_wait(&ck->wake) < 0 && errno == EINTR) {
        }
        atomic_store(&ck->requested, 0);
        if (atomic_load(&ck->stop)) return NULL;
        int log_pages = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(ck->conn->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           &log_pages, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store: checkpoint of %s: %s", ck->conn->path, sqlite3_errmsg(ck->conn->db));
    }
}

/* After every commit on the offloaded connection, on the committing thread: no I/O here,
 * one atomic exchange and at most one sem_post per checkpoint. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    (void)db, (void)name;
    struct store_checkpointer *ck = ud;
    if (pages >= CHECKPOINT_PAGES && !atomic_exchange(&ck->requested, 1)) sem_post(&ck->wake);
    return SQLITE_OK;
}

/* Waiting for the write lock. SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between
 * tries, so a worker's write of a few hundred microseconds costs the waiting commit whole
 * milliseconds. This one tries again after 50 us, backing off to 1 ms, and gives up after
 * the same 5 s as the busy timeout of every other connection. Per connection (st->busy_t0),
 * which only one thread uses at a time. */
static int busy_handler(void *ud, int tries)
{
    struct store *st = ud;
    int64_t now = jb_mono_ms();
    if (tries == 0) st->busy_t0 = now;
    if (now - st->busy_t0 >= STORE_BUSY_MS) return 0;
    long us = tries < 20 ? 50 : tries < 100 ? 200 : 1000;
    struct timespec pause = {0, us * 1000};
    nanosleep(&pause, NULL);
    return 1;
}

static int checkpoint_offload(struct store *st, struct jb_err *err)
{
    if (st->ckpt) return 0;
    struct store_checkpointer *ck = calloc(1, sizeof *ck);
    if (!ck) return jb_err_set(err, JB_ENOMEM, "store: checkpoints of %s", st->path);
    if (sem_init(&ck->wake, 0, 0) < 0) {
        free(ck);
        return jb_err_sys(err, "store: checkpoints of %s", st->path);
    }
    if (store_open(st->path, &ck->conn, err) < 0) goto fail;
    if (pthread_create(&ck->thr, NULL, checkpoint_main, ck) != 0) {
        jb_err_set(err, JB_ESYS, "store: cannot start the checkpoint thread of %s", st->path);
        goto fail;
    }
    /* Replaces the automatic checkpoint (which is itself a WAL hook) on st only. */
    sqlite3_wal_hook(st->db, wal_hook, ck);
    st->ckpt = ck;
    return 0;
fail:
    store_close(ck->conn);
    sem_destroy(&ck->wake);
    free(ck);
    return -1;
}

int store_low_latency(struct store *st, struct jb_err *err)
{
    if (checkpoint_offload(st, err) < 0) return -1;
    sqlite3_busy_handler(st->db, busy_handler, st); /* replaces the busy timeout on st */
    return 0;
}

void store_checkpoint_stop(struct store *st)
{
    struct store_checkpointer *ck = st->ckpt;
    if (!ck) return;
    sqlite3_wal_hook(st->db, NULL, NULL);
    atomic_store(&ck->stop, 1);
    sem_post(&ck->wake);
    pthread_join(ck->thr, NULL);
    store_close(ck->conn);
    sem_destroy(&ck->wake);
    free(ck);
    st->ckpt = NULL;
}

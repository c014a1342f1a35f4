/* sandbox/lock.c -- who may use a sandbox's directory while it is removed.
 *
 * A struct sandbox of a backend whose sandboxes are directories of this host (local,
 * host) holds a shared flock on <root>/<name>/lock from sandbox_ensure() to
 * sandbox_free(): a turn, or `janebot sandbox exec`, for its whole run (the files put in,
 * the exec, the outbox). Removing or resetting the sandbox takes the lock exclusively,
 * without waiting, and keeps it for the whole removal: refused while a turn runs, and no
 * turn starts meanwhile (it waits for the removal, then starts on a fresh sandbox). A
 * local sandbox's processes all die with its exec (pid namespace), so once the lock is
 * had, nothing runs in the home being removed. flock, not a mutex: `janebot sandbox rm`
 * and `serve` are different processes. The lock file sits beside the home, never in it:
 * nothing inside the sandbox can reach it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "sandbox/backend.h"

enum { LOCK_WAIT_MS = 60000, LOCK_TRIES = 3 };

static int open_lock(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", dir);
    return open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* The lock file fd holds is still <dir>/lock (not removed, nor renamed away with its
 * directory, while this process waited for it). */
static int still_there(int fd, const char *dir)
{
    char path[4096];
    struct stat held, now;
    snprintf(path, sizeof path, "%s/lock", dir);
    return fstat(fd, &held) == 0 && lstat(path, &now) == 0 && held.st_dev == now.st_dev &&
           held.st_ino == now.st_ino;
}

static int wait_shared(int fd, int64_t deadline)
{
    for (;;) {
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) return 0;
        if (errno != EWOULDBLOCK && errno != EINTR) return -1;
        if (jb_mono_ms() >= deadline) return errno = ETIMEDOUT, -1;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
    }
}

int sandbox_lock_use(const char *dir, int *ret_fd, struct jb_err *err)
{
    int64_t deadline = jb_mono_ms() + LOCK_WAIT_MS;
    for (int i = 0; i < LOCK_TRIES; i++) {
        if (jb_mkdir_p(dir, 0700, err) < 0) return -1;
        int fd = open_lock(dir);
        if (fd < 0 && errno == ENOENT) continue; /* removed between the two calls */
        if (fd < 0) return jb_err_sys(err, "cannot open the lock of %s", dir);
        if (wait_shared(fd, deadline) < 0) {
            int e = errno;
            close(fd);
            if (e != ETIMEDOUT) return errno = e, jb_err_sys(err, "cannot lock %s", dir);
            return jb_err_set(err, JB_EBUSY,
                              "this thread's sandbox is being removed or reset and still was "
                              "after %d s; try again",
                              LOCK_WAIT_MS / 1000);
        }
        if (still_there(fd, dir)) {
            *ret_fd = fd;
            return 0;
        }
        close(fd); /* it was removed while this waited: start a fresh one */
    }
    return jb_err_set(err, JB_EBUSY, "this thread's sandbox keeps being removed; try again");
}

int sandbox_lock_remove(const char *dir, int *ret_fd, struct jb_err *err)
{
    int fd = open_lock(dir);
    if (fd < 0) return jb_err_sys(err, "cannot open the lock of %s", dir);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return jb_err_set(err, JB_EBUSY,
                              "a turn is running in this thread's sandbox: wait "
                              "for it or cancel it");
        errno = e;
        return jb_err_sys(err, "cannot lock %s", dir);
    }
    *ret_fd = fd;
    return 0;
}

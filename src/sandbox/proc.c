/* sandbox/proc.c -- run one process with piped stdio, a deadline and cancellation, and
 * make sure nothing of it outlives the call. Shared by the local and host backends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox/backend.h"

#define KILL_GRACE_MS       2000
#define DRAIN_AFTER_EXIT_MS 500

int proc_memfd(const char *name, const void *data, size_t len, struct jb_err *err)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return jb_err_sys(err, "memfd_create");
    if (jb_write_all(fd, data, len) < 0) {
        jb_err_sys(err, "writing %s", name);
        close(fd);
        return -1;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void tail_keep(char *tail, size_t cap, const char *data, size_t n)
{
    size_t have = strlen(tail);
    if (n >= cap - 1) {
        memcpy(tail, data + n - (cap - 1), cap - 1);
        tail[cap - 1] = '\0';
        return;
    }
    if (have + n > cap - 1) {
        size_t drop = have + n - (cap - 1);
        memmove(tail, tail + drop, have - drop);
        have -= drop;
    }
    memcpy(tail + have, data, n);
    tail[have + n] = '\0';
}

struct pipes {
    int in_w, out_r, err_r;
    int pidfd; /* readable once the child exited: wakes the loop without polling */
    size_t in_off;
};

/* Something to write to the command's stdin (or to close it): stdin_data not all written,
 * or the live input has bytes or was closed. */
static int stdin_has_work(const struct pipes *p, const struct sandbox_exec *x)
{
    return p->in_off < x->stdin_len || (x->input && sandbox_input_busy(x->input));
}

/* Write what can be written to stdin: stdin_data first, then the live input. 1 when stdin
 * is to be closed now (all of it written, or the pipe failed). */
static int feed_stdin(struct pipes *p, struct sandbox_exec *x)
{
    if (p->in_off < x->stdin_len) {
        ssize_t w = write(p->in_w, x->stdin_data + p->in_off, x->stdin_len - p->in_off);
        if (w > 0) p->in_off += (size_t)w;
        if (w < 0 && errno != EAGAIN && errno != EINTR) return 1;
        if (p->in_off < x->stdin_len) return 0;
    }
    return x->input ? sandbox_input_to_fd(x->input, p->in_w) != 0 : 1;
}

/* Pump the pipes once (up to wait_ms). Returns 1 while any pipe is open. */
static int pump(struct pipes *p, struct sandbox_exec *x, int wait_ms)
{
    struct pollfd fds[4];
    int n = 0;
    if (p->pidfd >= 0) fds[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
    if (p->in_w >= 0 && stdin_has_work(p, x))
        fds[n++] = (struct pollfd){.fd = p->in_w, .events = POLLOUT};
    if (p->out_r >= 0) fds[n++] = (struct pollfd){.fd = p->out_r, .events = POLLIN};
    if (p->err_r >= 0) fds[n++] = (struct pollfd){.fd = p->err_r, .events = POLLIN};
    int open = n - (p->pidfd >= 0);
    if (n == 0) return 0;
    if (poll(fds, (nfds_t)n, wait_ms) <= 0) return open > 0;
    char buf[65536];
    for (int i = 0; i < n; i++) {
        if (!fds[i].revents) continue;
        int fd = fds[i].fd;
        if (fd == p->pidfd) {
            close(p->pidfd); /* exited: waitpid() in the caller reaps it */
            p->pidfd = -1;
            continue;
        }
        if (fd == p->in_w) {
            if (feed_stdin(p, x)) {
                close(p->in_w);
                p->in_w = -1;
            }
            continue;
        }
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
            close(fd);
            if (fd == p->out_r)
                p->out_r = -1;
            else
                p->err_r = -1;
            continue;
        }
        if (fd == p->out_r && x->on_stdout)
            x->on_stdout(x->ud, buf, (size_t)r);
        else if (fd == p->err_r)
            tail_keep(x->stderr_tail, sizeof x->stderr_tail, buf, (size_t)r);
    }
    return (p->in_w >= 0 || p->out_r >= 0 || p->err_r >= 0);
}

static int make_pipes(struct sandbox_exec *x, int child[3], struct pipes *p, struct jb_err *err)
{
    int fds[2];
    child[0] = child[1] = child[2] = -1;
    *p = (struct pipes){-1, -1, -1, -1, 0};
    if (x->passthrough) return 0;
    if (pipe2(fds, O_CLOEXEC) < 0) return jb_err_sys(err, "pipe");
    child[0] = fds[0], p->in_w = fds[1];
    if (pipe2(fds, O_CLOEXEC) < 0) return jb_err_sys(err, "pipe");
    p->out_r = fds[0], child[1] = fds[1];
    if (pipe2(fds, O_CLOEXEC) < 0) return jb_err_sys(err, "pipe");
    p->err_r = fds[0], child[2] = fds[1];
    for (int i = 0; i < 3; i++) {
        int fd = i == 0 ? p->in_w : i == 1 ? p->out_r : p->err_r;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    if (x->stdin_len == 0 && !x->input) close(p->in_w), p->in_w = -1;
    return 0;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]), fds[i] = -1;
}

static void finish_status(struct sandbox_exec *x, int status)
{
    if (WIFEXITED(status))
        x->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) {
        x->term_signal = WTERMSIG(status);
        x->exit_code = 128 + x->term_signal;
    }
}

int proc_run(const struct proc_spec *ps, struct sandbox_exec *x, struct jb_err *err)
{
    int child[3];
    struct pipes p;
    x->stderr_tail[0] = '\0';
    x->exit_code = x->term_signal = x->timed_out = x->cancelled = x->over_quota = 0;
    x->llm_refused = NULL;
    if (make_pipes(x, child, &p, err) < 0) {
        close_all(child, 3);
        close_all(&p.in_w, 1), close_all(&p.out_r, 1), close_all(&p.err_r, 1);
        return -1;
    }
    int64_t start = jb_mono_ms();
    pid_t pid = proc_clone(ps, child[0], child[1], child[2]);
    if (pid < 0) {
        jb_err_sys(err, "clone");
        close_all(child, 3);
        close_all(&p.in_w, 1), close_all(&p.out_r, 1), close_all(&p.err_r, 1);
        return -1;
    }
    close_all(child, 3);
    p.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    int status = 0, reaped = 0;
    int64_t kill_at = 0, reaped_at = 0, next_tick = jb_mono_ms() + 1000;
    for (;;) {
        int open = pump(&p, x, x->passthrough ? 100 : 50);
        if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
            reaped = 1, reaped_at = jb_mono_ms();
            close_all(&p.in_w, 1); /* a live stdin has no reader any more */
            kill(-pid, SIGKILL);   /* whatever is left in its process group */
        }
        if (reaped && (!open || jb_mono_ms() - reaped_at > DRAIN_AFTER_EXIT_MS)) break;
        if (reaped) continue;
        int64_t now = jb_mono_ms();
        int64_t at = x->cancel_at_ms ? atomic_load(x->cancel_at_ms) : 0;
        int cancel = (x->cancel && atomic_load(x->cancel)) || (at && now >= at);
        if (ps->tick && !kill_at && now >= next_tick) {
            next_tick = now + 1000;
            if (ps->tick(ps->tick_ud)) x->over_quota = 1, cancel = 1;
        }
        int expired = x->deadline_ms && now >= x->deadline_ms;
        if ((cancel || expired) && !kill_at) {
            x->cancelled = cancel && !x->over_quota, x->timed_out = !cancel;
            kill(-pid, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        } else if (kill_at && now >= kill_at) {
            kill(-pid, SIGKILL);
        }
        if (!open && p.pidfd < 0 && !reaped) {
            /* No pidfd (old kernel) and no pipes: wait for the child in short steps. */
            struct pollfd none;
            poll(&none, 0, 5);
        }
    }
    close_all(&p.in_w, 1), close_all(&p.out_r, 1), close_all(&p.err_r, 1);
    close_all(&p.pidfd, 1);
    if (x->input) sandbox_input_end(x->input);
    finish_status(x, status);
    x->wall_ms = jb_mono_ms() - start;
    return 0;
}

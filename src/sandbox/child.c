/* sandbox/child.c -- the child of proc_run(), from clone() to execve().
 *
 * The child is made with clone(CLONE_VM | CLONE_VFORK), not fork(): it borrows janebot's
 * address space on a stack of its own until its execve(), and only the calling thread waits
 * for that. A fork() of a process with threads write-locks the address space while it
 * copies the page tables, and then turns every write of the other threads (the Slack socket
 * thread's among them) into a copy-on-write fault until the child has exec'd: a turn's start
 * showed in the ack latency of everyone else.
 *
 * Sharing the memory sets the rules for the code below: raw system calls only (no libc
 * state, no allocation, no lock), nothing written but the stack and errno (the waiting
 * thread's), no sanitizer instrumentation (its state is janebot's), and never a
 * glibc wrapper such as setuid(), which acts on every thread of the process it believes it
 * is in: janebot's. Every signal is blocked across the clone(), so no handler of janebot's
 * runs in the child before the dispositions are reset. The Makefile builds this file
 * without sanitizers in every build: even a function's entry hook of ThreadSanitizer would
 * write the waiting thread's state. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/backend.h"

#define CHILD_STACK (128 * 1024)

struct child_args {
    const struct proc_spec *ps;
    int in, out, errfd;
    pid_t parent;
};

/* The kernel's struct sigaction (rt_sigaction(2)); a zero handler is SIG_DFL. */
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

static void child_exit(int code)
{
    for (;;)
        syscall(SYS_exit_group, code);
}

/* A child starts with the signal state of a fresh process: the forking thread's mask may
 * block SIGTERM (serve takes it with sigwait()) and janebot ignores SIGPIPE, and both
 * survive exec, so a sandbox (bwrap, its init, the agent) would ignore the SIGTERM of a
 * cancel and wait for the SIGKILL. */
static void child_reset_signals(void)
{
    struct kernel_sigaction dfl = {0};
    for (long sig = 1; sig <= 64; sig++) /* fails harmlessly for SIGKILL and SIGSTOP */
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
}

/* fd as the child's fd `to`, kept across the exec. */
static long child_dup(int fd, int to)
{
    return fd == to ? syscall(SYS_fcntl, to, F_SETFD, 0) : syscall(SYS_dup3, fd, to, 0);
}

static void child_exec(const struct proc_spec *ps, int in, int out, int errfd, pid_t parent)
{
    /* First: every process the sandbox ever has is then in its cgroup. */
    for (size_t i = 0; i < ps->ncgroup; i++)
        if (syscall(SYS_write, ps->cgroup_fds[i], "0", 1) != 1) child_exit(125);
    child_reset_signals();
    syscall(SYS_setsid);
    if (ps->nstage) {
        /* Root only: show host paths that the unprivileged uid cannot reach (a state dir
         * under /root) at placeholders it can, in a mount namespace of this child only. */
        if (syscall(SYS_unshare, CLONE_NEWNS) < 0 ||
            syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            child_exit(125);
        for (size_t i = 0; i < ps->nstage; i++)
            if (syscall(SYS_mount, ps->stage_src[i], ps->stage_dst[i], NULL, MS_BIND | MS_REC,
                        NULL) < 0)
                child_exit(125);
        for (size_t i = 0; i < ps->ndetach; i++)
            syscall(SYS_umount2, ps->stage_detach[i], MNT_DETACH | UMOUNT_NOFOLLOW);
    }
    /* Below janebot's own threads: an agent's build, on a small machine, must not delay
     * the acks and answers of everyone else. Inside, RLIMIT_NICE 0 keeps it there. */
    if (ps->nice > 0 && syscall(SYS_setpriority, PRIO_PROCESS, 0, ps->nice) < 0) child_exit(125);
    /* Privileges next: a credential change clears the parent-death signal. */
    long uid = (long)ps->uid, gid = (long)ps->gid;
    if (ps->drop_to_uid &&
        (syscall(SYS_setgroups, 0L, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
         syscall(SYS_setresuid, uid, uid, uid) < 0))
        child_exit(125);
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (syscall(SYS_getppid) != parent) child_exit(127);
    if ((in >= 0 && child_dup(in, 0) < 0) || (out >= 0 && child_dup(out, 1) < 0) ||
        (errfd >= 0 && child_dup(errfd, 2) < 0))
        child_exit(127);
    for (size_t i = 0; i < ps->nkeep; i++)
        syscall(SYS_fcntl, ps->keep_fds[i], F_SETFD, 0);
    if (ps->cwd && syscall(SYS_chdir, ps->cwd) < 0) child_exit(127);
    syscall(SYS_execve, ps->argv[0], ps->argv, ps->envp);
    static const char msg[] = "janebot: cannot execute the sandbox command\n";
    syscall(SYS_write, 2, msg, sizeof msg - 1);
    child_exit(127);
}

static int child_main(void *p)
{
    const struct child_args *a = p;
    child_exec(a->ps, a->in, a->out, a->errfd, a->parent);
    return 127;
}

#ifdef JB_CHILD_FORK
/* ThreadSanitizer's build: it keeps each thread's state in that thread's memory, which a
 * second task running there (the clone below) leaves wrong, and it then reports races that
 * are not there. It forks instead; the child runs the same code. */
pid_t proc_clone(const struct proc_spec *ps, int in, int out, int errfd)
{
    struct child_args a = {ps, in, out, errfd, getpid()};
    pid_t pid = fork();
    if (pid == 0) child_main(&a);
    return pid;
}
#else
pid_t proc_clone(const struct proc_spec *ps, int in, int out, int errfd)
{
    struct child_args a = {ps, in, out, errfd, getpid()};
    void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid =
        clone(child_main, (char *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CHILD_STACK);
    errno = e;
    return pid;
}
#endif

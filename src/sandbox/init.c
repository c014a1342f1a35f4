/* sandbox/init.c -- `janebot sandbox-init`, the first process inside a local sandbox: the
 * small static program src/sandbox-init.c (embedded in janebot), shown read-only at
 * /run/janebot/janebot. In order:
 *   1. listen on 127.0.0.1:PORT for each proxy and hand the listener to the host proxy
 *      over its Unix socket (main() passes proxy.h's proxy_hand_over), then close it:
 *      the sandbox's clients reach the host proxy straight, and nothing inside keeps the
 *      listener; done while socket(AF_UNIX) is still allowed;
 *   2. set the resource limits (hard = soft, so nothing inside can raise them);
 *   3. stack the agent seccomp filter (no new AF_UNIX sockets);
 *   4. close every inherited fd but stdio, and exec the command.
 * Every failure exits non-zero before the command runs: the sandbox fails closed. With
 * --stamp FD (a benchmark's sandbox_timing), it writes the time it started and the time
 * the command is about to start there. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "sandbox/sandbox.h"

/* Under the resource limits nothing may allocate (a sanitizer build could not), and no
 * exit handler may run: report with write(2) and leave with _exit(). */
static _Noreturn void leave(int code, const char *who, const char *what, int e)
{
    char msg[512];
    int n =
        snprintf(msg, sizeof msg, "%s: %s%s%s\n", who, what, e ? ": " : "", e ? strerror(e) : "");
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    _exit(code);
}

static _Noreturn void die(const char *what)
{
    leave(125, "janebot sandbox-init", what, errno);
}

static int set_limit(int res, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {soft, hard};
    return setrlimit(res, &rl);
}

/* limits: "NPROC:NOFILE:FSIZE_MB:AS_MB:CPU_S"; AS_MB 0 = no address-space limit (the
 * memory cgroup bounds what is used; V8 and WebAssembly reserve far more than they use) */
static int apply_limits(const char *spec)
{
    unsigned long long nproc, nofile, fsize_mb, as_mb, cpu;
    if (sscanf(spec, "%llu:%llu:%llu:%llu:%llu", &nproc, &nofile, &fsize_mb, &as_mb, &cpu) != 5)
        return errno = EINVAL, -1;
    const rlim_t mib = 1024 * 1024;
    if (set_limit(RLIMIT_NPROC, nproc, nproc) < 0 || set_limit(RLIMIT_NOFILE, nofile, nofile) < 0 ||
        set_limit(RLIMIT_FSIZE, fsize_mb * mib, fsize_mb * mib) < 0 ||
        (as_mb && set_limit(RLIMIT_AS, as_mb * mib, as_mb * mib) < 0) ||
        set_limit(RLIMIT_CPU, cpu, cpu + 5) < 0 || set_limit(RLIMIT_CORE, 0, 0) < 0 ||
        set_limit(RLIMIT_MEMLOCK, 65536, 65536) < 0 || set_limit(RLIMIT_NICE, 0, 0) < 0 ||
        set_limit(RLIMIT_RTPRIO, 0, 0) < 0 || set_limit(RLIMIT_MSGQUEUE, 0, 0) < 0)
        return -1;
    return 0;
}

static int apply_filter(int fd)
{
    static char bpf[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, bpf + len, sizeof bpf - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (n < 0 || len == 0 || len % sizeof(struct sock_filter) != 0 || len == sizeof bpf)
        return errno = EINVAL, -1;
    struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)),
                              .filter = (struct sock_filter *)bpf};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* spec: "PORT:PATH". Connections past the proxy's cap wait in the backlog (the LLM
 * proxy's) or are answered 503 (the egress proxy's), by the host. */
static void hand_over(const char *spec, sandbox_handoff_fn handoff)
{
    char *end;
    long port = strtol(spec, &end, 10);
    if (*end != ':' || port <= 0 || port > 65535) errno = EINVAL, die("--listen");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) die("listen");
    struct jb_err err = {0};
    if (handoff(fd, end + 1, &err) < 0) leave(125, "janebot sandbox-init", err.msg, 0);
    close(fd);
}

/* env: NUL-separated NAME=VALUE entries from the host (the adapter's variables). */
static int load_env(int fd)
{
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (n < 0) return -1;
    buf[len] = '\0';
    for (char *p = buf, *next; p < buf + len; p = next) {
        next = p + strlen(p) + 1;
        char *eq = strchr(p, '=');
        if (!eq) return errno = EINVAL, -1;
        *eq = '\0';
        if (setenv(p, eq + 1, 1) < 0) return -1;
    }
    return 0;
}

/* pid 1 of the sandbox: reap every orphan, leave with the command's status. The kernel
 * then ends the pid namespace, killing whatever is left (`nohup … &`). */
static _Noreturn void reap_until(pid_t cmd)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) _exit(125);
        if (p != cmd) continue;
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
}

/* A timing stamp for a benchmark (sandbox_timing): the CLOCK_MONOTONIC time ts, in ns, at
 * slot of fd (-1: none asked for). */
static void stamp(int fd, int slot, const struct timespec *ts)
{
    int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
    if (fd >= 3 && pwrite(fd, &ns, sizeof ns, (off_t)(slot * sizeof ns)) != (ssize_t)sizeof ns)
        die("timing stamp");
}

_Noreturn int sandbox_init_main(int argc, char **argv, sandbox_handoff_fn handoff)
{
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    const char *limits = NULL, *listeners[4] = {0};
    size_t nlisten = 0;
    int filter_fd = -1, env_fd = -1, stamp_fd = -1, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc) errno = EINVAL, die("arguments");
        if (!strcmp(argv[i], "--limits"))
            limits = argv[i + 1];
        else if (!strcmp(argv[i], "--listen") && nlisten < 4)
            listeners[nlisten++] = argv[i + 1];
        else if (!strcmp(argv[i], "--filter"))
            filter_fd = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--env"))
            env_fd = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stamp"))
            stamp_fd = atoi(argv[i + 1]);
        else
            errno = EINVAL, die(argv[i]);
    }
    if (i + 1 >= argc || filter_fd < 3 || !limits) errno = EINVAL, die("arguments");
    char **cmd = argv + i + 1;
    stamp(stamp_fd, 0, &started);
    /* Not dumpable: the agent (same uid, no capabilities) cannot open /proc/1/mem and run
     * code under this process's lighter filter. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die("prctl");
    for (size_t l = 0; l < nlisten; l++)
        hand_over(listeners[l], handoff);
    if (env_fd >= 3 && load_env(env_fd) < 0) die("environment");
    if (apply_limits(limits) < 0) die("resource limits");
    if (apply_filter(filter_fd) < 0) die("seccomp filter");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    stamp(stamp_fd, 1, &now);
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) die("close_range");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid > 0) reap_until(pid);
    signal(SIGPIPE, SIG_DFL);
    execvp(cmd[0], cmd);
    if (errno == ENOENT) leave(127, cmd[0], "command not found", 0);
    leave(126, cmd[0], "cannot execute", errno);
}

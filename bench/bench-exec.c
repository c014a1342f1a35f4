/* bench/bench-exec.c -- what does a sandbox cost? Times, side by side:
 *   1. a plain fork+exec of /bin/true,
 *   2. raw bubblewrap with janebot's namespace flags running true,
 *   3. `janebot sandbox exec THREAD -- true` (config, store-free path, bwrap, sh exec).
 * Prints min / median / max wall time in milliseconds over N runs (after warm-ups).
 * usage: bench-exec JANEBOT_BINARY [RUNS] */
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "util/util.h"

extern char **environ;

static double run_once(char *const argv[])
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int measure(const char *label, char *const argv[], int runs)
{
    double *t = calloc((size_t)runs, sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < 3; i++) run_once(argv);
    for (int i = 0; i < runs; i++)
        if ((t[i] = run_once(argv)) < 0) {
            fprintf(stderr, "%s: the command failed\n", label);
            free(t);
            return -1;
        }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    printf("| %-34s | %8.2f | %8.2f | %8.2f |\n", label, t[0], t[runs / 2], t[runs - 1]);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-exec JANEBOT_BINARY [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 50;
    if (runs < 3) runs = 3;
    char *bwrap = jb_which("bwrap", "/usr/bin:/bin");
    if (!bwrap) {
        fprintf(stderr, "bwrap is not installed\n");
        return 1;
    }
    /* A throwaway state dir and the plainest agent, so the janebot row measures the
     * sandbox and not a missing agent CLI. */
    char state[] = "/tmp/janebot-bench.XXXXXX";
    if (!mkdtemp(state)) return 1;
    setenv("JANEBOT_STATE_DIR", state, 1);
    setenv("JANEBOT_AGENT", "command", 1);
    setenv("JANEBOT_AGENT_CMD", "/bin/true", 1);
    setenv("JANEBOT_SANDBOX", "local", 1);
    char *plain[] = {"/bin/true", NULL};
    char *raw[] = {bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
                   "--unshare-uts", "--unshare-cgroup-try", "--disable-userns",
                   "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
                   "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink",
                   "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                   "--", "/usr/bin/true", NULL};
    char *jb[] = {argv[1], "sandbox", "exec", "bench:start", "--", "true", NULL};
    printf("sandbox start-up, %d runs each (wall ms)\n\n", runs);
    printf("| %-34s | %8s | %8s | %8s |\n", "command", "min", "median", "max");
    printf("|%.36s|%.10s|%.10s|%.10s|\n", "------------------------------------",
           "----------", "----------", "----------");
    int rc = measure("fork+exec /bin/true", plain, runs) | measure("bwrap ... true", raw, runs) |
             measure("janebot sandbox exec -- true", jb, runs);
    free(bwrap);
    jb_rm_rf(state, NULL);
    return rc ? 1 : 0;
}

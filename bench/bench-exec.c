/* bench/bench-exec.c -- what does starting a sandbox cost, and where does the time go?
 *
 * Whole processes (posix_spawn + wait, as a shell would):
 *   1. fork+exec of /bin/true;
 *   2. raw bubblewrap with janebot's namespace flags running true (the anchor);
 *   3. `janebot sandbox exec THREAD -- true`.
 * Inside one process that has done its one-time set-up as `serve` does (configuration,
 * store, proxies, the sandbox context with its probe, the policy):
 *   4. a turn's sandbox start: sandbox_ensure() + sandbox_exec() of true + sandbox_free(),
 *      against raw bubblewrap spawned from the same process;
 *   5. the one-off path of `sandbox exec` after main() (configuration to exit), step by step,
 *      so the whole-process figure splits into its parts, with `janebot --version` for the
 *      process's own start and exit (loading janebot's shared libraries).
 * Each figure is min / median / max wall time in ms over RUNS runs (after warm-ups); the
 * steps inside an exec come from its sandbox_timing stamps. The two goals (issue 15) are
 * printed and, when BENCH_RESULTS names a file, appended to it as JSON lines in the form of
 * bench/benchlib.py's Goal.as_json().
 * usage: bench-exec JANEBOT_BINARY [RUNS] */
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "core/core-int.h"
#include "core/policy.h"
#include "sandbox/sandbox.h"

extern char **environ;

#define KEY "bench:start"

static double now_ms(void)
{
    return (double)sandbox_clock_ns() / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* min, median (the mean of the middle two for an even count, as Python's), max. */
struct spread {
    double min, med, max;
};

static struct spread spread_of(const double *v, int n)
{
    double *t = malloc((size_t)n * sizeof *t);
    if (!t) return (struct spread){0, 0, 0};
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    struct spread s = {t[0], n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t[n - 1]};
    free(t);
    return s;
}

static void row(const char *label, struct spread s)
{
    printf("| %-58s | %8.2f | %8.2f | %8.2f |\n", label, s.min, s.med, s.max);
}

static void header(const char *title, const char *what)
{
    printf("\n%s\n\n| %-58s | %8s | %8s | %8s |\n", title, what, "min", "median", "max");
    printf("|%.60s|%.10s|%.10s|%.10s|\n",
           "------------------------------------------------------------", "----------",
           "----------", "----------");
}

/* ---- whole processes ---- */

/* argv run with its stdout on /dev/null (`janebot --version` prints), stderr as ours. */
static double spawn_once(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return -1;
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double a = now_ms();
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st;
    waitpid(pid, &st, 0);
    double b = now_ms();
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? b - a : -1;
}

static int spawn_series(const char *label, char *const argv[], int runs, struct spread *ret)
{
    double *t = calloc((size_t)runs, sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < 3; i++)
        spawn_once(argv);
    for (int i = 0; i < runs; i++)
        if ((t[i] = spawn_once(argv)) < 0) {
            fprintf(stderr, "%s: the command failed\n", label);
            free(t);
            return -1;
        }
    *ret = spread_of(t, runs);
    free(t);
    return 0;
}

/* ---- in one process ---- */

/* The steps of one exec, as ms between stamps, in the order of sandbox_step. */
static const char *const exec_steps[] = {
    "exec: seccomp filters into memfds",
    "exec: proxy registration (egress listener, LLM token)",
    "exec: staging, bwrap arguments, cgroup",
    "exec: fork, cgroup join, bwrap's own set-up",
    "exec: in-sandbox init (listeners handed over, limits, filter)",
    "exec: the command (true) and every process reaped",
    "exec: release (cgroup, listener, token)",
};
#define NEXEC (SANDBOX_NSTEPS - 1)

struct series {
    int n;
    double *total;
    double *step[16]; /* per named step */
};

static int series_init(struct series *s, int runs, int nsteps)
{
    memset(s, 0, sizeof *s);
    s->total = calloc((size_t)runs, sizeof(double));
    for (int i = 0; i < nsteps; i++)
        s->step[i] = calloc((size_t)runs, sizeof(double));
    for (int i = 0; i < nsteps; i++)
        if (!s->step[i]) return -1;
    return s->total ? 0 : -1;
}

static void series_free(struct series *s)
{
    free(s->total);
    for (int i = 0; i < 16; i++)
        free(s->step[i]);
}

static void exec_steps_put(struct series *s, int at, const struct sandbox_timing *tm, int run)
{
    for (int i = 0; i < NEXEC; i++)
        s->step[at + i][run] = (double)(tm->ns[i + 1] - tm->ns[i]) / 1e6;
}

static int exec_true(struct sandbox *sb, struct sandbox_timing *tm, struct jb_err *err)
{
    static const char *const argv[] = {"true", NULL};
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.argv = argv;
    x.timing = tm;
    x.deadline_ms = jb_mono_ms() + 60000;
    memset(tm, 0, sizeof *tm);
    if (sandbox_exec(sb, &x, err) < 0) return -1;
    if (x.exit_code != 0 || !tm->ns[SANDBOX_STEP_INIT])
        return jb_err_set(err, JB_ESYS, "true exited %d in the sandbox: %s", x.exit_code,
                          x.stderr_tail);
    return 0;
}

/* What serve holds from its start: configuration, services, the context, the policy. */
struct served {
    struct jb_config cfg;
    struct core_services cs;
    struct sandbox_ctx ctx;
    struct policy *pol;
};

static int served_open(struct served *s, struct jb_err *err)
{
    memset(s, 0, sizeof *s);
    if (config_load(&s->cfg, err) < 0) return -1;
    return core_services_open(&s->cs, &s->cfg, 1, NULL, NULL, err) < 0 ||
                   core_services_sandbox(&s->cs, &s->ctx, 1, err) < 0 ||
                   policy_load(&s->cfg, &s->pol, err) < 0
               ? -1
               : 0;
}

static void served_close(struct served *s)
{
    policy_unref(s->pol);
    sandbox_ctx_release(&s->ctx);
    core_services_close(&s->cs);
    config_release(&s->cfg);
}

/* A turn's sandbox start: ensure, exec, free. */
static int turn_start(struct served *s, struct series *out, int run, struct jb_err *err)
{
    struct sandbox_timing tm;
    struct sandbox *sb = NULL;
    double a = now_ms();
    int rc = sandbox_ensure(&s->ctx, KEY, &sb, err) < 0 ? -1 : 0;
    double b = now_ms();
    if (rc == 0) rc = exec_true(sb, &tm, err);
    sandbox_free(sb);
    double c = now_ms();
    if (rc < 0 || !out) return rc;
    out->total[run] = c - a;
    out->step[0][run] = b - a;
    exec_steps_put(out, 1, &tm, run);
    return 0;
}

/* The one-off path of `janebot sandbox exec` after main(), as core_sandbox_exec() runs it. */
static const char *const oneoff_steps[] = {
    "configuration (environment, .env files)",
    "store open, proxies (core_services_open)",
    "sandbox context (run dir, init copy, cgroups, filters)",
    "policy",
    "sandbox_ensure (lock, uid, home)",
};
#define NONEOFF ((int)JB_ARRAY_LEN(oneoff_steps))

static int oneoff(struct series *out, int run, struct jb_err *err)
{
    double t[NONEOFF + 3];
    struct jb_config cfg = {0};
    struct core_services cs;
    struct sandbox_ctx ctx = {0};
    struct policy *pol = NULL;
    struct sandbox *sb = NULL;
    struct sandbox_timing tm;
    memset(&cs, 0, sizeof cs);
    int rc = -1;
    t[0] = now_ms();
    if (config_load(&cfg, err) < 0) goto out;
    t[1] = now_ms();
    if (core_services_open(&cs, &cfg, 0, NULL, NULL, err) < 0) goto out;
    t[2] = now_ms();
    if (core_services_sandbox(&cs, &ctx, 0, err) < 0) goto out;
    t[3] = now_ms();
    if (policy_load(&cfg, &pol, err) < 0) goto out;
    t[4] = now_ms();
    if (sandbox_ensure(&ctx, KEY, &sb, err) < 0) goto out;
    t[5] = now_ms();
    rc = exec_true(sb, &tm, err);
    t[6] = now_ms();
out:
    sandbox_free(sb);
    policy_unref(pol);
    sandbox_ctx_release(&ctx);
    core_services_close(&cs);
    config_release(&cfg);
    t[7] = now_ms();
    if (rc < 0 || !out) return rc;
    out->total[run] = t[7] - t[0];
    for (int i = 0; i < NONEOFF; i++)
        out->step[i][run] = t[i + 1] - t[i];
    exec_steps_put(out, NONEOFF, &tm, run);
    out->step[NONEOFF + NEXEC][run] = t[7] - t[6];
    return 0;
}

/* ---- goals (bench/benchlib.py) ---- */

static void goal(const char *figure, struct spread ours, const char *anchor_name,
                 struct spread anchor, double limit, const char *note)
{
    double ratio = ours.med / anchor.med;
    printf("| %s | %.2f/%.2f/%.2f | %s %.2f/%.2f/%.2f | %.2fx | ratio <= %g | %s |\n", figure,
           ours.min, ours.med, ours.max, anchor_name, anchor.min, anchor.med, anchor.max, ratio,
           limit, ratio <= limit ? "yes" : "NO");
    const char *path = getenv("BENCH_RESULTS");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (!f) return;
    fprintf(f,
            "{\"figure\": \"%s\", \"unit\": \"ms\", \"ours\": [%.4f, %.4f, %.4f], "
            "\"anchor_name\": \"%s\", \"anchor\": [%.4f, %.4f, %.4f], \"kind\": \"ratio_max\", "
            "\"limit\": %g, \"note\": \"%s\"}\n",
            figure, ours.min, ours.med, ours.max, anchor_name, anchor.min, anchor.med, anchor.max,
            limit, note);
    fclose(f);
}

/* ---- main ---- */

static int run_in_process(int runs, char *const raw[], struct spread *turn, struct spread *anchor,
                          struct spread *oneoff_total)
{
    struct jb_err err = {0};
    struct served s;
    struct series t, o;
    int rc = -1;
    if (series_init(&t, runs, 1 + NEXEC) < 0 || series_init(&o, runs, NONEOFF + NEXEC + 1) < 0)
        goto done;
    if (served_open(&s, &err) < 0) {
        fprintf(stderr, "bench-exec: %s\n", err.msg);
        served_close(&s);
        goto done;
    }
    for (int i = 0; i < 3 && rc == -1; i++)
        if (turn_start(&s, NULL, 0, &err) < 0) rc = -2;
    for (int i = 0; rc == -1 && i < runs; i++)
        if (turn_start(&s, &t, i, &err) < 0) rc = -2;
    int anchor_rc = rc == -1 ? spawn_series("bwrap from this process", raw, runs, anchor) : -1;
    served_close(&s);
    for (int i = 0; rc == -1 && i < runs; i++)
        if (oneoff(&o, i, &err) < 0) rc = -2;
    if (rc == -2 || anchor_rc < 0) {
        fprintf(stderr, "bench-exec: %s\n", err.msg[0] ? err.msg : "raw bwrap failed");
        goto done;
    }
    *turn = spread_of(t.total, runs);
    *oneoff_total = spread_of(o.total, runs);
    header("A turn's sandbox start inside one process (serve's one-time set-up done)", "step");
    row("total: sandbox_ensure + sandbox_exec (true) + sandbox_free", *turn);
    row("sandbox_ensure (lock, uid, home)", spread_of(t.step[0], runs));
    for (int i = 0; i < NEXEC; i++)
        row(exec_steps[i], spread_of(t.step[1 + i], runs));
    row("raw bwrap ... true, spawned from this process (anchor)", *anchor);
    header("`sandbox exec` after main(): its one-off path in one process", "step");
    row("total: configuration to released", *oneoff_total);
    for (int i = 0; i < NONEOFF; i++)
        row(oneoff_steps[i], spread_of(o.step[i], runs));
    for (int i = 0; i < NEXEC; i++)
        row(exec_steps[i], spread_of(o.step[NONEOFF + i], runs));
    row("close: policy, context, proxies, store", spread_of(o.step[NONEOFF + NEXEC], runs));
    rc = 0;
done:
    series_free(&t);
    series_free(&o);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-exec JANEBOT_BINARY [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 50;
    if (runs < 5) runs = 5;
    char *bwrap = jb_which("bwrap", "/usr/bin:/bin");
    if (!bwrap) {
        fprintf(stderr, "bwrap is not installed\n");
        return 1;
    }
    /* A throwaway state dir and the plainest agent, so the janebot rows measure the
     * sandbox and not a missing agent CLI. A provider key (never used: true makes no
     * request) so each exec registers on the LLM proxy as a turn does. */
    char state[] = "/tmp/janebot-bench.XXXXXX";
    if (!mkdtemp(state)) return 1;
    setenv("JANEBOT_STATE_DIR", state, 1);
    setenv("JANEBOT_AGENT", "command", 1);
    setenv("JANEBOT_AGENT_CMD", "/bin/true", 1);
    setenv("JANEBOT_SANDBOX", "local", 1);
    setenv("JANEBOT_LOG_LEVEL", "warn", 1);
    setenv("ANTHROPIC_API_KEY", "bench-key-never-sent", 1);
    char *plain[] = {"/bin/true", NULL};
    char *raw[] = {bwrap,
                   "--unshare-user",
                   "--unshare-ipc",
                   "--unshare-pid",
                   "--unshare-net",
                   "--unshare-uts",
                   "--unshare-cgroup-try",
                   "--disable-userns",
                   "--die-with-parent",
                   "--new-session",
                   "--ro-bind",
                   "/usr",
                   "/usr",
                   "--symlink",
                   "usr/bin",
                   "/bin",
                   "--symlink",
                   "usr/lib",
                   "/lib",
                   "--symlink",
                   "usr/lib64",
                   "/lib64",
                   "--proc",
                   "/proc",
                   "--dev",
                   "/dev",
                   "--tmpfs",
                   "/tmp",
                   "--",
                   "/usr/bin/true",
                   NULL};
    char *jb[] = {argv[1], "sandbox", "exec", KEY, "--", "true", NULL};
    char *version[] = {argv[1], "--version", NULL};
    struct spread sp_plain, sp_raw, sp_jb, sp_version, turn, anchor, oneoff_total;
    printf("sandbox start-up, %d runs each (wall ms)\n", runs);
    header("Whole processes", "command");
    int rc = spawn_series("fork+exec /bin/true", plain, runs, &sp_plain) |
             spawn_series("bwrap ... true", raw, runs, &sp_raw) |
             spawn_series("janebot sandbox exec -- true", jb, runs, &sp_jb) |
             spawn_series("janebot --version", version, runs, &sp_version);
    if (rc == 0) {
        row("fork+exec /bin/true", sp_plain);
        row("bwrap ... true (janebot's namespace flags; the anchor)", sp_raw);
        row("janebot sandbox exec -- true", sp_jb);
        row("janebot --version (its process start and exit alone)", sp_version);
    }
    if (rc == 0) rc = run_in_process(runs, raw, &turn, &anchor, &oneoff_total);
    if (rc == 0) {
        header("Whole-process breakdown", "part");
        row("janebot's process start and exit (janebot --version)", sp_version);
        row("the one-off path after main() (table above)", oneoff_total);
        printf("\nsandbox start goals (issue 15)\n\n| figure (min/median/max) | janebot | anchor "
               "(min/median/max) | compared | target | met |\n|---|---|---|---|---|---|\n");
        goal("sandbox exec -- true (whole process)", sp_jb, "raw bwrap ... true", sp_raw, 2,
             "whole processes; bwrap with janebot's namespace flags");
        goal("turn's sandbox start in serve", turn, "raw bwrap from the same process", anchor, 1.5,
             "sandbox_ensure + sandbox_exec + sandbox_free after serve's one-time set-up");
    }
    /* The sandbox's home may be a mounted disk image (root): remove it properly. */
    struct jb_config cfg;
    struct jb_err err = {0};
    if (config_load(&cfg, &err) < 0 || core_sandbox_remove(&cfg, KEY, &err) < 0)
        fprintf(stderr, "bench-exec: removing the sandbox: %s\n", err.msg);
    config_release(&cfg);
    free(bwrap);
    jb_rm_rf(state, NULL);
    return rc ? 1 : 0;
}

/* cmd/serve.c -- `janebot serve`: the process around the Slack frontend and the core.
 * Signals are taken by sigwait() in the main thread, never by a handler: SIGTERM and
 * SIGINT stop (gracefully: JANEBOT_STOP_GRACE), SIGHUP reloads the configuration file. The daily gc
 * of idle sandboxes is the core's (core_opts.gc). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/core.h"
#include "core/policy.h"
#include "frontend/frontend.h"
#include "store/store.h"

static void reload(struct core *core)
{
    struct jb_err e = {0};
    if (core_policy_reload(core, &e) < 0)
        log_error("configuration not reloaded, the previous one stays in force: %s", e.msg);
    else
        jb_log_event(JB_LOG_INFO, "config.reloaded", -1, "configuration reloaded (SIGHUP)");
}

/* glibc's malloc and SQLite's page cache, tuned for a long-running server on a small
 * machine, before any thread starts. Arenas: glibc gives each thread that allocates its
 * own (up to 8 per core), and memory freed in one is never reused by another; two serve a
 * handful of threads on the cores such a machine has. A fixed mmap threshold: glibc
 * otherwise raises it after each large block freed (up to 32 MiB), so large replies and
 * history fetches stay on the heap for good; at 128 KiB they are mapped and unmapped, and
 * the heap top is trimmed past that much free. SQLite: store_tune_memory(). */
static void tune_memory(void)
{
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    store_tune_memory();
}

/* Until SIGTERM or SIGINT; SIGHUP reloads the configuration file into the core. Every
 * TRIM_EVERY_S, free memory inside the heaps (whole pages between blocks still in use,
 * which the top trim cannot reach) goes back to the system, so a burst of events does not
 * stay resident after it; the walk holds each arena's lock for a moment. */
#define TRIM_EVERY_S 30
static int wait_for_stop(struct core *core, const sigset_t *sigs)
{
    struct timespec every = {.tv_sec = TRIM_EVERY_S};
    for (;;) {
        int sig = sigtimedwait(sigs, NULL, &every);
        if (sig == SIGHUP)
            reload(core);
        else if (sig == SIGINT || sig == SIGTERM)
            return sig;
        else if (sig < 0 && errno == EAGAIN)
            malloc_trim(0);
    }
}

/* /readyz: Socket Mode connected and the store taking writes. The listener starts first
 * (a busy address fails before anything else is done); sv and core are filled in, and
 * running set, once both run. */
struct serve_parts {
    struct slack_serve *sv;
    struct core *core;
    atomic_int running;
};

static int ready(void *ud, char *why, size_t n)
{
    struct serve_parts *p = ud;
    struct jb_err e = {0};
    if (!atomic_load(&p->running)) return snprintf(why, n, "not ready: starting"), 0;
    if (!slack_serve_connected(p->sv))
        return snprintf(why, n, "not ready: Socket Mode is not connected"), 0;
    if (core_store_check(p->core, &e) < 0)
        return snprintf(why, n, "not ready: the store does not take writes: %s", e.msg), 0;
    return 1;
}

/* The next of sigs within ms milliseconds; 0 when none came. */
static int signal_within(const sigset_t *sigs, int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    int sig = sigtimedwait(sigs, NULL, &ts);
    return sig < 0 ? 0 : sig;
}

/* A graceful stop: no event is taken (nor acked: Slack sends it again) and no turn starts
 * from now on; the running turns get grace_s seconds to end and post their answers, and a
 * second SIGTERM or SIGINT ends the wait. What runs then dies with the process (its
 * sandbox's processes with it) and stays pending in the inbox, answered after the next
 * start, like every message that waited. SIGHUP still reloads meanwhile. */
static int stop(struct slack_serve *sv, struct core *core, int grace_s, const sigset_t *sigs,
                int sig)
{
    int running = core_hold(core); /* first: an event accepted from now on only waits */
    jb_log_event(JB_LOG_INFO, "serve.stopping", -1,
                 "stopping (signal %d): %d turn%s running, waiting up to %d s", sig, running,
                 running == 1 ? "" : "s", grace_s);
    slack_serve_stop(sv);
    int64_t deadline = jb_mono_ms() + (int64_t)grace_s * 1000;
    int left = core_turns_running(core);
    while (left > 0 && jb_mono_ms() < deadline) {
        int64_t wait = deadline - jb_mono_ms();
        int again = signal_within(sigs, wait < 100 ? (wait > 0 ? wait : 0) : 100);
        if (again == SIGHUP) reload(core);
        left = core_turns_running(core);
        if (again == SIGTERM || again == SIGINT) {
            jb_log_event(JB_LOG_INFO, "serve.stop_now", -1, "stopping at once (signal %d again)",
                         again);
            break;
        }
    }
    jb_log_event(JB_LOG_INFO, "serve.stopped", -1,
                 "stopped: %d turn%s finished, %d left for the next start", running - left,
                 running - left == 1 ? "" : "s", left);
    return left;
}

static int serve(const struct jb_config *cfg)
{
    struct jb_err err = {0};
    if (config_check_slack(cfg, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        return 1;
    }
    /* Blocked before any thread starts, so every thread inherits it and the signals wait
     * for sigwait() below. Children reset their mask (sandbox/proc.c). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    tune_memory();
    struct slack_serve *sv = NULL;
    struct core *core = NULL;
    struct jb_metrics *metrics = NULL; /* counts nothing unless JANEBOT_METRICS_LISTEN */
    struct jb_metrics_http *mh = NULL;
    if (cfg->metrics_listen && jb_metrics_new(JB_VERSION, &metrics, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        return 1;
    }
    struct core_opts co = {
        .merge = 1, .debounce_ms = cfg->debounce_ms, .gc = 1, .metrics = metrics};
    struct serve_parts parts = {0};
    int rc =
        metrics ? jb_metrics_http_start(metrics, cfg->metrics_listen, ready, &parts, &mh, &err) : 0;
    if (rc == 0 && (slack_serve_new(cfg, metrics, &sv, &err) < 0 ||
                    core_new(cfg, slack_serve_frontend(sv), &co, &core, &err) < 0 ||
                    slack_serve_start(sv, core, &err) < 0))
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        jb_metrics_http_stop(mh); /* it may read sv and core */
        slack_serve_stop(sv);     /* no event may reach the core being freed */
        core_free(core);
        slack_serve_free(sv);
        jb_metrics_free(metrics);
        return 1;
    }
    parts.sv = sv, parts.core = core;
    atomic_store(&parts.running, 1);
    int sig = wait_for_stop(core, &sigs);
    jb_metrics_http_stop(mh); /* it reads sv's socket, which the stop closes */
    /* With every turn over, the frontend can go: the status messages of the last turns
     * are removed. Otherwise workers are still inside turns (the grace ran out): leave
     * without waiting for them. Their messages are still pending in the inbox, and their
     * sandboxes die with this process. */
    if (stop(sv, core, cfg->stop_grace_s, &sigs, sig) == 0) slack_serve_free(sv);
    fflush(NULL);
    _exit(0);
}

int cmd_serve(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    rc = serve(&cfg);
    config_release(&cfg);
    return rc;
}

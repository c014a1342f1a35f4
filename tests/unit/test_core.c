/* tests/unit/test_core.c -- configuration and lanes. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

static char dir[] = "/tmp/jb-core-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chdir(dir), 0);
    static const char *vars[] = {"JANEBOT_AGENT",        "JANEBOT_SANDBOX",
                                 "JANEBOT_AGENT_CMD",    "JANEBOT_MAX_CONCURRENT_TURNS",
                                 "JANEBOT_TURN_TIMEOUT", "ALLOW_LOCAL_EXECUTION",
                                 "AMP_API_KEY",          "JANEBOT_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    char state[64];
    snprintf(state, sizeof state, "%s/state", dir);
    setenv("JANEBOT_STATE_DIR", state, 1);
    jb_log_init(JB_LOG_ERROR, stderr);
}

static void teardown(void)
{
    jb_rm_rf(dir, NULL);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *path, const char *text)
{
    cr_assert_eq(jb_write_file(path, text, strlen(text), 0600, NULL), 0);
}

Test(config, defaults)
{
    struct jb_config cfg;
    struct jb_err err = {0};
    cr_assert_eq(config_load(&cfg, &err), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.agent, "amp");
    cr_assert_str_eq(cfg.sandbox, "local");
    cr_assert_eq(cfg.max_concurrent_turns, 4);
    cr_assert_eq(cfg.turn_timeout_s, 1800);
    cr_assert_eq(cfg.stop_grace_s, 60);
    cr_assert_eq(cfg.log_format, JB_LOG_TEXT);
    cr_assert_not_null(strstr(cfg.db_path, "/state/janebot.db"));
    config_release(&cfg);
}

Test(config, bad_values_name_variable_value_and_allowed)
{
    static const struct {
        const char *var, *val, *expect;
    } cases[] = {
        {"JANEBOT_MAX_CONCURRENT_TURNS", "abc", "integer from 1 to 256"},
        {"JANEBOT_MAX_CONCURRENT_TURNS", "0", "integer from 1 to 256"},
        {"JANEBOT_TURN_TIMEOUT", "-5", "integer from 1 to 86400"},
        {"JANEBOT_AGENT", "nope", "one of amp, claude, command"},
        {"JANEBOT_SANDBOX", "docker", "one of local, host"},
        {"ALLOW_LOCAL_EXECUTION", "maybe", "true or false"},
        {"JANEBOT_LOG_LEVEL", "loud", "debug, info, warn or error"},
        {"JANEBOT_LOG_FORMAT", "yaml", "text or json"},
        {"JANEBOT_STOP_GRACE", "-1", "integer from 0 to 86400"},
        {"JANEBOT_STOP_GRACE", "1m", "integer from 0 to 86400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        setenv(cases[i].var, cases[i].val, 1);
        struct jb_config cfg;
        struct jb_err err = {0};
        cr_assert_eq(config_load(&cfg, &err), -1, "%s=%s accepted", cases[i].var, cases[i].val);
        cr_assert_eq(err.code, JB_ECONFIG);
        cr_assert_not_null(strstr(err.msg, cases[i].var), "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, cases[i].val), "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, cases[i].expect), "%s", err.msg);
        config_release(&cfg);
        unsetenv(cases[i].var);
    }
}

Test(config, host_needs_explicit_opt_in)
{
    setenv("JANEBOT_SANDBOX", "host", 1);
    struct jb_config cfg;
    struct jb_err err = {0};
    cr_assert_eq(config_load(&cfg, &err), -1);
    cr_assert_not_null(strstr(err.msg, "ALLOW_LOCAL_EXECUTION=true"), "%s", err.msg);
    config_release(&cfg);
    setenv("ALLOW_LOCAL_EXECUTION", "true", 1);
    cr_assert_eq(config_load(&cfg, &err), 0, "%s", err.msg);
    config_release(&cfg);
}

Test(config, command_agent_needs_absolute_executable)
{
    setenv("JANEBOT_AGENT", "command", 1);
    struct jb_config cfg;
    struct jb_err err = {0};
    cr_assert_eq(config_load(&cfg, &err), -1);
    cr_assert_not_null(strstr(err.msg, "JANEBOT_AGENT_CMD"), "%s", err.msg);
    config_release(&cfg);
    setenv("JANEBOT_AGENT_CMD", "relative/agent", 1);
    cr_assert_eq(config_load(&cfg, &err), -1);
    cr_assert_not_null(strstr(err.msg, "relative/agent"), "%s", err.msg);
    config_release(&cfg);
    setenv("JANEBOT_AGENT_CMD", "/bin/true", 1);
    cr_assert_eq(config_load(&cfg, &err), 0, "%s", err.msg);
    config_release(&cfg);
}

Test(config, dotenv_precedence_env_then_cwd_then_state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/state", dir);
    cr_assert_eq(jb_mkdir_p(path, 0700, NULL), 0);
    write_file(".env",
               "# comment\nexport JANEBOT_TURN_TIMEOUT=77\nJANEBOT_MAX_CONCURRENT_TURNS='3'\n");
    snprintf(path, sizeof path, "%s/state/.env", dir);
    write_file(
        path,
        "JANEBOT_TURN_TIMEOUT=99\nJANEBOT_AGENT=claude\nAMP_API_KEY=\"sgamp_secretvalue1\"\n");
    setenv("JANEBOT_MAX_CONCURRENT_TURNS", "9", 1);
    struct jb_config cfg;
    struct jb_err err = {0};
    cr_assert_eq(config_load(&cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(cfg.turn_timeout_s, 77);      /* ./.env beats the state dir's */
    cr_assert_eq(cfg.max_concurrent_turns, 9); /* the environment beats both */
    cr_assert_str_eq(cfg.agent, "claude");     /* only in the state dir's */
    cr_assert_str_eq(cfg.amp_api_key, "sgamp_secretvalue1");
    char *red = jb_redact("key is sgamp_secretvalue1 here");
    cr_assert_null(strstr(red, "secretvalue1"), "%s", red);
    free(red);
    config_release(&cfg);
}

Test(config, dotenv_syntax_error_names_file_and_line)
{
    write_file(".env", "GOOD=1\nthis is not an assignment\n");
    struct jb_config cfg;
    struct jb_err err = {0};
    cr_assert_eq(config_load(&cfg, &err), -1);
    cr_assert_not_null(strstr(err.msg, ".env:2"), "%s", err.msg);
    config_release(&cfg);
}

/* ---- lanes ---- */

struct record {
    pthread_mutex_t mu;
    char log[4096];
    int running_per_key[4], max_running_per_key, running, max_running;
};

static void record_run(void *ud, int worker, const struct lane_msg *msgs, size_t nmsgs)
{
    (void)worker;
    struct record *r = ud;
    const struct lane_msg *m = &msgs[0];
    cr_assert_eq(nmsgs, 1);
    int k = m->thread_key[0] - 'a';
    pthread_mutex_lock(&r->mu);
    r->running_per_key[k]++;
    r->running++;
    if (r->running_per_key[k] > r->max_running_per_key)
        r->max_running_per_key = r->running_per_key[k];
    if (r->running > r->max_running) r->max_running = r->running;
    pthread_mutex_unlock(&r->mu);
    usleep(20000);
    pthread_mutex_lock(&r->mu);
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s%s ", m->thread_key, m->text);
    r->running_per_key[k]--;
    r->running--;
    pthread_mutex_unlock(&r->mu);
}

Test(lanes, one_turn_per_thread_in_order_threads_in_parallel)
{
    struct record r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes *l = NULL;
    struct jb_err err = {0};
    struct lanes_opts o = {.workers = 3};
    cr_assert_eq(lanes_new(&o, record_run, &r, &l, &err), 0);
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++) {
            char text[8];
            snprintf(text, sizeof text, "%d", i);
            cr_assert_eq(lanes_enqueue(l, 0, keys[k], "u", text, NULL, NULL, &err), 0);
        }
    lanes_drain(l);
    cr_assert_eq(lanes_pending(l), 0);
    lanes_free(l);
    cr_assert_eq(r.max_running_per_key, 1, "two turns of one thread ran at once");
    cr_assert_geq(r.max_running, 2, "threads did not run in parallel");
    for (int k = 0; k < 3; k++) { /* each thread's messages in arrival order, none lost */
        const char *p = r.log;
        for (int i = 0; i < 5; i++) {
            char want[8];
            snprintf(want, sizeof want, "%s%d ", keys[k], i);
            const char *hit = strstr(p, want);
            cr_assert_not_null(hit, "missing or out of order: %s in %s", want, r.log);
            p = hit + strlen(want);
        }
    }
}

Test(lanes, bounded_by_worker_count)
{
    struct record r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes *l = NULL;
    struct lanes_opts o = {.workers = 2};
    cr_assert_eq(lanes_new(&o, record_run, &r, &l, NULL), 0);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++)
        cr_assert_eq(lanes_enqueue(l, 0, keys[k], "u", "x", NULL, NULL, NULL), 0);
    lanes_free(l); /* drains first */
    cr_assert_leq(r.max_running, 2);
    cr_assert_eq(strlen(r.log), 4 * 3);
}

/* ---- merging and debounce (the Slack lanes) ---- */

struct batches {
    pthread_mutex_t mu;
    char log[1024];
};

static void batch_run(void *ud, int worker, const struct lane_msg *msgs, size_t n)
{
    (void)worker;
    struct batches *b = ud;
    usleep(100000);
    pthread_mutex_lock(&b->mu);
    size_t len = strlen(b->log);
    snprintf(b->log + len, sizeof b->log - len, "[");
    for (size_t i = 0; i < n; i++) {
        len = strlen(b->log);
        snprintf(b->log + len, sizeof b->log - len, "%s%s", i ? "," : "", msgs[i].text);
    }
    len = strlen(b->log);
    snprintf(b->log + len, sizeof b->log - len, "]");
    pthread_mutex_unlock(&b->mu);
}

Test(lanes, messages_during_a_turn_are_merged_into_the_next)
{
    struct batches b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes_opts o = {.workers = 2, .merge = 1};
    struct lanes *l = NULL;
    cr_assert_eq(lanes_new(&o, batch_run, &b, &l, NULL), 0);
    cr_assert_eq(lanes_enqueue(l, 0, "t", "u", "1", NULL, NULL, NULL), 0);
    usleep(30000); /* 1 is running */
    const char *later[] = {"2", "3", "4"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(lanes_enqueue(l, 0, "t", "u", later[i], NULL, NULL, NULL), 0);
    lanes_free(l);
    cr_assert_str_eq(b.log, "[1][2,3,4]");
}

Test(lanes, a_hold_lets_running_turns_end_and_starts_none)
{
    struct batches b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes_opts o = {.workers = 1};
    struct lanes *l = NULL;
    cr_assert_eq(lanes_new(&o, batch_run, &b, &l, NULL), 0);
    cr_assert_eq(lanes_enqueue(l, 0, "t", "u", "1", NULL, NULL, NULL), 0);
    cr_assert_eq(lanes_enqueue(l, 0, "s", "u", "2", NULL, NULL, NULL), 0);
    usleep(30000); /* 1 is running, 2 waits for the only worker */
    cr_assert_eq(lanes_hold(l), 1);
    cr_assert_eq(lanes_enqueue(l, 0, "r", "u", "3", NULL, NULL, NULL), 0);
    cr_assert_eq(lanes_running(l), 1);
    usleep(250000); /* 1 ends; neither 2 nor 3 may start */
    cr_assert_eq(lanes_running(l), 0);
    cr_assert_eq(lanes_pending(l), 2);
    lanes_free(l); /* joins the workers without running what waits */
    cr_assert_str_eq(b.log, "[1]");
}

Test(lanes, debounce_turns_quick_messages_into_one)
{
    struct batches b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct lanes_opts o = {.workers = 2, .merge = 1, .debounce_ms = 300};
    struct lanes *l = NULL;
    cr_assert_eq(lanes_new(&o, batch_run, &b, &l, NULL), 0);
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(lanes_enqueue(l, 0, "t", "u", "a", NULL, NULL, NULL), 0);
    usleep(100000);
    cr_assert_eq(lanes_enqueue(l, 0, "t", "u", "b", NULL, NULL, NULL), 0);
    lanes_drain(l);
    lanes_free(l);
    cr_assert_str_eq(b.log, "[a,b]");
    cr_assert_geq(jb_mono_ms() - t0, 400, "the debounce did not wait");
}

/* core/turn.c -- the bot: accepting messages and running one turn of the agent.
 * The only file that holds the store, the sandbox backend, the agent adapter and the
 * frontend together. Turns run on lane workers, each with its own store connection. */
#include <pthread.h>
#include <string.h>

#include "agent/agent.h"
#include "core/core.h"
#include "frontend/frontend.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

struct core {
    const struct jb_config *cfg;
    struct frontend *fe;
    const struct agent_ops *agent;
    struct sandbox_ctx sbx;
    struct store *store;         /* the accepting thread's connection */
    pthread_mutex_t store_mu;    /* core_submit may be called from several threads */
    struct store **worker_store; /* one per worker, opened by that worker */
    struct lanes *lanes;
};

/* The turn being run: what the stream callbacks need. */
struct turn_ctx {
    struct core *c;
    const struct lane_msg *m;
    struct agent_stream *stream;
    struct agent_result res;
};

static void on_event(void *ud, const struct agent_event *ev)
{
    struct turn_ctx *t = ud;
    agent_result_on_event(&t->res, ev);
    char status[256];
    if (ev->type == AGENT_EV_TOOL_USE) {
        snprintf(status, sizeof status, "using %s%s%s", ev->tool_name ? ev->tool_name : "a tool",
                 ev->text && *ev->text ? ": " : "", ev->text ? ev->text : "");
    } else if (ev->type == AGENT_EV_RETRY) {
        snprintf(status, sizeof status, "waiting: %s", ev->text ? ev->text : "API retry");
    } else {
        return;
    }
    jb_autofree char *clean = jb_redact(status);
    if (clean) t->c->fe->ops->progress(t->c->fe, t->m->thread_key, clean);
}

static void on_stdout(void *ud, const char *data, size_t len)
{
    struct turn_ctx *t = ud;
    agent_stream_feed(t->stream, data, len);
}

/* The last few lines of the agent's stderr, secrets redacted, for the user. */
static char *stderr_excerpt(const char *tail, size_t max_lines)
{
    size_t len = strlen(tail);
    while (len && (tail[len - 1] == '\n' || tail[len - 1] == '\r'))
        len--;
    size_t start = len, lines = 0;
    while (start > 0 && lines < max_lines) {
        start--;
        if (tail[start] == '\n' && ++lines == max_lines) {
            start++;
            break;
        }
    }
    jb_autofree char *cut = strndup(tail + start, len - start);
    return cut ? jb_redact(cut) : NULL;
}

static struct store *worker_store(struct core *c, int worker, struct jb_err *err)
{
    if (!c->worker_store[worker] && store_open(c->cfg->db_path, &c->worker_store[worker], err) < 0)
        return NULL;
    return c->worker_store[worker];
}

struct run_out {
    int exec_ok, exit_code, timed_out, cancelled, over_quota;
    char stderr_tail[4096];
    char *new_session; /* id the adapter chose before the run; owned */
};

/* Prepare and run the agent once; results into t->res and out. */
static int run_agent(struct turn_ctx *t, struct sandbox *sb, const char *resume_id,
                     struct run_out *out, struct jb_err *err)
{
    struct core *c = t->c;
    struct agent_turn at = {.cfg = c->cfg,
                            .thread_key = t->m->thread_key,
                            .user = t->m->user_id,
                            .prompt = t->m->text,
                            .resume_id = resume_id,
                            .run_dir = sb->run_dir};
    struct agent_cmd cmd = {0};
    if (c->agent->prepare(&at, &cmd, err) < 0) {
        agent_cmd_release(&cmd);
        return -1;
    }
    struct sandbox_file files[JB_ARRAY_LEN(cmd.files)];
    for (size_t i = 0; i < cmd.nfiles; i++)
        files[i] = (struct sandbox_file){cmd.files[i].path, cmd.files[i].data, cmd.files[i].len};
    t->stream = agent_stream_new(0, on_event, t);
    if (!t->stream) {
        agent_cmd_release(&cmd);
        return jb_err_set(err, JB_ENOMEM, "stream parser");
    }
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.argv = (const char *const *)cmd.argv.v;
    x.env = (const char *const *)cmd.env.v;
    x.ro_paths = (const char *const *)cmd.ro_paths.v;
    x.files = files, x.nfiles = cmd.nfiles;
    x.stdin_data = cmd.stdin_data, x.stdin_len = cmd.stdin_data ? strlen(cmd.stdin_data) : 0;
    x.deadline_ms = jb_mono_ms() + (int64_t)c->cfg->turn_timeout_s * 1000;
    x.on_stdout = on_stdout, x.ud = t;
    int rc = sandbox_exec(sb, &x, err);
    agent_stream_finish(t->stream);
    const struct agent_stream_stats *s = agent_stream_stats(t->stream);
    if (s->not_json || s->unknown || s->too_long)
        log_info(
            "thread %s: agent output: %zu lines, skipped %zu not JSON, %zu unknown, %zu too long",
            t->m->thread_key, s->lines, s->not_json, s->unknown, s->too_long);
    agent_stream_free(t->stream);
    t->stream = NULL;
    if (rc == 0) {
        out->exec_ok = 1, out->exit_code = x.exit_code;
        out->timed_out = x.timed_out, out->cancelled = x.cancelled;
        out->over_quota = x.over_quota;
        memcpy(out->stderr_tail, x.stderr_tail, sizeof out->stderr_tail);
        free(out->new_session);
        out->new_session = cmd.session_id ? strdup(cmd.session_id) : NULL;
    }
    agent_cmd_release(&cmd);
    return rc;
}

/* Tell the user how the turn ended; returns the audit outcome. */
static const char *report_outcome(struct turn_ctx *t, const struct run_out *o)
{
    struct core *c = t->c;
    struct frontend *fe = c->fe;
    const char *key = t->m->thread_key;
    char msg[2048];
    const char *answer = agent_result_answer(&t->res);
    if (o->timed_out) {
        snprintf(
            msg, sizeof msg,
            "the agent did not finish within %d seconds (JANEBOT_TURN_TIMEOUT) and was stopped",
            c->cfg->turn_timeout_s);
        fe->ops->fail(fe, key, msg, NULL);
        return "timeout";
    }
    if (o->over_quota) {
        snprintf(msg, sizeof msg,
                 "the agent was stopped: this thread's sandbox went over its disk quota of %d MiB "
                 "(JANEBOT_SANDBOX_DISK_MB); delete files in it to continue",
                 c->cfg->sandbox_disk_mb);
        fe->ops->fail(fe, key, msg, NULL);
        return "error";
    }
    if (o->cancelled) {
        fe->ops->fail(fe, key, "the turn was cancelled", NULL);
        return "cancelled";
    }
    if (t->res.has_result && t->res.is_error) {
        const char *why = t->res.errors ? t->res.errors : answer ? answer : t->res.subtype;
        jb_autofree char *clean = jb_redact(why ? why : "no details");
        snprintf(msg, sizeof msg, "the agent reported an error: %s", clean ? clean : "");
        fe->ops->fail(fe, key, msg, NULL);
        return "error";
    }
    if (answer && (t->res.has_result || o->exit_code == 0)) {
        struct jb_err e = {0};
        if (fe->ops->answer(fe, key, answer, &e) < 0)
            log_warn("thread %s: cannot deliver the answer: %s", key, e.msg);
        return "ok";
    }
    jb_autofree char *excerpt = stderr_excerpt(o->stderr_tail, 5);
    snprintf(msg, sizeof msg, "the agent exited with status %d without an answer%s%s", o->exit_code,
             excerpt && *excerpt ? "; its last output:\n" : "", excerpt ? excerpt : "");
    fe->ops->fail(fe, key, msg, NULL);
    return "no_answer";
}

static void report_error(struct core *c, const char *key, const char *what, const struct jb_err *e)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", what, e->msg);
    jb_autofree char *clean = jb_redact(msg);
    log_warn("thread %s: %s", key, clean ? clean : what);
    c->fe->ops->fail(c->fe, key, clean ? clean : what, NULL);
}

static void run_turn(void *ud, int worker, const struct lane_msg *m)
{
    struct core *c = ud;
    struct jb_err err = {0};
    struct store *st = worker_store(c, worker, &err);
    if (!st) {
        report_error(c, m->thread_key, "cannot open the store", &err);
        return; /* the message stays pending in the inbox */
    }
    struct turn_ctx t = {.c = c, .m = m, .res = AGENT_RESULT_INIT};
    struct run_out o = {0};
    struct sandbox *sb = NULL;
    struct session_row sess = {0};
    int64_t turn_id = 0;
    const char *outcome = "error";
    c->fe->ops->started(c->fe, m->thread_key, m->user_id);
    int have_sess = store_session_get(st, m->thread_key, &sess, &err) == 0;
    if (sandbox_ensure(&c->sbx, m->thread_key, &sb, &err) < 0) {
        report_error(c, m->thread_key, "cannot prepare the sandbox", &err);
        goto done;
    }
    if (store_turn_begin(st, m->thread_key, m->user_id, sb->name, &turn_id, &err) < 0)
        log_warn("thread %s: audit: %s", m->thread_key, err.msg);
    const char *resume = have_sess ? sess.agent_session_id : NULL;
    int rc = run_agent(&t, sb, resume, &o, &err);
    if (rc == 0 && resume && agent_resume_missing(&t.res)) {
        /* The transcript is gone (home removed): start a fresh conversation. */
        log_info("thread %s: agent conversation %s not found, starting a new one", m->thread_key,
                 resume);
        store_session_clear_id(st, m->thread_key, NULL);
        agent_result_release(&t.res);
        t.res = (struct agent_result)AGENT_RESULT_INIT;
        rc = run_agent(&t, sb, NULL, &o, &err);
    }
    if (rc < 0) {
        report_error(c, m->thread_key, "cannot run the agent", &err);
        goto done;
    }
    outcome = report_outcome(&t, &o);
    const char *sid = t.res.session_id ? t.res.session_id : o.new_session;
    if (store_session_touch(st, m->thread_key, c->agent->name, sid, sb->name, &err) < 0)
        log_warn("thread %s: cannot save the session: %s", m->thread_key, err.msg);
done:
    if (turn_id && store_turn_end(st, turn_id, outcome, o.exec_ok ? o.exit_code : -1,
                                  t.res.input_tokens, t.res.output_tokens, &err) < 0)
        log_warn("thread %s: audit: %s", m->thread_key, err.msg);
    if (m->inbox_id &&
        store_inbox_finish(st, m->inbox_id, strcmp(outcome, "ok") ? "failed" : "done", &err) < 0)
        log_warn("thread %s: inbox: %s", m->thread_key, err.msg);
    free(o.new_session);
    agent_result_release(&t.res);
    if (have_sess) session_row_release(&sess);
    sandbox_free(sb);
}

static void warn_agent(const struct core *c)
{
    struct jb_err e = {0};
    char *bin = agent_binary(c->agent, c->cfg, &e);
    if (!bin) log_warn("agent %s: %s", c->agent->name, e.msg);
    free(bin);
    if (c->agent->key_var && !config_get(c->agent->key_var))
        log_warn("agent %s: %s is not set; the agent will likely refuse to run", c->agent->name,
                 c->agent->key_var);
}

int core_new(const struct jb_config *cfg, struct frontend *fe, struct core **ret,
             struct jb_err *err)
{
    struct core *c = calloc(1, sizeof *c);
    if (!c) return jb_err_set(err, JB_ENOMEM, "core");
    c->cfg = cfg, c->fe = fe;
    pthread_mutex_init(&c->store_mu, NULL);
    c->agent = agent_ops_find(cfg->agent);
    c->worker_store = calloc((size_t)cfg->max_concurrent_turns, sizeof *c->worker_store);
    if (!c->agent || !c->worker_store) {
        core_free(c);
        return jb_err_set(err, JB_ENOMEM, "core");
    }
    if (jb_mkdir_p(cfg->state_dir, 0700, err) < 0 || store_open(cfg->db_path, &c->store, err) < 0 ||
        sandbox_ctx_init(&c->sbx, cfg, 1, err) < 0) {
        core_free(c);
        return -1;
    }
    if (!strcmp(cfg->sandbox, "host"))
        log_warn("JANEBOT_SANDBOX=host: agents run WITHOUT isolation, as this user, on this "
                 "machine (ALLOW_LOCAL_EXECUTION=true)");
    warn_agent(c);
    int stale = store_turn_close_stale(c->store, err);
    if (stale > 0) log_info("closed %d turn(s) left running by a previous stop", stale);
    if (lanes_new(cfg->max_concurrent_turns, run_turn, c, &c->lanes, err) < 0) {
        core_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

int core_submit(struct core *c, const char *thread_key, const char *user, const char *text,
                struct jb_err *err)
{
    int64_t id = 0;
    pthread_mutex_lock(&c->store_mu);
    int rc = store_inbox_add(c->store, thread_key, user, text, &id, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc < 0) return -1;
    return lanes_enqueue(c->lanes, id, thread_key, user, text, err);
}

int core_resume_pending(struct core *c, const char *key, int prefix, struct jb_err *err)
{
    struct inbox_msg *v = NULL;
    size_t n = 0;
    pthread_mutex_lock(&c->store_mu);
    int rc = store_inbox_pending(c->store, key, &v, &n, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc < 0) return -1;
    int queued = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!prefix && strcmp(v[i].thread_key, key) != 0) continue;
        rc = lanes_enqueue(c->lanes, v[i].id, v[i].thread_key, v[i].user_id, v[i].text, err);
        queued++;
    }
    inbox_msgs_free(v, n);
    return rc < 0 ? -1 : queued;
}

void core_drain(struct core *c)
{
    lanes_drain(c->lanes);
}

void core_free(struct core *c)
{
    if (!c) return;
    lanes_free(c->lanes);
    for (int i = 0; c->worker_store && i < c->cfg->max_concurrent_turns; i++)
        store_close(c->worker_store[i]);
    free(c->worker_store);
    store_close(c->store);
    sandbox_ctx_release(&c->sbx);
    pthread_mutex_destroy(&c->store_mu);
    free(c);
}

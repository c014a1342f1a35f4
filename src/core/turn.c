/* core/turn.c -- one turn of the agent: the only place that holds the store, the sandbox
 * backend, the agent adapter and the frontend together. Runs on a lane worker with that
 * worker's own store connection. */
#include <jansson.h>
#include <string.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "core/policy.h"
#include "store/store.h"

/* The turn being run: what the stream callbacks need. */
struct turn_ctx {
    struct core *c;
    const char *thread_key;
    const char *user;
    const char *prompt;
    const char *const *refs;
    size_t n;
    const struct lane_msg *msgs; /* the turn's messages (nmsgs of them) */
    size_t nmsgs;
    struct running *run;
    const struct agent_ops *agent; /* the channel's, else the configured one */
    struct agent_stream *stream;
    struct agent_result res;
    struct sandbox_input *input; /* the agent's live stdin during a run, or NULL */
    struct steered *steered;     /* messages that reached the agent, oldest first */
    struct core_asks asks;       /* its questions before a tool runs (when asks_on) */
    int asks_on;
};

#define FAIL(t, msg)                                                                               \
    (t)->c->fe->ops->fail((t)->c->fe, (t)->thread_key, (t)->refs, (t)->n, msg, NULL)

static void on_event(void *ud, const struct agent_event *ev)
{
    struct turn_ctx *t = ud;
    if (ev->type == AGENT_EV_PERMISSION || ev->type == AGENT_EV_PERMISSION_CANCEL) {
        /* only a run started to ask may: otherwise the line is the agent's own noise */
        if (t->asks_on) core_asks_on_event(&t->asks, ev);
        return;
    }
    agent_result_on_event(&t->res, ev);
    /* Its answer is out: no more messages for this run (they go to the next turn), and
     * the CLI exits once stdin closes. */
    if (ev->type == AGENT_EV_RESULT && t->input) sandbox_input_close(t->input);
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
    if (!clean) return;
    core_running_set_tool(t->c, t->run, clean);
    t->c->fe->ops->progress(t->c->fe, t->thread_key, clean);
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
    int exec_ok, exit_code, timed_out, cancelled, over_quota, oom_killed;
    int disk_full; /* SANDBOX_DISK_FULL_*: the home had no room left when the agent ended */
    long long disk_left;
    const char *llm_refused; /* static string from the proxy, or NULL */
    struct jb_tally llm;     /* counted by the LLM proxy */
    char stderr_tail[4096];
    char *new_session; /* id the adapter chose before the run; owned */
    int64_t exec_ms;   /* wall time in the sandbox, every run of the turn */
};

static void log_stream_stats(const struct turn_ctx *t)
{
    const struct agent_stream_stats *s = agent_stream_stats(t->stream);
    if (s->not_json || s->unknown || s->too_long)
        log_info(
            "thread %s: agent output: %zu lines, skipped %zu not JSON, %zu unknown, %zu too long",
            t->thread_key, s->lines, s->not_json, s->unknown, s->too_long);
}

/* Prepare and run the agent once; results into t->res and out. */
static int run_agent(struct turn_ctx *t, struct sandbox *sb, const char *resume_id,
                     struct run_out *out, struct jb_err *err)
{
    struct core *c = t->c;
    struct agent_opts ao;
    core_agent_opts(c->cfg, &ao);
    struct agent_turn at = {.opts = &ao,
                            .thread_key = t->thread_key,
                            .user = t->user,
                            .prompt = t->prompt,
                            .resume_id = resume_id,
                            .run_dir = sb->run_dir};
    struct agent_cmd cmd = {0};
    struct policy *pol = core_policy_get(c); /* this channel's MCP servers, tools, agent */
    const struct policy_channel *ch = policy_channel_for(pol, t->thread_key);
    at.policy = &ch->agent;
    t->agent = ch->agent_name ? agent_ops_find(ch->agent_name) : c->agent;
    jb_autofree char *egress = NULL;
    int prc = core_egress_extra(&c->svc, ch, t->thread_key, &egress, err);
    if (prc == 0) prc = t->agent->prepare(&at, &cmd, err);
    policy_unref(pol);
    if (prc < 0) {
        agent_cmd_release(&cmd);
        return -1;
    }
    struct sandbox_file files[JB_ARRAY_LEN(cmd.files)];
    t->stream = agent_stream_new(0, on_event, t);
    if (!t->stream) {
        agent_cmd_release(&cmd);
        return jb_err_set(err, JB_ENOMEM, "stream parser");
    }
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    core_exec_from_cmd(&x, files, &cmd, c->cfg);
    x.argv = (const char *const *)cmd.argv.v;
    x.stdin_data = cmd.stdin_data, x.stdin_len = cmd.stdin_data ? strlen(cmd.stdin_data) : 0;
    x.cancel = &t->run->cancel;
    x.user = t->user;
    x.egress_extra = egress;
    x.on_stdout = on_stdout, x.ud = t;
    if (cmd.live_input && sandbox_input_new(&t->input, err) < 0) {
        agent_cmd_release(&cmd);
        agent_stream_free(t->stream);
        t->stream = NULL;
        return -1;
    }
    if (t->input) core_steer_attach(c, t->run, t->input, cmd.takes_interrupt, cmd.steer_flag);
    if (t->input && cmd.asks_permission) {
        core_asks_init(&t->asks, c, t->thread_key, t->user);
        t->asks_on = 1;
    }
    x.input = t->input;
    x.cancel_at_ms = &t->run->kill_at_ms;
    int64_t t0 = jb_mono_ms();
    int rc = sandbox_exec(sb, &x, err);
    if (t->input) core_steer_detach(c, t->run, &t->input, &t->steered);
    out->exec_ms += jb_mono_ms() - t0;
    agent_stream_finish(t->stream);
    if (t->asks_on) core_asks_end(&t->asks);
    t->asks_on = 0;
    log_stream_stats(t);
    agent_stream_free(t->stream);
    t->stream = NULL;
    if (rc == 0) {
        out->exec_ok = 1, out->exit_code = x.exit_code;
        out->timed_out = x.timed_out, out->cancelled = x.cancelled;
        out->cancelled |= core_running_interrupted(c, t->run); /* ended on the request */
        out->over_quota = x.over_quota, out->oom_killed |= x.oom_killed;
        out->disk_full = x.disk_full, out->disk_left = x.disk_left;
        out->llm_refused = x.llm_refused;
        jb_tally_merge(&out->llm, &x.llm);
        memcpy(out->stderr_tail, x.stderr_tail, sizeof out->stderr_tail);
        free(out->new_session);
        out->new_session = cmd.session_id ? strdup(cmd.session_id) : NULL;
    }
    agent_cmd_release(&cmd);
    return rc;
}

/* The answer with a one-line footer: tokens through the proxy per model, and their cost
 * (prices.c), and a process killed for memory. */
static char *usage_footer(struct core *c, const char *answer, const struct run_out *o)
{
    char *s = NULL, oom[160] = "";
    struct policy *pol = core_policy_get(c);
    jb_autofree char *tokens = prices_usage_text(&pol->prices, &o->llm);
    policy_unref(pol);
    if (!tokens && !o->oom_killed) return NULL;
    /* The agent answered, but something it ran was killed: say why, once. */
    if (o->oom_killed)
        snprintf(oom, sizeof oom,
                 "\n\n_a process in this thread's sandbox was killed: it ran out of memory "
                 "(%d MiB, JANEBOT_SANDBOX_MEMORY_MB)_",
                 c->cfg->sandbox_memory_mb);
    return asprintf(&s, "%s%s%s%s%s", answer, oom, tokens ? "\n\n_" : "", tokens ? tokens : "",
                    tokens ? "_" : "") < 0
               ? NULL
               : s;
}

/* When the home ran out of room, what the user is told (writes in it failed). */
static void disk_full_note(const struct turn_ctx *t, const struct run_out *o, char *out, size_t n)
{
    struct sandbox_exec x = {.disk_full = o->disk_full, .disk_left = o->disk_left};
    sandbox_disk_full_msg(&x, t->c->cfg->sandbox_disk_mb, out, n);
}

/* A failed turn's message, with the reason the home is full when it is. */
static void fail_turn(struct turn_ctx *t, const struct run_out *o, const char *msg)
{
    char note[512], full[2600];
    disk_full_note(t, o, note, sizeof note);
    snprintf(full, sizeof full, "%s%s%s", msg, *note ? "\n" : "", note);
    FAIL(t, full);
}

/* Tell the user how the turn ended; returns the audit outcome. */
static const char *report_outcome(struct turn_ctx *t, const struct run_out *o)
{
    struct core *c = t->c;
    struct frontend *fe = c->fe;
    char msg[2048];
    const char *answer = agent_result_answer(&t->res);
    if (o->timed_out) {
        snprintf(
            msg, sizeof msg,
            "the agent did not finish within %d seconds (JANEBOT_TURN_TIMEOUT) and was stopped",
            c->cfg->turn_timeout_s);
        fail_turn(t, o, msg);
        return "timeout";
    }
    if (o->llm_refused) {
        if (strstr(o->llm_refused, "budget"))
            snprintf(msg, sizeof msg,
                     "the agent was stopped: %s has used up today's token budget "
                     "(JANEBOT_USER_DAILY_TOKENS); it resets at 00:00 UTC",
                     t->user);
        else
            snprintf(msg, sizeof msg, "the agent was stopped: its API access was refused (%s)",
                     o->llm_refused);
        fail_turn(t, o, msg);
        return "error";
    }
    if (o->over_quota) {
        snprintf(msg, sizeof msg,
                 "the agent was stopped: this thread's sandbox went over its disk quota of %d MiB "
                 "(JANEBOT_SANDBOX_DISK_MB); delete files in it to continue",
                 c->cfg->sandbox_disk_mb);
        fail_turn(t, o, msg);
        return "error";
    }
    if (o->cancelled) {
        char by[64];
        core_running_stopped_by(c, t->run, by, sizeof by);
        if (by[0])
            snprintf(msg, sizeof msg, "the turn was stopped by <@%s>", by);
        else
            snprintf(msg, sizeof msg, "the turn was stopped (abort)");
        fail_turn(t, o, msg);
        return "cancelled";
    }
    if (t->res.has_result && t->res.is_error) {
        const char *why = t->res.errors ? t->res.errors : answer ? answer : t->res.subtype;
        jb_autofree char *clean = jb_redact(why ? why : "no details");
        snprintf(msg, sizeof msg, "the agent reported an error: %s", clean ? clean : "");
        fail_turn(t, o, msg);
        return "error";
    }
    if (answer && (t->res.has_result || o->exit_code == 0)) {
        struct jb_err e = {0};
        jb_autofree char *with_footer = usage_footer(c, answer, o);
        if (fe->ops->answer(fe, t->thread_key, t->refs, t->n, with_footer ? with_footer : answer,
                            &e) < 0)
            log_warn("thread %s: cannot deliver the answer: %s", t->thread_key, e.msg);
        char note[512];
        disk_full_note(t, o, note, sizeof note);
        if (*note) fe->ops->notice(fe, t->thread_key, note, NULL);
        return "ok";
    }
    if (o->oom_killed) {
        snprintf(msg, sizeof msg,
                 "the agent was stopped: this thread's sandbox ran out of memory (%d MiB, "
                 "JANEBOT_SANDBOX_MEMORY_MB)",
                 c->cfg->sandbox_memory_mb);
        fail_turn(t, o, msg);
        return "error";
    }
    jb_autofree char *excerpt = stderr_excerpt(o->stderr_tail, 5);
    snprintf(msg, sizeof msg, "the agent exited with status %d without an answer%s%s", o->exit_code,
             excerpt && *excerpt ? "; its last output:\n" : "", excerpt ? excerpt : "");
    fail_turn(t, o, msg);
    return "no_answer";
}

static void report_error(struct turn_ctx *t, const char *what, const struct jb_err *e)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", what, e->msg);
    jb_autofree char *clean = jb_redact(msg);
    log_warn("thread %s: %s", t->thread_key, clean ? clean : what);
    FAIL(t, clean ? clean : what);
}

/* Files left in the outbox are told in one notice per turn (an agent could leave
 * thousands): grouped by reason, the first OUTBOX_NAMED named, the rest counted. */
#define OUTBOX_NAMED    10
#define OUTBOX_REASONS  3
#define OUTBOX_NAME_MAX 80

struct outbox_run {
    struct turn_ctx *t;
    size_t total, named;
    struct {
        char why[96];
        size_t n, shown;
        struct jb_buf names; /* "`a`, `b`" */
    } reason[OUTBOX_REASONS];
};

static int deliver_file(void *ud, int fd, const char *name)
{
    struct turn_ctx *t = ((struct outbox_run *)ud)->t;
    struct jb_err e = {0};
    if (t->c->fe->ops->upload(t->c->fe, t->thread_key, fd, name, &e) == 0) return 0;
    log_warn("thread %s: cannot upload %s: %s", t->thread_key, name, e.msg);
    return -1;
}

static void skipped_file(void *ud, const char *name, const char *why)
{
    struct outbox_run *o = ud;
    size_t r = 0; /* this reason's slot; the last one takes any further reasons */
    while (r < OUTBOX_REASONS - 1 && o->reason[r].n && strcmp(o->reason[r].why, why) != 0)
        r++;
    if (!o->reason[r].n) snprintf(o->reason[r].why, sizeof o->reason[r].why, "%s", why);
    o->total++, o->reason[r].n++;
    if (o->named >= OUTBOX_NAMED) return;
    char shown[OUTBOX_NAME_MAX + 1];
    size_t len = strlen(name);
    if (len > OUTBOX_NAME_MAX) /* cut, not inside a UTF-8 sequence */
        for (len = OUTBOX_NAME_MAX; len && ((unsigned char)name[len] & 0xC0) == 0x80; len--) {
        }
    memcpy(shown, name, len);
    shown[len] = 0;
    for (char *p = shown; *p; p++) /* the name stays one inline code span on one line */
        if (*p == '`' || (unsigned char)*p < 0x20) *p = '?';
    struct jb_buf *b = &o->reason[r].names;
    if (jb_buf_appendf(b, NULL, "%s`%s`", b->len ? ", " : "", shown) == 0)
        o->named++, o->reason[r].shown++;
}

/* The one notice of what stayed in the outbox; frees what o holds. */
static void skipped_notice(struct outbox_run *o)
{
    struct turn_ctx *t = o->t;
    struct jb_buf note = JB_BUF_INIT(16u << 10);
    jb_buf_appendf(&note, NULL, "I left %zu file%s in the sandbox's outbox:", o->total,
                   o->total == 1 ? "" : "s");
    for (size_t r = 0; r < OUTBOX_REASONS && o->reason[r].n; r++) {
        size_t unnamed = o->reason[r].n - o->reason[r].shown;
        if (o->reason[r].names.len) jb_buf_appendf(&note, NULL, "\n• %s", o->reason[r].names.data);
        if (unnamed)
            jb_buf_appendf(&note, NULL, "%s%zu %s%s", o->reason[r].names.len ? " and " : "\n• ",
                           unnamed, o->reason[r].names.len ? "more" : "file",
                           !o->reason[r].names.len && unnamed > 1 ? "s" : "");
        jb_buf_appendf(&note, NULL, ": %s.", o->reason[r].why);
        jb_buf_release(&o->reason[r].names);
    }
    if (o->total && note.data) t->c->fe->ops->notice(t->c->fe, t->thread_key, note.data, NULL);
    jb_buf_release(&note);
}

static void finish_inbox(struct store *st, const struct lane_msg *msgs, size_t n,
                         const char *outcome, struct turn_ctx *t)
{
    struct frontend *fe = t->c->fe;
    struct jb_err err = {0};
    for (size_t i = 0; i < n; i++)
        if (msgs[i].inbox_id &&
            store_inbox_finish(st, msgs[i].inbox_id, strcmp(outcome, "ok") ? "failed" : "done",
                               &err) < 0)
            log_warn("thread %s: inbox: %s", msgs[i].thread_key, err.msg);
    for (struct steered *s = t->steered; s; s = s->next) /* answered by this turn too */
        if (store_inbox_finish(st, s->m.inbox_id, strcmp(outcome, "ok") ? "failed" : "done", &err) <
            0)
            log_warn("thread %s: inbox: %s", s->m.thread_key, err.msg);
    if (fe->ops->finished)
        fe->ops->finished(fe, t->thread_key, t->refs, t->n, !strcmp(outcome, "ok"));
}

/* Run the agent (once more with a fresh conversation if its transcript is gone), report,
 * and save the session; returns the audit outcome. */
static const char *turn_body(struct turn_ctx *t, struct store *st, struct sandbox *sb,
                             const struct session_row *sess, struct run_out *o)
{
    struct jb_err err = {0};
    const char *resume = sess ? sess->agent_session_id : NULL;
    int rc = run_agent(t, sb, resume, o, &err);
    if (rc == 0 && resume && agent_resume_missing(&t->res)) {
        log_info("thread %s: agent conversation %s not found, starting a new one", t->thread_key,
                 resume);
        store_session_clear_id(st, t->thread_key, NULL);
        agent_result_release(&t->res);
        t->res = (struct agent_result)AGENT_RESULT_INIT;
        rc = run_agent(t, sb, NULL, o, &err);
    }
    if (rc < 0) {
        report_error(t, "cannot run the agent", &err);
        finish_inbox(st, t->msgs, t->nmsgs, "error", t);
        return "error";
    }
    /* Before the reply: a crash while it goes out leaves these "answering", and the next
     * start looks in the thread before it answers them again (core_resume_pending()). */
    for (size_t i = 0; i < t->nmsgs; i++)
        if (t->msgs[i].inbox_id && store_inbox_answering(st, t->msgs[i].inbox_id, &err) < 0)
            log_warn("thread %s: inbox: %s", t->thread_key, err.msg);
    const char *outcome = report_outcome(t, o);
    /* Right after the reply: a crash from here on must not answer these messages again. */
    finish_inbox(st, t->msgs, t->nmsgs, outcome, t);
    const char *sid = t->res.session_id ? t->res.session_id : o->new_session;
    if (store_session_touch(st, t->thread_key, t->agent->name, sid, sb->name, &err) < 0)
        log_warn("thread %s: cannot save the session: %s", t->thread_key, err.msg);
    if (!strcmp(outcome, "ok") && t->c->fe->ops->upload) {
        struct outbox_run ob = {.t = t};
        for (size_t r = 0; r < OUTBOX_REASONS; r++)
            ob.reason[r].names = (struct jb_buf)JB_BUF_INIT(4096);
        sandbox_outbox(sb, 10, 50LL << 20, deliver_file, skipped_file, &ob);
        skipped_notice(&ob);
    }
    return outcome;
}

/* The prompt of a turn: one message, or several joined in arrival order. */
static char *turn_prompt(const struct lane_msg *msgs, size_t n)
{
    struct jb_buf b = JB_BUF_INIT(64u << 20);
    for (size_t i = 0; i < n; i++)
        if ((i && jb_buf_append(&b, "\n\n", 2, NULL) < 0) ||
            jb_buf_append(&b, msgs[i].text, strlen(msgs[i].text), NULL) < 0) {
            jb_buf_release(&b);
            return NULL;
        }
    return jb_buf_detach(&b, NULL);
}

/* A turn's messages as the lanes queued them (an inbox id and a user) made whole from the
 * inbox: text, ref and files. One finished meanwhile is left out. */
struct turn_msgs {
    struct lane_msg *v;
    struct inbox_msg *rows;
    size_t n;
};

static void turn_msgs_release(struct turn_msgs *tm)
{
    for (size_t i = 0; tm->rows && i < tm->n; i++)
        inbox_msg_release(&tm->rows[i]);
    free(tm->rows);
    free(tm->v);
}

static int turn_msgs_load(struct store *st, const struct lane_msg *in, size_t n,
                          struct turn_msgs *tm, struct jb_err *err)
{
    *tm = (struct turn_msgs){.v = calloc(n, sizeof *tm->v), .rows = calloc(n, sizeof *tm->rows)};
    if (!tm->v || !tm->rows) return turn_msgs_release(tm), jb_err_set(err, JB_ENOMEM, "turn");
    for (size_t i = 0; i < n; i++) {
        struct lane_msg m = in[i];
        if (!m.text && m.inbox_id) {
            struct inbox_msg *r = &tm->rows[tm->n];
            if (store_inbox_get(st, m.inbox_id, r, err) < 0) {
                if (err->code != JB_ENOTFOUND) return turn_msgs_release(tm), -1;
                log_info("thread %s: message %lld was finished meanwhile; not run", m.thread_key,
                         (long long)m.inbox_id);
                continue;
            }
            m.text = r->text, m.ref = r->ref, m.files = r->files;
        }
        tm->v[tm->n++] = m;
    }
    return 0;
}

static void turn_run(struct core *c, struct store *st, const struct lane_msg *msgs, size_t n)
{
    const char *refs[64];
    size_t nrefs = n < JB_ARRAY_LEN(refs) ? n : JB_ARRAY_LEN(refs);
    for (size_t i = 0; i < nrefs; i++)
        refs[i] = msgs[i].ref;
    jb_autofree char *prompt = turn_prompt(msgs, n);
    struct running run = {.thread_key = msgs[0].thread_key,
                          .user = msgs[n - 1].user_id,
                          .started_ms = jb_mono_ms(),
                          .refs = refs,
                          .nrefs = nrefs};
    struct turn_ctx t = {.c = c,
                         .thread_key = msgs[0].thread_key,
                         .user = msgs[n - 1].user_id,
                         .prompt = prompt,
                         .refs = refs,
                         .n = nrefs,
                         .msgs = msgs,
                         .nmsgs = n,
                         .run = &run,
                         .res = AGENT_RESULT_INIT};
    struct jb_err err = {0};
    if (!prompt) {
        jb_err_set(&err, JB_ENOMEM, "out of memory");
        report_error(&t, "cannot start the turn", &err); /* the messages stay pending */
        return;
    }
    jb_log_ctx_set(t.thread_key, t.user); /* every line of this turn carries them */
    core_running_add(c, &run);
    c->fe->ops->started(c->fe, t.thread_key, t.user, refs, nrefs);
    struct run_out o = {0};
    struct session_row sess = {0};
    struct sandbox *sb = NULL;
    int64_t turn_id = 0;
    const char *outcome = "error";
    int have_sess = store_session_get(st, t.thread_key, &sess, &err) == 0;
    jb_autofree char *with_context = NULL;
    if (!have_sess && c->fe->ops->context && refs[0]) {
        /* The bot joins a thread that has history: the agent sees it first. */
        jb_autofree char *history = c->fe->ops->context(c->fe, t.thread_key, refs[0]);
        if (history && asprintf(&with_context, "%s\n\n%s", history, prompt) > 0)
            t.prompt = with_context;
    }
    if (sandbox_ensure(&c->sbx, t.thread_key, &sb, &err) < 0) {
        report_error(&t, "cannot prepare the sandbox", &err);
        finish_inbox(st, msgs, n, outcome, &t);
    } else {
        if (store_turn_begin(st, t.thread_key, t.user, sb->name, &turn_id, &err) < 0)
            log_warn("thread %s: audit: %s", t.thread_key, err.msg);
        jb_log_ctx_turn(turn_id);
        jb_log_event(JB_LOG_INFO, "turn.start", -1, "turn started: %zu message%s, sandbox %s", n,
                     n == 1 ? "" : "s", sb->name);
        jb_autofree char *files_line = core_files_in(c, t.thread_key, t.msgs, t.nmsgs, sb);
        jb_autofree char *with_files = NULL;
        if (files_line && asprintf(&with_files, "%s\n\n%s", t.prompt, files_line) > 0)
            t.prompt = with_files;
        outcome = turn_body(&t, st, sb, have_sess ? &sess : NULL, &o);
    }
    core_running_remove(c, &run);
    core_steered_free(t.steered);
    jb_metrics_add(c->metrics, JB_M_TURNS, outcome, NULL, 1);
    jb_metrics_observe(c->metrics, JB_M_TURN_SECONDS,
                       (double)(jb_mono_ms() - run.started_ms) / 1e3);
    struct jb_tokens used = jb_tally_sum(&o.llm); /* what the agent said, when not counted */
    jb_metrics_add(c->metrics, JB_M_LLM_TOKENS, "input", NULL, used.input);
    jb_metrics_add(c->metrics, JB_M_LLM_TOKENS, "output", NULL, used.output);
    jb_metrics_add(c->metrics, JB_M_LLM_TOKENS, "cache_read", NULL, used.cache_read);
    jb_metrics_add(c->metrics, JB_M_LLM_TOKENS, "cache_write", NULL, used.cache_write);
    int64_t tin = jb_tokens_total(&used) ? used.input + used.cache_write + used.cache_read
                                         : t.res.input_tokens;
    int64_t tout = jb_tokens_total(&used) ? used.output : t.res.output_tokens;
    if (turn_id &&
        (store_turn_end(st, turn_id, outcome, o.exec_ok ? o.exit_code : -1, tin, tout, &err) < 0 ||
         store_turn_exec(st, turn_id, c->sbx.ops->name, o.exec_ms, &err) < 0))
        log_warn("thread %s: audit: %s", t.thread_key, err.msg);
    jb_log_event(JB_LOG_INFO, "turn.end", jb_mono_ms() - run.started_ms, "turn ended: %s", outcome);
    jb_log_ctx_clear();
    free(o.new_session);
    agent_result_release(&t.res);
    if (have_sess) session_row_release(&sess);
    sandbox_free(sb);
}

void core_run_turn(void *ud, int worker, const struct lane_msg *queued, size_t nqueued)
{
    struct core *c = ud;
    struct jb_err err = {0};
    struct store *st = worker_store(c, worker, &err);
    struct turn_msgs tm = {0};
    if (!st || turn_msgs_load(st, queued, nqueued, &tm, &err) < 0) {
        struct turn_ctx t = {.c = c, .thread_key = queued[0].thread_key}; /* no refs yet */
        report_error(&t, "cannot start the turn", &err); /* the messages stay pending */
        return;
    }
    if (tm.n > 0) turn_run(c, st, tm.v, tm.n);
    turn_msgs_release(&tm);
}

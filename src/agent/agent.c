/* agent/agent.c -- the adapter registry, finding an agent's executable on the host, and
 * what every adapter's prepare() shares. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "agent/adapters.h"

static const struct agent_ops *const agents[] = {
    &agent_amp_ops,
    &agent_claude_ops,
    &agent_command_ops,
};

const struct agent_ops *agent_ops_find(const char *name)
{
    for (size_t i = 0; name && i < JB_ARRAY_LEN(agents); i++)
        if (strcmp(agents[i]->name, name) == 0) return agents[i];
    return NULL;
}

/* realpath() of an executable regular file; NULL with JB_EUNAVAIL naming `what`. */
static char *real_exec(const char *path, const char *what, const char *hint, struct jb_err *err)
{
    char *real = realpath(path, NULL);
    if (!real) {
        jb_err_set(err, JB_EUNAVAIL, "%s %s: %s; %s", what, path, strerror(errno), hint);
        return NULL;
    }
    struct stat st;
    if (stat(real, &st) < 0 || !S_ISREG(st.st_mode) || access(real, X_OK) != 0) {
        jb_err_set(err, JB_EUNAVAIL, "%s %s is not an executable file; %s", what, real, hint);
        free(real);
        return NULL;
    }
    return real;
}

static char *command_binary(const struct agent_ops *ops, const struct agent_opts *o,
                            struct jb_err *err)
{
    const char *cmd = o ? o->agent_cmd : NULL;
    if (!cmd || !*cmd) {
        jb_err_set(err, JB_EUNAVAIL, "JANEBOT_AGENT_CMD is not set: %s", ops->install_hint);
        return NULL;
    }
    if (cmd[0] != '/') {
        jb_err_set(err, JB_EUNAVAIL, "JANEBOT_AGENT_CMD=%s is not absolute: %s", cmd,
                   ops->install_hint);
        return NULL;
    }
    return real_exec(cmd, "JANEBOT_AGENT_CMD", ops->install_hint, err);
}

char *agent_binary(const struct agent_ops *ops, const struct agent_opts *o, struct jb_err *err)
{
    if (!ops->bin_name) return command_binary(ops, o, err);
    const char *bin = o && o->agent_bin && *o->agent_bin ? o->agent_bin : NULL;
    jb_autofree char *found = jb_which(bin ? bin : ops->bin_name, o ? o->path_env : NULL);
    if (!found && bin) {
        jb_err_set(err, JB_EUNAVAIL, "JANEBOT_AGENT_BIN=%s: no such executable (searched PATH): %s",
                   bin, ops->install_hint);
        return NULL;
    }
    if (!found) {
        jb_err_set(err, JB_EUNAVAIL, "the %s CLI (`%s`) is not on PATH: %s", ops->name,
                   ops->bin_name, ops->install_hint);
        return NULL;
    }
    return real_exec(found, bin ? "JANEBOT_AGENT_BIN" : ops->name, ops->install_hint, err);
}

/* ---- what the sandbox must see of the binary ---- */

/* 1 when binding dir would show the sandbox much more than one package. */
static int too_broad(const char *dir)
{
    size_t depth = 0;
    for (const char *p = dir; *p; p++)
        depth += *p == '/';
    if (depth < 2 || strcmp(dir, "/root") == 0) return 1; /* "/", "/opt", "/bin" */
    if (strncmp(dir, "/home/", 6) == 0 && depth == 2) return 1;
    const char *base = strrchr(dir, '/') + 1;
    if (strcmp(base, ".local") == 0) return 1;
    const char *home = getenv("HOME");
    size_t n = strlen(dir);
    return home && strncmp(home, dir, n) == 0 && (home[n] == '\0' || home[n] == '/');
}

/* An npm-installed CLI is its package: the nearest directory at most PKG_MAX_UP levels
 * above the script that holds a package.json ("pkg/cli.js", "pkg/bin/x", "pkg/dist/bin/x"),
 * its dependencies inside it. */
enum { PKG_MAX_UP = 3 };

static int has_package_json(const char *dir)
{
    char p[PATH_MAX];
    struct stat st;
    int n = snprintf(p, sizeof p, "%s/package.json", dir);
    return n > 0 && (size_t)n < sizeof p && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int agent_bin_ro_path(const char *real, struct jb_strv *ro, struct jb_err *err)
{
    if (strncmp(real, "/usr/", 5) == 0) return 0; /* the sandbox shows /usr read-only */
    char dir[PATH_MAX];
    size_t n = strlen(real);
    if (n >= sizeof dir) return jb_strv_push(ro, real, err);
    memcpy(dir, real, n + 1);
    for (int up = 0; up < PKG_MAX_UP; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) break;
        *slash = '\0';
        if (too_broad(dir)) break;
        if (has_package_json(dir)) return jb_strv_push(ro, dir, err);
    }
    return jb_strv_push(ro, real, err); /* a binary of its own: the file alone */
}

/* ---- building a command ---- */

int agent_cmd_begin(const struct agent_ops *ops, const struct agent_turn *t, int file_only,
                    struct agent_cmd *c, struct jb_err *err)
{
    jb_autofree char *bin = agent_binary(ops, t->opts, err);
    if (!bin) return -1;
    if (jb_strv_push(&c->argv, bin, err) < 0) return -1;
    /* A file under /usr is already there: the sandbox shows /usr read-only, and one bind
     * less is one mount less for bubblewrap on every start. */
    int shown = strncmp(bin, "/usr/", 5) == 0;
    if (file_only ? !shown && jb_strv_push(&c->ro_paths, bin, err) < 0
                  : agent_bin_ro_path(bin, &c->ro_paths, err) < 0)
        return -1;
    c->stdin_data = strdup(t->prompt ? t->prompt : "");
    if (!c->stdin_data) return jb_err_set(err, JB_ENOMEM, "prompt");
    return 0;
}

int agent_cmd_add_file(struct agent_cmd *c, const char *path, const char *data, size_t len,
                       struct jb_err *err)
{
    if (c->nfiles >= JB_ARRAY_LEN(c->files))
        return jb_err_set(err, JB_EPROTO, "too many files for one run (%s)", path);
    struct agent_file *f = &c->files[c->nfiles];
    f->path = strdup(path);
    f->data = malloc(len + 1);
    if (!f->path || !f->data) {
        free(f->path);
        free(f->data);
        *f = (struct agent_file){0};
        return jb_err_set(err, JB_ENOMEM, "file %s", path);
    }
    memcpy(f->data, data, len);
    f->data[len] = '\0';
    f->len = len;
    c->nfiles++;
    return 0;
}

void agent_cmd_release(struct agent_cmd *c)
{
    jb_strv_free(&c->argv);
    jb_strv_free(&c->env);
    jb_strv_free(&c->ro_paths);
    for (size_t i = 0; i < c->nfiles && i < JB_ARRAY_LEN(c->files); i++) {
        free(c->files[i].path);
        free(c->files[i].data);
    }
    free(c->stdin_data);
    free(c->session_id);
    *c = (struct agent_cmd){0};
}

char *agent_instructions(const struct agent_turn *t)
{
    const char *key = t->thread_key ? t->thread_key : "";
    const char *colon = strchr(key, ':');
    int slack = colon && (key[0] == 'C' || key[0] == 'G' || key[0] == 'D');
    char *s = NULL;
    int n;
    if (slack)
        n = asprintf(&s,
                     "You are janebot, a coding agent shared by a team through Slack. This turn "
                     "was asked by <@%s> in %s %.*s (thread %s). Answer in Markdown; it is "
                     "posted in that Slack thread. Files you put in ~/outbox/ are uploaded to "
                     "the thread.",
                     t->user ? t->user : "someone", key[0] == 'D' ? "a direct message" : "channel",
                     key[0] == 'D' ? 0 : (int)(colon - key), key, colon + 1);
    else
        n = asprintf(&s,
                     "You are janebot, a coding agent. This turn was asked by %s in the terminal "
                     "chat thread %s.",
                     t->user ? t->user : "someone", colon ? colon + 1 : key);
    return n < 0 ? NULL : s;
}

/* o as one compact JSON line with its newline (json_dumps escapes every newline inside).
 * Takes o's reference; NULL when o is NULL or out of memory. Caller frees. */
static char *json_line(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = NULL;
    if (s && asprintf(&out, "%s\n", s) < 0) out = NULL;
    free(s);
    return out;
}

static json_t *user_message(const char *text)
{
    return json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "type", "user", "message", "role", "user",
                     "content", "type", "text", "text", text ? text : "");
}

char *agent_input_line(const char *text)
{
    return json_line(user_message(text));
}

char *agent_steer_line(const char *text, int steer_flag, const char *request_id)
{
    json_t *o = user_message(text);
    if (!steer_flag || !o) return json_line(o);
    char id[257];
    snprintf(id, sizeof id, "%s", request_id && *request_id ? request_id : "janebot");
    if (json_object_set_new(o, "steer", json_true()) < 0 ||
        json_object_set_new(o, "request_id", json_string(id)) < 0) {
        json_decref(o);
        return NULL;
    }
    return json_line(o);
}

char *agent_permission_line(const char *request_id, int allow, const char *input_json,
                            const char *why)
{
    json_error_t je;
    json_t *input = allow ? json_loads(input_json ? input_json : "", 0, &je) : NULL;
    if (allow && !json_is_object(input)) {
        json_decref(input);
        return NULL;
    }
    json_t *answer = allow ? json_pack("{s:s, s:o}", "behavior", "allow", "updatedInput", input)
                           : json_pack("{s:s, s:s}", "behavior", "deny", "message",
                                       why && *why ? why : "denied");
    return json_line(answer ? json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "control_response",
                                        "response", "subtype", "success", "request_id",
                                        request_id ? request_id : "", "response", answer)
                            : NULL);
}

char *agent_interrupt_line(const char *request_id)
{
    return json_line(json_pack("{s:s, s:s, s:{s:s}}", "type", "control_request", "request_id",
                               request_id ? request_id : "interrupt", "request", "subtype",
                               "interrupt"));
}

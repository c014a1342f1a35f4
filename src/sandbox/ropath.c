/* sandbox/ropath.c -- host paths shown read-only in a local sandbox (the agent CLI's
 * install tree) must not show janebot's own secrets. Refused, with what to move where:
 *   - a path that is not clean and absolute;
 *   - one that overlaps the state dir (holds it, or is in it: the database, the homes,
 *     the state dir's .env);
 *   - a directory that holds janebot's working directory (its ./.env) or the config file
 *     (JANEBOT_CONFIG);
 *   - a directory with a file named .env or .env.<anything> anywhere below it, except in
 *     node_modules folders (the CLI's own dependencies: no operator keeps secrets there,
 *     and they are most of a package's files), or with a mount point below it (it would
 *     be shown unchecked);
 *   - a file named .env or .env.<anything>.
 * A .env above the shown directory is not shown, so it does not matter. Every check is
 * made on each exec, so a .env put into the tree later is refused too. */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/backend.h"

enum { RO_SEARCH_MAX = 200000 };

/* outer is inner or one of its parents. */
static int holds(const char *outer, const char *inner)
{
    size_t n = strlen(outer);
    if (n == 1 && outer[0] == '/') return 1;
    return !strncmp(outer, inner, n) && (inner[n] == '/' || inner[n] == '\0');
}

static int is_env_name(const char *name)
{
    return !strcmp(name, ".env") || !strncmp(name, ".env.", 5);
}

static int is_deps_dir(const char *name)
{
    return !strcmp(name, "node_modules");
}

static int check_places(const struct sandbox_opts *o, const char *p, struct jb_err *err)
{
    char state[PATH_MAX], cwd[PATH_MAX], conf[PATH_MAX];
    if (!realpath(o->state_dir, state)) snprintf(state, sizeof state, "%s", o->state_dir);
    if (holds(p, state) || holds(state, p))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: it overlaps the state dir %s "
                          "(JANEBOT_STATE_DIR); install the agent CLI outside it",
                          p, state);
    if (getcwd(cwd, sizeof cwd) && holds(p, cwd))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: it holds janebot's working "
                          "directory %s, where its .env is read; install the agent CLI "
                          "elsewhere (npm install -g) or start janebot from another directory",
                          p, cwd);
    const char *c = o->config_file;
    if (c && *c && realpath(c, conf) && holds(p, conf))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: it holds the config file %s "
                          "(JANEBOT_CONFIG); move the config file out of %s",
                          p, conf, p);
    return 0;
}

static int check_tree(const char *p, struct jb_err *err)
{
    char found[PATH_MAX];
    int r = jb_tree_find(p, is_env_name, is_deps_dir, RO_SEARCH_MAX, found, sizeof found, err);
    if (r < 0)
        return jb_err_prefix(err,
                             "refusing to show %s in the sandbox: it cannot be checked for "
                             ".env files; install the agent CLI in a directory of its own",
                             p);
    if (r == 2)
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: %s/%s is a mount point; install "
                          "the agent CLI in a directory without mounts",
                          p, p, found);
    if (r == 1)
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox (the agent CLI's files): %s/%s "
                          "may hold secrets; move it out of %s (janebot reads .env from its "
                          "working directory or the state dir), or install the agent CLI in a "
                          "directory of its own (npm install -g)",
                          p, p, found, p);
    return 0;
}

int sandbox_ro_path_check(const struct sandbox_opts *o, const char *p, struct jb_err *err)
{
    if (p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//"))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show \"%s\" in the sandbox: not a clean absolute path", p);
    char real[PATH_MAX]; /* what bwrap will bind: the path with its symlinks resolved */
    struct stat st;
    if (!realpath(p, real) || stat(real, &st) < 0)
        return jb_err_sys(err, "cannot show %s in the sandbox", p);
    if (check_places(o, real, err) < 0) return -1;
    if (!S_ISDIR(st.st_mode) && is_env_name(strrchr(real, '/') + 1))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: a .env file may hold secrets", real);
    return S_ISDIR(st.st_mode) ? check_tree(real, err) : 0;
}

/* sandbox/mounts.c -- which host mounts a local exec's staging namespace lets go of.
 *
 * As root, each exec's child has a mount namespace of its own (child.c) in which bwrap
 * then runs. bwrap reads the whole mount table of that namespace after every bind it
 * makes (to apply the flags to what lies below), a dozen times per sandbox, and the
 * table is the host's: /sys and its cgroup and debug file systems, every other thread's
 * home image, whatever the host has mounted. None of that is shown in a sandbox, so the
 * child detaches it first. What stays: the root, every mount on the way to a host path
 * bwrap takes something from, and every mount below such a path (a separate /usr/local
 * is part of /usr as the sandbox sees it). Mounts under the state root are let go of
 * wherever they are, so no sandbox holds another thread's home file system (and its
 * deleted image) until it ends. */
#include <string.h>

#include "sandbox/backend.h"

/* A mount point of /proc/self/mountinfo, whose spaces and such are \ooo escapes, unescaped
 * in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* 1 when path is dir or below it ("/usr" holds "/usr" and "/usr/lib", not "/usrx"). */
static int path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/') return path[0] == '/';
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

static int kept(const char *point, const char *const *needed, size_t nneeded,
                const char *state_root)
{
    if (!strcmp(point, "/")) return 1;
    if (state_root && state_root[0] && strcmp(state_root, "/") != 0 &&
        path_within(point, state_root) && strcmp(point, state_root) != 0)
        return 0;
    for (size_t i = 0; i < nneeded; i++)
        if (path_within(needed[i], point) || path_within(point, needed[i])) return 1;
    return 0;
}

int mounts_to_detach(FILE *mountinfo, const char *const *needed, size_t nneeded,
                     const char *state_root, struct jb_strv *out, struct jb_err *err)
{
    struct jb_strv gone = JB_STRV_INIT; /* every mount point let go of, in table order */
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, mountinfo) > 0) {
        char point[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || point[0] != '/') continue;
        unescape_octal(point);
        if (!kept(point, needed, nneeded, state_root)) rc = jb_strv_push(&gone, point, err);
    }
    free(line);
    /* Only the topmost of them: a lazy unmount takes everything below along. A point that
     * is there twice (mounted over) is listed twice: each unmount takes one. */
    for (size_t i = 0; rc == 0 && i < gone.n; i++) {
        int below = 0;
        for (size_t j = 0; j < gone.n && !below; j++)
            below = strcmp(gone.v[j], gone.v[i]) != 0 && path_within(gone.v[i], gone.v[j]);
        if (!below) rc = jb_strv_push(out, gone.v[i], err);
    }
    jb_strv_free(&gone);
    return rc;
}

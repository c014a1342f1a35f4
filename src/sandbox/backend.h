/* sandbox/backend.h -- private to sandbox/: the backend tables and the process runner
 * they share. */
#ifndef JB_SANDBOX_BACKEND_H
#define JB_SANDBOX_BACKEND_H

#include "sandbox/sandbox.h"

extern const struct sandbox_ops sandbox_local_ops;
extern const struct sandbox_ops sandbox_host_ops;

/* One process to run: full argv and environment for execve, fds the child keeps. */
struct proc_spec {
    const char *const *argv; /* argv[0] is an absolute path */
    const char *const *envp;
    const char *cwd;     /* NULL: inherit */
    const int *keep_fds; /* made inheritable in the child only */
    size_t nkeep;
};

/* Run ps with x's stdin/stdout/deadline/cancel semantics and fill x's results. The
 * child starts a new session (so its whole process group can be killed) and dies with
 * the calling thread. Returns after the child is reaped and its group killed. */
int proc_run(const struct proc_spec *ps, struct sandbox_exec *x, struct jb_err *err);

/* A memfd holding data (close-on-exec; the caller closes it). -1 on error. */
int proc_memfd(const char *name, const void *data, size_t len, struct jb_err *err);

#endif

/* sandbox/backend.h -- private to sandbox/: the backend tables and the process runner
 * they share. */
#ifndef JB_SANDBOX_BACKEND_H
#define JB_SANDBOX_BACKEND_H

#include <stdio.h>

#include "sandbox/sandbox.h"

/* The uid (and gid) of the agent inside a local sandbox. */
#define SANDBOX_UID "1000"

extern const struct sandbox_ops sandbox_local_ops;
extern const struct sandbox_ops sandbox_host_ops;
extern const struct sandbox_ops sandbox_sprites_ops;

/* ---- the lock of a sandbox's directory (lock.c) ---- */

/* A shared hold on <dir>/lock (dir is made when missing), for a struct sandbox's life:
 * waits while a removal holds it (up to a minute: JB_EBUSY), and after a removal makes
 * a fresh dir. *ret_fd is the caller's; closing it lets go. */
int sandbox_lock_use(const char *dir, int *ret_fd, struct jb_err *err);
/* The exclusive hold a removal or reset keeps throughout, without waiting: JB_EBUSY
 * ("a turn is running in this thread's sandbox: ...") while any struct sandbox holds it. */
int sandbox_lock_remove(const char *dir, int *ret_fd, struct jb_err *err);

/* One process to run: full argv and environment for execve, fds the child keeps. */
struct proc_spec {
    const char *const *argv; /* argv[0] is an absolute path */
    const char *const *envp;
    const char *cwd;     /* NULL: inherit */
    const int *keep_fds; /* made inheritable in the child only */
    size_t nkeep;
    int drop_to_uid; /* 1: setgroups/setgid/setuid to uid/gid before exec */
    int nice;        /* > 0: the child's niceness (inherited by all it starts) */
    uid_t uid;
    gid_t gid;
    /* Called about once a second while the process runs; non-zero stops it (the
     * exec's over_quota is set). May be NULL. */
    int (*tick)(void *ud);
    void *tick_ud;
    /* Bind mounts made in a private mount namespace of the child before it drops
     * privileges (root only): stage_src[i] appears at stage_dst[i], a placeholder. */
    const char *const *stage_src;
    const char *const *stage_dst;
    size_t nstage;
    /* cgroup.procs (v1: tasks) files the child moves itself into first (write "0"), so every
     * process of the sandbox is counted from its start. */
    const int *cgroup_fds;
    size_t ncgroup;
    /* Then unmounted there (lazily; errors ignored): mounts that namespace need not hold. */
    const char *const *stage_detach;
    size_t ndetach;
};

/* Run ps with x's stdin/stdout/deadline/cancel semantics and fill x's results. The
 * child starts a new session (so its whole process group can be killed) and dies with
 * the calling thread. Returns after the child is reaped and its group killed. */
int proc_run(const struct proc_spec *ps, struct sandbox_exec *x, struct jb_err *err);

/* proc_run()'s child (child.c): in, out, errfd (-1: inherited) become its 0, 1, 2, then it
 * joins ps's cgroups, takes a session, the staging mounts, the nice value and the uid, and
 * execs ps->argv. Its pid, or -1 (errno set); returns once it has exec'd or exited. */
pid_t proc_clone(const struct proc_spec *ps, int in, int out, int errfd);

/* A memfd holding data (close-on-exec; the caller closes it). -1 on error. */
int proc_memfd(const char *name, const void *data, size_t len, struct jb_err *err);

/* ---- bubblewrap arguments (bwrap.c) ---- */

struct bwrap_plan {
    const char *bwrap; /* bubblewrap's path (found once per context) */
    const struct sandbox *sb;
    const struct sandbox_exec *x;
    /* Host paths bound into the sandbox (staged copies when running as root). */
    const char *home_src; /* -> /home/agent */
    /* Passed as open files, not bound: bwrap runs the init as /proc/self/fd/N and the init
     * reaches each proxy socket the same way, then closes them all before the command. A
     * bind each cost bwrap a mount, a remount and a read of the mount table, and showed
     * the sockets to the agent. */
    int init_fd;                /* the sandbox init (read-only), owned by the context */
    int egress_fd, llm_fd;      /* O_PATH: this exec's proxy sockets (llm_fd -1: none) */
    const char *const *llm_env; /* NAME=VALUE: base URLs and the scoped token; these names
                                   replace the adapter's own (a real key never goes in) */
    const char *const *ro_src;  /* one per x->ro_paths entry, shown at that entry's path */
    int seccomp_base_fd, seccomp_agent_fd;
    int stamp_fd; /* the init writes its two timing stamps here (sandbox_timing), or -1 */
};
#define BWRAP_MAX_FDS 32
struct bwrap_args {
    struct jb_strv argv;
    struct jb_strv sources; /* the host paths bwrap takes something from (binds, --dev) */
    int fds[BWRAP_MAX_FDS]; /* owned: closed by bwrap_args_release() */
    size_t nfds;
};
/* The whole bwrap command line. */
int bwrap_build(const struct bwrap_plan *p, struct bwrap_args *a, struct jb_err *err);
void bwrap_args_release(struct bwrap_args *a);
char *bwrap_path(void); /* caller frees; NULL when bwrap is not installed */

/* ---- the staging namespace's mount table (mounts.c) ---- */

/* The mount points of mountinfo (a /proc/<pid>/mountinfo stream) that a root exec's
 * staging namespace detaches before bwrap runs (only the topmost: the rest go with them),
 * pushed to out: all but the
 * root, the mounts on the way to a path of needed, and those below one; mounts below
 * state_root (may be NULL) always go. */
int mounts_to_detach(FILE *mountinfo, const char *const *needed, size_t nneeded,
                     const char *state_root, struct jb_strv *out, struct jb_err *err);

/* ---- cgroups (cgroup.c): a memory (and pids) cgroup per running sandbox ---- */

enum cgroup_kind { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };
struct cgroup_env { /* found once per context; read-only after */
    enum cgroup_kind kind;
    char mem_base[4096];  /* where sandbox cgroups are made (v2: memory and pids) */
    char pids_base[4096]; /* v1: the pids hierarchy's, "" when none is writable */
    char cpu_base[4096];  /* v1: the cpu hierarchy's, "" when none is writable */
    int swap;             /* swap is limited too (memsw / memory.swap.max) */
    int v2_pids, v2_cpu;  /* v2: pids / cpu are enabled for children */
    char why[512];        /* CGROUP_NONE: why */
};
/* Find a writable hierarchy with a memory controller (v2 first, then v1). */
void cgroup_env_detect(struct cgroup_env *ce);
/* One line for doctor and the start-up log, into out; returns out. */
const char *cgroup_env_describe(const struct cgroup_env *ce, char *out, size_t n);
/* Remove cgroups left by janebot processes that died. */
void cgroup_sweep(const struct cgroup_env *ce);

struct cgroup_run {
    enum cgroup_kind kind;
    char mem[4096], pids[4096], cpu[4096]; /* the run's directories, "" when none */
    int procs_fd[3]; /* their cgroup.procs (v1: tasks), open for the child to join */
    size_t nprocs;
};
/* A fresh cgroup for one run (nothing when ce has none): memory (swap included) capped at
 * mem_bytes, processes at max_pids, and the CPU weight of one ordinary process for the
 * whole sandbox, so a sandbox of many busy processes cannot starve the bot (a smaller
 * weight would starve the sandbox whenever the host is busy). Undo with
 * cgroup_run_destroy(). */
int cgroup_run_create(const struct cgroup_env *ce, unsigned seq, long long mem_bytes,
                      long long max_pids, struct cgroup_run *cr, struct jb_err *err);
/* 1 when the kernel's OOM killer killed a process of the run. */
int cgroup_run_oom_killed(const struct cgroup_run *cr);
/* Kill what is left in it and remove it. */
void cgroup_run_destroy(struct cgroup_run *cr);

/* ---- the run dir (rundir.c): opaque names for what sandboxes are shown of the host ---- */

struct run_dir {
    char *base;      /* 0700, janebot's user's */
    char *dir;       /* this process's: <base>/<random>, locked while it lives */
    char *init_copy; /* the sandbox init as sandboxes run it: <base>/janebot-<hash> */
    int lock_fd;
};
/* Make (or reuse) the base, remove the directories of processes that died, make this
 * process's own and the sandbox init's copy (once per self_exe, janebot's binary). Undo with
 * rundir_close(). */
int rundir_open(struct run_dir *rd, const char *self_exe, struct jb_err *err);
/* A fresh random socket path in this process's directory: <dir>/<random><suffix>. */
int rundir_sock_path(const struct run_dir *rd, const char *suffix, char *path, size_t n,
                     struct jb_err *err);
void rundir_close(struct run_dir *rd);

/* Seccomp filters as BPF in a memfd (close-on-exec; the caller closes it). */
int seccomp_base_fd(struct jb_err *err);
int seccomp_agent_fd(struct jb_err *err);
/* Both filters compiled once (a context's, at its start): each exec then only copies the
 * bytes into its own memfds (proc_memfd). Owned; seccomp_prog_release() frees. */
struct seccomp_prog {
    unsigned char *bpf;
    size_t len;
};
int seccomp_progs_build(struct seccomp_prog *base, struct seccomp_prog *agent, struct jb_err *err);
void seccomp_prog_release(struct seccomp_prog *p);

/* ---- a file system of its own for each home (diskimg.c, diskimg-copy.c; root only) ---- */

/* 0 when homes can be ext4 images here (root, /dev/loop-control, mkfs.ext4); else -1 and
 * why (for the log). */
int diskimg_usable(char *why, size_t n);
/* Mount sb's home from <dir>/home.img (bytes large, its root owned by uid): made when
 * missing (an old home's files copied in), a mount or loop device left by a crash or an
 * earlier janebot reused; with first (this process's first ensure of it), resized to
 * bytes. 1: mounted, sb->home_fd is its root (closed by sandbox_free()); 0: the home stays
 * a plain directory under the walk quota (logged why); -1 on error (an image that exists
 * but cannot be mounted: never silently a directory). */
int diskimg_ensure(struct sandbox *sb, uid_t uid, long long bytes, int first, struct jb_err *err);
/* 1 when sb->home is still the mount sb->home_fd was opened on. */
int diskimg_in_place(const struct sandbox *sb);
/* Before <dir> (a sandbox's directory) or its home is deleted: unmount the home lazily (a
 * process still in it keeps its files until it ends) and delete the image. 0 also when
 * there was none. */
int diskimg_drop(const char *dir, struct jb_err *err);
/* Whether the home open at home_fd is full (or so nearly that writes fail): 0, or
 * SANDBOX_DISK_FULL_BYTES / _FILES with the bytes / inodes left in *ret_left. */
int diskimg_full(int home_fd, long long *ret_left);
/* Bytes the home of the sandbox in dir uses when it is an image (its files when mounted,
 * else the image's blocks on the host); -1 when it has none. */
long long diskimg_used_bytes(const char *dir);
/* How many files (inodes) an image of bytes holds. */
long long diskimg_inodes(long long bytes);
/* The `doctor` line: which disk quota is in force (it makes and mounts a small image). */
void diskimg_doctor(const struct sandbox_opts *o,
                    void (*report)(void *ud, int ok, const char *what, const char *detail),
                    void *ud);
/* Copy the tree under from into to by fd, never following a symlink; everything made
 * belongs to uid. -1 when it does not fit (ENOSPC) or cannot be read. */
int diskimg_copy_tree(int from, int to, uid_t uid, struct jb_err *err);

#endif

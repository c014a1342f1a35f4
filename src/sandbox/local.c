/* sandbox/local.c -- the local backend: each exec is one bubblewrap sandbox (bwrap.c
 * builds its command line), with janebot's init inside (init.c), two seccomp filters
 * (seccomp.c), resource limits, a disk quota on the home, and the egress proxy on the
 * host reached through a per-exec Unix socket.
 *
 * When janebot runs as root, each sandbox runs as its own unprivileged host uid
 * (JANEBOT_SANDBOX_UID_BASE + an offset the store hands out once per sandbox, so no two
 * share one) that owns only its home: RLIMIT_NPROC is not enforced for processes that map
 * to host root, per-user kernel limits (inotify, processes) are not shared with another
 * thread, and an escape lands on a uid with nothing else to read. The home is then a file
 * system of its own (diskimg.c) where the kernel enforces the disk quota. As a normal user,
 * the sandbox maps to that user (shared by every sandbox), RLIMIT_NPROC counts the
 * sandbox's processes in its own user namespace, and the quota is a walk of the home.
 * The egress and LLM proxies and the store of uids are the core's (ctx->svc): an exec
 * registers its own socket on each proxy and lets go of them when it ends. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/backend.h"

struct local_ctx {
    char *self_exe;                                  /* janebot's own binary: the init inside */
    char *bwrap;                                     /* bubblewrap, found once */
    struct seccomp_prog seccomp_base, seccomp_agent; /* compiled once */
    struct run_dir run;   /* the per-exec proxy sockets and the binary, opaquely named */
    int init_fd;          /* run.init_copy, opened once: each sandbox runs it through this */
    atomic_uint seq;      /* makes socket and cgroup names unique within this process */
    struct cgroup_env cg; /* the memory limit's hierarchy, if any */
    /* As root: */
    int images;          /* homes are disk images (diskimg_usable) */
    struct jb_strv seen; /* names of the sandboxes ensured by this process */
    pthread_mutex_t seen_mu;
};

/* Root: the sandbox's own host uid, from the store. */
static int uid_alloc(const struct sandbox *sb, uid_t *ret, struct jb_err *err)
{
    const struct sandbox_services *svc = sb->ctx->svc;
    int off = 0;
    if (svc->uid_get(svc->ud, sb->name, &off, err) < 0)
        return jb_err_prefix(err, "sandbox %s", sb->name);
    *ret = (uid_t)(sb->ctx->opts->uid_base + off);
    return 0;
}

static int uid_of(const struct sandbox *sb, uid_t *ret)
{
    if (sb->host_uid < 0) return 0;
    *ret = (uid_t)sb->host_uid;
    return 1;
}

/* 1 the first time this process ensures the sandbox named name. */
static int first_seen(struct local_ctx *lc, const char *name)
{
    pthread_mutex_lock(&lc->seen_mu);
    size_t i = 0;
    while (i < lc->seen.n && strcmp(lc->seen.v[i], name))
        i++;
    int first = i == lc->seen.n && jb_strv_push(&lc->seen, name, NULL) == 0;
    pthread_mutex_unlock(&lc->seen_mu);
    return first;
}

static int local_ensure(struct sandbox *sb, struct jb_err *err)
{
    struct local_ctx *lc = sb->ctx->priv;
    if (!(sb->run_dir = strdup("/run/janebot"))) return jb_err_set(err, JB_ENOMEM, "run dir");
    if (geteuid() != 0) return 0;
    uid_t uid = 0;
    if (uid_alloc(sb, &uid, err) < 0) return -1;
    sb->host_uid = uid;
    long long bytes = (long long)sb->ctx->opts->disk_mb << 20;
    int image = lc->images ? diskimg_ensure(sb, uid, bytes, first_seen(lc, sb->name), err) : 0;
    if (image < 0) return -1;
    jb_autoclose int fd =
        image ? dup(sb->home_fd) : open(sb->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) return jb_err_sys(err, "cannot open %s", sb->home);
    /* The home belongs to the sandbox's host uid (recursive for homes made by an older
     * janebot as root); the walk never follows a symlink nor leaves the home's mount. */
    if (st.st_uid != uid && jb_chown_tree(fd, uid, uid, err) < 0)
        return jb_err_prefix(err, "cannot give %s to the sandbox's uid %u", sb->home,
                             (unsigned)uid);
    return 0;
}

/* The fallback quota, where the home is not a file system of its own: a walk of it. */
static int over_quota_check(const struct sandbox *sb, struct jb_err *err)
{
    if (sb->home_fd >= 0) return 0; /* the kernel enforces it */
    long long used = jb_disk_usage(sb->home);
    long long limit = (long long)sb->ctx->opts->disk_mb * 1024 * 1024;
    if (used <= limit) return 0;
    char u[32], l[32];
    jb_fmt_size(used, u, sizeof u);
    jb_fmt_size(limit, l, sizeof l);
    return jb_err_set(err, JB_EDENIED,
                      "this thread's sandbox is over its disk quota (%s used of %s): delete "
                      "files in it, or an admin can raise JANEBOT_SANDBOX_DISK_MB",
                      u, l);
}

/* This exec's own listener on the egress proxy: the global allowlist plus the channel's
 * names (x->egress_extra). */
static int listen_for(struct local_ctx *lc, const struct sandbox *sb, const char *extra,
                      uid_t owner, char *path, size_t n, struct sandbox_egress **ret,
                      struct jb_err *err)
{
    const struct sandbox_services *svc = sb->ctx->svc;
    if (rundir_sock_path(&lc->run, ".sock", path, n, err) < 0) return -1;
    return svc->egress_open(svc->ud, path, sb->thread_key, extra, owner, ret, err);
}

/* Root only: placeholders under /run/janebot-stage/<exec>/ (0711) where the child binds
 * the paths bwrap needs, so bwrap can run as the sandbox's unprivileged uid. */
struct stage {
    char dir[256];
    struct jb_strv src, dst, ro;
    struct jb_strv detach; /* the homes mounted on the host: not held by this namespace */
};

static void stage_release(struct stage *st)
{
    for (size_t i = 0; i < st->dst.n; i++)
        if (unlink(st->dst.v[i]) < 0) rmdir(st->dst.v[i]);
    if (st->dir[0]) rmdir(st->dir);
    jb_strv_free(&st->src);
    jb_strv_free(&st->dst);
    jb_strv_free(&st->ro);
    jb_strv_free(&st->detach);
}

/* Add src, shown at <dir>/<name>; returns the placeholder's path (borrowed) or NULL. */
static const char *stage_add(struct stage *st, const char *src, const char *name,
                             struct jb_err *err)
{
    struct stat sst;
    if (stat(src, &sst) < 0) return jb_err_sys(err, "cannot use %s in the sandbox", src), NULL;
    char dst[512];
    snprintf(dst, sizeof dst, "%s/%s", st->dir, name);
    int rc = S_ISDIR(sst.st_mode) ? mkdir(dst, 0700)
                                  : close(open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (rc < 0) return jb_err_sys(err, "cannot stage %s", dst), NULL;
    if (jb_strv_push(&st->src, src, err) < 0 || jb_strv_push(&st->dst, dst, err) < 0) return NULL;
    return st->dst.v[st->dst.n - 1];
}

static int stage_init(struct stage *st, struct local_ctx *lc, const struct sandbox *sb,
                      struct bwrap_plan *plan, struct jb_err *err)
{
    static const char root[] = "/run/janebot-stage";
    struct stat rs;
    if ((mkdir(root, 0711) < 0 && errno != EEXIST) || lstat(root, &rs) < 0 ||
        !S_ISDIR(rs.st_mode) || rs.st_uid != 0 || (rs.st_mode & 022))
        return jb_err_set(err, JB_EDENIED, "%s must be a directory of root, not writable by others",
                          root);
    snprintf(st->dir, sizeof st->dir, "%s/%s.%d.%u", root, sb->name, (int)getpid(),
             atomic_fetch_add(&lc->seq, 1));
    if (mkdir(st->dir, 0711) < 0) {
        st->dir[0] = '\0';
        return jb_err_sys(err, "cannot create a staging dir");
    }
    if (!(plan->home_src = stage_add(st, sb->home, "home", err))) return -1;
    for (size_t i = 0; plan->x->ro_paths && plan->x->ro_paths[i]; i++) {
        char name[32];
        snprintf(name, sizeof name, "ro%zu", i);
        const char *p = stage_add(st, plan->x->ro_paths[i], name, err);
        if (!p || jb_strv_push(&st->ro, p, err) < 0) return -1;
    }
    plan->ro_src = (const char *const *)st->ro.v;
    return 0;
}

/* path, and where it leads when it is (or passes through) a symlink: bwrap binds the
 * target, which may be on a mount of its own. */
static int push_needed(struct jb_strv *needed, const char *path, struct jb_err *err)
{
    if (jb_strv_push(needed, path, err) < 0) return -1;
    jb_autofree char *real = realpath(path, NULL);
    return real && strcmp(real, path) != 0 ? jb_strv_push(needed, real, err) : 0;
}

/* What the child's staging namespace lets go of (mounts.c): everything bwrap takes nothing
 * from, read from the mount table now, so a home mounted meanwhile goes too. */
static int stage_detach(struct stage *st, const struct sandbox *sb, const struct bwrap_args *a,
                        const char *bwrap, struct jb_err *err)
{
    struct jb_strv needed = JB_STRV_INIT;
    int rc = push_needed(&needed, bwrap, err) < 0 || push_needed(&needed, "/proc", err) < 0 ||
                     push_needed(&needed, st->dir, err) < 0
                 ? -1
                 : 0;
    for (size_t i = 0; rc == 0 && i < a->sources.n; i++)
        rc = push_needed(&needed, a->sources.v[i], err);
    FILE *f = rc == 0 ? fopen("/proc/self/mountinfo", "re") : NULL;
    if (rc == 0 && !f) rc = jb_err_sys(err, "cannot read /proc/self/mountinfo");
    if (rc == 0)
        rc = mounts_to_detach(f, (const char *const *)needed.v, needed.n, sb->ctx->root,
                              &st->detach, err);
    if (f) fclose(f);
    jb_strv_free(&needed);
    return rc;
}

/* What the run's tick watches: the home's size, and refusals of the exec's token. */
struct watch {
    const struct sandbox *sb;
    struct sandbox_llm *llm;
    int llm_refused;
};

static int watch_tick(void *ud)
{
    struct watch *w = ud;
    const struct sandbox_services *svc = w->sb->ctx->svc;
    if (w->llm && svc->llm_refused(svc->ud, w->llm)) return w->llm_refused = 1;
    return over_quota_check(w->sb, NULL) < 0;
}

/* This exec's scoped token for every provider the host has a key for, on its own socket
 * (none when the host has no key: *ret stays NULL). */
static int llm_open(struct local_ctx *lc, const struct sandbox *sb, const struct sandbox_exec *x,
                    uid_t uid, char *path, size_t n, struct sandbox_llm **ret, struct jb_strv *env,
                    struct jb_err *err)
{
    const struct sandbox_services *svc = sb->ctx->svc;
    if (rundir_sock_path(&lc->run, ".llm.sock", path, n, err) < 0) return -1;
    struct sandbox_llm_req rq = {.sock_path = path,
                                 .thread_key = sb->thread_key,
                                 .user = x->user ? x->user : "sandbox-exec",
                                 .sandbox = sb->name,
                                 .owner = uid};
    return svc->llm_open(svc->ud, &rq, env, ret, err);
}

/* A proxy socket as the init reaches it: an O_PATH fd of it (close-on-exec here; proc.c
 * clears that in the child). Opened right after the proxy bound it in janebot's own run
 * dir, which nobody else can write. */
static int socket_fd(const char *path, struct jb_err *err)
{
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? jb_err_sys(err, "cannot open the proxy socket %s", path) : fd;
}

static void stamp(struct sandbox_exec *x, enum sandbox_step step)
{
    if (x->timing) x->timing->ns[step] = sandbox_clock_ns();
}

/* The init's own stamps (bwrap.c's --stamp), from the memfd it wrote them to. */
static void stamps_inside(struct sandbox_exec *x, int fd)
{
    int64_t in[2] = {0, 0};
    if (fd < 0 || pread(fd, in, sizeof in, 0) != (ssize_t)sizeof in) return;
    x->timing->ns[SANDBOX_STEP_INIT] = in[0];
    x->timing->ns[SANDBOX_STEP_COMMAND] = in[1];
}

static int local_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    struct local_ctx *lc = sb->ctx->priv;
    if (!x->argv || !x->argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (over_quota_check(sb, err) < 0) return -1;
    if (sb->home_fd >= 0 && !diskimg_in_place(sb))
        return jb_err_set(err, JB_EUNAVAIL,
                          "the home of sandbox %s was unmounted (removed or reset meanwhile)",
                          sb->name);
    uid_t uid = (uid_t)-1;
    int drop = uid_of(sb, &uid);
    if (!drop && geteuid() == 0) /* never as host root */
        return jb_err_set(err, JB_EDENIED, "sandbox %s has no uid of its own", sb->name);
    const struct sandbox_services *svc = sb->ctx->svc;
    char sock[108], llm_sock[108];
    struct sandbox_egress *listener = NULL;
    struct watch watch = {.sb = sb};
    struct jb_strv llm_env = JB_STRV_INIT;
    struct bwrap_args a = {.argv = JB_STRV_INIT};
    struct stage st = {
        .src = JB_STRV_INIT, .dst = JB_STRV_INIT, .ro = JB_STRV_INIT, .detach = JB_STRV_INIT};
    struct cgroup_run cg = {.procs_fd = {-1, -1, -1}};
    struct bwrap_plan plan = {.bwrap = lc->bwrap,
                              .sb = sb,
                              .x = x,
                              .home_src = sb->home,
                              .init_fd = lc->init_fd,
                              .egress_fd = -1,
                              .llm_fd = -1,
                              .ro_src = x->ro_paths,
                              .stamp_fd = -1};
    int rc = -1;
    stamp(x, SANDBOX_STEP_START);
    plan.seccomp_base_fd =
        proc_memfd("janebot-seccomp-base", lc->seccomp_base.bpf, lc->seccomp_base.len, err);
    plan.seccomp_agent_fd = plan.seccomp_base_fd < 0
                                ? -1
                                : proc_memfd("janebot-seccomp-agent", lc->seccomp_agent.bpf,
                                             lc->seccomp_agent.len, err);
    if (plan.seccomp_agent_fd < 0) goto out;
    stamp(x, SANDBOX_STEP_SECCOMP);
    if (listen_for(lc, sb, x->egress_extra, uid, sock, sizeof sock, &listener, err) < 0 ||
        (plan.egress_fd = socket_fd(sock, err)) < 0 ||
        llm_open(lc, sb, x, uid, llm_sock, sizeof llm_sock, &watch.llm, &llm_env, err) < 0 ||
        (watch.llm && (plan.llm_fd = socket_fd(llm_sock, err)) < 0))
        goto out;
    stamp(x, SANDBOX_STEP_PROXIES);
    if (x->timing && (plan.stamp_fd = proc_memfd("janebot-stamps", x->timing->ns,
                                                 sizeof x->timing->ns, err)) < 0)
        goto out;
    if (watch.llm) plan.llm_env = (const char *const *)llm_env.v;
    if ((drop && stage_init(&st, lc, sb, &plan, err) < 0) || bwrap_build(&plan, &a, err) < 0 ||
        (drop && stage_detach(&st, sb, &a, lc->bwrap, err) < 0) ||
        cgroup_run_create(&lc->cg, atomic_fetch_add(&lc->seq, 1),
                          (long long)sb->ctx->opts->memory_mb << 20, sb->ctx->opts->max_procs + 8,
                          &cg, err) < 0)
        goto out;
    int keep[BWRAP_MAX_FDS + 6];
    size_t nkeep = 0;
    for (size_t i = 0; i < a.nfds; i++)
        keep[nkeep++] = a.fds[i];
    keep[nkeep++] = plan.seccomp_base_fd;
    keep[nkeep++] = plan.seccomp_agent_fd;
    keep[nkeep++] = plan.init_fd;
    keep[nkeep++] = plan.egress_fd;
    if (plan.llm_fd >= 0) keep[nkeep++] = plan.llm_fd;
    if (plan.stamp_fd >= 0) keep[nkeep++] = plan.stamp_fd;
    static const char *const bwrap_env[] = {"PATH=/usr/bin:/bin", NULL};
    struct proc_spec ps = {.argv = (const char *const *)a.argv.v,
                           .envp = bwrap_env,
                           .keep_fds = keep,
                           .nkeep = nkeep,
                           .drop_to_uid = drop,
                           .nice = sb->ctx->opts->nice,
                           .uid = uid,
                           .gid = (gid_t)uid,
                           .tick = watch_tick,
                           .tick_ud = &watch,
                           .stage_src = (const char *const *)st.src.v,
                           .stage_dst = (const char *const *)st.dst.v,
                           .nstage = st.src.n,
                           .cgroup_fds = cg.procs_fd,
                           .ncgroup = cg.nprocs,
                           .stage_detach = (const char *const *)st.detach.v,
                           .ndetach = st.detach.n};
    stamp(x, SANDBOX_STEP_SPAWN);
    rc = proc_run(&ps, x, err);
    stamp(x, SANDBOX_STEP_REAPED);
    stamps_inside(x, plan.stamp_fd);
    if (rc == 0) x->oom_killed = cgroup_run_oom_killed(&cg);
    if (rc == 0 && watch.llm_refused) {
        x->over_quota = 0; /* the tick stopped it for the token, not the disk */
        x->llm_refused = svc->llm_refused(svc->ud, watch.llm);
    }
    if (rc == 0 && watch.llm) svc->llm_usage(svc->ud, watch.llm, &x->llm);
    if (rc == 0) x->disk_full = diskimg_full(sb->home_fd, &x->disk_left);
out:
    cgroup_run_destroy(&cg);
    if (listener) svc->egress_close(svc->ud, listener);
    if (watch.llm) svc->llm_close(svc->ud, watch.llm);
    stage_release(&st);
    bwrap_args_release(&a);
    for (size_t i = 0; i < llm_env.n; i++)
        explicit_bzero(llm_env.v[i], strlen(llm_env.v[i]));
    jb_strv_free(&llm_env);
    if (plan.seccomp_base_fd >= 0) close(plan.seccomp_base_fd);
    if (plan.seccomp_agent_fd >= 0) close(plan.seccomp_agent_fd);
    if (plan.stamp_fd >= 0) close(plan.stamp_fd);
    if (plan.egress_fd >= 0) close(plan.egress_fd);
    if (plan.llm_fd >= 0) close(plan.llm_fd);
    stamp(x, SANDBOX_STEP_DONE);
    return rc;
}

/* Staging dirs of janebot processes that died (kill -9) are removed at start: their
 * names carry the pid. They hold placeholders only (the binds were in the dead child's
 * own mount namespace); the removal is by fd all the same. */
static void stage_sweep(void)
{
    int fd = open("/run/janebot-stage", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *dot = strchr(de->d_name, '.');
        long pid = dot ? strtol(dot + 1, NULL, 10) : 0;
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        struct jb_err e = {0};
        if (jb_rm_rf_at(fd, de->d_name, &e) < 0) log_warn("staging dir: %s", e.msg);
    }
    closedir(d);
}

static void local_ctx_release(struct sandbox_ctx *ctx)
{
    struct local_ctx *lc = ctx->priv;
    jb_strv_free(&lc->seen);
    pthread_mutex_destroy(&lc->seen_mu);
    free(lc->self_exe);
    free(lc->bwrap);
    seccomp_prog_release(&lc->seccomp_base);
    seccomp_prog_release(&lc->seccomp_agent);
    rundir_close(&lc->run);
    if (lc->init_fd >= 0) close(lc->init_fd);
    free(lc);
}

static int local_ctx_init(struct sandbox_ctx *ctx, struct jb_err *err)
{
    struct local_ctx *lc = calloc(1, sizeof *lc);
    if (!lc) return jb_err_set(err, JB_ENOMEM, "sandbox context");
    pthread_mutex_init(&lc->seen_mu, NULL);
    lc->init_fd = -1;
    ctx->priv = lc;
    const struct sandbox_services *svc = ctx->svc;
    /* Without the core's proxies and store an exec could not be confined: fail closed. */
    if (!svc || !svc->egress_open || !svc->egress_close || !svc->llm_open || !svc->llm_refused ||
        !svc->llm_usage || !svc->llm_close || !svc->uid_get || !svc->uid_free)
        return jb_err_set(err, JB_EUNAVAIL,
                          "the local sandbox needs the egress proxy, the LLM "
                          "proxy and the store (services not given)");
    if (!(lc->self_exe = realpath("/proc/self/exe", NULL)))
        return jb_err_sys(err, "cannot find janebot's own binary");
    if (rundir_open(&lc->run, lc->self_exe, err) < 0) return -1;
    if ((lc->init_fd = open(lc->run.init_copy, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return jb_err_sys(err, "cannot open the sandbox init %s", lc->run.init_copy);
    /* Once per process, not per exec: where bwrap is, and the compiled filters. */
    lc->bwrap = bwrap_path();
    if (seccomp_progs_build(&lc->seccomp_base, &lc->seccomp_agent, err) < 0) return -1;
    if (geteuid() == 0) {
        stage_sweep();
        char why[512];
        lc->images = diskimg_usable(why, sizeof why) == 0;
        if (!lc->images && ctx->serving)
            log_warn("sandbox homes are plain directories with an approximate disk quota (a "
                     "walk): %s",
                     why);
    }
    cgroup_env_detect(&lc->cg);
    cgroup_sweep(&lc->cg);
    if (lc->cg.kind == CGROUP_NONE && ctx->serving)
        log_warn("sandboxes run without a memory limit (JANEBOT_SANDBOX_MEMORY_MB is not "
                 "enforced): %s",
                 lc->cg.why);
    return 0;
}

static int local_probe(const struct sandbox_opts *o, char *detail, size_t n)
{
    jb_autofree char *bwrap = bwrap_path();
    if (!bwrap) {
        snprintf(detail, n, "bubblewrap is not installed: apt-get install bubblewrap");
        return -1;
    }
    const char *argv[] = {bwrap,
                          "--unshare-user",
                          "--unshare-pid",
                          "--unshare-net",
                          "--unshare-ipc",
                          "--unshare-uts",
                          "--disable-userns",
                          "--die-with-parent",
                          "--ro-bind",
                          "/usr",
                          "/usr",
                          "--symlink",
                          "usr/lib",
                          "/lib",
                          "--symlink",
                          "usr/lib64",
                          "/lib64",
                          "--uid",
                          SANDBOX_UID,
                          "--",
                          "/usr/bin/true",
                          NULL};
    static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    /* As root, probe as the unprivileged uid sandboxes will run as: some kernels allow
     * user namespaces to root only. */
    struct proc_spec ps = {.argv = argv,
                           .envp = env,
                           .drop_to_uid = geteuid() == 0,
                           .uid = (uid_t)o->uid_base,
                           .gid = (gid_t)o->uid_base};
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.deadline_ms = jb_mono_ms() + 10000;
    struct jb_err e = {0};
    if (proc_run(&ps, &x, &e) < 0 || x.exit_code != 0) {
        size_t l = strlen(x.stderr_tail);
        while (l && x.stderr_tail[l - 1] == '\n')
            x.stderr_tail[--l] = '\0';
        snprintf(detail, n,
                 "bubblewrap cannot create a sandbox here (%s). Enable unprivileged user "
                 "namespaces (sysctl user.max_user_namespaces=15000, and on Debian "
                 "kernel.unprivileged_userns_clone=1), or set JANEBOT_SANDBOX=host with "
                 "ALLOW_LOCAL_EXECUTION=true to run without isolation",
                 e.msg[0] ? e.msg
                 : l      ? x.stderr_tail
                          : "it exited with an error");
        return -1;
    }
    snprintf(detail, n, "%s starts sandboxes with user, pid and network namespaces", bwrap);
    return 0;
}

static int local_available(const struct sandbox_ctx *ctx, struct jb_err *err)
{
    char detail[1024];
    if (local_probe(ctx->opts, detail, sizeof detail) < 0)
        return jb_err_set(err, JB_EUNAVAIL, "%s", detail);
    return 0;
}

/* Which resource limits are in force here. */
static void doctor_limits(const struct sandbox_opts *o,
                          void (*report)(void *ud, int ok, const char *what, const char *detail),
                          void *ud)
{
    struct cgroup_env cg;
    char d[1024], line[1400];
    cgroup_env_detect(&cg);
    snprintf(line, sizeof line, "%d MiB per sandbox (JANEBOT_SANDBOX_MEMORY_MB): %s", o->memory_mb,
             cgroup_env_describe(&cg, d, sizeof d));
    report(ud, cg.kind == CGROUP_NONE ? -1 : 1, "memory limit", line);
    if (o->as_mb)
        snprintf(line, sizeof line, "%d MiB per process (JANEBOT_SANDBOX_ADDRESS_SPACE_MB)",
                 o->as_mb);
    else
        snprintf(line, sizeof line, "none (JANEBOT_SANDBOX_ADDRESS_SPACE_MB=0)");
    report(ud, 1, "address space", line);
    int pids = cg.kind == CGROUP_V2 ? cg.v2_pids : cg.kind == CGROUP_V1 && cg.pids_base[0];
    snprintf(line, sizeof line, "%d (JANEBOT_SANDBOX_MAX_PROCS): RLIMIT_NPROC%s", o->max_procs,
             pids ? " and a pids cgroup" : "");
    report(ud, 1, "processes", line);
    snprintf(line, sizeof line, "niceness %d (JANEBOT_SANDBOX_NICE)%s", o->nice,
             o->nice ? ": janebot's own threads run first" : "");
    report(ud, 1, "priority", line);
    long long tmp = (long long)o->tmp_mb;
    snprintf(line, sizeof line,
             "/tmp %lld MiB, /dev/shm %lld MiB (JANEBOT_SANDBOX_TMP_MB), counted in the "
             "sandbox's memory%s; the root and /dev are read-only",
             tmp, tmp < 64 ? tmp : 64, cg.kind == CGROUP_NONE ? " (when it has a cgroup)" : "");
    report(ud, 1, "tmpfs", line);
}

static int local_doctor(const struct sandbox_ctx *ctx,
                        void (*report)(void *ud, int ok, const char *what, const char *detail),
                        void *ud)
{
    char detail[1024];
    jb_autofree char *bwrap = bwrap_path();
    report(ud, bwrap != NULL, "bubblewrap",
           bwrap ? bwrap : "not installed: apt-get install bubblewrap");
    if (!bwrap) return 1;
    int ok = local_probe(ctx->opts, detail, sizeof detail) == 0;
    report(ud, ok, "user namespaces", detail);
    struct jb_err e = {0};
    int fd = seccomp_base_fd(&e);
    report(ud, fd >= 0, "seccomp", fd >= 0 ? "syscall filters build (libseccomp)" : e.msg);
    if (fd >= 0)
        close(fd);
    else
        ok = 0;
    doctor_limits(ctx->opts, report, ud);
    if (geteuid() == 0) {
        report(ud, 1, "sandbox uids",
               "running as root: each sandbox runs as its own unprivileged host uid, "
               "JANEBOT_SANDBOX_UID_BASE + an offset 0..65535 the database gives no other sandbox");
    } else {
        snprintf(detail, sizeof detail,
                 "sandboxes share janebot's uid %u: they share its per-user limits (processes, "
                 "inotify instances) with janebot and each other; run as root for a uid each",
                 (unsigned)geteuid());
        report(ud, -1, "sandbox uids", detail);
    }
    diskimg_doctor(ctx->opts, report, ud);
    return ok ? 0 : 1;
}

/* Before remove and reset: the home's disk image goes, and with the sandbox its uid. */
static int local_home_drop(const struct sandbox_ctx *ctx, const char *name, const char *dir,
                           int forget, struct jb_err *err)
{
    const struct sandbox_services *svc = ctx->svc;
    if (geteuid() != 0) return 0;
    if (diskimg_drop(dir, err) < 0) return -1;
    if (!forget || !ctx->priv || !svc || !svc->uid_free) return 0;
    return svc->uid_free(svc->ud, name, err);
}

const struct sandbox_ops sandbox_local_ops = {
    .version = 1,
    .name = "local",
    .available = local_available,
    .ensure = local_ensure,
    .exec = local_exec,
    .doctor = local_doctor,
    .ctx_init = local_ctx_init,
    .ctx_release = local_ctx_release,
    .home_drop = local_home_drop,
};

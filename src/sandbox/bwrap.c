/* sandbox/bwrap.c -- the bubblewrap command line of one local exec.
 *
 * Namespaces: user, pid, ipc, uts, cgroup, network (loopback only); nested user
 * namespaces disabled; no capabilities; a cleared environment; the base seccomp filter.
 * Filesystem: /usr and a few /etc files read-only, generated passwd/group/hosts, the
 * thread's home read-write at /home/agent, fresh /tmp and /dev/shm (size-capped), /proc
 * and /dev; the root and /dev are read-only once set up. The init and the proxy sockets
 * go in as inherited fds, not mounts. Host paths go in as fds: nothing is resolved by name
 * inside a directory the sandbox can write. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/backend.h"

#define EGRESS_PORT "3128"
#define LLM_PORT    "4000"
#define RUN_DIR     "/run/janebot"
#define SHM_BYTES   (64LL << 20) /* /dev/shm, or /tmp's size when that is smaller */

static const char *const sandbox_path = "/usr/local/bin:/usr/bin:/bin";
static const char *const top_dirs[] = {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"};
/* What programs read at run time: the alternatives' links (/usr/bin/python3 ...), the CA
 * certificates. Not ldconfig's /etc/ld.so.conf.d nor the hooks in /etc/ca-certificates:
 * nothing inside can rebuild the cache or the bundle, and each bind costs bwrap a mount,
 * a remount and a read of the mount table. */
static const char *const etc_paths[] = {"/etc/alternatives", "/etc/ssl"};
/* Small host files shown by copy (read at each exec, so never stale), not by a bind each:
 * every bind costs bwrap a mount, a remount and a read of the whole mount table. */
static const char *const etc_copies[] = {
    "/etc/ld.so.cache", "/etc/ld.so.conf",     "/etc/localtime",   "/etc/mime.types",
    "/etc/os-release",  "/etc/debian_version", "/etc/bash.bashrc", "/etc/profile",
};
#define ETC_COPY_MAX (1 << 20)

char *bwrap_path(void)
{
    return jb_which("bwrap", "/usr/bin:/bin:/usr/local/bin");
}

void bwrap_args_release(struct bwrap_args *a)
{
    jb_strv_free(&a->argv);
    jb_strv_free(&a->sources);
    for (size_t i = 0; i < a->nfds; i++)
        close(a->fds[i]);
    a->nfds = 0;
}

static int push(struct bwrap_args *a, const char *s1, const char *s2, const char *s3,
                struct jb_err *err)
{
    const char *v[] = {s1, s2, s3};
    for (size_t i = 0; i < 3 && v[i]; i++)
        if (jb_strv_push(&a->argv, v[i], err) < 0) return -1;
    return 0;
}

/* "OPT SRC DEST" of a bind, SRC noted as a host path bwrap needs (mounts.c). */
static int push_bind(struct bwrap_args *a, const char *opt, const char *src, const char *dest,
                     struct jb_err *err)
{
    return jb_strv_push(&a->sources, src, err) < 0 ? -1 : push(a, opt, src, dest, err);
}

/* Take ownership of fd and put "OPT FD DEST" on the command line. */
static int push_fd(struct bwrap_args *a, const char *opt, int fd, const char *dest,
                   struct jb_err *err)
{
    if (fd < 0) return -1;
    if (a->nfds >= BWRAP_MAX_FDS) {
        close(fd);
        return jb_err_set(err, JB_ESYS, "too many files for one sandbox");
    }
    a->fds[a->nfds++] = fd;
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    return push(a, opt, num, dest, err);
}

static int push_fd_arg(struct jb_strv *argv, struct bwrap_args *a, int fd, struct jb_err *err)
{
    if (a->nfds >= BWRAP_MAX_FDS) {
        close(fd);
        return jb_err_set(err, JB_ESYS, "too many files for one sandbox");
    }
    a->fds[a->nfds++] = fd;
    return jb_strv_push(argv, "--args", err) < 0 ? -1 : jb_strv_pushf(argv, err, "%d", fd);
}

/* A file of janebot's at dest. Under /etc and /run/janebot (the root's tmpfs, remounted
 * read-only once set up) it is written there (--file): as read-only as a bind, without a
 * mount, a remount and a read of the mount table each. Elsewhere (a writable place) it
 * stays a read-only bind of its own. */
static int push_data(struct bwrap_args *a, const char *dest, const char *data, size_t len,
                     struct jb_err *err)
{
    int on_root =
        (!strncmp(dest, "/etc/", 5) || !strncmp(dest, RUN_DIR "/", strlen(RUN_DIR) + 1)) &&
        !strstr(dest, "/..");
    if (on_root && push(a, "--perms", "0444", NULL, err) < 0) return -1;
    return push_fd(a, on_root ? "--file" : "--ro-bind-data",
                   proc_memfd("janebot-file", data, len, err), dest, err);
}

/* A host system file's bytes, its symlinks followed as a bind follows them (/etc/localtime
 * -> /usr/share/zoneinfo/...); NULL when it is missing, not a regular file or too big. */
static char *read_host_file(const char *path, size_t *ret_len)
{
    jb_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ETC_COPY_MAX)
        return NULL;
    char *data = malloc((size_t)st.st_size + 1);
    ssize_t n = data ? read(fd, data, (size_t)st.st_size + 1) : -1;
    if (n < 0 || n > st.st_size) {
        free(data);
        return NULL;
    }
    *ret_len = (size_t)n;
    return data;
}

static int add_system(struct bwrap_args *a, struct jb_err *err)
{
    char target[4096];
    if (push_bind(a, "--ro-bind", "/usr", "/usr", err) < 0) return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(top_dirs); i++) {
        struct stat st;
        if (lstat(top_dirs[i], &st) < 0) continue;
        if (!S_ISLNK(st.st_mode)) {
            if (push_bind(a, "--ro-bind", top_dirs[i], top_dirs[i], err) < 0) return -1;
            continue;
        }
        ssize_t n = readlink(top_dirs[i], target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (push(a, "--symlink", target, top_dirs[i], err) < 0) return -1;
    }
    for (size_t i = 0; i < JB_ARRAY_LEN(etc_paths); i++)
        if (access(etc_paths[i], F_OK) == 0 &&
            push_bind(a, "--ro-bind", etc_paths[i], etc_paths[i], err) < 0)
            return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(etc_copies); i++) {
        size_t len = 0;
        char *data = read_host_file(etc_copies[i], &len);
        if (!data) continue;
        int rc = push_data(a, etc_copies[i], data, len, err);
        free(data);
        if (rc < 0) return -1;
    }
    return 0;
}

static int add_identity(struct bwrap_args *a, const char *hostname, struct jb_err *err)
{
    static const char passwd[] =
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "agent:x:" SANDBOX_UID ":" SANDBOX_UID ":janebot agent:/home/agent:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    static const char group[] = "root:x:0:\nagent:x:" SANDBOX_UID ":\nnogroup:x:65534:\n";
    static const char nss[] = "passwd: files\ngroup: files\nhosts: files\n";
    /* No resolver: names go to the proxy, which decides before anything is looked up. */
    static const char resolv[] = "# janebot: no DNS inside the sandbox; use the HTTP proxy\n";
    char hosts[256];
    snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost %s\n::1\tlocalhost\n", hostname);
    return push_data(a, "/etc/passwd", passwd, sizeof passwd - 1, err) < 0 ||
                   push_data(a, "/etc/group", group, sizeof group - 1, err) < 0 ||
                   push_data(a, "/etc/nsswitch.conf", nss, sizeof nss - 1, err) < 0 ||
                   push_data(a, "/etc/resolv.conf", resolv, sizeof resolv - 1, err) < 0 ||
                   push_data(a, "/etc/hosts", hosts, strlen(hosts), err) < 0
               ? -1
               : 0;
}

static int add_env(struct bwrap_args *a, const struct bwrap_plan *p, struct jb_err *err)
{
    static const char *const base_env[][2] = {
        {"HOME", "/home/agent"}, {"USER", "agent"},  {"LOGNAME", "agent"},
        {"LANG", "C.UTF-8"},     {"TMPDIR", "/tmp"}, {"TERM", "dumb"},
    };
    static const char *const proxy_vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY",
                                             "HTTPS_PROXY"};
    for (size_t i = 0; i < JB_ARRAY_LEN(base_env); i++)
        if (push(a, "--setenv", base_env[i][0], base_env[i][1], err) < 0) return -1;
    if (push(a, "--setenv", "PATH", sandbox_path, err) < 0) return -1;
    for (size_t i = 0; p->egress_fd >= 0 && i < JB_ARRAY_LEN(proxy_vars); i++)
        if (push(a, "--setenv", proxy_vars[i], "http://127.0.0.1:" EGRESS_PORT, err) < 0) return -1;
    if (p->egress_fd >= 0 && (push(a, "--setenv", "NO_PROXY", "localhost,127.0.0.1", err) < 0 ||
                              push(a, "--setenv", "no_proxy", "localhost,127.0.0.1", err) < 0))
        return -1;
    return 0;
}

/* A /dev of bwrap's: its own tmpfs, devpts and /dev/shm, and these nodes of the host's
 * bound in (what bwrap's --dev takes from the host). */
static int add_dev(struct bwrap_args *a, struct jb_err *err)
{
    static const char *const nodes[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                        "/dev/random", "/dev/urandom", "/dev/tty"};
    for (size_t i = 0; i < JB_ARRAY_LEN(nodes); i++)
        if (jb_strv_push(&a->sources, nodes[i], err) < 0) return -1;
    return push(a, "--dev", "/dev", NULL, err);
}

static int add_mounts(struct bwrap_args *a, const struct bwrap_plan *p, struct jb_err *err)
{
    const struct sandbox *sb = p->sb;
    const struct sandbox_opts *o = sb->ctx->opts;
    char size[32], shm[32];
    long long tmp_bytes = (long long)o->tmp_mb << 20;
    snprintf(size, sizeof size, "%lld", tmp_bytes);
    snprintf(shm, sizeof shm, "%lld", tmp_bytes < SHM_BYTES ? tmp_bytes : SHM_BYTES);
    if (add_system(a, err) < 0 || add_identity(a, sb->name, err) < 0 ||
        push(a, "--proc", "/proc", NULL, err) < 0 || add_dev(a, err) < 0 ||
        push(a, "--perms", "1777", NULL, err) < 0 || push(a, "--size", shm, NULL, err) < 0 ||
        push(a, "--tmpfs", "/dev/shm", NULL, err) < 0 ||
        push(a, "--perms", "1777", NULL, err) < 0 || push(a, "--size", size, NULL, err) < 0 ||
        push(a, "--tmpfs", "/tmp", NULL, err) < 0 ||
        push_bind(a, "--bind", p->home_src, "/home/agent", err) < 0)
        return -1;
    for (size_t i = 0; p->x->ro_paths && p->x->ro_paths[i]; i++)
        if (sandbox_ro_path_check(o, p->x->ro_paths[i], err) < 0 ||
            push_bind(a, "--ro-bind", p->ro_src[i], p->x->ro_paths[i], err) < 0)
            return -1;
    for (size_t i = 0; i < p->x->nfiles; i++)
        if (push_data(a, p->x->files[i].path, p->x->files[i].data, p->x->files[i].len, err) < 0)
            return -1;
    /* The root and /dev are tmpfs of bwrap's without a size: once set up, nothing may be
     * written there (/tmp, /dev/shm and the home are the sized, writable places). */
    return push(a, "--remount-ro", "/dev", NULL, err) < 0 ||
                   push(a, "--remount-ro", "/", NULL, err) < 0
               ? -1
               : 0;
}

/* Is NAME (n bytes) set by the LLM proxy's variables? */
static int overridden(const char *const *llm_env, const char *name, size_t n)
{
    for (const char *const *e = llm_env; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return 1;
    return 0;
}

/* The adapter's variables (an API key among them) go to init through a memfd, not on
 * bwrap's command line, which every process on the host can read. */
static int env_memfd(struct bwrap_args *a, const struct bwrap_plan *p, struct jb_err *err)
{
    struct jb_buf b = JB_BUF_INIT(1 << 20);
    for (const char *const *e = p->x->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && overridden(p->llm_env, *e, (size_t)(eq - *e))) continue;
        if (!eq || eq == *e || jb_buf_append(&b, *e, strlen(*e) + 1, err) < 0) {
            jb_buf_release(&b);
            return eq ? -1 : jb_err_set(err, JB_EPROTO, "bad environment entry");
        }
    }
    for (const char *const *e = p->llm_env; e && *e; e++)
        if (jb_buf_append(&b, *e, strlen(*e) + 1, err) < 0) {
            jb_buf_release(&b);
            return -1;
        }
    int fd = proc_memfd("janebot-env", b.data, b.len, err);
    jb_buf_release(&b);
    if (fd < 0) return -1;
    if (a->nfds >= BWRAP_MAX_FDS) return close(fd), jb_err_set(err, JB_ESYS, "too many files");
    a->fds[a->nfds++] = fd;
    return fd;
}

/* "--listen PORT:/proc/self/fd/FD": the init connects to the proxy socket through the fd
 * it inherited (the socket's path is the host's, not shown inside). */
static int push_listen(struct jb_strv *argv, const char *port, int fd, struct jb_err *err)
{
    if (fd < 0) return 0;
    return jb_strv_push(argv, "--listen", err) < 0
               ? -1
               : jb_strv_pushf(argv, err, "%s:/proc/self/fd/%d", port, fd);
}

/* /proc/self/fd/INIT sandbox-init (pid 1: bwrap runs with --as-pid-1) --limits N:N:N:N:N
 * --filter FD --env FD [--listen PORT:/proc/self/fd/FD] [--stamp FD] -- argv */
static int add_init(struct bwrap_args *a, const struct bwrap_plan *p, struct jb_err *err)
{
    int env_fd = env_memfd(a, p, err);
    if (env_fd < 0) return -1;
    const struct sandbox_opts *o = p->sb->ctx->opts;
    char limits[128];
    snprintf(limits, sizeof limits, "%d:4096:%d:%d:%d", o->max_procs, o->max_file_mb, o->as_mb,
             o->cpu_s);
    if (jb_strv_push(&a->argv, "--", err) < 0 ||
        jb_strv_pushf(&a->argv, err, "/proc/self/fd/%d", p->init_fd) < 0 ||
        push(a, "sandbox-init", "--limits", NULL, err) < 0 ||
        push(a, limits, NULL, NULL, err) < 0 || jb_strv_pushf(&a->argv, err, "--filter") < 0 ||
        jb_strv_pushf(&a->argv, err, "%d", p->seccomp_agent_fd) < 0 ||
        jb_strv_push(&a->argv, "--env", err) < 0 ||
        jb_strv_pushf(&a->argv, err, "%d", env_fd) < 0 ||
        push_listen(&a->argv, EGRESS_PORT, p->egress_fd, err) < 0 ||
        push_listen(&a->argv, LLM_PORT, p->llm_fd, err) < 0 ||
        (p->stamp_fd >= 0 && (jb_strv_push(&a->argv, "--stamp", err) < 0 ||
                              jb_strv_pushf(&a->argv, err, "%d", p->stamp_fd) < 0)) ||
        jb_strv_push(&a->argv, "--", err) < 0)
        return -1;
    return jb_strv_pushv(&a->argv, p->x->argv, err);
}

/* bwrap's options go through --args FD: the sandbox (whose pid 1 is bwrap) and other
 * users of the host then see no host paths or settings in its command line. */
static int pack_args(struct bwrap_args *a, struct jb_err *err)
{
    struct jb_buf b = JB_BUF_INIT(1 << 22);
    size_t end = 1; /* options only: the command stays on the command line */
    while (end < a->argv.n && strcmp(a->argv.v[end], "--") != 0)
        end++;
    for (size_t i = 1; i < end; i++)
        if (jb_buf_append(&b, a->argv.v[i], strlen(a->argv.v[i]) + 1, err) < 0) {
            jb_buf_release(&b);
            return -1;
        }
    int fd = proc_memfd("janebot-bwrap-args", b.data, b.len, err);
    jb_buf_release(&b);
    if (fd < 0) return -1;
    struct jb_strv packed = JB_STRV_INIT;
    if (jb_strv_push(&packed, a->argv.v[0], err) < 0 || push_fd_arg(&packed, a, fd, err) < 0 ||
        jb_strv_pushv(&packed, (const char *const *)a->argv.v + end, err) < 0) {
        jb_strv_free(&packed);
        return -1;
    }
    jb_strv_free(&a->argv);
    a->argv = packed;
    return 0;
}

int bwrap_build(const struct bwrap_plan *p, struct bwrap_args *a, struct jb_err *err)
{
    static const char *const ns_flags[] = {
        "--unshare-user",   "--unshare-ipc",
        "--unshare-pid",    "--unshare-net",
        "--unshare-uts",    "--unshare-cgroup-try",
        "--disable-userns", "--die-with-parent",
        "--new-session",    "--as-pid-1",
        "--cap-drop",       "ALL",
        "--clearenv",       "--uid",
        SANDBOX_UID,        "--gid",
        SANDBOX_UID,
    };
    if (!p->bwrap) return jb_err_set(err, JB_EUNAVAIL, "bubblewrap (bwrap) is not installed");
    if (jb_strv_push(&a->argv, p->bwrap, err) < 0) return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(ns_flags); i++)
        if (jb_strv_push(&a->argv, ns_flags[i], err) < 0) return -1;
    char num[16];
    snprintf(num, sizeof num, "%d", p->seccomp_base_fd);
    if (push(a, "--hostname", p->sb->name, NULL, err) < 0 ||
        push(a, "--seccomp", num, NULL, err) < 0 || add_mounts(a, p, err) < 0 ||
        push(a, "--chdir", "/home/agent", NULL, err) < 0 || add_env(a, p, err) < 0)
        return -1;
    if (add_init(a, p, err) < 0) return -1;
    return pack_args(a, err);
}

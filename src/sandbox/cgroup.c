/* sandbox/cgroup.c -- one memory and pids cgroup per running local sandbox.
 *
 * An address-space limit per process neither bounds what a sandbox holds (shared
 * memory, memfds, tmpfs pages, many processes) nor lets modern runtimes run (V8 and
 * WebAssembly reserve large virtual ranges). The memory controller counts what is
 * actually used, tmpfs pages included, for the whole sandbox at once. Whichever
 * hierarchy the host has is used:
 *   v2: a cgroup below janebot's own (memory.max, memory.swap.max = 0, pids.max); when
 *       that cgroup cannot enable controllers for children because janebot's process is
 *       in it, janebot first moves itself into a leaf "janebot-main" beside them;
 *   v1: a cgroup in the memory hierarchy (memory.limit_in_bytes and, with swap
 *       accounting, memory.memsw.limit_in_bytes) and one in the pids hierarchy.
 * Cgroups are named "janebot-<pid>-<seq>"; those of janebot processes that died are
 * removed at start. Without a writable hierarchy (a normal user without delegation),
 * the sandbox runs with its rlimits only and doctor says so. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "sandbox/backend.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int write_str(const char *dir, const char *file, const char *val)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = jb_write_all(fd, val, strlen(val));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The first line of dir/file holding key ("oom_kill"), its number; 0 when absent. */
static long long read_key(const char *dir, const char *file, const char *key)
{
    char path[PATH_MAX + 64], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (jb_read_file(path, 65536, &text, &len, NULL) < 0) return 0;
    long long v = 0;
    size_t kl = strlen(key);
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            v = strtoll(line + kl + 1, NULL, 10);
            break;
        }
    free(text);
    return v;
}

/* 1 when the comma list holds word ("cpu,cpuacct" holds "cpu"). */
static int list_has(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == wl && !strncmp(p, word, l)) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* The path of this process's cgroup for controller (NULL: the v2 hierarchy, "0::") from
 * /proc/self/cgroup, into out. -1 when absent. */
static int own_cgroup(const char *controller, char *out, size_t n)
{
    char *text = NULL;
    size_t len;
    if (jb_read_file("/proc/self/cgroup", 65536, &text, &len, NULL) < 0) return -1;
    int rc = -1;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        const char *ctls = c1 + 1, *path = c2 + 1;
        int match = controller ? list_has(ctls, controller) : !strcmp(line, "0") && c2 == c1 + 1;
        if (match) {
            snprintf(out, n, "%s", path);
            rc = 0;
            break;
        }
    }
    free(text);
    return rc;
}

/* The mount point of the v1 hierarchy holding controller, from mountinfo (the text of
 * /proc/self/mountinfo, read once per detection: it is long on a host with many mounts). */
static int v1_mount(const char *mountinfo, const char *controller, char *out, size_t n)
{
    for (const char *line = mountinfo; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[2048];
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            char *sep = strstr(buf, " - cgroup "), mnt[1024];
            if (sep && list_has(strrchr(sep, ' ') + 1, controller) &&
                sscanf(buf, "%*s %*s %*s %*s %1023s", mnt) == 1) {
                snprintf(out, n, "%s", mnt);
                return 0;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static int dir_writable(const char *dir)
{
    return access(dir, W_OK) == 0;
}

/* A second v1 hierarchy's directory for janebot's cgroup, "" when absent or read-only. */
static void v1_other(const char *mountinfo, const char *controller, char *out, size_t n)
{
    char mnt[1024], own[1024];
    out[0] = '\0';
    if (v1_mount(mountinfo, controller, mnt, sizeof mnt) < 0 ||
        own_cgroup(controller, own, sizeof own) < 0)
        return;
    snprintf(out, n, "%s%s", mnt, strcmp(own, "/") ? own : "");
    if (!dir_writable(out)) out[0] = '\0';
}

static int detect_v1(struct cgroup_env *ce)
{
    char mnt[1024], own[1024];
    jb_autofree char *mountinfo = NULL;
    size_t len;
    if (jb_read_file("/proc/self/mountinfo", 1 << 22, &mountinfo, &len, NULL) < 0 ||
        v1_mount(mountinfo, "memory", mnt, sizeof mnt) < 0 ||
        own_cgroup("memory", own, sizeof own) < 0)
        return -1;
    snprintf(ce->mem_base, sizeof ce->mem_base, "%s%s", mnt, strcmp(own, "/") ? own : "");
    if (!dir_writable(ce->mem_base)) {
        snprintf(ce->why, sizeof ce->why,
                 "the memory cgroup %.300s is not writable here: run janebot as root (with "
                 "/sys/fs/cgroup writable) or give it a delegated cgroup",
                 ce->mem_base);
        return -1;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", ce->mem_base);
    ce->swap = access(path, F_OK) == 0;
    v1_other(mountinfo, "pids", ce->pids_base, sizeof ce->pids_base);
    v1_other(mountinfo, "cpu", ce->cpu_base, sizeof ce->cpu_base);
    ce->kind = CGROUP_V1;
    return 0;
}

static int has_word(const char *dir, const char *file, const char *word)
{
    char path[PATH_MAX + 64], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (jb_read_file(path, 4096, &text, &len, NULL) < 0) return 0;
    int found = 0;
    for (char *save = NULL, *w = strtok_r(text, " \n", &save); w && !found;
         w = strtok_r(NULL, " \n", &save))
        found = !strcmp(w, word);
    free(text);
    return found;
}

/* v2: children of dir may use memory and pids. A cgroup with processes cannot give
 * controllers to children (except the root), so janebot moves itself into a leaf first. */
static int v2_enable(struct cgroup_env *ce, const char *dir)
{
    if (has_word(dir, "cgroup.subtree_control", "memory")) return 0;
    char leaf[PATH_MAX];
    snprintf(leaf, sizeof leaf, "%s/janebot-main", dir);
    if (write_str(dir, "cgroup.subtree_control", "+memory") < 0 && errno == EBUSY) {
        if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) || write_str(leaf, "cgroup.procs", "0") < 0)
            return -1;
        if (write_str(dir, "cgroup.subtree_control", "+memory") < 0) return -1;
    }
    if (write_str(dir, "cgroup.subtree_control", "+pids") == 0) ce->v2_pids = 1;
    if (write_str(dir, "cgroup.subtree_control", "+cpu") == 0) ce->v2_cpu = 1;
    return has_word(dir, "cgroup.subtree_control", "memory") ? 0 : -1;
}

static int detect_v2(struct cgroup_env *ce)
{
    struct statfs sf;
    char own[1024];
    if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC ||
        own_cgroup(NULL, own, sizeof own) < 0)
        return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", strcmp(own, "/") ? own : "");
    /* Already moved into our own leaf by an earlier start of this process: use its parent. */
    size_t dl = strlen(dir);
    if (dl > 13 && !strcmp(dir + dl - 13, "/janebot-main")) dir[dl - 13] = '\0';
    if (!has_word(dir, "cgroup.controllers", "memory")) {
        snprintf(ce->why, sizeof ce->why,
                 "the cgroup %.300s has no memory controller: delegate it (systemd Delegate=yes)",
                 dir);
        return -1;
    }
    if (!dir_writable(dir) || v2_enable(ce, dir) < 0) {
        snprintf(ce->why, sizeof ce->why,
                 "cannot make child cgroups with memory limits in %.300s (%s): run janebot as root "
                 "or under a delegated cgroup (systemd Delegate=yes)",
                 dir, strerror(errno));
        return -1;
    }
    snprintf(ce->mem_base, sizeof ce->mem_base, "%s", dir);
    ce->swap = 1;
    ce->kind = CGROUP_V2;
    return 0;
}

void cgroup_env_detect(struct cgroup_env *ce)
{
    memset(ce, 0, sizeof *ce);
    if (detect_v2(ce) == 0) return;
    char why2[sizeof ce->why];
    snprintf(why2, sizeof why2, "%s", ce->why);
    if (detect_v1(ce) == 0) return;
    ce->kind = CGROUP_NONE;
    if (!ce->why[0])
        snprintf(ce->why, sizeof ce->why, "%s",
                 why2[0] ? why2 : "no cgroup hierarchy with a memory controller is mounted");
}

const char *cgroup_env_describe(const struct cgroup_env *ce, char *out, size_t n)
{
    int v2 = ce->kind == CGROUP_V2;
    if (ce->kind == CGROUP_NONE)
        snprintf(out, n, "no memory limit per sandbox: %s", ce->why);
    else
        snprintf(out, n, "memory cgroup per sandbox (cgroup %s, %s%s%s) under %s", v2 ? "v2" : "v1",
                 ce->swap ? "no swap" : "swap not limited",
                 (v2 ? ce->v2_pids : ce->pids_base[0] != 0) ? ", pids" : "",
                 (v2 ? ce->v2_cpu : ce->cpu_base[0] != 0) ? ", one CPU share" : "", ce->mem_base);
    return out;
}

static int make_one(const char *base, const char *name, char *out, size_t n, struct jb_err *err)
{
    if (snprintf(out, n, "%s/%s", base, name) >= (int)n || mkdir(out, 0755) < 0) {
        out[0] = '\0';
        return jb_err_sys(err, "cannot create the sandbox's cgroup in %s", base);
    }
    return 0;
}

static int set_num(const char *dir, const char *file, long long v, struct jb_err *err)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    if (write_str(dir, file, num) < 0)
        return jb_err_sys(err, "cannot set %s/%s to %s", dir, file, num);
    return 0;
}

/* The file the child writes "0" to, joining the cgroup before it execs. v1: "tasks",
 * which moves the calling thread only: the child is a fresh fork with a single thread, so
 * this is the whole process, and the kernel then skips the global threadgroup lock whose
 * RCU grace period made "cgroup.procs" cost 10-16 ms per exec. v2 has no such file for
 * domain cgroups. */
static int open_procs(struct cgroup_run *cr, const char *dir, struct jb_err *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, cr->kind == CGROUP_V1 ? "tasks" : "cgroup.procs");
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return jb_err_sys(err, "cannot open %s", path);
    cr->procs_fd[cr->nprocs++] = fd;
    return 0;
}

static int configure(const struct cgroup_env *ce, struct cgroup_run *cr, long long mem,
                     long long pids, struct jb_err *err)
{
    if (ce->kind == CGROUP_V2)
        return set_num(cr->mem, "memory.max", mem, err) < 0 ||
                       set_num(cr->mem, "memory.swap.max", 0, err) < 0 ||
                       (ce->v2_pids && set_num(cr->mem, "pids.max", pids, err) < 0) ||
                       (ce->v2_cpu && set_num(cr->mem, "cpu.weight", 100, err) < 0)
                   ? -1
                   : 0;
    if (set_num(cr->mem, "memory.limit_in_bytes", mem, err) < 0 ||
        (ce->swap && set_num(cr->mem, "memory.memsw.limit_in_bytes", mem, err) < 0) ||
        (cr->pids[0] && set_num(cr->pids, "pids.max", pids, err) < 0) ||
        (cr->cpu[0] && set_num(cr->cpu, "cpu.shares", 1024, err) < 0))
        return -1;
    return 0;
}

int cgroup_run_create(const struct cgroup_env *ce, unsigned seq, long long mem_bytes,
                      long long max_pids, struct cgroup_run *cr, struct jb_err *err)
{
    memset(cr, 0, sizeof *cr);
    cr->procs_fd[0] = cr->procs_fd[1] = cr->procs_fd[2] = -1;
    if (ce->kind == CGROUP_NONE) return 0;
    char name[64];
    snprintf(name, sizeof name, "janebot-%d-%u", (int)getpid(), seq);
    cr->kind = ce->kind;
    if (make_one(ce->mem_base, name, cr->mem, sizeof cr->mem, err) < 0 ||
        (ce->kind == CGROUP_V1 && ce->pids_base[0] &&
         make_one(ce->pids_base, name, cr->pids, sizeof cr->pids, err) < 0) ||
        (ce->kind == CGROUP_V1 && ce->cpu_base[0] &&
         make_one(ce->cpu_base, name, cr->cpu, sizeof cr->cpu, err) < 0) ||
        configure(ce, cr, mem_bytes, max_pids, err) < 0 || open_procs(cr, cr->mem, err) < 0 ||
        (cr->pids[0] && open_procs(cr, cr->pids, err) < 0) ||
        (cr->cpu[0] && open_procs(cr, cr->cpu, err) < 0)) {
        cgroup_run_destroy(cr);
        return jb_err_prefix(err, "the sandbox's memory limit");
    }
    return 0;
}

int cgroup_run_oom_killed(const struct cgroup_run *cr)
{
    if (!cr->mem[0]) return 0;
    return cr->kind == CGROUP_V2 ? read_key(cr->mem, "memory.events", "oom_kill") > 0
                                 : read_key(cr->mem, "memory.oom_control", "oom_kill") > 0;
}

/* SIGKILL what is still in dir; 1 when it was empty. */
static int kill_members(const char *dir)
{
    char path[PATH_MAX + 32], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    if (jb_read_file(path, 1 << 20, &text, &len, NULL) < 0) return 1;
    int empty = 1;
    for (char *save = NULL, *w = strtok_r(text, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
        long pid = strtol(w, NULL, 10);
        if (pid > 0) kill((pid_t)pid, SIGKILL), empty = 0;
    }
    free(text);
    return empty;
}

/* The sandbox's processes are gone or dying (its pid namespace ended): wait briefly for
 * the kernel to finish them, then remove the directory. The waits start at 0.1 ms (the
 * last exit is usually a moment away) and grow to 5 ms, about 2 s in all. */
static void remove_dir(char *dir)
{
    if (!dir[0]) return;
    long wait_ns = 100 * 1000;
    for (int i = 0; i < 420; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT) break;
        if (errno != EBUSY) {
            log_warn("cannot remove the cgroup %s: %s", dir, strerror(errno));
            break;
        }
        kill_members(dir);
        nanosleep(&(struct timespec){0, wait_ns}, NULL);
        if (wait_ns < 5 * 1000 * 1000) wait_ns *= 2;
    }
    dir[0] = '\0';
}

void cgroup_run_destroy(struct cgroup_run *cr)
{
    for (size_t i = 0; i < cr->nprocs; i++)
        if (cr->procs_fd[i] >= 0) close(cr->procs_fd[i]), cr->procs_fd[i] = -1;
    cr->nprocs = 0;
    remove_dir(cr->mem);
    remove_dir(cr->pids);
    remove_dir(cr->cpu);
}

static void sweep_base(const char *base)
{
    DIR *d = base[0] ? opendir(base) : NULL;
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = 0;
        if (strncmp(de->d_name, "janebot-", 8) != 0 ||
            (pid = strtol(de->d_name + 8, NULL, 10)) <= 0 || pid == (long)getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", base, de->d_name);
        remove_dir(dir);
    }
    closedir(d);
}

void cgroup_sweep(const struct cgroup_env *ce)
{
    sweep_base(ce->mem_base);
    sweep_base(ce->pids_base);
    sweep_base(ce->cpu_base);
}

/* sandbox/seccomp.c -- the syscall filters of the local sandbox, built with libseccomp
 * and exported as BPF into memfds.
 *
 * Two filters, stacked (filters only ever add restrictions):
 *   base  -- loaded by bwrap before the sandbox's first process runs; applies to
 *            janebot's init and to the agent. Default allow, deny what an agent never
 *            needs and an escape would: namespaces, mounts, tracing, kernel interfaces,
 *            terminal injection, socket families other than Unix/IPv4/IPv6, IP
 *            sockets other than TCP and UDP.
 *   agent -- applied by the in-sandbox init after it handed its listeners to the
 *            host proxies, just before the agent is executed: no new AF_UNIX sockets,
 *            so the agent cannot reach the host's proxy sockets, only those listeners.
 * Non-native architectures (i386 via int 0x80, x32) kill the process. */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "sandbox/backend.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Denied with EPERM: what the anchors' checklist says an escape uses. */
static const char *const deny_eperm[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "syslog",
    "acct",
    "quotactl",
    "uselib",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "modify_ldt",
    "vhangup",
    "nfsservctl",
    "move_pages",
    "migrate_pages",
    "mbind",
    "set_mempolicy",
};

/* Denied with ENOSYS, so userspace falls back (glibc's clone3 -> clone). */
static const char *const deny_enosys[] = {
    "clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
};

static int add_names(scmp_filter_ctx ctx, const char *const *names, size_t n, uint32_t action,
                     struct jb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR) continue; /* not on this architecture */
        int rc = seccomp_rule_add(ctx, action, nr, 0);
        if (rc < 0)
            return jb_err_set(err, JB_ESYS, "seccomp rule for %s: %s", names[i], strerror(-rc));
    }
    return 0;
}

#define RULE(ctx, act, name, ...)                                                                  \
    do {                                                                                           \
        int rc_ = seccomp_rule_add(ctx, act, SCMP_SYS(name), __VA_ARGS__);                         \
        if (rc_ < 0)                                                                               \
            return jb_err_set(err, JB_ESYS, "seccomp rule for " #name ": %s", strerror(-rc_));     \
    } while (0)

/* IPv4 and IPv6 sockets: TCP and UDP only. Types other than stream and datagram (raw,
 * packet, seqpacket: SCTP) are refused, and so is every protocol but 0 (the type's
 * default), TCP and UDP: no MPTCP, UDP-Lite, SCTP, ICMP or raw protocols. The type's low
 * four bits are its kind (the rest are SOCK_NONBLOCK/SOCK_CLOEXEC); the protocol is an
 * int, and any value with high bits set compares greater than UDP. */
static int add_inet_rules(scmp_filter_ctx ctx, struct jb_err *err)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM), noproto = SCMP_ACT_ERRNO(EPROTONOSUPPORT);
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t f = 0; f < JB_ARRAY_LEN(families); f++) {
        scmp_datum_t af = (scmp_datum_t)families[f];
        for (scmp_datum_t type = 0; type < 16; type++)
            if (type != SOCK_STREAM && type != SOCK_DGRAM)
                RULE(ctx, eperm, socket, 2, SCMP_A0(SCMP_CMP_EQ, af),
                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, type));
        for (scmp_datum_t proto = 1; proto < IPPROTO_UDP; proto++)
            if (proto != IPPROTO_TCP)
                RULE(ctx, noproto, socket, 2, SCMP_A0(SCMP_CMP_EQ, af),
                     SCMP_A2(SCMP_CMP_EQ, proto));
        RULE(ctx, noproto, socket, 2, SCMP_A0(SCMP_CMP_EQ, af), SCMP_A2(SCMP_CMP_GT, IPPROTO_UDP));
    }
    return 0;
}

static int add_arg_rules(scmp_filter_ctx ctx, struct jb_err *err)
{
    static const unsigned long ns_flags[] = {CLONE_NEWNS,     CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER,   CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP, CLONE_NEWTIME};
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM), enoaf = SCMP_ACT_ERRNO(EAFNOSUPPORT);
    /* x86-64 and arm64 both pass clone's flags in the first argument. */
    for (size_t i = 0; i < JB_ARRAY_LEN(ns_flags); i++)
        RULE(ctx, eperm, clone, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    /* Terminal injection; compare the low 32 bits only (CVE-2019-10063). */
    static const unsigned long ioctls[] = {TIOCSTI, TIOCLINUX, TIOCSETD};
    for (size_t i = 0; i < JB_ARRAY_LEN(ioctls); i++)
        RULE(ctx, eperm, ioctl, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, ioctls[i]));
    RULE(ctx, eperm, personality, 1, SCMP_A0(SCMP_CMP_NE, 0));
    /* socket(): Unix, IPv4 and IPv6 only. Values with high bits set exceed AF_INET6 as
     * 64-bit numbers, so they are refused too. */
    RULE(ctx, enoaf, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNSPEC));
    for (int af = AF_INET + 1; af < AF_INET6; af++)
        RULE(ctx, enoaf, socket, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af));
    RULE(ctx, enoaf, socket, 1, SCMP_A0(SCMP_CMP_GT, AF_INET6));
    RULE(ctx, enoaf, socketpair, 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    return add_inet_rules(ctx, err);
}

static int export_fd(scmp_filter_ctx ctx, const char *name, struct jb_err *err)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return jb_err_sys(err, "memfd_create");
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        close(fd);
        return jb_err_set(err, JB_ESYS, "exporting the %s seccomp filter: %s", name, strerror(-rc));
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static scmp_filter_ctx filter_new(struct jb_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return jb_err_set(err, JB_ENOMEM, "seccomp_init"), NULL;
    /* bwrap sets no_new_privs itself; a non-native architecture kills the process. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0) {
        seccomp_release(ctx);
        return jb_err_set(err, JB_ESYS, "seccomp attributes"), NULL;
    }
    return ctx;
}

int seccomp_base_fd(struct jb_err *err)
{
    scmp_filter_ctx ctx = filter_new(err);
    if (!ctx) return -1;
    int fd = -1;
    if (add_names(ctx, deny_eperm, JB_ARRAY_LEN(deny_eperm), SCMP_ACT_ERRNO(EPERM), err) == 0 &&
        add_names(ctx, deny_enosys, JB_ARRAY_LEN(deny_enosys), SCMP_ACT_ERRNO(ENOSYS), err) == 0 &&
        add_arg_rules(ctx, err) == 0)
        fd = export_fd(ctx, "janebot-seccomp-base", err);
    seccomp_release(ctx);
    return fd;
}

int seccomp_agent_fd(struct jb_err *err)
{
    scmp_filter_ctx ctx = filter_new(err);
    if (!ctx) return -1;
    int fd = -1;
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (rc < 0)
        jb_err_set(err, JB_ESYS, "seccomp rule for socket: %s", strerror(-rc));
    else
        fd = export_fd(ctx, "janebot-seccomp-agent", err);
    seccomp_release(ctx);
    return fd;
}

/* The bytes of the filter export_fd() wrote to fd (which it closes). */
static int prog_read(int fd, struct seccomp_prog *p, struct jb_err *err)
{
    if (fd < 0) return -1;
    off_t len = lseek(fd, 0, SEEK_END);
    p->bpf = len > 0 ? malloc((size_t)len) : NULL;
    if (!p->bpf || pread(fd, p->bpf, (size_t)len, 0) != len) {
        close(fd);
        seccomp_prog_release(p);
        return jb_err_set(err, JB_ESYS, "reading the compiled seccomp filter");
    }
    p->len = (size_t)len;
    close(fd);
    return 0;
}

int seccomp_progs_build(struct seccomp_prog *base, struct seccomp_prog *agent, struct jb_err *err)
{
    memset(base, 0, sizeof *base);
    memset(agent, 0, sizeof *agent);
    if (prog_read(seccomp_base_fd(err), base, err) < 0) return -1;
    if (prog_read(seccomp_agent_fd(err), agent, err) < 0) {
        seccomp_prog_release(base);
        return -1;
    }
    return 0;
}

void seccomp_prog_release(struct seccomp_prog *p)
{
    free(p->bpf);
    p->bpf = NULL, p->len = 0;
}

/* proxy/handoff.c -- a sandbox hands its proxy listeners to the host.
 *
 * The sandbox's first process binds 127.0.0.1:PORT on the sandbox's own loopback, listens,
 * and sends that listening socket over the host proxy's Unix socket (SCM_RIGHTS, behind one
 * marker byte, PX_HANDOFF_BYTE). The host checks it and accepts on it from then on
 * (pool.c), so a client in the sandbox talks to the host proxy straight: no relay process
 * copies its bytes, and no extra hop adds latency. The sandbox keeps no copy: its first
 * process closes the listener before the agent runs, and the host's accepted sockets are
 * the host's own (the sandbox never holds them, so it cannot change their flags).
 *
 * Both sides are here, and nothing else: the sandbox side links into the small static
 * sandbox init, so it uses libc only. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/proxy-int.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* ---- the sandbox's side --------------------------------------------------------------- */

static int send_listener(int ufd, int listen_fd)
{
    char marker = PX_HANDOFF_BYTE;
    struct iovec iov = {.iov_base = &marker, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &listen_fd, sizeof(int));
    return sendmsg(ufd, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The host's answer: "ok\n", or a line saying why it refused. */
static int read_answer(int ufd, const char *unix_path, struct jb_err *err)
{
    char ans[256];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof ans - 1 && (n = read(ufd, ans + len, sizeof ans - 1 - len)) > 0)
        len += (size_t)n;
    ans[len] = '\0';
    if (!strcmp(ans, "ok\n")) return 0;
    if (len == 0)
        return jb_err_sys(err, "the proxy behind %s did not answer the hand-over", unix_path);
    ans[strcspn(ans, "\n")] = '\0';
    return jb_err_set(err, JB_EDENIED, "the proxy behind %s refused the listener: %s", unix_path,
                      ans);
}

int proxy_hand_over(int listen_fd, const char *unix_path, struct jb_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(unix_path) >= sizeof addr.sun_path)
        return jb_err_set(err, JB_ECONFIG, "socket path %s is too long", unix_path);
    memcpy(addr.sun_path, unix_path, strlen(unix_path) + 1);
    int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ufd < 0) return jb_err_sys(err, "socket");
    /* Blocking calls, bounded: a proxy that never answers fails the sandbox's start. */
    struct timeval tv = {.tv_sec = PX_HANDOFF_TIMEOUT_MS / 1000};
    setsockopt(ufd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(ufd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    if (connect(ufd, (const struct sockaddr *)&addr, sizeof addr) < 0)
        rc = jb_err_sys(err, "connect %s", unix_path);
    else if (send_listener(ufd, listen_fd) < 0)
        rc = jb_err_sys(err, "hand the listener to %s", unix_path);
    else
        rc = read_answer(ufd, unix_path, err);
    close(ufd);
    return rc;
}

/* ---- the host's side ------------------------------------------------------------------ */

int px_handoff_waiting(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, PX_HANDOFF_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    char b;
    return r == 1 && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && b == PX_HANDOFF_BYTE;
}

/* The one descriptor that came with the marker, or -1 (n bytes of why say what came). */
static int recv_listener(int fd, char *why, size_t n)
{
    char marker;
    struct iovec iov = {.iov_base = &marker, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    if (recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
        return snprintf(why, n, "the hand-over could not be read"), -1;
    int lfd = -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&lfd, CMSG_DATA(cm), sizeof lfd);
    /* More descriptors than room: the kernel closed those that did not fit. */
    if (msg.msg_flags & MSG_CTRUNC) {
        if (lfd >= 0) close(lfd);
        return snprintf(why, n, "more than one descriptor came"), -1;
    }
    if (lfd < 0) snprintf(why, n, "no descriptor came with the marker");
    return lfd;
}

static int sockopt(int fd, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, name, &v, &len) == 0 ? v : -1;
}

/* 1 when fd's socket lives in the host's own network namespace (the one this process
 * runs in): a sandbox's loopback is never that. Kernels before 5.14 cannot tell: 0. */
static int in_host_netns(int fd)
{
    uint64_t theirs = 0, ours = 0;
    socklen_t len = sizeof theirs;
    if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &theirs, &len) < 0) return 0;
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    len = sizeof ours;
    int got = probe >= 0 && getsockopt(probe, SOL_SOCKET, SO_NETNS_COOKIE, &ours, &len) == 0;
    if (probe >= 0) close(probe);
    return !got || theirs == ours; /* no probe: treat it as the host's, and refuse */
}

/* NULL when lfd is what a sandbox must hand over: a TCP socket listening on 127.0.0.1 in
 * a network namespace of its own; else why not. */
static const char *listener_wrong(int lfd)
{
    struct stat st;
    if (fstat(lfd, &st) < 0 || !S_ISSOCK(st.st_mode)) return "not a socket";
    if (sockopt(lfd, SO_DOMAIN) != AF_INET || sockopt(lfd, SO_TYPE) != SOCK_STREAM ||
        sockopt(lfd, SO_PROTOCOL) != IPPROTO_TCP)
        return "not a TCP/IPv4 socket";
    if (sockopt(lfd, SO_ACCEPTCONN) != 1) return "not listening";
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &len) < 0 || len != sizeof sa ||
        sa.sin_family != AF_INET || sa.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return "not bound to 127.0.0.1";
    if (in_host_netns(lfd)) return "a socket of the host's network, not the sandbox's";
    return NULL;
}

int px_handoff_take(int fd, char *why, size_t n)
{
    int lfd = recv_listener(fd, why, n);
    if (lfd < 0) return -1;
    const char *wrong = listener_wrong(lfd);
    if (!wrong) return lfd;
    snprintf(why, n, "%s", wrong);
    close(lfd);
    return -1;
}

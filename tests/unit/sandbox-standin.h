/* tests/unit/sandbox-standin.h -- a sandbox's side of the proxy hand-over, for the proxy
 * tests: a child in network (and user) namespaces of its own listens on its 127.0.0.1,
 * hands the listener to the proxy (proxy_hand_over()), and then dials it on the test's
 * behalf, passing each connected socket back over a socketpair. */
#ifndef JB_TEST_SANDBOX_STANDIN_H
#define JB_TEST_SANDBOX_STANDIN_H

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy.h"

static inline void sbx_send_fd(int sp, int fd)
{
    char b = 'f';
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl = {0};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS, cm->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    if (sendmsg(sp, &m, 0) != 1) _exit(3);
}

/* The socket the stand-in passed back, or -1. */
static inline int sbx_recv_fd(int sp)
{
    char b;
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    if (recvmsg(sp, &m, MSG_CMSG_CLOEXEC) != 1 || !CMSG_FIRSTHDR(&m)) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    return fd;
}

/* The child's own listener on its 127.0.0.1 (lo brought up first), or -1. */
static inline int sbx_listen(int *port)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {.ifr_name = "lo", .ifr_flags = IFF_UP | IFF_RUNNING};
    if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return -1;
    close(s);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* The child: commands from the test, one byte each. 'h': hand a new listener over to the
 * proxy behind the Unix socket sock, answer with the result line; 'd': dial the listener
 * handed over, pass the socket back. */
static inline _Noreturn void sbx_main(int sp, const char *sock)
{
    int port = 0, first = -1;
    char line[1024];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
        snprintf(line, sizeof line, "skip: no namespaces here: %s", strerror(errno));
        if (write(sp, line, strlen(line)) < 0) _exit(2);
        _exit(0);
    }
    for (char cmd; read(sp, &cmd, 1) == 1;) {
        if (cmd == 'h') {
            int p, lfd = sbx_listen(&p);
            struct jb_err err = {0};
            int rc = lfd < 0 ? -1 : proxy_hand_over(lfd, sock, &err);
            snprintf(line, sizeof line, "%d %s", rc, lfd < 0 ? strerror(errno) : err.msg);
            if (rc == 0 && first < 0) first = port = p;
            if (lfd >= 0) close(lfd); /* the proxy has its own */
            if (write(sp, line, strlen(line)) < 0) _exit(2);
        } else if (cmd == 'd') {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in a = {.sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) _exit(4);
            sbx_send_fd(sp, fd);
            close(fd);
        }
    }
    _exit(0);
}

#endif

/* tests/unit/test_http_dns.c -- the HTTP client's name lookup is bounded like every other
 * wait: against a DNS server that never answers, a request ends at its connect timeout
 * (JB_ETIMEOUT) or when cancelled() says so (JB_ECANCEL), not when the resolver gives up.
 * Each case runs in a child with user, mount and network namespaces of its own, where
 * /etc/resolv.conf names a server on its 127.0.0.1:53 that reads queries and drops them. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

#define SILENT_NAME "jb-silent.example.com"

/* The child's world: loopback up, a DNS server that never answers, resolv.conf naming it
 * with a resolver timeout far past the test's. 0, or -1 with why. */
static int silent_dns(char *why, size_t n)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0)
        return snprintf(why, n, "no namespaces here: %s", strerror(errno)), -1;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {.ifr_name = "lo", .ifr_flags = IFF_UP | IFF_RUNNING};
    if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return snprintf(why, n, "loopback: %s", strerror(errno)), -1;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) /* kept open: queries queue, unread */
        return snprintf(why, n, "bind :53: %s", strerror(errno)), -1;
    char conf[] = "/tmp/jb-resolv.XXXXXX";
    int fd = mkstemp(conf);
    static const char text[] = "nameserver 127.0.0.1\noptions timeout:30 attempts:2\n";
    if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
        return snprintf(why, n, "resolv.conf: %s", strerror(errno)), -1;
    close(fd);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
        return snprintf(why, n, "bind resolv.conf: %s", strerror(errno)), -1;
    unlink(conf);
    return 0;
}

static int calls;

static int cancel_after_three(void *ud)
{
    (void)ud;
    return ++calls > 3;
}

/* In the child: one request to SILENT_NAME; exit code: 0 the error was want_code with
 * want_text in it, 1 it was not, 77 no namespaces. */
static _Noreturn void child(int out, enum jb_code want_code, const char *want_text, int cancel)
{
    char why[1024] = "";
    if (silent_dns(why, sizeof why) < 0) {
        if (write(out, why, strlen(why)) < 0) _exit(2);
        _exit(77);
    }
    struct jb_err err = {0};
    struct jb_http *h = jb_http_new(1, &err);
    struct jb_http_req rq = {.url = "http://" SILENT_NAME "/x",
                             .connect_timeout_ms = 400,
                             .cancelled = cancel ? cancel_after_three : NULL};
    struct jb_http_resp rs;
    int rc = h ? jb_http_request(h, &rq, &rs, &err) : -1;
    snprintf(why, sizeof why, "rc %d, code %d: %s", rc, (int)err.code, err.msg);
    if (write(out, why, strlen(why)) < 0) _exit(2);
    jb_http_free(h);
    _exit(rc == -1 && err.code == want_code && strstr(err.msg, want_text) && !rs.sent ? 0 : 1);
}

static void run(enum jb_code want_code, const char *want_text, int cancel)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        alarm(10); /* the resolver alone would wait 2 x 30 s: a hang fails, not blocks */
        child(p[1], want_code, want_text, cancel);
    }
    close(p[1]);
    char msg[1024] = "";
    ssize_t n = read(p[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the child died (signal %d; SIGALRM: the lookup hung): %s",
              WIFSIGNALED(st) ? WTERMSIG(st) : 0, msg);
    if (WEXITSTATUS(st) == 77) cr_skip_test("%s", msg);
    cr_assert_eq(WEXITSTATUS(st), 0, "%s", msg);
}

Test(http_dns, a_silent_dns_server_ends_the_request_at_its_connect_timeout)
{
    run(JB_ETIMEOUT, "to connect", 0);
}

Test(http_dns, a_lookup_is_given_up_when_cancelled)
{
    run(JB_ECANCEL, "cancelled", 1);
}

/* tests/unit/test_pool.c -- the proxies' connection threads (proxy/pool.c): the caps refuse
 * the connection past them, a group close wakes a connection blocked on either of its
 * descriptors and joins it, finished threads are reaped, and the accept loop answers a
 * refused connection. The proxies' own behaviour over these is in test_proxy.c and
 * test_llm_public.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/proxy-int.h"
#include "time-limit.h"

/* What the connections of one test share with it. */
struct probe {
    atomic_int started, ended;
    atomic_int read_ret; /* what the blocked read() returned, when it returned */
    int fd2;             /* for serve_block_fd2: the socket to register and block on */
};

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0, "%s", strerror(errno));
}

/* Blocks in read() on the connection's own fd until its peer writes or it is shut down. */
static void serve_block(struct px_conn *c, int fd, void *ud)
{
    (void)c;
    struct probe *p = ud;
    atomic_fetch_add(&p->started, 1);
    char b;
    atomic_store(&p->read_ret, (int)read(fd, &b, 1));
    atomic_fetch_add(&p->ended, 1);
}

/* Registers p->fd2 as its second socket and blocks reading that one. */
static void serve_block_fd2(struct px_conn *c, int fd, void *ud)
{
    (void)fd;
    struct probe *p = ud;
    char b;
    int registered = px_conn_set_fd2(c, p->fd2) == 0;
    atomic_fetch_add(&p->started, 1);
    atomic_store(&p->read_ret, registered ? (int)read(p->fd2, &b, 1) : -2);
    atomic_fetch_add(&p->ended, 1);
}

static void serve_quick(struct px_conn *c, int fd, void *ud)
{
    (void)c, (void)fd;
    atomic_fetch_add(&((struct probe *)ud)->ended, 1);
}

static void wait_started(struct probe *p, int n)
{
    for (int i = 0; i < 500 && atomic_load(&p->started) < n; i++)
        poll(NULL, 0, 10);
    cr_assert_eq(atomic_load(&p->started), n, "connections did not start");
}

static int live(struct px_group *g)
{
    pthread_mutex_lock(&g->pool->mu);
    int n = g->nlive;
    pthread_mutex_unlock(&g->pool->mu);
    return n;
}

static int has_dead(struct px_group *g)
{
    pthread_mutex_lock(&g->pool->mu);
    int n = g->dead != NULL;
    pthread_mutex_unlock(&g->pool->mu);
    return n;
}

Test(pool, group_cap_refuses_the_next_start)
{
    time_limit(20);
    struct px_pool pool;
    struct px_group g;
    struct probe p = {0};
    struct jb_err err = {0};
    int sv[3][2];
    px_pool_init(&pool, 0);
    cr_assert_eq(px_group_init(&g, &pool, 2, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++)
        pair(sv[i]);
    cr_assert_eq(px_start(&g, sv[0][0], serve_block, &p), PX_STARTED);
    cr_assert_eq(px_start(&g, sv[1][0], serve_block, &p), PX_STARTED);
    cr_expect_eq(px_start(&g, sv[2][0], serve_block, &p), PX_GROUP_FULL);
    wait_started(&p, 2); /* the refused one never ran */
    cr_expect_eq(live(&g), 2);
    px_group_close(&g);
    cr_expect_eq(atomic_load(&p.ended), 2);
    cr_expect_eq(px_start(&g, sv[2][0], serve_block, &p), PX_CLOSING);
    px_pool_destroy(&pool);
    for (int i = 0; i < 3; i++)
        close(sv[i][1]);
    close(sv[2][0]); /* the refused fd stayed ours */
}

Test(pool, pool_cap_counts_every_group)
{
    time_limit(20);
    struct px_pool pool;
    struct px_group a, b;
    struct probe p = {0};
    struct jb_err err = {0};
    int sv[4][2];
    px_pool_init(&pool, 3);
    cr_assert_eq(px_group_init(&a, &pool, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(px_group_init(&b, &pool, 2, &err), 0, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        pair(sv[i]);
    cr_assert_eq(px_start(&a, sv[0][0], serve_block, &p), PX_STARTED);
    cr_assert_eq(px_start(&a, sv[1][0], serve_block, &p), PX_STARTED);
    cr_assert_eq(px_start(&b, sv[2][0], serve_block, &p), PX_STARTED);
    cr_expect_eq(px_start(&b, sv[3][0], serve_block, &p), PX_POOL_FULL); /* b has room */
    wait_started(&p, 3);
    px_group_close(&a); /* its two leave the pool's count: b may start one more */
    cr_expect_eq(px_start(&b, sv[3][0], serve_block, &p), PX_STARTED);
    wait_started(&p, 4);
    px_group_close(&b);
    cr_expect_eq(atomic_load(&p.ended), 4);
    px_pool_destroy(&pool);
    for (int i = 0; i < 4; i++)
        close(sv[i][1]);
}

Test(pool, close_wakes_a_read_on_the_connection_fd_and_joins_it)
{
    time_limit(20);
    struct px_pool pool;
    struct px_group g;
    struct probe p = {.read_ret = 99};
    struct jb_err err = {0};
    int sv[2];
    px_pool_init(&pool, 0);
    cr_assert_eq(px_group_init(&g, &pool, 4, &err), 0, "%s", err.msg);
    pair(sv);
    cr_assert_eq(px_start(&g, sv[0], serve_block, &p), PX_STARTED);
    wait_started(&p, 1);
    poll(NULL, 0, 50); /* let it sit in read() */
    cr_assert_eq(atomic_load(&p.ended), 0, "read() returned with the peer silent");
    px_group_close(&g); /* hangs (and the test times out) unless the shutdown wakes it */
    cr_expect_eq(atomic_load(&p.ended), 1);
    cr_expect_eq(atomic_load(&p.read_ret), 0, "the read saw EOF from the shutdown");
    cr_expect_eq(live(&g), 0);
    cr_expect_not(has_dead(&g), "the thread was joined and freed");
    char b;
    cr_expect_eq(read(sv[1], &b, 1), 0, "the pool closed the connection's fd");
    px_pool_destroy(&pool);
    close(sv[1]);
}

Test(pool, close_wakes_a_read_on_the_second_fd)
{
    time_limit(20);
    struct px_pool pool;
    struct px_group g;
    struct probe p = {.read_ret = 99};
    struct jb_err err = {0};
    int client[2], upstream[2];
    px_pool_init(&pool, 0);
    cr_assert_eq(px_group_init(&g, &pool, 4, &err), 0, "%s", err.msg);
    pair(client);
    pair(upstream);
    p.fd2 = upstream[0];
    cr_assert_eq(px_start(&g, client[0], serve_block_fd2, &p), PX_STARTED);
    wait_started(&p, 1);
    poll(NULL, 0, 50);
    cr_assert_eq(atomic_load(&p.ended), 0);
    px_group_close(&g);
    cr_expect_eq(atomic_load(&p.ended), 1);
    cr_expect_eq(atomic_load(&p.read_ret), 0);
    char b;
    cr_expect_eq(read(upstream[1], &b, 1), 0, "the pool closed the second fd too");
    px_pool_destroy(&pool);
    close(client[1]);
    close(upstream[1]);
}

Test(pool, finished_threads_are_reaped)
{
    time_limit(20);
    struct px_pool pool;
    struct px_group g;
    struct probe p = {0};
    struct jb_err err = {0};
    int sv[2];
    px_pool_init(&pool, 0);
    cr_assert_eq(px_group_init(&g, &pool, 1, &err), 0, "%s", err.msg);
    for (int round = 0; round < 3; round++) { /* the cap is 1: each round needs the last gone */
        pair(sv);
        cr_assert_eq(px_start(&g, sv[0], serve_quick, &p), PX_STARTED, "round %d", round);
        for (int i = 0; i < 500 && live(&g) > 0; i++)
            poll(NULL, 0, 10);
        cr_assert_eq(live(&g), 0, "the connection did not finish");
        cr_expect(has_dead(&g), "a finished thread waits to be joined");
        px_reap(&g);
        cr_expect_not(has_dead(&g), "px_reap() joined and freed it");
        close(sv[1]);
    }
    cr_expect_eq(atomic_load(&p.ended), 3);
    px_group_close(&g);
    px_pool_destroy(&pool);
}

/* ---- the accept loop ---- */

static void refuse_503(int fd, enum px_refusal why, void *ud)
{
    (void)ud;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "503 refused %d\n", (int)why);
    cr_assert_eq(write(fd, msg, (size_t)n), n);
}

static int dial(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    return fd;
}

Test(pool, accept_loop_refuses_past_the_cap_and_reaps)
{
    time_limit(20);
    char path[] = "/tmp/jb-pool-XXXXXX";
    cr_assert(mkdtemp(path));
    char sock[64];
    snprintf(sock, sizeof sock, "%s/s", path);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 8) == 0);
    struct px_pool pool;
    struct px_group g;
    struct probe p = {0};
    struct jb_err err = {0};
    px_pool_init(&pool, 0);
    cr_assert_eq(px_group_init(&g, &pool, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(px_group_listen(&g, lfd, 0, "test", serve_block, refuse_503, &p, &err), 0, "%s",
                 err.msg);
    int first = dial(sock);
    wait_started(&p, 1);
    int second = dial(sock);
    char buf[64] = {0};
    cr_assert_gt(read(second, buf, sizeof buf - 1), 0);
    cr_expect_str_eq(buf, "503 refused 1\n"); /* PX_GROUP_FULL */
    cr_expect_eq(read(second, buf, 1), 0, "the refused connection was closed");
    cr_assert_eq(write(first, "x", 1), 1); /* the first one ends */
    for (int i = 0; i < 500 && (live(&g) > 0 || has_dead(&g)); i++)
        poll(NULL, 0, 10);
    cr_expect_not(has_dead(&g), "the accept thread joined the finished thread on its wake");
    int third = dial(sock); /* room again */
    wait_started(&p, 2);
    px_group_close(&g);
    cr_expect_eq(atomic_load(&p.ended), 2);
    px_pool_destroy(&pool);
    close(first), close(second), close(third), close(lfd);
    unlink(sock);
    rmdir(path);
}

/* tests/unit/test_sandbox_input.c -- a command's live stdin: order, the cap, close, end. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

static struct sandbox_input *in;
static struct jb_err err;

static void setup(void)
{
    cr_assert_eq(sandbox_input_new(&in, &err), 0);
}
static void teardown(void)
{
    sandbox_input_free(in);
}
TestSuite(sandbox_input, .init = setup, .fini = teardown);

Test(sandbox_input, bytes_reach_the_fd_in_order_then_stdin_closes)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    uint64_t end1 = 0, end2 = 0;
    cr_assert_eq(sandbox_input_write(in, "one\n", 4, &end1, &err), 0);
    cr_assert_eq(sandbox_input_write(in, "two\n", 4, &end2, &err), 0);
    cr_assert_eq(end1, 4);
    cr_assert_eq(end2, 8);
    cr_assert(sandbox_input_busy(in));
    cr_assert_eq(sandbox_input_to_fd(in, p[1]), 0, "not closed: stdin stays open");
    cr_assert_eq(sandbox_input_delivered(in), 8);
    cr_assert_not(sandbox_input_busy(in));
    char buf[16] = {0};
    cr_assert_eq(read(p[0], buf, sizeof buf), 8);
    cr_assert_str_eq(buf, "one\ntwo\n");
    sandbox_input_close(in);
    cr_assert(sandbox_input_busy(in), "closing is work for the backend");
    cr_assert_eq(sandbox_input_to_fd(in, p[1]), 1, "closed and all delivered");
    cr_assert_eq(sandbox_input_write(in, "x\n", 2, NULL, &err), -1, "no write after close");
    cr_assert_eq(err.code, JB_EUNAVAIL);
    close(p[0]);
    close(p[1]);
}

Test(sandbox_input, take_counts_what_it_moves_and_end_refuses_writes)
{
    cr_assert_eq(sandbox_input_write(in, "abcdef", 6, NULL, &err), 0);
    char buf[4];
    int finished = 1;
    cr_assert_eq(sandbox_input_take(in, buf, sizeof buf, &finished), 4);
    cr_assert_not(finished);
    cr_assert_eq(memcmp(buf, "abcd", 4), 0);
    cr_assert_eq(sandbox_input_delivered(in), 4);
    sandbox_input_end(in);
    cr_assert_eq(sandbox_input_write(in, "z", 1, NULL, &err), -1);
    cr_assert_eq(sandbox_input_delivered(in), 4, "the last 2 bytes never reached it");
}

Test(sandbox_input, a_command_that_does_not_read_cannot_grow_the_buffer_without_end)
{
    static char chunk[64 << 10];
    memset(chunk, 'a', sizeof chunk);
    size_t total = 0;
    while (sandbox_input_write(in, chunk, sizeof chunk, NULL, &err) == 0)
        total += sizeof chunk;
    cr_assert_leq(total, SANDBOX_INPUT_MAX);
    cr_assert_eq(err.code, JB_EUNAVAIL);
}

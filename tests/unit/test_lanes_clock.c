/* Lanes against a wall clock that jumps: a debounced lane's turn starts debounce_ms
 * after its message, whatever CLOCK_REALTIME does meanwhile. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "time-limit.h"

/* This binary's clock_gettime(): CLOCK_REALTIME reads realtime_skew_s seconds ahead of the
 * kernel's when set. A timed wait computed from it then ends that much later than asked,
 * as when the wall clock is stepped back by that much during the wait. Only the test
 * below sets it; every other clock passes through. */
static atomic_long realtime_skew_s;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, clk, ts);
    if (rc == 0 && clk == CLOCK_REALTIME) ts->tv_sec += atomic_load(&realtime_skew_s);
    return rc;
}

struct runs {
    atomic_int n;
    atomic_llong at_ms; /* jb_mono_ms() of the first run */
};

static void on_run(void *ud, int worker, const struct lane_msg *msgs, size_t n)
{
    struct runs *r = ud;
    (void)worker, (void)msgs;
    long long zero = 0;
    atomic_compare_exchange_strong(&r->at_ms, &zero, (long long)jb_mono_ms());
    atomic_fetch_add(&r->n, (int)n);
}

Test(lanes_clock, a_wall_clock_step_neither_stalls_nor_hurries_a_debounced_lane)
{
    time_limit(30);
    struct runs r = {0};
    struct lanes *l = NULL;
    struct lanes_opts o = {.workers = 2, .merge = 1, .debounce_ms = 300};
    cr_assert_eq(lanes_new(&o, on_run, &r, &l, NULL), 0);
    atomic_store(&realtime_skew_s, 3600);
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(lanes_enqueue(l, 1, "C1:1", "U1", "hello", NULL, NULL, NULL), 0);
    while (atomic_load(&r.n) == 0 && jb_mono_ms() - t0 < 5000)
        usleep(10 * 1000);
    cr_assert_eq(atomic_load(&r.n), 1,
                 "the debounced turn must start about 300 ms after its message, not an hour "
                 "later (a timed wait on CLOCK_REALTIME)");
    long long waited = atomic_load(&r.at_ms) - t0;
    cr_assert_geq(waited, 250, "the debounce still holds the turn back (%lld ms)", waited);
    atomic_store(&realtime_skew_s, 0);
    lanes_free(l);
}

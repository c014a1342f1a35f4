/* tests/unit/time-limit.h -- a test's time limit, set in the test's own process.
 *
 * Not criterion's .timeout: that hands each limit to a detached thread of the runner,
 * which frees it only when it next wakes. When a timed test is the last to finish, the
 * run ends before that thread runs, and LeakSanitizer reports 48 bytes of the runner's
 * (about every other ASan run once the suite grew). alarm() does the same job: past the
 * limit, SIGALRM ends the test, which is reported as crashed. Children a test forks do not
 * inherit it. */
#ifndef JB_TEST_TIME_LIMIT_H
#define JB_TEST_TIME_LIMIT_H

#include <unistd.h>

static inline void time_limit(unsigned seconds)
{
    alarm(seconds);
}

#endif

/* util/thread.c -- small pthread helpers shared by every module that waits with a timeout. */
#include <time.h>

#include "util/util.h"

void jb_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* tests/unit/conformance.h -- where the shared conformance fixtures are, for the unit
 * tests that read real Slack payloads. */
#ifndef JB_TEST_CONFORMANCE_H
#define JB_TEST_CONFORMANCE_H

#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

/* $JANEBOT_CONFORMANCE_DIR, else ../shared/conformance from the repo root (the tests'
 * cwd). Skips the calling test when it is absent (a fresh clone has no ../shared). */
static inline void conformance_dir(char out[PATH_MAX])
{
    const char *d = getenv("JANEBOT_CONFORMANCE_DIR");
    if (!d || !*d) d = "../shared/conformance";
    struct stat st;
    if (!realpath(d, out) || stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
        cr_skip_test("conformance fixtures not found at %s (set JANEBOT_CONFORMANCE_DIR)", d);
}

#endif

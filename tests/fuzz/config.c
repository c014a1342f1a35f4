/* tests/fuzz/config.c -- the YAML config file (JANEBOT_CONFIG): policy_read_file() on a
 * file holding the input, then policy_finish() and the `janebot config check` print, as
 * policy_load() does. */
#include "core/core.h"
#include "core/policy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_file("config.yaml", data, size);
    struct policy *p = policy_new_default();
    if (!p) abort();
    struct jb_err err = {0};
    if (policy_read_file(p, path, &err) == 0 && policy_finish(p, &err) == 0) {
        /* what config_load() always fills */
        struct jb_config cfg = {.state_dir = "/tmp/state",
                                .agent = "claude",
                                .sandbox = size & 1 ? "sprites" : "local",
                                .sprites_setup = ""};
        FILE *null = fopen("/dev/null", "w");
        if (!null) abort();
        policy_print(p, &cfg, null);
        fclose(null);
    } else {
        FUZZ_ASSERT(err.msg[0]);
    }
    policy_unref(p);
    return 0;
}

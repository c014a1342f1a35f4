/* tests/fuzz/dotenv.c -- `.env` files: config_dotenv_read() on a file holding the input,
 * then what config_get() answers for the names it read; JANEBOT_PRICES-style values
 * through prices_parse() as config_load() parses that variable. */
#include "core/core.h"
#include "core/policy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_file("dotenv", data, size);
    struct jb_err err = {0};
    if (config_dotenv_read(path, &err) == 0) {
        const char *v = config_get("JANEBOT_PRICES");
        struct prices ps = {0};
        if (v && prices_parse(v, &ps, &err) == 0) prices_release(&ps);
    } else {
        FUZZ_ASSERT(err.code == JB_ECONFIG || err.code == JB_ENOMEM);
    }
    struct jb_config cfg = {0};
    config_release(&cfg); /* frees what the .env gave */
    return 0;
}

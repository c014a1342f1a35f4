/* tests/fuzz/sprites.c -- what the Sprites API sends back. Mode 0: WebSocket exec messages
 * through sprites_rx_fragment() as sprites_ws_exec() feeds them; input: fragments, each
 * [bit 0 binary, bit 1 final][length] then that many bytes; an input starting with a byte
 * below 4 is read so. Otherwise it is a REST answer's body (its last byte picks the
 * status) through what the client reads of it: sprites_retry_after_ms(),
 * sprites_is_not_found(), sprites_describe(), sprites_ndjson_result() (checkpoint/restore
 * streams) and sprites_parse_time() of the list entries' times. */
#include "fuzz.h"
#include "sandbox/sprites-int.h"

static void on_stdout(void *ud, const char *p, size_t n)
{
    size_t *total = ud;
    FUZZ_ASSERT(n > 0 && p != NULL);
    *total += n;
}

static void exec_messages(const uint8_t *data, size_t size)
{
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    size_t out = 0, in = size;
    x.on_stdout = on_stdout;
    x.ud = &out;
    struct sprites_rx rx = {.x = &x, .text = JB_BUF_INIT(65536)};
    int done = 0;
    while (size && !done) {
        unsigned flags = fuzz_byte(&data, &size);
        size_t n = fuzz_byte(&data, &size);
        if (n > size) n = size;
        done = sprites_rx_fragment(&rx, flags & 1, (flags & 2) >> 1, (const char *)data, n);
        data += n, size -= n;
    }
    FUZZ_ASSERT(out <= in);
    FUZZ_ASSERT(x.exit_code >= 0 && x.exit_code <= 255);
    FUZZ_ASSERT(strlen(x.stderr_tail) < sizeof x.stderr_tail);
    sprites_rx_release(&rx);
}

static void times_of(const json_t *j, int depth)
{
    const char *k;
    json_t *v;
    size_t i;
    if (depth > 8) return;
    if (json_is_string(j)) {
        int64_t t = sprites_parse_time(json_string_value(j));
        FUZZ_ASSERT(t >= 0);
    }
    json_object_foreach((json_t *)j, k, v) times_of(v, depth + 1);
    json_array_foreach(j, i, v) times_of(v, depth + 1);
}

static void rest_answer(long status, const uint8_t *data, size_t size)
{
    char *body = fuzz_strndup(data, size);
    long ra = sprites_retry_after_ms(body);
    FUZZ_ASSERT(ra >= 0 && ra < 86400L * 1000);
    sprites_is_not_found(status, body);
    struct sprites_resp r = {.status = status, .body = {.data = body, .len = size}};
    char why[512];
    sprites_describe(&r, why, sizeof why);
    FUZZ_ASSERT(strlen(why) < sizeof why && !strchr(why, '\n'));
    char ndjson[256];
    int rc = sprites_ndjson_result(body, ndjson, sizeof ndjson);
    FUZZ_ASSERT(rc >= -1 && rc <= 1 && ndjson[0]);
    json_t *j = json_loadb(body, size, 0, NULL);
    times_of(j, 0);
    json_decref(j);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 201, 204, 400, 404, 409, 429, 500, 502, 503};
    fuzz_quiet();
    if (size && data[0] < 4)
        exec_messages(data, size);
    else
        rest_answer(statuses[fuzz_last(data, size) % 10], data, size);
    return 0;
}

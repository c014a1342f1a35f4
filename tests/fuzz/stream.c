/* tests/fuzz/stream.c -- agent stream-json output (Claude Code's and Amp's
 * --output-format stream-json): agent_stream_feed() in pieces of varying size, as the pipe
 * hands them over, into agent_result_on_event() as a turn records it.
 * Input: the agent's output; its last byte sets the piece size and the line cap. */
#include "agent/agent.h"
#include "fuzz.h"

static void on_event(void *ud, const struct agent_event *ev)
{
    FUZZ_ASSERT(ev->type >= AGENT_EV_INIT && ev->type <= AGENT_EV_RESULT);
    if (ev->text) FUZZ_ASSERT(strlen(ev->text) < (16u << 20)); /* a C string */
    agent_result_on_event(ud, ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    unsigned param = fuzz_last(data, size);
    size_t piece = 1 + (param >> 1) * 8;
    size_t max_line = param & 1 ? 64 : 0; /* 64: the cap is reached */
    struct agent_result res = AGENT_RESULT_INIT;
    struct agent_stream *st = agent_stream_new(max_line, on_event, &res);
    if (!st) abort();
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        agent_stream_feed(st, (const char *)data + off, n);
        off += n;
    }
    agent_stream_finish(st);
    const struct agent_stream_stats *s = agent_stream_stats(st);
    FUZZ_ASSERT(s->not_json + s->unknown + s->too_long <= s->lines + 1);
    const char *answer = agent_result_answer(&res);
    if (answer) FUZZ_ASSERT(strlen(answer) <= size);
    agent_resume_missing(&res);
    agent_stream_free(st);
    agent_result_release(&res);
    return 0;
}

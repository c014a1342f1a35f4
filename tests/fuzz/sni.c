/* tests/fuzz/sni.c -- the TLS ClientHello a client sends through a CONNECT tunnel:
 * px_sni_parse() called as the egress proxy calls it (hello_ok() in conn.c), on a growing
 * prefix of the bytes until it has what it said it needs, and once on all of them: both
 * must agree, and a name found is a C string of at most 255 bytes without NUL. */
#include "fuzz.h"
#include "proxy/proxy-int.h"

static unsigned char ab[PX_HELLO_MAX + 16384], scratch[PX_HELLO_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    size_t first = 1 + fuzz_byte(&data, &size) * 8;
    if (size > sizeof ab) size = sizeof ab;
    memcpy(ab, data, size);
    char name[256], whole_name[256];
    size_t n = first < size ? first : size, need = 0;
    enum px_sni s;
    while ((s = px_sni_parse(ab, n, scratch, &need, name)) == PX_SNI_MORE) {
        FUZZ_ASSERT(need > n && need <= PX_HELLO_MAX);
        if (need > size) break; /* the client left before sending that much */
        n = need;
    }
    if (s == PX_SNI_FOUND) FUZZ_ASSERT(strlen(name) > 0 && strlen(name) <= 255);
    if (s != PX_SNI_MORE) {
        /* read in one go, the bytes that came after the ClientHello change nothing */
        enum px_sni w = px_sni_parse(ab, n, scratch, &need, whole_name);
        FUZZ_ASSERT(w == s);
        if (s == PX_SNI_FOUND) FUZZ_ASSERT(!strcmp(name, whole_name));
    }
    return 0;
}

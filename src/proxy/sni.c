/* proxy/sni.c -- the server name of the TLS ClientHello a client sends first through a
 * CONNECT tunnel, so the proxy opens only tunnels whose TLS names the host that was allowed
 * (no domain fronting through a shared front end). A ClientHello may be fragmented over
 * several records (RFC 8446 5.1): those are reassembled. Whatever a server could read
 * differently from this parser is refused: bytes after the ClientHello in its last record,
 * two server_name extensions, trailing bytes, an encrypted inner ClientHello (ECH).
 * Bounds-checked throughout: the bytes come from the sandbox. */
#include <string.h>

#include "proxy/proxy-int.h"

#define EXT_SERVER_NAME 0x0000
#define EXT_ECH         0xfe0d /* encrypted_client_hello: the real name is inside */
#define EXT_ESNI        0xffce /* its withdrawn predecessor, encrypted_server_name */
#define RECORD_MAX      16384  /* a plaintext record's payload (RFC 8446 5.1) */

struct rd {
    const unsigned char *p;
    size_t n;
};

static const unsigned char *take(struct rd *r, size_t k)
{
    if (k > r->n) return NULL;
    const unsigned char *p = r->p;
    r->p += k, r->n -= k;
    return p;
}

/* A length-prefixed block (prefix of lbytes bytes) as a reader of its own. */
static int block(struct rd *r, int lbytes, struct rd *out)
{
    const unsigned char *l = take(r, (size_t)lbytes);
    if (!l) return -1;
    size_t n = lbytes == 1 ? l[0] : (size_t)l[0] << 8 | l[1];
    if (!(out->p = take(r, n))) return -1;
    out->n = n;
    return 0;
}

/* server_name extension: exactly one host_name entry, as servers require. */
static enum px_sni server_name(struct rd ext, char out[256])
{
    struct rd list, name;
    const unsigned char *type;
    if (block(&ext, 2, &list) < 0 || ext.n != 0) return PX_SNI_BAD;
    if (!(type = take(&list, 1)) || *type != 0 || block(&list, 2, &name) < 0 || list.n != 0)
        return PX_SNI_BAD;
    if (name.n == 0 || name.n > 255 || memchr(name.p, '\0', name.n)) return PX_SNI_BAD;
    memcpy(out, name.p, name.n);
    out[name.n] = '\0';
    return PX_SNI_FOUND;
}

static enum px_sni client_hello(struct rd h, char out[256])
{
    struct rd skip, exts, ext;
    enum px_sni found = PX_SNI_NONE;
    if (!take(&h, 2 + 32)) return PX_SNI_BAD; /* version, random */
    if (block(&h, 1, &skip) < 0 || block(&h, 2, &skip) < 0 || block(&h, 1, &skip) < 0)
        return PX_SNI_BAD; /* session id, cipher suites, compression methods */
    if (h.n == 0) return PX_SNI_NONE;
    if (block(&h, 2, &exts) < 0 || h.n != 0) return PX_SNI_BAD;
    while (exts.n > 0) {
        const unsigned char *t = take(&exts, 2);
        if (!t || block(&exts, 2, &ext) < 0) return PX_SNI_BAD;
        unsigned type = (unsigned)t[0] << 8 | t[1];
        if (type == EXT_ECH || type == EXT_ESNI) return PX_SNI_ECH;
        if (type != EXT_SERVER_NAME) continue;
        if (found != PX_SNI_NONE) return PX_SNI_BAD; /* servers differ on which one counts */
        if ((found = server_name(ext, out)) == PX_SNI_BAD) return PX_SNI_BAD;
    }
    return found;
}

enum px_sni px_sni_parse(const unsigned char *p, size_t n, unsigned char hs[PX_HELLO_MAX],
                         size_t *need, char out[256])
{
    size_t off = 0, got = 0; /* record bytes consumed; handshake bytes gathered in hs */
    if ((n > 0 && p[0] != 0x16) || (n > 1 && p[1] != 0x03)) return PX_SNI_NOT_TLS;
    for (;;) {
        if (n < off + 5) return *need = off + 5, PX_SNI_MORE;
        const unsigned char *r = p + off;
        size_t rl = (size_t)r[3] << 8 | r[4];
        /* Handshake records only, never empty ones, until the ClientHello is whole. */
        if (r[0] != 0x16 || r[1] != 0x03 || rl == 0 || rl > RECORD_MAX) return PX_SNI_BAD;
        if (off + 5 + rl > PX_HELLO_MAX) return PX_SNI_BAD;
        if (n < off + 5 + rl) return *need = off + 5 + rl, PX_SNI_MORE;
        memcpy(hs + got, r + 5, rl);
        got += rl, off += 5 + rl;
        if (got < 4) continue;
        if (hs[0] != 1) return PX_SNI_BAD; /* the first handshake message is a ClientHello */
        size_t ml = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
        if (4 + ml > PX_HELLO_MAX) return PX_SNI_BAD;
        if (got < 4 + ml) continue;
        if (got > 4 + ml) return PX_SNI_BAD; /* another message rides in the same record */
        return client_hello((struct rd){hs + 4, ml}, out);
    }
}

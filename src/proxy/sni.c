/* proxy/sni.c -- the server name of a TLS ClientHello, read from the first record a client
 * sends through a CONNECT tunnel, so the proxy can close tunnels whose TLS names another
 * host than the one allowed (domain fronting through a shared front end). Bounds-checked
 * throughout: the bytes come from the sandbox. */
#include <string.h>

#include "proxy/proxy-int.h"

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
    if (!take(&h, 2 + 32)) return PX_SNI_BAD; /* version, random */
    if (block(&h, 1, &skip) < 0 || block(&h, 2, &skip) < 0 || block(&h, 1, &skip) < 0)
        return PX_SNI_BAD; /* session id, cipher suites, compression methods */
    if (h.n == 0) return PX_SNI_NONE;
    if (block(&h, 2, &exts) < 0) return PX_SNI_BAD;
    while (exts.n > 0) {
        const unsigned char *t = take(&exts, 2);
        if (!t || block(&exts, 2, &ext) < 0) return PX_SNI_BAD;
        if (t[0] == 0 && t[1] == 0) return server_name(ext, out);
    }
    return PX_SNI_NONE;
}

enum px_sni px_sni_parse(const unsigned char *p, size_t n, size_t *need, char out[256])
{
    *need = 5;
    if (n == 0) return PX_SNI_MORE;
    if (p[0] != 0x16) return PX_SNI_NOT_TLS; /* not a handshake record */
    if (n < 5) return PX_SNI_MORE;
    if (p[1] != 0x03) return PX_SNI_NOT_TLS; /* no TLS server accepts this either */
    size_t rl = (size_t)p[3] << 8 | p[4];
    if (rl < 4 || rl > 16384 + 2048) return PX_SNI_BAD;
    if (n < 5 + rl) return *need = 5 + rl, PX_SNI_MORE;
    const unsigned char *h = p + 5;
    if (h[0] != 1) return PX_SNI_BAD; /* the first handshake message is a ClientHello */
    size_t ml = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (ml > rl - 4) return PX_SNI_BAD; /* split over records: the name could hide later */
    return client_hello((struct rd){h + 4, ml}, out);
}

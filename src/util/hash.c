/* util/hash.c -- sha256 (OpenSSL libcrypto), random bytes and UUIDs. */
#include <errno.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include "util.h"

void jb_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

int jb_random_bytes(void *out, size_t n, struct jb_err *err)
{
    unsigned char *p = out;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return jb_err_sys(err, "getrandom");
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int jb_uuid_v4(char out[37], struct jb_err *err)
{
    unsigned char b[16];
    if (jb_random_bytes(b, sizeof b, err) < 0) return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* util/lwslog.c -- what the Slack socket and the Sprites exec client share about
 * libwebsockets: its own log lines go through janebot's logger (and so its redaction):
 * errors as warnings, the rest at debug (lws keeps one log setting for the whole
 * process); and the system CAs its TLS client trusts. */
#include <dirent.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>

#include "util/util.h"

static void lws_log_emit(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (level & LLL_ERR)
        log_warn("websocket: %s", msg);
    else
        log_debug("websocket: %s", msg);
}

static pthread_once_t lws_log_once = PTHREAD_ONCE_INIT;

static void lws_log_setup(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
}

void jb_lws_log_init(void)
{
    pthread_once(&lws_log_once, lws_log_setup);
}

/* Whether dir holds hashed certificate links (<8 hex digits>.<n>), the form OpenSSL looks
 * a CA up in by its subject. */
static int has_hashed_certs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    const struct dirent *de;
    while (!found && (de = readdir(d))) {
        size_t hex = strspn(de->d_name, "0123456789abcdef");
        found = hex == 8 && de->d_name[8] == '.' && de->d_name[9] >= '0' && de->d_name[9] <= '9';
    }
    closedir(d);
    return found;
}

/* The system's trusted CAs for wss:// and https://, read when a handshake needs one. lws's default
 * (LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS unset) is SSL_CTX_set_default_verify_paths(),
 * which parses the whole bundle file, some 140 certificates, at start-up and keeps them:
 * measured in bench/serve-memory.py, 1.0 MiB of heap and 0.4 MiB of libcrypto's code
 * resident for the life of serve. The hashed directory next to the bundle (made by
 * update-ca-certificates or openssl rehash from the same certificates) is looked up by
 * subject instead, one or two files per handshake. Where the directory has no hashed
 * links, or SSL_CERT_FILE names a bundle, the default is loaded as before. */
void jb_tls_trust_system_cas(void *ssl_ctx)
{
    SSL_CTX *ctx = ssl_ctx;
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir) dir = X509_get_default_cert_dir();
    if (!getenv(X509_get_default_cert_file_env()) && has_hashed_certs(dir) &&
        X509_STORE_load_path(SSL_CTX_get_cert_store(ctx), dir) == 1)
        return;
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        log_warn("TLS: the system's CA certificates could not be loaded; https:// and wss:// "
                 "connections will fail their certificate check");
}

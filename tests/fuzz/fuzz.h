/* tests/fuzz/fuzz.h -- what the libFuzzer targets share: quiet logging, and reading the
 * fuzzer's bytes as a few small parameters followed by the payload. */
#ifndef JB_FUZZ_H
#define JB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Logging off (only errors, to /dev/null): the parsers log what they refuse, and writing
 * that out would be most of the time spent. */
static inline void fuzz_quiet(void)
{
    static int done;
    if (done) return;
    done = 1;
    FILE *null = fopen("/dev/null", "w");
    jb_log_init(JB_LOG_ERROR, null ? null : stderr);
}

/* The next byte of the input as a parameter (0 once it is used up). */
static inline unsigned fuzz_byte(const uint8_t **data, size_t *size)
{
    if (!*size) return 0;
    unsigned b = **data;
    (*data)++, (*size)--;
    return b;
}

/* The last byte of the input as a parameter, left in the payload: seeds that are plain
 * payloads (the tests', the conformance files) stay meaningful. */
static inline unsigned fuzz_last(const uint8_t *data, size_t size)
{
    return size ? data[size - 1] : 0;
}

/* For targets whose entry point reads a file: a path of this process's own, in /dev/shm
 * (memory: a rewritten file on a disk file system may be flushed each time) or else /tmp,
 * removed at exit. */
static char fuzz_file_path[96];
static inline void fuzz_file_remove(void)
{
    unlink(fuzz_file_path);
}
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    if (!fuzz_file_path[0]) {
        struct stat st;
        const char *dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fuzz_file_path, sizeof fuzz_file_path, "%s/janebot-fuzz-%s.%d", dir, name,
                 (int)getpid());
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_file_path, "we");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return fuzz_file_path;
}

/* A NUL-terminated copy of data[0, size); the caller frees. Aborts when out of memory. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Stop the run with a message when a stated property of the product does not hold. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: property broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif

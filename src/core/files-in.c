/* core/files-in.c -- files people shared in a thread: fetched through the frontend into
 * the sandbox's ~/inbox/ before the agent runs, and named at the end of its prompt. A file
 * that cannot be placed is said in the thread, never silently dropped. */
#include <jansson.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/core-int.h"

#define TURN_FILES_MAX 10

static void file_notice(struct core *c, const char *thread_key, const char *name, const char *why)
{
    char note[1024];
    snprintf(note, sizeof note, "I could not put `%s` into the sandbox's ~/inbox/: %s.", name, why);
    jb_autofree char *clean = jb_redact(note); /* an error may quote what a peer said */
    log_warn("thread %s: %s", thread_key, clean ? clean : "a shared file was not placed");
    c->fe->ops->notice(c->fe, thread_key, clean ? clean : note, NULL);
}

/* Fetch one file ({"name","url",…}) into a memfd and put it at ~/inbox/<safe name>; on
 * success its name joins taken and "NAME (SIZE)" the list. */
static void file_in(struct core *c, const char *thread_key, struct sandbox *sb, const json_t *f,
                    struct jb_strv *taken, struct jb_buf *list)
{
    struct frontend *fe = c->fe;
    const char *name = json_string_value(json_object_get(f, "name"));
    const char *url = json_string_value(json_object_get(f, "url"));
    char safe[SANDBOX_FILE_NAME_MAX + 1], rel[SANDBOX_FILE_NAME_MAX + 8], size[32];
    sandbox_safe_name(name, taken, safe);
    struct jb_err e = {0};
    struct stat st;
    jb_autoclose int fd = memfd_create("inbox", MFD_CLOEXEC);
    snprintf(rel, sizeof rel, "inbox/%s", safe);
    if (!url)
        jb_err_set(&e, JB_EPROTO, "the message gave no address for it");
    else if (!fe->ops->fetch)
        jb_err_set(&e, JB_EUNAVAIL, "the %s frontend cannot fetch files", fe->ops->name);
    else if (fd < 0)
        jb_err_sys(&e, "memfd_create");
    if (e.msg[0] || fe->ops->fetch(fe, url, fd, FRONTEND_FILE_MAX, &e) < 0 ||
        sandbox_put(sb, rel, fd, &e) < 0 || fstat(fd, &st) < 0) {
        file_notice(c, thread_key, name ? name : safe, e.msg[0] ? e.msg : "unknown error");
        return;
    }
    jb_strv_push(taken, safe, NULL);
    if (st.st_size < 1024)
        snprintf(size, sizeof size, "%lld bytes", (long long)st.st_size);
    else
        jb_fmt_size((long long)st.st_size, size, sizeof size);
    jb_buf_appendf(list, NULL, "%s%s (%s)", list->len ? ", " : "", safe, size);
}

char *core_files_in(struct core *c, const char *thread_key, const struct lane_msg *msgs,
                    size_t nmsgs, struct sandbox *sb)
{
    struct jb_buf list = JB_BUF_INIT(64u << 10);
    struct jb_strv taken = JB_STRV_INIT;
    size_t count = 0;
    for (size_t i = 0; i < nmsgs; i++) {
        if (!msgs[i].files) continue;
        jb_auto(json_decrefp) json_t *arr = json_loads(msgs[i].files, 0, NULL);
        size_t k;
        json_t *f;
        json_array_foreach(arr, k, f)
        {
            const char *name = json_string_value(json_object_get(f, "name"));
            if (count++ < TURN_FILES_MAX)
                file_in(c, thread_key, sb, f, &taken, &list);
            else
                file_notice(c, thread_key, name ? name : "a file",
                            "only the first 10 files of a turn are placed");
        }
    }
    jb_strv_free(&taken);
    char *line = NULL;
    if (list.len &&
        asprintf(&line, "[Files shared in this thread are in ~/inbox/: %s]", list.data) < 0)
        line = NULL;
    jb_buf_release(&list);
    return line;
}

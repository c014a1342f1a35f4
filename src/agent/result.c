/* agent/result.c -- what a turn keeps of the stream: session id, answer, usage. */
#include <string.h>

#include "agent/agent.h"

/* Replace *dst with a copy of s (NULL clears it). Out of memory leaves NULL. */
static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

static void add_text(struct agent_result *r, const char *text)
{
    if (!text || !*text) return;
    size_t n = strlen(text), len = r->texts.len;
    if (len && jb_buf_append(&r->texts, "\n\n", 2, NULL) < 0) return;
    if (jb_buf_append(&r->texts, text, n, NULL) < 0) { /* over the cap: drop the block */
        r->texts.len = len;
        r->texts.data[len] = '\0';
    }
}

static void on_result(struct agent_result *r, const struct agent_event *ev)
{
    r->has_result = 1;
    r->is_error = ev->is_error;
    if (r->result_text && *r->result_text && ev->text && *ev->text) {
        /* A CLI reading live input may run a second turn for a message it queued before
         * its first result: the answer is both. */
        char *both = NULL;
        if (asprintf(&both, "%s\n\n%s", r->result_text, ev->text) > 0) {
            free(r->result_text);
            r->result_text = both;
        }
    } else {
        set_str(&r->result_text, ev->text);
    }
    set_str(&r->subtype, ev->subtype);
    set_str(&r->errors, ev->errors);
    r->input_tokens = ev->input_tokens;
    r->output_tokens = ev->output_tokens;
}

void agent_result_on_event(void *ud, const struct agent_event *ev)
{
    struct agent_result *r = ud;
    switch (ev->type) {
    case AGENT_EV_INIT:
        break;
    case AGENT_EV_TEXT:
        add_text(r, ev->text);
        break;
    case AGENT_EV_TOOL_USE:
        r->tool_uses++;
        set_str(&r->last_tool, ev->tool_name);
        break;
    case AGENT_EV_TOOL_RESULT:
    case AGENT_EV_RETRY:
    case AGENT_EV_PERMISSION:
    case AGENT_EV_PERMISSION_CANCEL:
        break;
    case AGENT_EV_RESULT:
        on_result(r, ev);
        break;
    }
    if (!ev->session_id) return;
    if (ev->type == AGENT_EV_INIT || ev->type == AGENT_EV_RESULT || !r->session_id)
        set_str(&r->session_id, ev->session_id);
}

const char *agent_result_answer(const struct agent_result *r)
{
    if (r->result_text && *r->result_text) return r->result_text;
    return r->texts.len ? r->texts.data : NULL;
}

int agent_resume_missing(const struct agent_result *r)
{
    static const char needle[] = "No conversation found";
    if (!r->has_result || !r->is_error) return 0;
    return (r->errors && strstr(r->errors, needle)) ||
           (r->result_text && strstr(r->result_text, needle));
}

void agent_result_release(struct agent_result *r)
{
    free(r->session_id);
    free(r->result_text);
    free(r->last_tool);
    free(r->subtype);
    free(r->errors);
    jb_buf_release(&r->texts);
    *r = (struct agent_result)AGENT_RESULT_INIT;
}

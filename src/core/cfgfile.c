/* core/cfgfile.c -- the config file (JANEBOT_CONFIG, YAML) into a policy snapshot, and
 * `janebot config check`'s printout with secrets masked.
 *
 * libyaml (Debian's libyaml-dev): small, kept, the reference YAML 1.1 parser; its
 * document API gives every node its line, so each error names file, line and key.
 *
 *   rate_limit_per_minute: 10          # RATE_LIMIT_PER_MINUTE wins
 *   max_turns_per_user: 2              # JANEBOT_MAX_TURNS_PER_USER wins
 *   allowed_users: [U1, U2]            # ALLOWED_USER_IDS wins
 *   allowed_channels: [C1]             # ALLOWED_CHANNEL_IDS wins
 *   mcp_servers:                       # MCP_SERVERS wins; name -> definition
 *     github: {command: github-mcp, args: [stdio], env: {GITHUB_TOKEN: ghp_…}}
 *   prices:                            # JANEBOT_PRICES wins; USD per million tokens
 *     claude-sonnet-4*: {input: 3, output: 15, cache_write: 3.75, cache_read: 0.3}
 *     gpt-5: "1.25:10"                 # IN:OUT[:CACHE_WRITE:CACHE_READ]
 *   channels:
 *     default: {mcp_servers: [], tools: full}
 *     C0123456789: {mcp_servers: [github], tools: no-shell}
 *     C0987654321: {tools: [Read, Grep]}
 *     C0AAAAAAAAA: {approve: [Bash, edit, "mcp:github"], approvers: [U1], approve_timeout: 5m}
 *     C0BBBBBBBBB: {egress: [pkgs.example.com], egress_approval: true}
 * Unknown keys, duplicate keys and bad values are errors. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <yaml.h>

#include "core/core.h"
#include "core/policy.h"

struct fctx {
    const char *path;
    yaml_document_t *doc;
    struct policy *p;
    struct jb_err *err;
};

static int ferr(struct fctx *f, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ferr(struct fctx *f, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return jb_err_set(f->err, JB_ECONFIG, "%s:%zu: %s: %s", f->path,
                      n ? (size_t)n->start_mark.line + 1 : 1, key, what);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(struct fctx *f, int id)
{
    return yaml_document_get_node(f->doc, id);
}

static int read_count(struct fctx *f, const yaml_node_t *n, const char *key, int hi, int *out)
{
    const char *v = scalar(n);
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : -1;
    if (!v || !isdigit((unsigned char)v[0]) || errno || *end || x > hi)
        return ferr(f, n, key, "\"%s\" is not valid: expected a non-negative integer (0 to %d)",
                    v ? v : "(not a scalar)", hi);
    *out = (int)x;
    return 0;
}

/* A list of plain names (ids, servers, tools): letters, digits, _ - . * : allowed. */
static int read_names(struct fctx *f, const yaml_node_t *n, const char *key, struct jb_strv *out)
{
    if (n->type != YAML_SEQUENCE_NODE) return ferr(f, n, key, "expected a list like [a, b]");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        const yaml_node_t *e = node(f, *it);
        const char *v = scalar(e);
        if (!v || !*v ||
            strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789_-.*:") != strlen(v))
            return ferr(f, e, key, "\"%s\" is not valid: expected a name (letters, digits, _ - .)",
                        v ? v : "(not a scalar)");
        if (jb_strv_push(out, v, f->err) < 0) return -1;
    }
    return 0;
}

/* YAML -> JSON for server definitions: plain true/false/null/integers keep their type. */
static json_t *to_json(struct fctx *f, const yaml_node_t *n, int depth)
{
    if (!n || depth > 16) return NULL;
    if (n->type == YAML_SCALAR_NODE) {
        const char *v = scalar(n);
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(v);
        if (!strcmp(v, "true")) return json_true();
        if (!strcmp(v, "false")) return json_false();
        if (!strcmp(v, "null") || !strcmp(v, "~") || !*v) return json_null();
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!errno && !*end && (isdigit((unsigned char)v[0]) || v[0] == '-'))
            return json_integer(x);
        return json_string(v);
    }
    json_t *out = n->type == YAML_SEQUENCE_NODE ? json_array() : json_object();
    if (n->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             out && it < n->data.sequence.items.top; it++)
            if (json_array_append_new(out, to_json(f, node(f, *it), depth + 1)) < 0)
                return json_decref(out), NULL;
    if (n->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
             out && pr < n->data.mapping.pairs.top; pr++) {
            const char *k = scalar(node(f, pr->key));
            if (!k || json_object_set_new(out, k, to_json(f, node(f, pr->value), depth + 1)) < 0)
                return json_decref(out), NULL;
        }
    return out;
}

static int read_servers(struct fctx *f, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return ferr(f, n, "mcp_servers", "expected a mapping of server name -> definition");
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        const char *name = scalar(node(f, pr->key));
        const yaml_node_t *def = node(f, pr->value);
        if (!name || !*name || def->type != YAML_MAPPING_NODE)
            return ferr(f, def, "mcp_servers",
                        "\"%s\": expected a mapping (command, args, env "
                        "or url, headers)",
                        name ? name : "?");
        json_t *j = to_json(f, def, 0);
        if (!j)
            return ferr(f, def, "mcp_servers", "\"%s\": cannot convert (nested too deep)", name);
        json_object_set_new(f->p->mcp_servers, name, j);
    }
    f->p->mcp_from = "the config file";
    return 0;
}

static int read_tools(struct fctx *f, const yaml_node_t *n, const char *key,
                      struct policy_channel *ch)
{
    const char *v = scalar(n);
    if (v && !strcmp(v, "full")) return ch->agent.tools = AGENT_TOOLS_FULL, 0;
    if (v && !strcmp(v, "no-shell")) return ch->agent.tools = AGENT_TOOLS_NO_SHELL, 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        ch->agent.tools = AGENT_TOOLS_ALLOW;
        return read_names(f, n, key, &ch->allow);
    }
    return ferr(f, n, key, "\"%s\" is not valid: expected full, no-shell or a list of tool names",
                v ? v : "(not a scalar)");
}

/* approve: tool classes; approvers: user ids; approve_timeout: a duration. */
static int read_approve(struct fctx *f, const char *k, const yaml_node_t *v, const char *sub,
                        struct policy_channel *ch)
{
    if (!strcmp(k, "approve_timeout")) {
        const char *d = scalar(v);
        if (!d || approve_parse_duration(d, &ch->approve_timeout_s) < 0)
            return ferr(f, v, sub,
                        "\"%s\" is not valid: expected a duration like 90s, 10m or 1h "
                        "(at most 24h)",
                        d ? d : "(not a scalar)");
        return 0;
    }
    if (!strcmp(k, "approvers")) {
        jb_strv_free(&ch->approvers);
        if (read_names(f, v, sub, &ch->approvers) < 0) return -1;
        for (size_t i = 0; i < ch->approvers.n; i++)
            if (strspn(ch->approvers.v[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
                    strlen(ch->approvers.v[i]) ||
                !strchr("UW", ch->approvers.v[i][0]))
                return ferr(f, v, sub,
                            "\"%s\" is not valid: expected a Slack user id like U0123ABCD",
                            ch->approvers.v[i]);
        return 0;
    }
    if (strcmp(k, "approve") != 0)
        return ferr(f, v, sub, "unknown key (did you mean approve, approvers or approve_timeout?)");
    jb_strv_free(&ch->approve);
    if (read_names(f, v, sub, &ch->approve) < 0) return -1;
    for (size_t i = 0; i < ch->approve.n; i++) {
        const char *why = approve_class_check(ch->approve.v[i]);
        if (why) return ferr(f, v, sub, "\"%s\" is not valid: %s", ch->approve.v[i], why);
    }
    return 0;
}

static int read_channel(struct fctx *f, const char *id, const yaml_node_t *n,
                        struct policy_channel *ch)
{
    char key[160];
    snprintf(key, sizeof key, "channels.%s", id);
    if (n->type != YAML_MAPPING_NODE)
        return ferr(f, n, key, "expected a mapping with mcp_servers, tools, agent, egress");
    ch->line = (int)n->start_mark.line + 1;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        const yaml_node_t *kn = node(f, pr->key), *v = node(f, pr->value);
        const char *k = scalar(kn);
        char sub[200];
        snprintf(sub, sizeof sub, "%s.%s", key, k ? k : "?");
        if (k && !strcmp(k, "mcp_servers")) {
            jb_strv_free(&ch->mcp);
            if (read_names(f, v, sub, &ch->mcp) < 0) return -1;
        } else if (k && !strcmp(k, "tools")) {
            jb_strv_free(&ch->allow);
            if (read_tools(f, v, sub, ch) < 0) return -1;
        } else if (k && !strcmp(k, "egress")) {
            jb_strv_free(&ch->egress);
            if (read_names(f, v, sub, &ch->egress) < 0) return -1;
        } else if (k && !strcmp(k, "agent")) {
            const char *a = scalar(v);
            if (!a || (strcmp(a, "amp") && strcmp(a, "claude") && strcmp(a, "command")))
                return ferr(f, v, sub, "\"%s\" is not valid: expected amp, claude or command",
                            a ? a : "(not a scalar)");
            free(ch->agent_name);
            if (!(ch->agent_name = strdup(a))) return jb_err_set(f->err, JB_ENOMEM, "policy");
        } else if (k && !strcmp(k, "egress_approval")) {
            const char *b = scalar(v);
            if (!b || (strcmp(b, "true") && strcmp(b, "false")))
                return ferr(f, v, sub, "\"%s\" is not valid: expected true or false",
                            b ? b : "(not a scalar)");
            ch->egress_approval = !strcmp(b, "true");
        } else if (k && !strncmp(k, "approve", 7)) {
            if (read_approve(f, k, v, sub, ch) < 0) return -1;
        } else {
            return ferr(f, kn, sub,
                        "unknown key (a channel takes mcp_servers, tools, agent, egress, "
                        "egress_approval, approve, approvers and approve_timeout)");
        }
    }
    return 0;
}

static int read_channels(struct fctx *f, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return ferr(f, n, "channels", "expected a mapping of channel id (or default) -> settings");
    struct policy *p = f->p;
    size_t max = 1 + (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct policy_channel *v = realloc(p->ch, max * sizeof *v);
    if (!v) return jb_err_set(f->err, JB_ENOMEM, "channels");
    p->ch = v;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        const yaml_node_t *kn = node(f, pr->key);
        const char *id = scalar(kn);
        if (!id || !*id ||
            strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789") != strlen(id))
            return ferr(f, kn, "channels",
                        "\"%s\" is not valid: expected a channel id (like "
                        "C0123ABCD) or default",
                        id ? id : "?");
        struct policy_channel *ch = &p->ch[0];
        if (strcmp(id, "default") != 0) {
            for (size_t i = 1; i < p->nch; i++)
                if (!strcmp(p->ch[i].id, id)) return ferr(f, kn, "channels", "%s twice", id);
            ch = &p->ch[p->nch];
            *ch = (struct policy_channel){.approve_timeout_s = APPROVE_TIMEOUT_DEFAULT_S};
            if (!(ch->id = strdup(id))) return jb_err_set(f->err, JB_ENOMEM, "channels");
            p->nch++;
        }
        if (read_channel(f, id, node(f, pr->value), ch) < 0) return -1;
    }
    return 0;
}

/* One model's prices: "IN:OUT[:CACHE_WRITE:CACHE_READ]", or a mapping of those names. */
static int read_price(struct fctx *f, const char *model, const yaml_node_t *v, struct price *out)
{
    static const char *const names[] = {"input", "output", "cache_write", "cache_read"};
    char nums[160] = "";
    const char *sv = scalar(v);
    if (sv) snprintf(nums, sizeof nums, "%s", sv);
    if (v->type == YAML_MAPPING_NODE) {
        const char *got[4] = {0};
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top;
             pr++) {
            const char *k = scalar(node(f, pr->key));
            size_t i = 0;
            while (k && i < 4 && strcmp(k, names[i]))
                i++;
            if (!k || i == 4 || got[i])
                return ferr(f, node(f, pr->key), "prices",
                            "%s: expected input, output, cache_write, cache_read (once each)",
                            model);
            got[i] = scalar(node(f, pr->value));
        }
        if (!got[0] || !got[1] || !got[2] != !got[3])
            return ferr(f, v, "prices",
                        "%s: input and output are needed (and both cache prices, "
                        "or neither)",
                        model);
        snprintf(nums, sizeof nums, got[2] ? "%s:%s:%s:%s" : "%s:%s", got[0], got[1],
                 got[2] ? got[2] : "", got[3] ? got[3] : "");
    }
    if (price_parse_one(model, strlen(model), nums, strlen(nums), out) < 0)
        return ferr(f, v, "prices",
                    "%s: expected \"IN:OUT\" or \"IN:OUT:CACHE_WRITE:CACHE_READ\" in USD per "
                    "million tokens (a model name may end in '*')",
                    model);
    return 0;
}

static int read_prices(struct fctx *f, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return ferr(f, n, "prices",
                    "expected a mapping of model -> \"IN:OUT:CACHE_WRITE:CACHE_READ\"");
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        const char *model = scalar(node(f, pr->key));
        struct price p;
        if (!model) return ferr(f, node(f, pr->key), "prices", "a model must be a plain name");
        if (read_price(f, model, node(f, pr->value), &p) < 0) return -1;
        if (prices_add(&f->p->prices, &p) < 0) return jb_err_set(f->err, JB_ENOMEM, "prices");
    }
    return 0;
}

static int read_top(struct fctx *f, const char *k, const yaml_node_t *v)
{
    struct policy *p = f->p;
    if (!strcmp(k, "rate_limit_per_minute"))
        return read_count(f, v, k, 1000000, &p->rate_per_minute);
    if (!strcmp(k, "max_turns_per_user")) return read_count(f, v, k, 1000, &p->max_turns_per_user);
    if (!strcmp(k, "allowed_users")) return read_names(f, v, k, &p->allowed_users);
    if (!strcmp(k, "allowed_channels")) return read_names(f, v, k, &p->allowed_channels);
    if (!strcmp(k, "mcp_servers")) return read_servers(f, v);
    if (!strcmp(k, "channels")) return read_channels(f, v);
    if (!strcmp(k, "prices")) return read_prices(f, v);
    return ferr(f, v, k,
                "unknown key (known: rate_limit_per_minute, max_turns_per_user, allowed_users, "
                "allowed_channels, mcp_servers, channels, prices)");
}

static int read_root(struct fctx *f)
{
    const yaml_node_t *root = yaml_document_get_root_node(f->doc);
    if (!root || (root->type == YAML_SCALAR_NODE && !*scalar(root))) return 0; /* empty file */
    if (root->type != YAML_MAPPING_NODE)
        return ferr(f, root, "(top)", "expected a mapping of settings");
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        const yaml_node_t *kn = node(f, pr->key);
        const char *k = scalar(kn);
        if (!k) return ferr(f, kn, "(top)", "a key must be a plain name");
        for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < pr; q++)
            if (!strcmp(scalar(node(f, q->key)), k)) return ferr(f, kn, k, "given twice");
        if (read_top(f, k, node(f, pr->value)) < 0) return -1;
    }
    return 0;
}

int policy_read_file(struct policy *p, const char *path, struct jb_err *err)
{
    jb_autofree char *text = NULL;
    size_t len = 0;
    if (jb_read_file(path, 1 << 20, &text, &len, err) < 0)
        return jb_err_prefix(err, "config file %s (JANEBOT_CONFIG)", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return jb_err_set(err, JB_ENOMEM, "yaml parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        jb_err_set(err, JB_ECONFIG, "%s:%zu: not valid YAML: %s%s%s", path,
                   (size_t)parser.problem_mark.line + 1,
                   parser.problem ? parser.problem : "parse error", parser.context ? " " : "",
                   parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    struct fctx f = {.path = path, .doc = &doc, .p = p, .err = err};
    int rc = read_root(&f);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- `janebot config check` ---- */

static int secret_key(const char *k)
{
    static const char *const words[] = {"token", "key", "secret", "password", "auth", "cookie"};
    jb_autofree char *low = strdup(k);
    for (char *c = low; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (size_t i = 0; low && i < JB_ARRAY_LEN(words); i++)
        if (strstr(low, words[i])) return 1;
    return !low;
}

/* Replace every value under env/headers, and every value whose key looks secret. */
static void mask(json_t *o, int all)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(o)) {
        json_array_foreach(o, i, v)
        {
            if (json_is_string(v) && all) json_array_set_new(o, i, json_string("set (hidden)"));
        }
        return;
    }
    json_object_foreach(o, k, v)
    {
        int hide = all || secret_key(k);
        if (json_is_object(v) || json_is_array(v))
            mask(v, hide || !strcmp(k, "env") || !strcmp(k, "headers"));
        else if (hide && !json_is_null(v))
            json_object_set_new(o, k, json_string("set (hidden)"));
    }
}

static void print_list(FILE *out, const char *name, const struct jb_strv *v, const char *empty)
{
    fprintf(out, "%-24s", name);
    for (size_t i = 0; i < v->n; i++)
        fprintf(out, "%s%s", i ? ", " : "", v->v[i]);
    fprintf(out, "%s\n", v->n ? "" : empty);
}

static void print_secret(FILE *out, const char *name)
{
    const char *v = config_get(name);
    fprintf(out, "%-24s%s\n", name, v && *v ? "set (hidden)" : "not set");
}

void policy_print(const struct policy *p, const struct jb_config *cfg, FILE *out)
{
    fprintf(out, "%-24s%s\n", "config file", p->path ? p->path : "none");
    fprintf(out, "%-24s%s\n%-24s%s\n%-24s%s\n", "state dir", cfg->state_dir, "agent", cfg->agent,
            "sandbox", cfg->sandbox);
    static const char *const secrets[] = {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "AMP_API_KEY",
                                          "ANTHROPIC_API_KEY", "SPRITES_TOKEN"};
    for (size_t i = 0; i < JB_ARRAY_LEN(secrets); i++)
        print_secret(out, secrets[i]);
    if (!strcmp(cfg->sandbox, "sprites"))
        fprintf(out, "%-24s%d\n%-24s%s\n%-24s%s\n", "sprites pool", cfg->sprites_pool,
                "sprites set-up", *cfg->sprites_setup ? cfg->sprites_setup : "none",
                "llm proxy for sprites",
                cfg->public_url ? cfg->public_url : "off: the real key goes into sprites");
    fprintf(out, "%-24s%d%s\n", "rate_limit_per_minute", p->rate_per_minute,
            p->rate_per_minute ? "" : " (off)");
    fprintf(out, "%-24s%d%s\n", "max_turns_per_user", p->max_turns_per_user,
            p->max_turns_per_user ? "" : " (no cap)");
    print_list(out, "allowed_users", &p->allowed_users, "everyone");
    print_list(out, "allowed_channels", &p->allowed_channels, "every channel");
    fprintf(out, "prices (USD per million tokens: in, out, cache write, cache read):%s\n",
            p->prices.n ? "" : " none");
    for (size_t i = 0; i < p->prices.n; i++) {
        const struct price *pr = &p->prices.v[i];
        fprintf(out, "  %s%s: %g / %g / %g / %g\n", pr->model, pr->prefix ? "*" : "", pr->in,
                pr->out, pr->cache_write, pr->cache_read);
    }
    fprintf(out, "mcp_servers (from %s):\n", p->mcp_from);
    const char *name;
    json_t *def;
    json_object_foreach(p->mcp_servers, name, def)
    {
        json_t *copy = json_deep_copy(def);
        mask(copy, 0);
        char *s = copy ? json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fprintf(out, "  %s: %s\n", name, s ? s : "?");
        free(s);
        json_decref(copy);
    }
    fprintf(out, "channels:\n");
    static const char *const profiles[] = {"full", "no-shell", "allow"};
    for (size_t i = 0; i < p->nch; i++) {
        const struct policy_channel *ch = &p->ch[i];
        fprintf(out, "  %s: tools %s", ch->id, profiles[ch->agent.tools]);
        for (size_t j = 0; j < ch->allow.n; j++)
            fprintf(out, "%s%s", j ? ", " : " [", ch->allow.v[j]);
        fprintf(out, "%s; mcp_servers ", ch->allow.n ? "]" : "");
        for (size_t j = 0; j < ch->mcp.n; j++)
            fprintf(out, "%s%s", j ? ", " : "", ch->mcp.v[j]);
        fprintf(out, "%s", ch->mcp.n ? "" : "none");
        for (size_t j = 0; j < ch->approve.n; j++)
            fprintf(out, "%s%s", j ? ", " : "; approve ", ch->approve.v[j]);
        if (ch->approve.n) {
            fprintf(out, " (by the requester");
            for (size_t j = 0; j < ch->approvers.n; j++)
                fprintf(out, ", %s", ch->approvers.v[j]);
            fprintf(out, "; unanswered after %d s = deny)", ch->approve_timeout_s);
        }
        if (ch->egress_approval)
            fprintf(out, "; egress_approval (unanswered after %d s = deny)", ch->approve_timeout_s);
        fprintf(out, "\n");
    }
}

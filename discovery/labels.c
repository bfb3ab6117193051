/*
 * labels.c - check configs from a container's labels, Datadog's v1
 * (check_names / init_configs / instances) and v2 (checks) formats, under
 * `com.datadoghq.ad.` and `moonwatch.ad.`.
 *
 * Each prefix is read into its own list, then the two are merged
 * (moonwatch.ad. wins per check) and sorted by check name. The result
 * owns copies of everything; the parsed label documents are freed here.
 * Label text is untrusted: values are size-capped, names are validated
 * before they go anywhere, and any label text quoted in a message is
 * escaped and truncated.
 */
#include "discovery/labels.h"

#include "core/base/util.h"
#include "discovery/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest piece of label text quoted in a message. */
#define QUOTE_MAX 48

static const char *const prefixes[] = {"com.datadoghq.ad.", "moonwatch.ad."};

/* ------------------------------------------------------------ helpers */

/* Writes `s` (at most `n` bytes of it) quoted and escaped into `out`,
 * which has room for QUOTE_MAX * 4 + 8 bytes. */
static const char *quote_n(char *out, const char *s, size_t n)
{
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == QUOTE_MAX) {
            memcpy(o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += snprintf(o, 5, "\\x%02x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

typedef char quote_buf[QUOTE_MAX * 4 + 8];

static const char *quote(char *out, const char *s)
{
    return quote_n(out, s, (size_t)-1);
}

const char *mw__json_type_name(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "a list";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    return "null";
}

/* Adds "label <key>: <message>". Returns 0, or -1 on OOM. */
static int add_error(mw__label_configs *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_error(mw__label_configs *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mw__vsprintf(fmt, ap);
    va_end(ap);
    char *line = msg ? mw__sprintf("label %s: %s", key, msg) : NULL;
    free(msg);
    char **nv = line ? realloc(c->errors, (c->nerrors + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(line);
        return -1;
    }
    c->errors = nv;
    c->errors[c->nerrors++] = line;
    return 0;
}

static void config_free(mw__label_config *cfg)
{
    free(cfg->check);
    free(cfg->source);
    cJSON_Delete(cfg->init_config);
    cJSON_Delete(cfg->instances);
    memset(cfg, 0, sizeof *cfg);
}

/* Moves `cfg` into `c` (on failure `cfg` is left to the caller). */
static int push_config(mw__label_configs *c, mw__label_config *cfg)
{
    if (mw__grow(&c->v, &c->cap, c->n + 1, sizeof *c->v) != 0)
        return -1;
    c->v[c->n++] = *cfg;
    memset(cfg, 0, sizeof *cfg);
    return 0;
}

/* A new config of `check` from label `source`; its JSON parts are NULL. */
static int config_init(mw__label_config *cfg, const char *check, const char *source)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->check = mw__strdup(check);
    cfg->source = mw__strdup(source);
    return cfg->check && cfg->source ? 0 : -1;
}

static const char *label_value(const cJSON *labels, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/*
 * Parses label `key` (value `s`) as JSON. Returns the document, or NULL:
 * *oom set on allocation failure, else the problem was reported.
 */
static cJSON *parse_label(mw__label_configs *c, const char *key, const char *s, int *oom)
{
    size_t len = strlen(s);
    quote_buf q;
    if (len == 0) {
        *oom = add_error(c, key, "empty value, expected JSON") != 0;
        return NULL;
    }
    if (len > MW_LABEL_JSON_MAX) {
        *oom = add_error(c, key, "value is %zu bytes, over the %d-byte limit", len,
                         MW_LABEL_JSON_MAX) != 0;
        return NULL;
    }
    /* cJSON does not tell bad JSON from a failed allocation: parse once
     * more, so a passing allocation failure is not blamed on the label. */
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(s, &end, 1);
    if (!doc)
        doc = cJSON_ParseWithOpts(s, &end, 1);
    if (doc)
        return doc;
    size_t pos = end && end >= s && end <= s + len ? (size_t)(end - s) : 0;
    if (pos == len) {
        *oom = add_error(c, key, "invalid JSON: unexpected end at byte %zu", len) != 0;
        return NULL;
    }
    *oom = add_error(c, key, "invalid JSON at byte %zu of %zu, near %s", pos, len,
                     quote_n(q, s + pos, 16)) != 0;
    return NULL;
}

/* ------------------------------------------------------------ JSON parts */

enum { PART_OK = 0, PART_BAD = 1, PART_OOM = -1 };

/* init_config: an object, or null for {}; a v1 element may also be a
 * list of exactly one object (Datadog's shape). */
static int take_init(const cJSON *v, int v1, cJSON **out)
{
    if (v1 && cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = v->child;
    if (!v || cJSON_IsNull(v))
        *out = cJSON_CreateObject();
    else if (cJSON_IsObject(v))
        *out = cJSON_Duplicate(v, 1);
    else
        return PART_BAD;
    return *out ? PART_OK : PART_OOM;
}

/* Appends a copy of instance object `v` to `list`. */
static int add_instance(cJSON *list, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);
    if (!d || !cJSON_AddItemToArray(list, d)) {
        cJSON_Delete(d);
        return PART_OOM;
    }
    return PART_OK;
}

/* ------------------------------------------------------------ v1 */

typedef struct v1_labels {
    char names_key[64], inits_key[64], insts_key[64], ignore_key[64];
    cJSON *names, *inits, *insts;
    int ignore;
} v1_labels;

/* strconv.ParseBool's true spellings, as Datadog reads the label. */
static int parse_bool_true(const char *s)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    for (size_t i = 0; s && i < MW_ARRAY_LEN(yes); i++)
        if (strcmp(s, yes[i]) == 0)
            return 1;
    return 0;
}

/* Reads one v1 array label into *out (NULL when absent). PART_BAD after
 * reporting, PART_OOM. */
static int v1_array(mw__label_configs *c, const cJSON *labels, const char *key, cJSON **out)
{
    const char *s = label_value(labels, key);
    int oom = 0;
    *out = NULL;
    if (!s)
        return PART_OK;
    cJSON *doc = parse_label(c, key, s, &oom);
    if (doc && !cJSON_IsArray(doc)) {
        oom = add_error(c, key, "must be a JSON list, found %s", mw__json_type_name(doc)) != 0;
        cJSON_Delete(doc);
        doc = NULL;
    }
    *out = doc;
    return oom ? PART_OOM : doc ? PART_OK : PART_BAD;
}

/* The instances of v1 element `el` (an object or a list of objects) into
 * cfg->instances; PART_BAD after reporting. */
static int v1_instances(mw__label_configs *c, const v1_labels *l, int i, const char *check,
                        const cJSON *el, mw__label_config *cfg)
{
    quote_buf q;
    cfg->instances = cJSON_CreateArray();
    if (!cfg->instances)
        return PART_OOM;
    if (cJSON_IsObject(el))
        return add_instance(cfg->instances, el);
    if (!cJSON_IsArray(el)) {
        return add_error(c, l->insts_key,
                         "[%d] (check %s) must be an object or a list of objects, found %s", i,
                         quote(q, check), mw__json_type_name(el))
                   ? PART_OOM
                   : PART_BAD;
    }
    if (!el->child)
        return add_error(c, l->insts_key, "[%d] (check %s) is an empty list: no instance", i,
                         quote(q, check))
                   ? PART_OOM
                   : PART_BAD;
    int j = 0;
    for (const cJSON *it = el->child; it; it = it->next, j++) {
        if (!cJSON_IsObject(it))
            return add_error(c, l->insts_key, "[%d][%d] (check %s) must be an object, found %s", i,
                             j, quote(q, check), mw__json_type_name(it))
                       ? PART_OOM
                       : PART_BAD;
        if (add_instance(cfg->instances, it) != PART_OK)
            return PART_OOM;
    }
    return PART_OK;
}

/* Check i of a v1 config; a problem skips only this check. */
static int v1_check(mw__label_configs *c, mw__label_configs *list, const v1_labels *l, int i,
                    const cJSON *name, const cJSON *init, const cJSON *inst)
{
    quote_buf q;
    mw__label_config cfg = {0};
    int rc = PART_OK;
    if (!cJSON_IsString(name))
        return add_error(c, l->names_key, "[%d] must be a check name string, found %s", i,
                         mw__json_type_name(name));
    if (!mw__check_name_valid(name->valuestring, strlen(name->valuestring)))
        return add_error(c, l->names_key,
                         "[%d] %s is not a valid check name (letters, digits, '_', '-', '.'; "
                         "no leading '.', no \"..\")",
                         i, quote(q, name->valuestring));
    if (config_init(&cfg, name->valuestring, l->insts_key) != 0) {
        rc = PART_OOM;
        goto out;
    }
    cfg.ignore_ad_tags = l->ignore;
    rc = take_init(init, 1, &cfg.init_config);
    if (rc == PART_BAD &&
        add_error(c, l->inits_key, "[%d] (check %s) must be an object or null, found %s", i,
                  quote(q, cfg.check), mw__json_type_name(init)) != 0)
        rc = PART_OOM;
    if (rc == PART_OK)
        rc = v1_instances(c, l, i, cfg.check, inst, &cfg);
    if (rc == PART_OK && push_config(list, &cfg) != 0)
        rc = PART_OOM;
out:
    config_free(&cfg);
    return rc == PART_OOM ? -1 : 0;
}

/* The three lists must be there and line up; reports why not. */
static int v1_lists_ok(mw__label_configs *c, const v1_labels *l, int n, int *oom)
{
    const cJSON *lists[2] = {l->inits, l->insts};
    const char *keys[2] = {l->inits_key, l->insts_key};
    for (int k = 0; k < 2; k++) {
        if (lists[k] || n == 0)
            continue;
        *oom = add_error(c, keys[k], "missing, but %s names %d check%s", l->names_key, n,
                         n == 1 ? "" : "s") != 0;
        return 0;
    }
    int ni = l->inits ? cJSON_GetArraySize(l->inits) : 0;
    int nn = l->insts ? cJSON_GetArraySize(l->insts) : 0;
    if (ni == n && nn == n)
        return 1;
    *oom = add_error(c, l->names_key,
                     "%d check names, %d init_configs, %d instances: the three lists must have "
                     "the same length",
                     n, ni, nn) != 0;
    return 0;
}

static void v1_keys(v1_labels *l, const char *prefix)
{
    snprintf(l->names_key, sizeof l->names_key, "%scheck_names", prefix);
    snprintf(l->inits_key, sizeof l->inits_key, "%sinit_configs", prefix);
    snprintf(l->insts_key, sizeof l->insts_key, "%sinstances", prefix);
    snprintf(l->ignore_key, sizeof l->ignore_key, "%signore_autodiscovery_tags", prefix);
}

static int parse_v1(mw__label_configs *c, mw__label_configs *list, const cJSON *labels,
                    const char *prefix)
{
    v1_labels l = {0};
    int oom = 0, rc;
    v1_keys(&l, prefix);
    if (!label_value(labels, l.names_key))
        return 0;
    rc = v1_array(c, labels, l.names_key, &l.names);
    if (rc == PART_OK) {
        if (cJSON_GetArraySize(l.names) == 0)
            c->disable_files = 1;
        rc = v1_array(c, labels, l.inits_key, &l.inits);
    }
    if (rc == PART_OK)
        rc = v1_array(c, labels, l.insts_key, &l.insts);
    if (rc == PART_OK && !v1_lists_ok(c, &l, cJSON_GetArraySize(l.names), &oom))
        rc = oom ? PART_OOM : PART_BAD;
    if (rc != PART_OK || !l.names->child)
        goto out;
    l.ignore = parse_bool_true(label_value(labels, l.ignore_key));
    const cJSON *name = l.names->child, *init = l.inits->child, *inst = l.insts->child;
    for (int i = 0; rc == PART_OK && name; i++) {
        rc = v1_check(c, list, &l, i, name, init, inst) != 0 ? PART_OOM : PART_OK;
        name = name->next, init = init->next, inst = inst->next;
    }
out:
    cJSON_Delete(l.names);
    cJSON_Delete(l.inits);
    cJSON_Delete(l.insts);
    return rc == PART_OOM ? -1 : 0;
}

/* ------------------------------------------------------------ v2 */

/* The check's name: its key, or its "name" member. NULL after reporting. */
static const char *v2_name(mw__label_configs *c, const char *key, const cJSON *ch, int *oom)
{
    quote_buf q;
    const char *name = ch->string ? ch->string : "";
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(ch, "name");
    if (nm && !cJSON_IsString(nm)) {
        *oom = add_error(c, key, "check %s: \"name\" must be a string, found %s", quote(q, name),
                         mw__json_type_name(nm)) != 0;
        return NULL;
    }
    if (nm && nm->valuestring[0])
        name = nm->valuestring;
    if (!mw__check_name_valid(name, strlen(name))) {
        *oom = add_error(c, key,
                         "check %s: not a valid check name (letters, digits, '_', '-', '.'; "
                         "no leading '.', no \"..\")",
                         quote(q, name)) != 0;
        return NULL;
    }
    return name;
}

/* The instances of a v2 check; PART_BAD after reporting, or quietly for
 * a logs-only check (Datadog logs config: nothing here to run). */
static int v2_instances(mw__label_configs *c, const char *key, const cJSON *ch,
                        mw__label_config *cfg)
{
    quote_buf q;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ch, "instances");
    int logs = cJSON_GetObjectItemCaseSensitive(ch, "logs") != NULL;
    if ((!list || (cJSON_IsArray(list) && !list->child)) && logs)
        return PART_BAD; /* Datadog logs-only: nothing to run, nothing wrong */
    const char *why = !list                  ? "no \"instances\""
                      : !cJSON_IsArray(list) ? NULL
                      : !list->child         ? "\"instances\" is empty"
                                             : "";
    if (!why)
        return add_error(c, key, "check %s: \"instances\" must be a list of objects, found %s",
                         quote(q, cfg->check), mw__json_type_name(list))
                   ? PART_OOM
                   : PART_BAD;
    if (why[0])
        return add_error(c, key, "check %s: %s: a check needs at least one instance",
                         quote(q, cfg->check), why)
                   ? PART_OOM
                   : PART_BAD;
    cfg->instances = cJSON_CreateArray();
    if (!cfg->instances)
        return PART_OOM;
    int j = 0;
    for (const cJSON *it = list->child; it; it = it->next, j++) {
        if (!cJSON_IsObject(it))
            return add_error(c, key, "check %s: instances[%d] must be an object, found %s",
                             quote(q, cfg->check), j, mw__json_type_name(it))
                       ? PART_OOM
                       : PART_BAD;
        if (add_instance(cfg->instances, it) != PART_OK)
            return PART_OOM;
    }
    return PART_OK;
}

static int v2_options(mw__label_configs *c, const char *key, const cJSON *ch, mw__label_config *cfg)
{
    quote_buf q;
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(ch, "init_config");
    int rc = take_init(init, 0, &cfg->init_config);
    if (rc == PART_BAD)
        return add_error(c, key, "check %s: \"init_config\" must be an object or null, found %s",
                         quote(q, cfg->check), mw__json_type_name(init))
                   ? PART_OOM
                   : PART_BAD;
    if (rc != PART_OK)
        return rc;
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(ch, "ignore_autodiscovery_tags");
    if (ign && !cJSON_IsBool(ign) && !cJSON_IsNull(ign))
        return add_error(c, key,
                         "check %s: \"ignore_autodiscovery_tags\" must be true or false, found %s",
                         quote(q, cfg->check), mw__json_type_name(ign))
                   ? PART_OOM
                   : PART_BAD;
    cfg->ignore_ad_tags = cJSON_IsTrue(ign);
    return PART_OK;
}

/* Replaces an earlier config of the same check (JSON object semantics:
 * the last key wins), reporting it. */
static int v2_push(mw__label_configs *c, mw__label_configs *list, const char *key,
                   mw__label_config *cfg)
{
    quote_buf q;
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->v[i].check, cfg->check) != 0)
            continue;
        if (add_error(c, key, "check %s is configured twice: the last one is used",
                      quote(q, cfg->check)) != 0)
            return -1;
        config_free(&list->v[i]);
        list->v[i] = *cfg;
        memset(cfg, 0, sizeof *cfg);
        return 0;
    }
    return push_config(list, cfg);
}

static int v2_check(mw__label_configs *c, mw__label_configs *list, const char *key, const cJSON *ch)
{
    quote_buf q;
    mw__label_config cfg = {0};
    int oom = 0, rc = PART_OK;
    if (!cJSON_IsObject(ch))
        return add_error(c, key, "check %s: must be an object with \"instances\", found %s",
                         quote(q, ch->string ? ch->string : ""), mw__json_type_name(ch));
    const char *name = v2_name(c, key, ch, &oom);
    if (!name)
        return oom ? -1 : 0;
    if (config_init(&cfg, name, key) != 0) {
        rc = PART_OOM;
        goto out;
    }
    rc = v2_options(c, key, ch, &cfg);
    if (rc == PART_OK)
        rc = v2_instances(c, key, ch, &cfg);
    if (rc == PART_OK && v2_push(c, list, key, &cfg) != 0)
        rc = PART_OOM;
out:
    config_free(&cfg);
    return rc == PART_OOM ? -1 : 0;
}

static int parse_v2(mw__label_configs *c, mw__label_configs *list, const char *key,
                    const char *value)
{
    int oom = 0, rc = 0;
    cJSON *doc = parse_label(c, key, value, &oom);
    if (!doc)
        return oom ? -1 : 0;
    if (!cJSON_IsObject(doc))
        rc = add_error(c, key,
                       "must be a JSON object {\"<check>\": {\"instances\": [...]}}, found %s",
                       mw__json_type_name(doc));
    for (const cJSON *ch = cJSON_IsObject(doc) ? doc->child : NULL; rc == 0 && ch; ch = ch->next)
        rc = v2_check(c, list, key, ch);
    cJSON_Delete(doc);
    return rc;
}

/* ------------------------------------------------------------ tags */

/* The length of the key when `s` is "key:value" with exactly one ':' and
 * neither side empty, else 0. */
static size_t tag_key_len(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || !colon[1] || strchr(colon + 1, ':'))
        return 0;
    return (size_t)(colon - s);
}

/* One item of a tags label: passed to `add`, or reported and skipped.
 * Returns 0, or -1 on OOM. */
static int label_tag(const char *key, int i, const cJSON *it, int (*add)(void *, const char *),
                     void *ud, mw__label_configs *p)
{
    quote_buf q;
    if (!cJSON_IsString(it))
        return p ? add_error(p, key, "[%d] must be a \"key:value\" string, found %s: skipped", i,
                             mw__json_type_name(it))
                 : 0;
    if (strlen(it->valuestring) > MW_LABEL_TAG_MAX)
        return p ? add_error(p, key, "[%d] is longer than %d bytes: skipped", i, MW_LABEL_TAG_MAX)
                 : 0;
    if (!tag_key_len(it->valuestring))
        return p ? add_error(p, key,
                             "[%d] %s is not key:value (one ':' between a key and a value): "
                             "skipped",
                             i, quote(q, it->valuestring))
                 : 0;
    return add ? add(ud, it->valuestring) : 0;
}

int mw__label_tags(const cJSON *labels, int (*add)(void *ud, const char *tag), void *ud,
                   mw__label_configs *problems)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < MW_ARRAY_LEN(prefixes); k++) {
        char key[64];
        snprintf(key, sizeof key, "%stags", prefixes[k]);
        const char *value = cJSON_IsObject(labels) ? label_value(labels, key) : NULL;
        mw__label_configs scratch = {0};
        int oom = 0, i = 0;
        if (!value)
            continue;
        /* parse_label() reports into a list: a throwaway one when the
         * caller wants no report. */
        cJSON *doc = parse_label(problems ? problems : &scratch, key, value, &oom);
        mw__label_configs_free(&scratch);
        if (oom)
            return -1;
        if (doc && !cJSON_IsArray(doc) && problems)
            rc = add_error(problems, key, "must be a JSON list of \"key:value\" strings, found %s",
                           mw__json_type_name(doc));
        for (const cJSON *it = cJSON_IsArray(doc) ? doc->child : NULL; rc == 0 && it;
             it = it->next, i++) {
            if (i == MW_LABEL_TAGS_MAX) {
                if (problems)
                    rc = add_error(problems, key, "more than %d tags: the rest skipped",
                                   MW_LABEL_TAGS_MAX);
                break;
            }
            rc = label_tag(key, i, it, add, ud, problems);
        }
        cJSON_Delete(doc);
    }
    return rc;
}

/* ------------------------------------------------------------ merge */

static int parse_prefix(mw__label_configs *c, mw__label_configs *list, const cJSON *labels,
                        const char *prefix)
{
    char key[64];
    snprintf(key, sizeof key, "%schecks", prefix);
    const char *v2 = label_value(labels, key);
    if (v2)
        return parse_v2(c, list, key, v2);
    return parse_v1(c, list, labels, prefix);
}

static int names_check(const mw__label_configs *list, const char *check)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->v[i].check, check) == 0)
            return 1;
    return 0;
}

/* Moves every config of `from` into `c`, except those of a check that
 * `winner` configures (dropped). */
static int move_configs(mw__label_configs *c, mw__label_configs *from,
                        const mw__label_configs *winner)
{
    for (size_t i = 0; i < from->n; i++) {
        if (winner && names_check(winner, from->v[i].check))
            config_free(&from->v[i]);
        else if (push_config(c, &from->v[i]) != 0)
            return -1;
    }
    return 0;
}

/* Insertion sort: stable, and label configs are few. */
static void sort_by_check(mw__label_configs *c)
{
    for (size_t i = 1; i < c->n; i++) {
        mw__label_config t = c->v[i];
        size_t j = i;
        for (; j > 0 && strcmp(c->v[j - 1].check, t.check) > 0; j--)
            c->v[j] = c->v[j - 1];
        c->v[j] = t;
    }
}

static void list_free(mw__label_configs *list)
{
    for (size_t i = 0; i < list->n; i++)
        config_free(&list->v[i]);
    free(list->v);
    memset(list, 0, sizeof *list);
}

int mw__label_configs_parse(const cJSON *labels, mw__label_configs *out)
{
    mw__label_configs lists[MW_ARRAY_LEN(prefixes)] = {{0}};
    int rc = 0;
    if (!cJSON_IsObject(labels))
        return 0;
    for (size_t i = 0; rc == 0 && i < MW_ARRAY_LEN(prefixes); i++)
        rc = parse_prefix(out, &lists[i], labels, prefixes[i]);
    if (rc == 0) /* the tags themselves are the service's: only report */
        rc = mw__label_tags(labels, NULL, NULL, out);
    /* moonwatch.ad. (the last prefix) wins for the checks it names. */
    if (rc == 0)
        rc = move_configs(out, &lists[0], &lists[1]);
    if (rc == 0)
        rc = move_configs(out, &lists[1], NULL);
    for (size_t i = 0; i < MW_ARRAY_LEN(prefixes); i++)
        list_free(&lists[i]);
    sort_by_check(out);
    return rc;
}

void mw__label_configs_free(mw__label_configs *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nerrors; i++)
        free(c->errors[i]);
    free(c->errors);
    list_free(c); /* also clears errors and the flag */
}

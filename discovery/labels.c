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

static mw_code vadd_error(mw__label_configs *c, const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static mw_code vadd_error(mw__label_configs *c, const char *key, const char *fmt, va_list ap)
{
    char *msg = mw__vsprintf(fmt, ap);
    char *line = msg ? mw__sprintf("label %s: %s", key, msg) : NULL;
    char **nv = line ? realloc(c->errors, (c->nerrors + 1) * sizeof *nv) : NULL;
    mw_code rc = MW_ENOMEM;
    if (!nv)
        goto out;
    c->errors = nv;
    c->errors[c->nerrors++] = line;
    line = NULL;
    rc = MW_OK;
out:
    free(msg);
    free(line);
    return rc;
}

/* Adds "label <key>: <message>". MW_OK, or MW_ENOMEM. */
static mw_code add_error(mw__label_configs *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mw_code add_error(mw__label_configs *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mw_code rc = vadd_error(c, key, fmt, ap);
    va_end(ap);
    return rc;
}

/* Adds the problem that makes a part unusable, as add_error(); returns
 * `why` (the part is skipped), or MW_ENOMEM when the report fails. */
static mw_code reject(mw__label_configs *c, mw_code why, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mw_code reject(mw__label_configs *c, mw_code why, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mw_code rc = vadd_error(c, key, fmt, ap);
    va_end(ap);
    return rc == MW_OK ? why : rc;
}

/* After a part was skipped: only running out of memory stops the rest. */
static mw_code skipped(mw_code rc)
{
    return rc == MW_ENOMEM ? MW_ENOMEM : MW_OK;
}

static void config_free(mw__label_config *cfg)
{
    free(cfg->check);
    free(cfg->source);
    cJSON_Delete(cfg->init_config);
    cJSON_Delete(cfg->instances);
    memset(cfg, 0, sizeof *cfg);
}

/* Moves `cfg` into `c` (on failure `cfg` is left to the caller). MW_OK,
 * or MW_ENOMEM. */
static mw_code push_config(mw__label_configs *c, mw__label_config *cfg)
{
    if (mw__grow(&c->v, &c->cap, c->n + 1, sizeof *c->v) != MW_OK)
        return MW_ENOMEM;
    c->v[c->n++] = *cfg;
    memset(cfg, 0, sizeof *cfg);
    return MW_OK;
}

/* A new config of `check` from label `source`; its JSON parts are NULL.
 * MW_OK, or MW_ENOMEM. */
static mw_code config_init(mw__label_config *cfg, const char *check, const char *source)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->check = mw__strdup(check);
    cfg->source = mw__strdup(source);
    return cfg->check && cfg->source ? MW_OK : MW_ENOMEM;
}

static const char *label_value(const cJSON *labels, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/*
 * Parses label `key` (value `s`) as JSON into `*out`. MW_OK; MW_EPARSE
 * after reporting why it is not a usable JSON value; MW_ENOMEM.
 */
static mw_code parse_label(mw__label_configs *c, const char *key, const char *s, cJSON **out)
{
    size_t len = strlen(s);
    quote_buf q;
    *out = NULL;
    if (len == 0)
        return reject(c, MW_EPARSE, key, "empty value, expected JSON");
    if (len > MW_LABEL_JSON_MAX)
        return reject(c, MW_EPARSE, key, "value is %zu bytes, over the %d-byte limit", len,
                      MW_LABEL_JSON_MAX);
    /* cJSON does not tell bad JSON from a failed allocation: parse once
     * more, so a passing allocation failure is not blamed on the label. */
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(s, &end, 1);
    if (!doc)
        doc = cJSON_ParseWithOpts(s, &end, 1);
    if (doc) {
        *out = doc;
        return MW_OK;
    }
    size_t pos = end && end >= s && end <= s + len ? (size_t)(end - s) : 0;
    if (pos == len)
        return reject(c, MW_EPARSE, key, "invalid JSON: unexpected end at byte %zu", len);
    return reject(c, MW_EPARSE, key, "invalid JSON at byte %zu of %zu, near %s", pos, len,
                  quote_n(q, s + pos, 16));
}

/* ------------------------------------------------------------ JSON parts */

/* init_config: an object, or null for {}; a v1 element may also be a
 * list of exactly one object (Datadog's shape). MW_OK; MW_EINVAL for
 * another value (the caller reports it); MW_ENOMEM. */
static mw_code take_init(const cJSON *v, int v1, cJSON **out)
{
    if (v1 && cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = v->child;
    if (!v || cJSON_IsNull(v))
        *out = cJSON_CreateObject();
    else if (cJSON_IsObject(v))
        *out = cJSON_Duplicate(v, 1);
    else
        return MW_EINVAL;
    return *out ? MW_OK : MW_ENOMEM;
}

/* Appends a copy of instance object `v` to `list`. MW_OK, or MW_ENOMEM. */
static mw_code add_instance(cJSON *list, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);
    if (!d || !cJSON_AddItemToArray(list, d)) {
        cJSON_Delete(d);
        return MW_ENOMEM;
    }
    return MW_OK;
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

/* Reads one v1 array label into *out (NULL when absent). MW_OK;
 * MW_EPARSE or MW_EINVAL after reporting; MW_ENOMEM. */
static mw_code v1_array(mw__label_configs *c, const cJSON *labels, const char *key, cJSON **out)
{
    const char *s = label_value(labels, key);
    cJSON *doc = NULL;
    mw_code rc = MW_OK;
    *out = NULL;
    if (!s)
        return MW_OK;
    if ((rc = parse_label(c, key, s, &doc)) != MW_OK)
        return rc;
    if (!cJSON_IsArray(doc)) {
        rc = reject(c, MW_EINVAL, key, "must be a JSON list, found %s", mw__json_type_name(doc));
        cJSON_Delete(doc);
        return rc;
    }
    *out = doc;
    return MW_OK;
}

/* The instances of v1 element `el` (an object or a list of objects) into
 * cfg->instances. MW_OK; MW_EINVAL after reporting; MW_ENOMEM. */
static mw_code v1_instances(mw__label_configs *c, const v1_labels *l, int i, const char *check,
                            const cJSON *el, mw__label_config *cfg)
{
    quote_buf q;
    cfg->instances = cJSON_CreateArray();
    if (!cfg->instances)
        return MW_ENOMEM;
    if (cJSON_IsObject(el))
        return add_instance(cfg->instances, el);
    if (!cJSON_IsArray(el))
        return reject(c, MW_EINVAL, l->insts_key,
                      "[%d] (check %s) must be an object or a list of objects, found %s", i,
                      quote(q, check), mw__json_type_name(el));
    if (!el->child)
        return reject(c, MW_EINVAL, l->insts_key, "[%d] (check %s) is an empty list: no instance",
                      i, quote(q, check));
    int j = 0;
    for (const cJSON *it = el->child; it; it = it->next, j++) {
        if (!cJSON_IsObject(it))
            return reject(c, MW_EINVAL, l->insts_key,
                          "[%d][%d] (check %s) must be an object, found %s", i, j, quote(q, check),
                          mw__json_type_name(it));
        if (add_instance(cfg->instances, it) != MW_OK)
            return MW_ENOMEM;
    }
    return MW_OK;
}

/* Check i of a v1 config; a problem skips only this check. MW_OK, or
 * MW_ENOMEM. */
static mw_code v1_check(mw__label_configs *c, mw__label_configs *list, const v1_labels *l, int i,
                        const cJSON *name, const cJSON *init, const cJSON *inst)
{
    quote_buf q;
    mw__label_config cfg = {0};
    mw_code rc;
    if (!cJSON_IsString(name))
        return add_error(c, l->names_key, "[%d] must be a check name string, found %s", i,
                         mw__json_type_name(name));
    if (!mw__check_name_valid(name->valuestring, strlen(name->valuestring)))
        return add_error(c, l->names_key,
                         "[%d] %s is not a valid check name (letters, digits, '_', '-', '.'; "
                         "no leading '.', no \"..\")",
                         i, quote(q, name->valuestring));
    if ((rc = config_init(&cfg, name->valuestring, l->insts_key)) != MW_OK)
        goto out;
    cfg.ignore_ad_tags = l->ignore;
    rc = take_init(init, 1, &cfg.init_config);
    if (rc == MW_EINVAL)
        rc = reject(c, rc, l->inits_key, "[%d] (check %s) must be an object or null, found %s", i,
                    quote(q, cfg.check), mw__json_type_name(init));
    if (rc == MW_OK)
        rc = v1_instances(c, l, i, cfg.check, inst, &cfg);
    if (rc == MW_OK)
        rc = push_config(list, &cfg);
out:
    config_free(&cfg);
    return skipped(rc);
}

/* The three lists must be there and line up. MW_OK; MW_EINVAL after
 * reporting why not; MW_ENOMEM. */
static mw_code v1_lists_ok(mw__label_configs *c, const v1_labels *l, int n)
{
    const cJSON *lists[2] = {l->inits, l->insts};
    const char *keys[2] = {l->inits_key, l->insts_key};
    for (int k = 0; k < 2; k++) {
        if (lists[k] || n == 0)
            continue;
        return reject(c, MW_EINVAL, keys[k], "missing, but %s names %d check%s", l->names_key, n,
                      n == 1 ? "" : "s");
    }
    int ni = l->inits ? cJSON_GetArraySize(l->inits) : 0;
    int nn = l->insts ? cJSON_GetArraySize(l->insts) : 0;
    if (ni == n && nn == n)
        return MW_OK;
    return reject(c, MW_EINVAL, l->names_key,
                  "%d check names, %d init_configs, %d instances: the three lists must have "
                  "the same length",
                  n, ni, nn);
}

static void v1_keys(v1_labels *l, const char *prefix)
{
    snprintf(l->names_key, sizeof l->names_key, "%scheck_names", prefix);
    snprintf(l->inits_key, sizeof l->inits_key, "%sinit_configs", prefix);
    snprintf(l->insts_key, sizeof l->insts_key, "%sinstances", prefix);
    snprintf(l->ignore_key, sizeof l->ignore_key, "%signore_autodiscovery_tags", prefix);
}

/* MW_OK (a problem drops this prefix's v1 config), or MW_ENOMEM. */
static mw_code parse_v1(mw__label_configs *c, mw__label_configs *list, const cJSON *labels,
                        const char *prefix)
{
    v1_labels l = {0};
    mw_code rc;
    v1_keys(&l, prefix);
    if (!label_value(labels, l.names_key))
        return MW_OK;
    rc = v1_array(c, labels, l.names_key, &l.names);
    if (rc == MW_OK) {
        if (cJSON_GetArraySize(l.names) == 0)
            c->disable_files = 1;
        rc = v1_array(c, labels, l.inits_key, &l.inits);
    }
    if (rc == MW_OK)
        rc = v1_array(c, labels, l.insts_key, &l.insts);
    if (rc == MW_OK)
        rc = v1_lists_ok(c, &l, cJSON_GetArraySize(l.names));
    if (rc != MW_OK || !l.names->child)
        goto out;
    l.ignore = parse_bool_true(label_value(labels, l.ignore_key));
    const cJSON *name = l.names->child, *init = l.inits->child, *inst = l.insts->child;
    for (int i = 0; rc == MW_OK && name; i++) {
        rc = v1_check(c, list, &l, i, name, init, inst);
        name = name->next, init = init->next, inst = inst->next;
    }
out:
    cJSON_Delete(l.names);
    cJSON_Delete(l.inits);
    cJSON_Delete(l.insts);
    return skipped(rc);
}

/* ------------------------------------------------------------ v2 */

/* The check's name into `*out`: its key, or its "name" member. MW_OK;
 * MW_EINVAL after reporting; MW_ENOMEM. */
static mw_code v2_name(mw__label_configs *c, const char *key, const cJSON *ch, const char **out)
{
    quote_buf q;
    const char *name = ch->string ? ch->string : "";
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(ch, "name");
    *out = NULL;
    if (nm && !cJSON_IsString(nm))
        return reject(c, MW_EINVAL, key, "check %s: \"name\" must be a string, found %s",
                      quote(q, name), mw__json_type_name(nm));
    if (nm && nm->valuestring[0])
        name = nm->valuestring;
    if (!mw__check_name_valid(name, strlen(name)))
        return reject(c, MW_EINVAL, key,
                      "check %s: not a valid check name (letters, digits, '_', '-', '.'; "
                      "no leading '.', no \"..\")",
                      quote(q, name));
    *out = name;
    return MW_OK;
}

/* The instances of a v2 check. MW_OK; MW_EINVAL after reporting;
 * MW_ENOTFOUND, quietly, for a logs-only check (Datadog logs config:
 * nothing here to run); MW_ENOMEM. */
static mw_code v2_instances(mw__label_configs *c, const char *key, const cJSON *ch,
                            mw__label_config *cfg)
{
    quote_buf q;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ch, "instances");
    int logs = cJSON_GetObjectItemCaseSensitive(ch, "logs") != NULL;
    if ((!list || (cJSON_IsArray(list) && !list->child)) && logs)
        return MW_ENOTFOUND; /* Datadog logs-only: nothing to run, nothing wrong */
    const char *why = !list                  ? "no \"instances\""
                      : !cJSON_IsArray(list) ? NULL
                      : !list->child         ? "\"instances\" is empty"
                                             : "";
    if (!why)
        return reject(c, MW_EINVAL, key,
                      "check %s: \"instances\" must be a list of objects, found %s",
                      quote(q, cfg->check), mw__json_type_name(list));
    if (why[0])
        return reject(c, MW_EINVAL, key, "check %s: %s: a check needs at least one instance",
                      quote(q, cfg->check), why);
    cfg->instances = cJSON_CreateArray();
    if (!cfg->instances)
        return MW_ENOMEM;
    int j = 0;
    for (const cJSON *it = list->child; it; it = it->next, j++) {
        if (!cJSON_IsObject(it))
            return reject(c, MW_EINVAL, key, "check %s: instances[%d] must be an object, found %s",
                          quote(q, cfg->check), j, mw__json_type_name(it));
        if (add_instance(cfg->instances, it) != MW_OK)
            return MW_ENOMEM;
    }
    return MW_OK;
}

/* init_config and ignore_autodiscovery_tags. MW_OK; MW_EINVAL after
 * reporting; MW_ENOMEM. */
static mw_code v2_options(mw__label_configs *c, const char *key, const cJSON *ch,
                          mw__label_config *cfg)
{
    quote_buf q;
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(ch, "init_config");
    mw_code rc = take_init(init, 0, &cfg->init_config);
    if (rc == MW_EINVAL)
        return reject(c, rc, key, "check %s: \"init_config\" must be an object or null, found %s",
                      quote(q, cfg->check), mw__json_type_name(init));
    if (rc != MW_OK)
        return rc;
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(ch, "ignore_autodiscovery_tags");
    if (ign && !cJSON_IsBool(ign) && !cJSON_IsNull(ign))
        return reject(c, MW_EINVAL, key,
                      "check %s: \"ignore_autodiscovery_tags\" must be true or false, found %s",
                      quote(q, cfg->check), mw__json_type_name(ign));
    cfg->ignore_ad_tags = cJSON_IsTrue(ign);
    return MW_OK;
}

/* Replaces an earlier config of the same check (JSON object semantics:
 * the last key wins), reporting it. MW_OK, or MW_ENOMEM. */
static mw_code v2_push(mw__label_configs *c, mw__label_configs *list, const char *key,
                       mw__label_config *cfg)
{
    quote_buf q;
    mw_code rc;
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->v[i].check, cfg->check) != 0)
            continue;
        if ((rc = add_error(c, key, "check %s is configured twice: the last one is used",
                            quote(q, cfg->check))) != MW_OK)
            return rc;
        config_free(&list->v[i]);
        list->v[i] = *cfg;
        memset(cfg, 0, sizeof *cfg);
        return MW_OK;
    }
    return push_config(list, cfg);
}

/* One check of a v2 config; a problem skips only this check. MW_OK, or
 * MW_ENOMEM. */
static mw_code v2_check(mw__label_configs *c, mw__label_configs *list, const char *key,
                        const cJSON *ch)
{
    quote_buf q;
    mw__label_config cfg = {0};
    const char *name;
    mw_code rc;
    if (!cJSON_IsObject(ch))
        return add_error(c, key, "check %s: must be an object with \"instances\", found %s",
                         quote(q, ch->string ? ch->string : ""), mw__json_type_name(ch));
    if ((rc = v2_name(c, key, ch, &name)) != MW_OK)
        return skipped(rc);
    if ((rc = config_init(&cfg, name, key)) != MW_OK)
        goto out;
    rc = v2_options(c, key, ch, &cfg);
    if (rc == MW_OK)
        rc = v2_instances(c, key, ch, &cfg);
    if (rc == MW_OK)
        rc = v2_push(c, list, key, &cfg);
out:
    config_free(&cfg);
    return skipped(rc);
}

/* MW_OK (a problem drops this label, or one check of it), or MW_ENOMEM. */
static mw_code parse_v2(mw__label_configs *c, mw__label_configs *list, const char *key,
                        const char *value)
{
    cJSON *doc = NULL;
    mw_code rc = parse_label(c, key, value, &doc);
    if (rc != MW_OK)
        return skipped(rc);
    if (!cJSON_IsObject(doc))
        rc = add_error(c, key,
                       "must be a JSON object {\"<check>\": {\"instances\": [...]}}, found %s",
                       mw__json_type_name(doc));
    for (const cJSON *ch = cJSON_IsObject(doc) ? doc->child : NULL; rc == MW_OK && ch;
         ch = ch->next)
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
 * MW_OK; MW_ENOMEM when a report fails; what `add` returned. */
static mw_code label_tag(const char *key, int i, const cJSON *it, mw__label_tag_fn add, void *ud,
                         mw__label_configs *p)
{
    quote_buf q;
    if (!cJSON_IsString(it))
        return p ? add_error(p, key, "[%d] must be a \"key:value\" string, found %s: skipped", i,
                             mw__json_type_name(it))
                 : MW_OK;
    if (strlen(it->valuestring) > MW_LABEL_TAG_MAX)
        return p ? add_error(p, key, "[%d] is longer than %d bytes: skipped", i, MW_LABEL_TAG_MAX)
                 : MW_OK;
    if (!tag_key_len(it->valuestring))
        return p ? add_error(p, key,
                             "[%d] %s is not key:value (one ':' between a key and a value): "
                             "skipped",
                             i, quote(q, it->valuestring))
                 : MW_OK;
    return add ? add(ud, it->valuestring) : MW_OK;
}

mw_code mw__label_tags(const cJSON *labels, mw__label_tag_fn add, void *ud,
                       mw__label_configs *problems)
{
    mw_code rc = MW_OK;
    for (size_t k = 0; rc == MW_OK && k < MW_ARRAY_LEN(prefixes); k++) {
        char key[64];
        snprintf(key, sizeof key, "%stags", prefixes[k]);
        const char *value = cJSON_IsObject(labels) ? label_value(labels, key) : NULL;
        mw__label_configs scratch = {0};
        cJSON *doc = NULL;
        int i = 0;
        if (!value)
            continue;
        /* parse_label() reports into a list: a throwaway one when the
         * caller wants no report. */
        rc = skipped(parse_label(problems ? problems : &scratch, key, value, &doc));
        mw__label_configs_free(&scratch);
        if (rc != MW_OK)
            return rc;
        if (doc && !cJSON_IsArray(doc) && problems)
            rc = add_error(problems, key, "must be a JSON list of \"key:value\" strings, found %s",
                           mw__json_type_name(doc));
        for (const cJSON *it = cJSON_IsArray(doc) ? doc->child : NULL; rc == MW_OK && it;
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

/* MW_OK, or MW_ENOMEM. */
static mw_code parse_prefix(mw__label_configs *c, mw__label_configs *list, const cJSON *labels,
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
 * `winner` configures (dropped). MW_OK, or MW_ENOMEM. */
static mw_code move_configs(mw__label_configs *c, mw__label_configs *from,
                            const mw__label_configs *winner)
{
    for (size_t i = 0; i < from->n; i++) {
        if (winner && names_check(winner, from->v[i].check))
            config_free(&from->v[i]);
        else if (push_config(c, &from->v[i]) != MW_OK)
            return MW_ENOMEM;
    }
    return MW_OK;
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

mw_code mw__label_configs_parse(const cJSON *labels, mw__label_configs *out)
{
    mw__label_configs lists[MW_ARRAY_LEN(prefixes)] = {{0}};
    mw_code rc = MW_OK;
    if (!cJSON_IsObject(labels))
        return MW_OK;
    for (size_t i = 0; rc == MW_OK && i < MW_ARRAY_LEN(prefixes); i++)
        rc = parse_prefix(out, &lists[i], labels, prefixes[i]);
    if (rc == MW_OK) /* the tags themselves are the service's: only report */
        rc = mw__label_tags(labels, NULL, NULL, out);
    /* moonwatch.ad. (the last prefix) wins for the checks it names. */
    if (rc == MW_OK)
        rc = move_configs(out, &lists[0], &lists[1]);
    if (rc == MW_OK)
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

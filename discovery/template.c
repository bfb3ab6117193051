/*
 * template.c - check templates from YAML files in the Datadog layout, and
 * finding a check's Lua file.
 *
 * A mw__template_set owns its templates; each template owns its strings
 * and the cJSON subtrees detached from the parsed document. Validation
 * reports every problem it finds (not just the first) with the file's
 * line and column, then keeps what is sound:
 * - a problem with the file as a whole (not a mapping, no usable
 *   `instances`, bad `init_config` or `ad_identifiers`) skips the file;
 * - a problem inside one instance skips that instance only;
 * - `min_collection_interval` below 1 is clamped to 1 and reported (the
 *   scheduler's floor is one second; the Datadog Agent also runs such
 *   configs rather than refusing them);
 * - a known option set to null (a `tags:` whose items are all commented
 *   out, as in Datadog's conf.yaml.example) counts as absent and is
 *   removed, so later stages only see well-typed values;
 * - a file with `logs` or `jmx_metrics` and no instances is a Datadog
 *   logs-only or JMX metrics file: not a check, skipped without a problem;
 * - a file with `discovery` and no instances is a Datadog configuration
 *   discovery template: loaded, it schedules nothing, and says why;
 * - an item of `instances` that is null (a list item holding only
 *   comments) is skipped without a problem; when every item is, the file
 *   schedules nothing and says why;
 * - a known option whose value holds a template variable is checked once
 *   resolved (when the instance is scheduled), not here.
 * Unknown keys are the check's own options and are kept as they are;
 * unknown top-level keys are ignored, as the Datadog Agent ignores them.
 */
#include "discovery/template.h"

#include "core/base/util.h"
#include "core/base/yaml.h"
#include "discovery/tmplvars.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A file name longer than this cannot be a check (NAME_MAX less ".lua"). */
#define CHECK_NAME_MAX 250

/* Why a loaded template schedules nothing by itself (mw__template.idle). */
static const char IDLE_DISCOVERY[] =
    "configuration discovery template (\"discovery\" and no instances): the Datadog Agent "
    "finds its instances as it runs, moonwatch does not, so nothing is scheduled";
static const char IDLE_EMPTY_ITEMS[] =
    "every item of \"instances\" is empty (it holds only comments): nothing to schedule";
static const char IDLE_ADVANCED[] =
    "\"advanced_ad_identifiers\" select Kubernetes services and endpoints, which are not "
    "discovered here: nothing is scheduled";

/* ------------------------------------------------------------ names */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Length of `base` without its template extension, or 0 when it has none. */
static size_t stem_len(const char *base)
{
    static const char *const exts[] = {".yaml.default", ".yaml", ".yml"};
    for (size_t i = 0; i < MW_ARRAY_LEN(exts); i++)
        if (ends_with(base, exts[i]))
            return strlen(base) - strlen(exts[i]);
    return 0;
}

int mw__check_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > CHECK_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        if (!ok || (c == '.' && i + 1 < n && s[i + 1] == '.'))
            return 0;
    }
    return 1;
}

static char *check_from(const char *s, size_t n)
{
    return mw__check_name_valid(s, n) ? mw__strndup(s, n) : NULL;
}

char *mw__template_check_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (base[0] == '.' || stem_len(base) == 0)
        return NULL;
    /* The parent directory's name, if any, is [dir, end). */
    const char *end = base > path ? base - 1 : path, *dir = end;
    while (dir > path && dir[-1] != '/')
        dir--;
    if (end - dir >= 2 && strncmp(end - 2, ".d", 2) == 0) {
        /* Datadog's own root is called conf.d: files right in it are
         * `<check>.yaml`, not configs of a check named "conf". */
        if (!(end - dir == 6 && strncmp(dir, "conf.d", 6) == 0))
            return check_from(dir, (size_t)(end - dir) - 2);
    }
    return check_from(base, stem_len(base));
}

char *mw__check_find(const char *const *dirs, size_t ndirs, const char *name)
{
    if (!name || !mw__check_name_valid(name, strlen(name)))
        return NULL;
    for (size_t i = 0; i < ndirs; i++) {
        char *path = mw__sprintf("%s/%s.lua", dirs[i], name);
        struct stat st;
        if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return path;
        free(path);
    }
    return NULL;
}

/* ------------------------------------------------------------ validation */

typedef struct vctx {
    const char *file;
    const mw__yaml_doc *doc;
    mw__diag *diag;
    int instance; /* 1-based while checking an instance, else 0 */
} vctx;

static void vreport(vctx *c, const cJSON *node, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void vreport(vctx *c, const cJSON *node, const char *suffix, const char *fmt, va_list ap)
{
    char *msg = mw__vsprintf(fmt, ap);
    mw__yaml_pos at = mw__yaml_where(c->doc, node);
    mw__diag_add(c->diag, c->file, at.line, at.col, "%s%s", msg ? msg : "out of memory", suffix);
    free(msg);
}

/* A problem that makes the current instance (or file) unusable. */
static void problem(vctx *c, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(vctx *c, const cJSON *node, const char *fmt, ...)
{
    char suffix[48] = "";
    if (c->instance)
        snprintf(suffix, sizeof suffix, " (instance %d skipped)", c->instance);
    va_list ap;
    va_start(ap, fmt);
    vreport(c, node, suffix, fmt, ap);
    va_end(ap);
}

/* A problem that was worked around: reported, nothing skipped. */
static void note(vctx *c, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(vctx *c, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, node, "", fmt, ap);
    va_end(ap);
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "a mapping";
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

/* An option check: MW_OK when `v` is acceptable (possibly after fixing it
 * up), MW_EINVAL after reporting why not. */
typedef mw_code (*option_fn)(vctx *c, const char *key, cJSON *v);

static mw_code want_string(vctx *c, const char *key, cJSON *v)
{
    if (cJSON_IsString(v))
        return MW_OK;
    problem(c, v, "\"%s\" must be a string, found %s", key, type_name(v));
    return MW_EINVAL;
}

static mw_code want_bool(vctx *c, const char *key, cJSON *v)
{
    if (cJSON_IsBool(v))
        return MW_OK;
    problem(c, v, "\"%s\" must be true or false, found %s", key, type_name(v));
    return MW_EINVAL;
}

static mw_code want_positive(vctx *c, const char *key, cJSON *v)
{
    if (cJSON_IsNumber(v) && v->valuedouble > 0)
        return MW_OK;
    if (cJSON_IsNumber(v))
        problem(c, v, "\"%s\" must be greater than 0, found %g", key, v->valuedouble);
    else
        problem(c, v, "\"%s\" must be a number greater than 0, found %s", key, type_name(v));
    return MW_EINVAL;
}

static mw_code want_interval(vctx *c, const char *key, cJSON *v)
{
    if (!cJSON_IsNumber(v)) {
        problem(c, v, "\"%s\" must be a number of seconds, found %s", key, type_name(v));
        return MW_EINVAL;
    }
    if (v->valuedouble < 1) {
        note(c, v, "\"%s\" is %g, below the 1 second minimum: using 1", key, v->valuedouble);
        cJSON_SetNumberValue(v, 1);
    }
    return MW_OK;
}

static mw_code want_string_list(vctx *c, const char *key, cJSON *v)
{
    mw_code rc = MW_OK;
    int i = 0;
    if (!cJSON_IsArray(v)) {
        problem(c, v, "\"%s\" must be a list of strings, found %s", key, type_name(v));
        return MW_EINVAL;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        i++;
        if (cJSON_IsString(it) && it->valuestring[0])
            continue;
        problem(c, it, "\"%s\" item %d must be a non-empty string, found %s", key, i,
                cJSON_IsString(it) ? "an empty string" : type_name(it));
        rc = MW_EINVAL;
    }
    return rc;
}

static mw_code want_mapping(vctx *c, const char *key, cJSON *v)
{
    if (cJSON_IsObject(v))
        return MW_OK;
    problem(c, v, "\"%s\" must be a mapping, found %s", key, type_name(v));
    return MW_EINVAL;
}

static mw_code want_list(vctx *c, const char *key, cJSON *v)
{
    if (cJSON_IsArray(v))
        return MW_OK;
    problem(c, v, "\"%s\" must be a list, found %s", key, type_name(v));
    return MW_EINVAL;
}

/* Datadog's tag cardinalities. Every container tag is added whatever the
 * value (moonwatch does not rank its tags), but a typo is still one. */
static mw_code want_cardinality(vctx *c, const char *key, cJSON *v)
{
    static const char *const ok[] = {"low", "orchestrator", "high"};
    for (size_t i = 0; cJSON_IsString(v) && i < MW_ARRAY_LEN(ok); i++)
        if (strcmp(v->valuestring, ok[i]) == 0)
            return MW_OK;
    if (cJSON_IsString(v))
        problem(c, v, "\"%s\" must be low, orchestrator or high, found \"%s\"", key,
                v->valuestring);
    else
        problem(c, v, "\"%s\" must be low, orchestrator or high, found %s", key, type_name(v));
    return MW_EINVAL;
}

typedef struct option_rule {
    const char *key;
    option_fn check;
} option_rule;

static const option_rule instance_rules[] = {
    {"min_collection_interval", want_interval},
    {"timeout", want_positive},
    {"memory_limit_mb", want_positive},
    {"tags", want_string_list},
    {"service", want_string},
    {"ignore_autodiscovery_tags", want_bool},
};

/* init_config may carry the same limits for all instances. */
static const option_rule init_rules[] = {
    {"timeout", want_positive},
    {"memory_limit_mb", want_positive},
};

/* Top-level keys of a Datadog config file beside ad_identifiers,
 * init_config and instances (`logs` and `jmx_metrics` are not checks'
 * business and are left alone). */
static const option_rule file_rules[] = {
    {"discovery", want_mapping},
    {"cel_selector", want_mapping},
    {"advanced_ad_identifiers", want_list},
    {"ignore_autodiscovery_tags", want_bool},
    {"check_tag_cardinality", want_cardinality},
};

/* Checks the known options of `obj`; nulls are dropped as absent. A value
 * holding a template variable (`timeout: "%%extra_timeout%%"`) is checked
 * once resolved, when `resolved` is 0. MW_OK, or MW_EINVAL after
 * reporting every bad one. */
static mw_code check_options(vctx *c, cJSON *obj, const option_rule *rules, size_t n, int resolved)
{
    mw_code rc = MW_OK;
    for (size_t i = 0; i < n; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, rules[i].key);
        if (!v)
            continue;
        if (cJSON_IsNull(v))
            cJSON_DeleteItemFromObjectCaseSensitive(obj, rules[i].key);
        else if (!resolved && cJSON_IsString(v) && mw__tmplvars_has_var(v->valuestring))
            continue;
        else if (rules[i].check(c, rules[i].key, v) != MW_OK)
            rc = MW_EINVAL;
    }
    return rc;
}

/* What take_instances() left out. */
typedef struct skipped {
    int bad;   /* reported */
    int empty; /* null items: skipped without a word */
} skipped;

/* Moves the sound instances of `list` (NULL: none) into a new array,
 * which may be empty; NULL on OOM. */
static cJSON *take_instances(vctx *c, cJSON *list, skipped *sk)
{
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    if (!out)
        return NULL;
    for (cJSON *it = cJSON_IsArray(list) ? list->child : NULL, *next; it; it = next) {
        next = it->next;
        i++;
        c->instance = i;
        if (cJSON_IsNull(it))
            sk->empty++;
        else if (!cJSON_IsObject(it))
            sk->bad++, problem(c, it, "an instance must be a mapping, found %s", type_name(it));
        else if (check_options(c, it, instance_rules, MW_ARRAY_LEN(instance_rules), 0) != MW_OK)
            sk->bad++;
        else
            cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(list, it));
    }
    c->instance = 0;
    return out;
}

/* Template variables with a name no service can resolve: reported with
 * their position, the instance kept (each container that matches reports
 * it as unresolved too, with the same reason). */
static void check_vars(vctx *c, const cJSON *j)
{
    char *why = NULL;
    if (cJSON_IsString(j) && mw__tmplvars_check(j->valuestring, &why) != MW_OK)
        note(c, j, "%s", why ? why : "out of memory");
    free(why);
    for (const cJSON *it = j->child; it; it = it->next)
        check_vars(c, it);
}

static void check_all_vars(vctx *c, const cJSON *init, const cJSON *instances)
{
    if (init)
        check_vars(c, init);
    if (instances)
        check_vars(c, instances);
}

/* MW_OK, or MW_EINVAL after reporting. */
static mw_code check_ad_identifiers(vctx *c, const cJSON *ids)
{
    mw_code rc = MW_OK;
    int i = 0;
    if (!cJSON_IsArray(ids) || !ids->child) {
        problem(c, ids, "\"ad_identifiers\" must be a non-empty list of strings, found %s",
                cJSON_IsArray(ids) ? "an empty list" : type_name(ids));
        return MW_EINVAL;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        i++;
        if (cJSON_IsString(it) && it->valuestring[0])
            continue;
        problem(c, it, "\"ad_identifiers\" item %d must be a non-empty string, found %s", i,
                cJSON_IsString(it) ? "an empty string" : type_name(it));
        rc = MW_EINVAL;
    }
    return rc;
}

/* MW_OK, or MW_EINVAL after reporting. */
static mw_code check_init_config(vctx *c, cJSON *init)
{
    if (!init || cJSON_IsNull(init))
        return MW_OK;
    if (!cJSON_IsObject(init)) {
        problem(c, init, "\"init_config\" must be a mapping or empty, found %s", type_name(init));
        return MW_EINVAL;
    }
    return check_options(c, init, init_rules, MW_ARRAY_LEN(init_rules), 0);
}

/* MW_OK, or MW_EINVAL after reporting. */
static mw_code check_instances_list(vctx *c, const cJSON *root, const cJSON *list)
{
    if (!list) {
        problem(c, root, "no \"instances\": a template needs a list of at least one instance");
        return MW_EINVAL;
    }
    if (!cJSON_IsArray(list)) {
        problem(c, list, "\"instances\" must be a list of mappings, found %s", type_name(list));
        return MW_EINVAL;
    }
    if (!list->child) {
        problem(c, list, "\"instances\" is empty: a template needs at least one instance");
        return MW_EINVAL;
    }
    return MW_OK;
}

/* A configuration discovery template: `discovery` and no instances at all
 * (no key, null, or an empty list). Its file rules have run. */
static int is_discovery_only(const cJSON *root)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "instances");
    return cJSON_GetObjectItemCaseSensitive(root, "discovery") &&
           (!list || cJSON_IsNull(list) || (cJSON_IsArray(list) && !list->child));
}

/* File-level checks. MW_OK, or MW_EINVAL after reporting why the file
 * is unusable; `*instances` says whether its instances can still be
 * checked (for the report). */
static mw_code check_root(vctx *c, cJSON *root, int *instances)
{
    *instances = 0;
    if (!root) {
        problem(c, NULL, "empty file: expected a mapping with \"instances\"");
        return MW_EINVAL;
    }
    if (!cJSON_IsObject(root)) {
        problem(c, root, "expected a mapping with \"instances\" at the top level, found %s",
                type_name(root));
        return MW_EINVAL;
    }
    mw_code rc = MW_OK;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "ad_identifiers");
    if (ids && check_ad_identifiers(c, ids) != MW_OK)
        rc = MW_EINVAL;
    if (!ids && cJSON_GetObjectItemCaseSensitive(root, "docker_images")) {
        problem(c, cJSON_GetObjectItemCaseSensitive(root, "docker_images"),
                "\"docker_images\" is no longer read: use \"ad_identifiers\"");
        rc = MW_EINVAL;
    }
    if (check_options(c, root, file_rules, MW_ARRAY_LEN(file_rules), 1) != MW_OK)
        rc = MW_EINVAL;
    if (check_init_config(c, cJSON_GetObjectItemCaseSensitive(root, "init_config")) != MW_OK)
        rc = MW_EINVAL;
    if (!is_discovery_only(root) &&
        check_instances_list(c, root, cJSON_GetObjectItemCaseSensitive(root, "instances")) != MW_OK)
        return MW_EINVAL;
    *instances = 1;
    return rc;
}

/* A Datadog logs-only or JMX metrics file (`logs` or `jmx_metrics`, no
 * instances and no `discovery`): not a check. */
static int is_not_a_check(const cJSON *root)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "instances");
    return cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "discovery") &&
           (!list || (cJSON_IsArray(list) && !list->child)) &&
           (cJSON_GetObjectItemCaseSensitive(root, "logs") ||
            cJSON_GetObjectItemCaseSensitive(root, "jmx_metrics"));
}

/* ------------------------------------------------------------ the set */

static void template_free(mw__template *t)
{
    free(t->check);
    free(t->file);
    cJSON_Delete(t->ad_identifiers);
    cJSON_Delete(t->init_config);
    cJSON_Delete(t->instances);
}

/* MW_OK, or MW_ENOMEM. */
static mw_code set_push(mw__template_set *set, const mw__template *t)
{
    if (mw__grow(&set->v, &set->cap, set->n + 1, sizeof *set->v) != MW_OK)
        return MW_ENOMEM;
    set->v[set->n++] = *t;
    return MW_OK;
}

/* Why a sound file schedules nothing by itself, or NULL. */
static const char *idle_reason(const cJSON *root, const cJSON *instances, const skipped *sk)
{
    if (!cJSON_GetObjectItemCaseSensitive(root, "ad_identifiers") &&
        cJSON_GetObjectItemCaseSensitive(root, "advanced_ad_identifiers"))
        return IDLE_ADVANCED;
    if (instances->child)
        return NULL;
    return sk->empty ? IDLE_EMPTY_ITEMS : IDLE_DISCOVERY;
}

/* Moves the validated parts of `root` into a new template of `set`; when
 * the file already failed (`file_rc`, returned) its instances are still
 * checked so that one run reports every problem. MW_OK; MW_EINVAL after
 * reporting; MW_ENOMEM. */
static mw_code build(mw__template_set *set, vctx *c, cJSON *root, const char *check,
                     mw_code file_rc)
{
    mw__template t = {0};
    skipped sk = {0};
    mw_code rc = file_rc;
    cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "instances");
    t.instances = take_instances(c, list, &sk);
    if (rc != MW_OK)
        goto out;
    rc = MW_ENOMEM;
    if (!t.instances) {
        mw__diag_add(c->diag, c->file, 0, 0, "out of memory");
        goto out;
    }
    rc = MW_EINVAL;
    if (!t.instances->child && sk.bad) {
        problem(c, list, "no usable instance: file skipped");
        goto out;
    }
    t.idle = idle_reason(root, t.instances, &sk);
    t.ignore_ad_tags =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ignore_autodiscovery_tags"));
    t.check = mw__strdup(check);
    t.file = mw__strdup(c->file);
    t.ad_identifiers = cJSON_DetachItemFromObjectCaseSensitive(root, "ad_identifiers");
    t.init_config = cJSON_DetachItemFromObjectCaseSensitive(root, "init_config");
    if (t.ad_identifiers)
        check_all_vars(c, t.init_config, t.instances);
    if (!t.init_config || cJSON_IsNull(t.init_config)) {
        cJSON_Delete(t.init_config);
        t.init_config = cJSON_CreateObject();
    }
    t.is_default = ends_with(c->file, ".default");
    rc = MW_ENOMEM;
    if (!t.check || !t.file || !t.init_config || set_push(set, &t) != MW_OK) {
        mw__diag_add(c->diag, c->file, 0, 0, "out of memory");
        goto out;
    }
    t = (mw__template){0};
    rc = MW_OK;
out:
    template_free(&t);
    return rc;
}

mw_code mw__template_load_file(mw__template_set *set, const char *path, const char *check,
                               mw__diag *diag)
{
    mw__yaml_doc doc = {0};
    vctx c = {path, &doc, diag, 0};
    int instances = 0;
    mw_code rc = mw__yaml_load(path, &doc, diag);
    if (rc != MW_OK || is_not_a_check(doc.root))
        goto out;
    rc = check_root(&c, doc.root, &instances);
    if (instances)
        rc = build(set, &c, doc.root, check, rc);
out:
    mw__yaml_doc_free(&doc);
    return rc;
}

void mw__template_set_finish(mw__template_set *set)
{
    size_t j = 0;
    for (size_t i = 0; i < set->n; i++) {
        mw__template *t = &set->v[i];
        int superseded = 0;
        for (size_t k = 0; t->is_default && k < set->n && !superseded; k++)
            superseded = !set->v[k].is_default && strcmp(set->v[k].check, t->check) == 0;
        if (superseded)
            template_free(t);
        else
            set->v[j++] = *t;
    }
    set->n = j;
}

size_t mw__template_set_mark_checks(mw__template_set *set, const char *const *dirs, size_t ndirs)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++) {
        mw__template *t = &set->v[i];
        char *p = mw__check_find(dirs, ndirs, t->check);
        t->no_check = p == NULL;
        n += t->no_check ? 1 : 0;
        free(p);
    }
    return n;
}

char *mw__template_not_scheduled(const mw__template *t)
{
    if (t->idle && t->no_check)
        return mw__sprintf("%s; no check named %s", t->idle, t->check);
    if (t->idle)
        return mw__strdup(t->idle);
    if (t->no_check)
        return mw__sprintf("no check named %s (no %s.lua in the checks directories)", t->check,
                           t->check);
    return NULL;
}

void mw__template_set_free(mw__template_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        template_free(&set->v[i]);
    free(set->v);
    *set = (mw__template_set){0};
}

/* ------------------------------------------------------------ directories */

typedef struct found {
    char *path, *check;
} found;

typedef struct found_list {
    found *v;
    size_t n, cap;
} found_list;

/* Takes `path` and `check` (either NULL: out of memory). MW_OK, or
 * MW_ENOMEM. */
static mw_code found_add(found_list *l, char *path, char *check)
{
    if (!path || !check || mw__grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != MW_OK) {
        free(path);
        free(check);
        return MW_ENOMEM;
    }
    l->v[l->n++] = (found){path, check};
    return MW_OK;
}

static int cmp_found(const void *a, const void *b)
{
    return strcmp(((const found *)a)->path, ((const found *)b)->path);
}

/* Follows symlinks: Kubernetes mounts ConfigMap files as links. */
static int is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/* A template file name inside `<check>.d`: `metrics.yaml` is Datadog's
 * JMX metric list, not a config. */
static int is_config_name(const char *name)
{
    return name[0] != '.' && stem_len(name) > 0 && strcmp(name, "metrics.yaml") != 0;
}

static void scan_check_dir(found_list *l, const char *dir, const char *check, mw__diag *diag)
{
    DIR *d = opendir(dir);
    if (!d) {
        mw__diag_add(diag, dir, 0, 0, "cannot open: %s", strerror(errno));
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_config_name(e->d_name))
            continue;
        char *path = mw__sprintf("%s/%s", dir, e->d_name);
        if (path && !is_kind(path, S_IFREG)) {
            free(path);
            continue;
        }
        if (found_add(l, path, mw__strdup(check)) != MW_OK)
            mw__diag_add(diag, dir, 0, 0, "out of memory");
    }
    closedir(d);
}

/* One entry of a templates directory: `<check>.d/` or `<check>.yaml`. */
static void scan_entry(found_list *l, const char *dir, const char *name, mw__diag *diag)
{
    char *path = mw__sprintf("%s/%s", dir, name);
    size_t n = strlen(name);
    if (!path) {
        mw__diag_add(diag, dir, 0, 0, "out of memory");
        return;
    }
    if (n > 2 && ends_with(name, ".d") && is_kind(path, S_IFDIR)) {
        char *check = check_from(name, n - 2);
        if (check)
            scan_check_dir(l, path, check, diag);
        else
            mw__diag_add(diag, path, 0, 0, "not a valid check name (letters, digits, '_', '-')");
        free(check);
    } else if (stem_len(name) > 0 && is_kind(path, S_IFREG)) {
        char *check = check_from(name, stem_len(name));
        if (!check) {
            mw__diag_add(diag, path, 0, 0, "not a valid check name (letters, digits, '_', '-')");
            free(path);
        } else if (found_add(l, path, check) != MW_OK) {
            mw__diag_add(diag, dir, 0, 0, "out of memory");
        }
        return;
    }
    free(path);
}

size_t mw__templates_load_dir(mw__template_set *set, const char *dir, mw__diag *diag)
{
    size_t before = diag->n;
    found_list l = {0};
    DIR *d = opendir(dir);
    if (!d) {
        mw__diag_add(diag, dir, 0, 0, "cannot open templates directory: %s", strerror(errno));
        goto out;
    }
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            scan_entry(&l, dir, e->d_name, diag);
    closedir(d);
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_found);
    for (size_t i = 0; i < l.n; i++)
        mw__template_load_file(set, l.v[i].path, l.v[i].check, diag);
out:
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].path);
        free(l.v[i].check);
    }
    free(l.v);
    return diag->n - before;
}

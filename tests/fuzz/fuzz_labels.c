/*
 * fuzz_labels.c - libFuzzer target: a container's labels as check
 * configs (discovery/labels.h: v1, v2, both prefixes,
 * ignore_autodiscovery_tags) and as what the service is matched by
 * (discovery/match.h: the com.datadoghq.ad.check.id label, v1
 * `check_names: []`, label configs over file templates).
 *
 * The input is one label per line, `key=value` (the first '=' splits; a
 * line without one is a key with an empty value), e.g.
 *   com.datadoghq.ad.checks={"redisdb":{"instances":[{"host":"%%host%%"}]}}
 * The labels go into a fixed inspect document (a redis:7 container with
 * one address, two ports, a pid and an env var), which is built into a
 * service as the Docker source does, then matched against a fixed set of
 * file templates (by image, by container id, by a check.id value and one
 * static config).
 *
 * Properties: label configs come sorted by check, each with a valid check
 * name, an object init_config, a non-empty list of object instances, and
 * the label it came from; a check configured under moonwatch.ad. has no
 * config left from com.datadoghq.ad.; every problem is reported as
 * "label <key>: ...". Matching gives one item per instance, each either
 * resolved (init_config and instance, with tags a sorted list of unique
 * strings) or unresolved with a reason and no config; a file template
 * item only for a template that names one of the service's identifiers
 * (only the check.id value when the label is set) and whose check no
 * label configures, none at all after `check_names: []`; one problem per
 * label problem, naming the service.
 */
#include "core/base/util.h"
#include "discovery/labels.h"
#include "discovery/match.h"
#include "discovery/template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char inspect_base[] =
    "{\"Id\":\"" CID "\",\"Name\":\"/web\","
    "\"Config\":{\"Hostname\":\"web\",\"Image\":\"redis:7\","
    "\"Env\":[\"DD_ENV=prod\",\"PORT=6379\"],"
    "\"ExposedPorts\":{\"6379/tcp\":{},\"16379/tcp\":{}}},"
    "\"NetworkSettings\":{\"Networks\":{\"bridge\":{\"IPAddress\":\"127.0.0.2\"}}},"
    "\"State\":{\"Status\":\"running\",\"Pid\":42}}";

static const char *const sources[] = {"com.datadoghq.ad.checks", "com.datadoghq.ad.instances",
                                      "moonwatch.ad.checks", "moonwatch.ad.instances"};

static mw__template_set templates;

/* One file template; `ids` is a JSON list or NULL (a static config). */
static void add_template(const char *check, const char *ids, const char *instances)
{
    mw__template *t;
    if (mw__grow(&templates.v, &templates.cap, templates.n + 1, sizeof(*t)) != MW_OK)
        abort();
    t = &templates.v[templates.n++];
    memset(t, 0, sizeof(*t));
    t->check = mw__strdup(check);
    t->file = mw__strdup("/templates/fuzz.yaml");
    t->ad_identifiers = ids ? cJSON_Parse(ids) : NULL;
    t->init_config = cJSON_CreateObject();
    t->instances = cJSON_Parse(instances);
    if (!t->check || !t->file || (ids && !t->ad_identifiers) || !t->instances)
        abort();
}

static void setup(void)
{
    add_template("redisdb", "[\"redis\"]", "[{\"host\":\"%%host%%\",\"port\":\"%%port%%\"}]");
    add_template("http_check", "[\"docker://" CID "\"]",
                 "[{\"url\":\"http://%%host%%:%%port_0%%/\",\"tags\":[\"z\",\"a\",\"z\"]}]");
    add_template("custom", "[\"custom\",\"other\"]", "[{\"pid\":\"%%pid%%\"},{\"x\":1}]");
    add_template("disk", NULL, "[{}]");
}

/* The labels of the input, as an object of strings. */
static cJSON *labels_of(const char *p, size_t n)
{
    cJSON *labels = cJSON_CreateObject();
    const char *end = p + n;

    while (labels && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *key = mw__strndup(p, (size_t)((eq ? eq : stop) - p));
        char *value = eq ? mw__strndup(eq + 1, (size_t)(stop - eq - 1)) : mw__strdup("");
        if (!key || !value || !cJSON_AddItemToObject(labels, key, cJSON_CreateString(value)))
            abort();
        free(key);
        free(value);
        p = stop + 1;
    }
    return labels;
}

static mw__service *service_with(cJSON *labels)
{
    cJSON *doc = cJSON_Parse(inspect_base);
    char *err = NULL;
    mw__service *s = NULL;
    if (!doc)
        abort();
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(doc, "Config"), "Labels", labels);
    if (mw__service_from_inspect(doc, NULL, &s, &err) != MW_OK || !s || err)
        abort(); /* labels of strings never make the document bad */
    cJSON_Delete(doc);
    return s;
}

static int known_source(const char *s)
{
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        if (strcmp(s, sources[i]) == 0)
            return 1;
    return 0;
}

static int label_configures(const mw__label_configs *lc, const char *check)
{
    for (size_t i = 0; i < lc->n; i++)
        if (strcmp(lc->v[i].check, check) == 0)
            return 1;
    return 0;
}

static void check_configs(const mw__label_configs *lc)
{
    for (size_t i = 0; i < lc->n; i++) {
        const mw__label_config *c = &lc->v[i];
        const cJSON *inst;
        if (!mw__check_name_valid(c->check, strlen(c->check)) || !known_source(c->source))
            abort();
        if (i > 0 && strcmp(lc->v[i - 1].check, c->check) > 0)
            abort();
        if (!cJSON_IsObject(c->init_config) || !cJSON_IsArray(c->instances) || !c->instances->child)
            abort();
        cJSON_ArrayForEach(inst, c->instances) if (!cJSON_IsObject(inst)) abort();
        /* moonwatch.ad. wins for the checks it names */
        for (size_t j = 0; j < lc->n; j++)
            if (strcmp(lc->v[j].check, c->check) == 0 &&
                strncmp(c->source, "moonwatch.", 10) == 0 &&
                strncmp(lc->v[j].source, "moonwatch.", 10) != 0)
                abort();
    }
    for (size_t i = 0; i < lc->nerrors; i++)
        if (strncmp(lc->errors[i], "label ", 6) != 0)
            abort();
}

static const mw__template *template_of(const char *check)
{
    for (size_t i = 0; i < templates.n; i++)
        if (strcmp(templates.v[i].check, check) == 0)
            return &templates.v[i];
    return NULL;
}

static int names_identifier(const mw__template *t, const char *const *ids, size_t n)
{
    const cJSON *ad;
    cJSON_ArrayForEach(ad, t->ad_identifiers)
    {
        for (size_t i = 0; i < n; i++)
            if (strcmp(ad->valuestring, ids[i]) == 0)
                return 1;
    }
    return 0;
}

/* Unless ignored, the instance's tags are merged with the service's:
 * a list of unique strings, sorted. */
static void check_tags(const cJSON *inst, int ignore)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(inst, "tags"), *t, *prev = NULL;
    if (ignore || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(inst, "ignore_autodiscovery_tags")))
        return;
    if (!cJSON_IsArray(tags))
        abort(); /* the service has tags: there is a list */
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t) || (prev && strcmp(prev->valuestring, t->valuestring) >= 0))
            abort();
        prev = t;
    }
}

/* The label config an item came from. */
static const mw__label_config *config_of(const mw__label_configs *lc, const mw__match_item *it)
{
    for (size_t i = 0; i < lc->n; i++)
        if (strcmp(lc->v[i].check, it->check) == 0 && strcmp(lc->v[i].source, it->source + 6) == 0)
            return &lc->v[i];
    abort(); /* no label configures it */
}

static void check_item(const mw__match_item *it, const mw__label_configs *lc,
                       const char *const *ids, size_t nids)
{
    if (!it->check || !it->source)
        abort();
    if (it->reason ? it->init_config || it->instance : !it->init_config || !it->instance)
        abort(); /* never half-filled */
    if (strncmp(it->source, "label:", 6) == 0) {
        const mw__label_config *c = config_of(lc, it);
        if (it->instance)
            check_tags(it->instance, c->ignore_ad_tags);
        return;
    }
    const mw__template *t = template_of(it->check);
    if (!t || !t->ad_identifiers || lc->disable_files || label_configures(lc, it->check) ||
        !names_identifier(t, ids, nids))
        abort();
    if (it->instance)
        check_tags(it->instance, 0);
}

static void check_match(const mw__service *s, const mw__label_configs *lc)
{
    mw__tmplvars_opts o = {0};
    mw__match_result r = {0};
    const char *ids[3];
    size_t nids = mw__match_identifiers(s, ids);
    const char *check_id = mw__service_label(s, "com.datadoghq.ad.check.id");

    if (check_id && check_id[0] && (nids != 1 || strcmp(ids[0], check_id) != 0))
        abort();
    if (mw__match_service(&templates, s, &o, &r) != MW_OK)
        abort();
    if (r.nproblems != lc->nerrors)
        abort();
    for (size_t i = 0; i < r.nproblems; i++)
        if (strncmp(r.problems[i], s->id, strlen(s->id)) != 0)
            abort();
    for (size_t i = 0; i < r.n; i++)
        check_item(&r.v[i], lc, ids, nids);
    mw__match_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw__label_configs lc = {0};

    if (!templates.n)
        setup();
    mw__service *s = service_with(labels_of((const char *)data, size));
    if (mw__label_configs_parse(s->labels, &lc) != MW_OK)
        abort();
    check_configs(&lc);
    check_match(s, &lc);
    mw__label_configs_free(&lc);
    mw__service_free(s);
    return 0;
}

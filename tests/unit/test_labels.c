/*
 * test_labels.c - check configs from container labels: Datadog's v1 and
 * v2 formats under both prefixes, which one wins, `check_names: []`, and
 * every kind of bad label (broken JSON, unequal lengths, unsafe check
 * names, wrong types), each reported with its label key while the other
 * checks still load.
 *
 * A parse result is written out as text - one line per config
 * ("check source init=<json> instances=<json> [ignore_ad_tags]"), then
 * "disable_files", then "error: ..." lines - and compared whole.
 */
#include "core/base/buf.h"
#include "core/base/util.h"
#include "discovery/labels.h"
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>

#define DD "com.datadoghq.ad."
#define MW "moonwatch.ad."

static char *describe(const mw__label_configs *c)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    for (size_t i = 0; i < c->n; i++) {
        char *init = cJSON_PrintUnformatted(c->v[i].init_config);
        char *inst = cJSON_PrintUnformatted(c->v[i].instances);
        mw__buf_addf(&b, "%s %s init=%s instances=%s%s\n", c->v[i].check, c->v[i].source, init,
                     inst, c->v[i].ignore_ad_tags ? " ignore_ad_tags" : "");
        free(init);
        free(inst);
    }
    if (c->disable_files)
        mw__buf_adds(&b, "disable_files\n");
    for (size_t i = 0; i < c->nerrors; i++)
        mw__buf_addf(&b, "error: %s\n", c->errors[i]);
    char *s = mw__buf_take(&b, NULL);
    return s ? s : mw__strdup("");
}

/* Parses the labels given as key, value, ..., NULL and describes them. */
static char *parse(const char *key, ...)
{
    cJSON *labels = cJSON_CreateObject();
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *))
        cJSON_AddStringToObject(labels, k, va_arg(ap, const char *));
    va_end(ap);
    mw__label_configs c = {0};
    CHECK(mw__label_configs_parse(labels, &c) == MW_OK);
    char *s = describe(&c);
    mw__label_configs_free(&c);
    CHECK(c.n == 0 && c.v == NULL && c.nerrors == 0 && c.errors == NULL);
    cJSON_Delete(labels);
    return s;
}

#define CHECK_LABELS(want, ...)                                                                    \
    do {                                                                                           \
        char *got_ = parse(__VA_ARGS__, NULL);                                                     \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

static void test_none(void)
{
    mw__label_configs c = {0};
    CHECK(mw__label_configs_parse(NULL, &c) == MW_OK);
    CHECK(c.n == 0 && c.nerrors == 0 && !c.disable_files);
    mw__label_configs_free(&c);
    mw__label_configs_free(NULL);
    CHECK_LABELS("", "maintainer", "x", "com.datadoghq.tags.env", "prod");
    /* Only init_configs / instances, no check_names: not a config (Datadog). */
    CHECK_LABELS("", DD "instances", "[{}]", DD "init_configs", "[{}]");
}

static void test_v1(void)
{
    /* One check, one instance. */
    CHECK_LABELS("redisdb com.datadoghq.ad.instances init={} "
                 "instances=[{\"host\":\"%%host%%\",\"port\":\"6379\"}]\n",
                 DD "check_names", "[\"redisdb\"]", DD "init_configs", "[{}]", DD "instances",
                 "[{\"host\": \"%%host%%\", \"port\": \"6379\"}]");
    /* Two checks (Datadog's documentation example), sorted by name. */
    CHECK_LABELS(
        "apache com.datadoghq.ad.instances init={} "
        "instances=[{\"apache_status_url\":\"http://%%host%%/server-status?auto\"}]\n"
        "http_check com.datadoghq.ad.instances init={\"x\":1} "
        "instances=[{\"name\":\"My service\",\"url\":\"http://%%host%%\",\"timeout\":1}]\n",
        DD "check_names", "[\"http_check\",\"apache\"]", DD "init_configs", "[{\"x\":1},{}]",
        DD "instances",
        "[{\"name\":\"My service\",\"url\":\"http://%%host%%\",\"timeout\":1},"
        "{\"apache_status_url\":\"http://%%host%%/server-status?auto\"}]");
    /* An element of instances may be a list: several instances of one check. */
    CHECK_LABELS("a com.datadoghq.ad.instances init={} instances=[{\"n\":1},{\"n\":2}]\n"
                 "b com.datadoghq.ad.instances init={} instances=[{\"n\":3}]\n",
                 DD "check_names", "[\"a\",\"b\"]", DD "init_configs", "[{},{}]", DD "instances",
                 "[[{\"n\":1},{\"n\":2}],{\"n\":3}]");
    /* init_configs elements: {}, null, or a list of one object. */
    CHECK_LABELS("a com.datadoghq.ad.instances init={} instances=[{}]\n"
                 "b com.datadoghq.ad.instances init={\"k\":\"v\"} instances=[{}]\n"
                 "c com.datadoghq.ad.instances init={} instances=[{}]\n",
                 DD "check_names", "[\"a\",\"b\",\"c\"]", DD "init_configs",
                 "[null,[{\"k\":\"v\"}],{}]", DD "instances", "[{},{},{}]");
    /* The same check twice: both configs, in label order. */
    CHECK_LABELS("a com.datadoghq.ad.instances init={} instances=[{\"n\":1}]\n"
                 "a com.datadoghq.ad.instances init={} instances=[{\"n\":2}]\n",
                 DD "check_names", "[\"a\",\"a\"]", DD "init_configs", "[{},{}]", DD "instances",
                 "[{\"n\":1},{\"n\":2}]");
    /* ignore_autodiscovery_tags, read as Go's ParseBool. */
    CHECK_LABELS("a com.datadoghq.ad.instances init={} instances=[{}] ignore_ad_tags\n",
                 DD "check_names", "[\"a\"]", DD "init_configs", "[{}]", DD "instances", "[{}]",
                 DD "ignore_autodiscovery_tags", "True");
    CHECK_LABELS("a com.datadoghq.ad.instances init={} instances=[{}]\n", DD "check_names",
                 "[\"a\"]", DD "init_configs", "[{}]", DD "instances", "[{}]",
                 DD "ignore_autodiscovery_tags", "yes");
    /* The moonwatch prefix alone. */
    CHECK_LABELS("a moonwatch.ad.instances init={} instances=[{}]\n", MW "check_names", "[\"a\"]",
                 MW "init_configs", "[{}]", MW "instances", "[{}]");
}

static void test_v2(void)
{
    CHECK_LABELS(
        "nginx com.datadoghq.ad.checks init={} "
        "instances=[{\"nginx_status_url\":\"http://%%host%%:%%port%%/nginx_status\"}]\n"
        "redisdb com.datadoghq.ad.checks init={\"k\":1} "
        "instances=[{\"host\":\"%%host%%\"},{\"host\":\"%%host%%\",\"db\":1}]\n",
        DD "checks",
        "{\"redisdb\": {\"init_config\": {\"k\": 1}, \"instances\": "
        "[{\"host\": \"%%host%%\"}, {\"host\": \"%%host%%\", \"db\": 1}]},"
        " \"nginx\": {\"instances\": [{\"nginx_status_url\": "
        "\"http://%%host%%:%%port%%/nginx_status\"}], \"logs\": [{\"type\": \"docker\"}]}}");
    /* init_config null; "name" renames; ignore_autodiscovery_tags. */
    CHECK_LABELS("real com.datadoghq.ad.checks init={} instances=[{}] ignore_ad_tags\n",
                 DD "checks",
                 "{\"alias\": {\"name\": \"real\", \"init_config\": null, \"instances\": [{}], "
                 "\"ignore_autodiscovery_tags\": true}}");
    /* Logs-only (Datadog): nothing to run, nothing wrong. */
    CHECK_LABELS("", DD "checks", "{\"nginx\": {\"logs\": [{\"type\": \"docker\"}]}}");
    CHECK_LABELS("", DD "checks", "{\"nginx\": {\"instances\": [], \"logs\": []}}");
    CHECK_LABELS("", DD "checks", "{}");
    /* A key given twice: the last one wins, and it is said. */
    CHECK_LABELS("a com.datadoghq.ad.checks init={} instances=[{\"n\":2}]\n"
                 "error: label com.datadoghq.ad.checks: check \"a\" is configured twice: the last "
                 "one is used\n",
                 DD "checks",
                 "{\"a\":{\"instances\":[{\"n\":1}]},\"a\":{\"instances\":[{\"n\":2}]}}");
}

static void test_precedence(void)
{
    /* v2 wins over v1 of the same prefix, even a broken v1. */
    CHECK_LABELS("b com.datadoghq.ad.checks init={} instances=[{}]\n", DD "checks",
                 "{\"b\":{\"instances\":[{}]}}", DD "check_names", "[\"a\"", DD "init_configs",
                 "[{}]", DD "instances", "[{}]");
    /* check_names [] of an ignored v1 does not disable anything. */
    CHECK_LABELS("b com.datadoghq.ad.checks init={} instances=[{}]\n", DD "checks",
                 "{\"b\":{\"instances\":[{}]}}", DD "check_names", "[]");
    /* moonwatch.ad. wins per check; the other checks of com.datadoghq.ad. stay. */
    CHECK_LABELS("nginx com.datadoghq.ad.instances init={} instances=[{\"from\":\"dd\"}]\n"
                 "redisdb moonwatch.ad.checks init={} instances=[{\"from\":\"mw\"}]\n",
                 DD "check_names", "[\"redisdb\",\"nginx\"]", DD "init_configs", "[{},{}]",
                 DD "instances", "[[{\"from\":\"dd\"},{\"from\":\"dd2\"}],{\"from\":\"dd\"}]",
                 MW "checks", "{\"redisdb\":{\"instances\":[{\"from\":\"mw\"}]}}");
    CHECK_LABELS("a com.datadoghq.ad.checks init={} instances=[{\"from\":\"dd\"}]\n"
                 "b moonwatch.ad.instances init={} instances=[{\"from\":\"mw\"}]\n",
                 DD "checks", "{\"a\":{\"instances\":[{\"from\":\"dd\"}]}}", MW "check_names",
                 "[\"b\"]", MW "init_configs", "[{}]", MW "instances", "[{\"from\":\"mw\"}]");
}

static void test_disable_files(void)
{
    CHECK_LABELS("disable_files\n", DD "check_names", "[]");
    CHECK_LABELS("disable_files\n", DD "check_names", "[]", DD "init_configs", "[]", DD "instances",
                 "[]");
    CHECK_LABELS("disable_files\n", MW "check_names", " [ ] ");
    /* Files disabled, label configs of the other prefix still apply. */
    CHECK_LABELS("a moonwatch.ad.checks init={} instances=[{}]\ndisable_files\n", DD "check_names",
                 "[]", MW "checks", "{\"a\":{\"instances\":[{}]}}");
    /* [] with leftovers: still disabled, and the mismatch is reported. */
    CHECK_LABELS("disable_files\n"
                 "error: label com.datadoghq.ad.check_names: 0 check names, 0 init_configs, 1 "
                 "instances: the three lists must have the same length\n",
                 DD "check_names", "[]", DD "instances", "[{}]");
}

static void test_bad_json(void)
{
    CHECK_LABELS("error: label com.datadoghq.ad.check_names: invalid JSON: unexpected end at byte "
                 "10\n",
                 DD "check_names", "[\"redisdb\"", DD "init_configs", "[{}]", DD "instances",
                 "[{}]");
    CHECK_LABELS("error: label com.datadoghq.ad.instances: invalid JSON at byte 7 of 10, near "
                 "\"}]\\\"\"\n",
                 DD "check_names", "[\"a\"]", DD "init_configs", "[{}]", DD "instances",
                 "[{\"a\": }]\"");
    CHECK_LABELS("error: label com.datadoghq.ad.checks: invalid JSON at byte 31 of 35, near "
                 "\"}]}}\"\n",
                 DD "checks", "{\"redisdb\": {\"instances\": [{\"h\"}]}}");
    /* Trailing garbage is an error too. */
    CHECK_LABELS("error: label moonwatch.ad.checks: invalid JSON at byte 3 of 4, near \"x\"\n",
                 MW "checks", "{} x");
    CHECK_LABELS("error: label com.datadoghq.ad.checks: empty value, expected JSON\n", DD "checks",
                 "");
    /* Control characters in the quoted text are escaped. */
    CHECK_LABELS("error: label com.datadoghq.ad.checks: invalid JSON at byte 0 of 3, near "
                 "\"x\\x01\\xff\"\n",
                 DD "checks", "x\x01\xff");
    /* Over the size cap. */
    char *big = malloc(MW_LABEL_JSON_MAX + 2);
    memset(big, ' ', MW_LABEL_JSON_MAX + 1);
    big[0] = '[', big[MW_LABEL_JSON_MAX] = ']', big[MW_LABEL_JSON_MAX + 1] = '\0';
    CHECK_LABELS("error: label com.datadoghq.ad.check_names: value is 262145 bytes, over the "
                 "262144-byte limit\n",
                 DD "check_names", big);
    free(big);
}

static void test_v1_shapes(void)
{
    CHECK_LABELS("error: label com.datadoghq.ad.check_names: 2 check names, 1 init_configs, 2 "
                 "instances: the three lists must have the same length\n",
                 DD "check_names", "[\"a\",\"b\"]", DD "init_configs", "[{}]", DD "instances",
                 "[{},{}]");
    CHECK_LABELS("error: label com.datadoghq.ad.init_configs: missing, but "
                 "com.datadoghq.ad.check_names names 1 check\n",
                 DD "check_names", "[\"a\"]", DD "instances", "[{}]");
    CHECK_LABELS("error: label com.datadoghq.ad.instances: missing, but "
                 "com.datadoghq.ad.check_names names 2 checks\n",
                 DD "check_names", "[\"a\",\"b\"]", DD "init_configs", "[{},{}]");
    CHECK_LABELS("error: label com.datadoghq.ad.check_names: must be a JSON list, found a string\n",
                 DD "check_names", "\"redisdb\"", DD "init_configs", "[{}]", DD "instances",
                 "[{}]");
    CHECK_LABELS("error: label com.datadoghq.ad.instances: must be a JSON list, found an object\n",
                 DD "check_names", "[\"a\"]", DD "init_configs", "[{}]", DD "instances", "{}");
    /* Entry problems skip that check only. */
    CHECK_LABELS("ok com.datadoghq.ad.instances init={} instances=[{}]\n"
                 "error: label com.datadoghq.ad.check_names: [0] must be a check name string, "
                 "found a number\n"
                 "error: label com.datadoghq.ad.init_configs: [1] (check \"b\") must be an object "
                 "or null, found a string\n"
                 "error: label com.datadoghq.ad.instances: [2] (check \"c\") must be an object or "
                 "a list of objects, found a number\n"
                 "error: label com.datadoghq.ad.instances: [3][1] (check \"d\") must be an "
                 "object, found a list\n"
                 "error: label com.datadoghq.ad.instances: [4] (check \"e\") is an empty list: no "
                 "instance\n"
                 "error: label com.datadoghq.ad.init_configs: [5] (check \"f\") must be an object "
                 "or null, found a list\n",
                 DD "check_names", "[1,\"b\",\"c\",\"d\",\"e\",\"f\",\"ok\"]", DD "init_configs",
                 "[{},\"x\",{},{},{},[{},{}],{}]", DD "instances", "[{},{},7,[{},[]],[],{},{}]");
}

static void test_check_names(void)
{
    const char *why = " is not a valid check name (letters, digits, '_', '-', '.'; no leading "
                      "'.', no \"..\")\n";
    char want[2048];
    snprintf(want, sizeof want,
             "ok com.datadoghq.ad.instances init={} instances=[{}]\n"
             "error: label com.datadoghq.ad.check_names: [0] \"../x\"%s"
             "error: label com.datadoghq.ad.check_names: [1] \"a/b\"%s"
             "error: label com.datadoghq.ad.check_names: [2] \".hidden\"%s"
             "error: label com.datadoghq.ad.check_names: [3] \"\"%s"
             "error: label com.datadoghq.ad.check_names: [4] \"a b\"%s"
             "error: label com.datadoghq.ad.check_names: [5] \"a..b\"%s"
             "error: label com.datadoghq.ad.check_names: [6] \"x\\x0ay\"%s"
             "error: label com.datadoghq.ad.check_names: [7] \"/etc/passwd\"%s",
             why, why, why, why, why, why, why, why);
    CHECK_LABELS(want, DD "check_names",
                 "[\"../x\",\"a/b\",\".hidden\",\"\",\"a b\",\"a..b\",\"x\\ny\",\"/etc/passwd\","
                 "\"ok\"]",
                 DD "init_configs", "[{},{},{},{},{},{},{},{},{}]", DD "instances",
                 "[{},{},{},{},{},{},{},{},{}]");

    /* A name of 250 bytes is fine, 251 is not (and is shown truncated). */
    char name[260], labels[300];
    memset(name, 'n', 251);
    name[250] = '\0';
    snprintf(labels, sizeof labels, "{\"%s\":{\"instances\":[{}]}}", name);
    mw__label_configs c = {0};
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, DD "checks", labels);
    CHECK(mw__label_configs_parse(l, &c) == MW_OK);
    CHECK(c.n == 1 && c.nerrors == 0 && strlen(c.v[0].check) == 250);
    mw__label_configs_free(&c);
    name[250] = 'n', name[251] = '\0';
    snprintf(labels, sizeof labels, "{\"%s\":{\"instances\":[{}]}}", name);
    cJSON_ReplaceItemInObjectCaseSensitive(l, DD "checks", cJSON_CreateString(labels));
    CHECK(mw__label_configs_parse(l, &c) == MW_OK);
    CHECK(c.n == 0 && c.nerrors == 1);
    CHECK(c.nerrors == 1 && strstr(c.errors[0], "nnn...\": not a valid check name") != NULL);
    mw__label_configs_free(&c);
    cJSON_Delete(l);

    /* v2: the key and "name" are both checked. */
    CHECK_LABELS("ok com.datadoghq.ad.checks init={} instances=[{}]\n"
                 "error: label com.datadoghq.ad.checks: check \"../x\": not a valid check name "
                 "(letters, digits, '_', '-', '.'; no leading '.', no \"..\")\n"
                 "error: label com.datadoghq.ad.checks: check \"a/b\": not a valid check name "
                 "(letters, digits, '_', '-', '.'; no leading '.', no \"..\")\n"
                 "error: label com.datadoghq.ad.checks: check \"c\": \"name\" must be a string, "
                 "found a list\n",
                 DD "checks",
                 "{\"../x\":{\"instances\":[{}]},\"b\":{\"name\":\"a/b\",\"instances\":[{}]},"
                 "\"c\":{\"name\":[],\"instances\":[{}]},\"ok\":{\"instances\":[{}]}}");
}

static void test_v2_shapes(void)
{
    CHECK_LABELS("error: label com.datadoghq.ad.checks: must be a JSON object {\"<check>\": "
                 "{\"instances\": [...]}}, found a list\n",
                 DD "checks", "[{\"redisdb\":{}}]");
    CHECK_LABELS(
        "ok com.datadoghq.ad.checks init={} instances=[{\"a\":1}]\n"
        "error: label com.datadoghq.ad.checks: check \"a\": must be an object with "
        "\"instances\", found a list\n"
        "error: label com.datadoghq.ad.checks: check \"b\": no \"instances\": a check needs at "
        "least one instance\n"
        "error: label com.datadoghq.ad.checks: check \"c\": \"instances\" is empty: a check "
        "needs at least one instance\n"
        "error: label com.datadoghq.ad.checks: check \"d\": \"instances\" must be a list of "
        "objects, found an object\n"
        "error: label com.datadoghq.ad.checks: check \"e\": instances[1] must be an object, "
        "found a list\n"
        "error: label com.datadoghq.ad.checks: check \"f\": \"init_config\" must be an object "
        "or null, found a list\n"
        "error: label com.datadoghq.ad.checks: check \"g\": \"ignore_autodiscovery_tags\" must "
        "be true or false, found a string\n",
        DD "checks",
        "{\"a\":[],\"b\":{},\"c\":{\"instances\":[]},\"d\":{\"instances\":{}},"
        "\"e\":{\"instances\":[{},[{}]]},\"f\":{\"init_config\":[],\"instances\":[{}]},"
        "\"g\":{\"ignore_autodiscovery_tags\":\"true\",\"instances\":[{}]},"
        "\"ok\":{\"instances\":[{\"a\":1}]}}");
}

static mw_code collect(void *ud, const char *tag)
{
    return mw__buf_addf(ud, "%s,", tag);
}

/* The tags labels: key:value items are the container's tags; the rest is
 * reported (never a config problem: the other labels still load). */
static void test_tags(void)
{
    CHECK_LABELS("", DD "tags", "[\"team:payments\",\"tier:api\"]");
    CHECK_LABELS("ok com.datadoghq.ad.checks init={} instances=[{}]\n"
                 "error: label com.datadoghq.ad.tags: [1] \"novalue\" is not key:value (one ':' "
                 "between a key and a value): skipped\n"
                 "error: label com.datadoghq.ad.tags: [2] \"a:b:c\" is not key:value (one ':' "
                 "between a key and a value): skipped\n"
                 "error: label com.datadoghq.ad.tags: [3] \":v\" is not key:value (one ':' "
                 "between a key and a value): skipped\n"
                 "error: label com.datadoghq.ad.tags: [4] must be a \"key:value\" string, found a "
                 "number: skipped\n"
                 "error: label moonwatch.ad.tags: must be a JSON list of \"key:value\" strings, "
                 "found an object\n",
                 DD "checks", "{\"ok\":{\"instances\":[{}]}}", DD "tags",
                 "[\"team:a\",\"novalue\",\"a:b:c\",\":v\",3]", MW "tags", "{\"team\":\"a\"}");
    CHECK_LABELS("error: label com.datadoghq.ad.tags: invalid JSON at byte 10 of 11, near \"]\"\n",
                 DD "tags", "[\"team:a\"]]");

    /* What the service gets: both labels, in order, items as they are. */
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, MW "tags", "[\"zone:eu\"]");
    cJSON_AddStringToObject(l, DD "tags", "[\"team:a\",\"bad\",\"tier:api\",\"team:a\"]");
    mw__buf b;
    mw__buf_init(&b, 4096);
    CHECK(mw__label_tags(l, collect, &b, NULL) == MW_OK);
    CHECK_STR(mw__buf_str(&b), "team:a,tier:api,team:a,zone:eu,");
    /* At most MW_LABEL_TAGS_MAX per label, each at most MW_LABEL_TAG_MAX bytes. */
    mw__buf_reset(&b);
    mw__buf_adds(&b, "[");
    for (int i = 0; i < MW_LABEL_TAGS_MAX + 5; i++)
        mw__buf_addf(&b, "%s\"k%d:v\"", i ? "," : "", i);
    mw__buf_adds(&b, "]");
    cJSON_ReplaceItemInObjectCaseSensitive(l, DD "tags", cJSON_CreateString(mw__buf_str(&b)));
    char *big = malloc(MW_LABEL_TAG_MAX + 16);
    memset(big, 'x', MW_LABEL_TAG_MAX + 10);
    memcpy(big, "[\"k:", 4);
    memcpy(big + MW_LABEL_TAG_MAX + 6, "\"]", 3);
    cJSON_ReplaceItemInObjectCaseSensitive(l, MW "tags", cJSON_CreateString(big));
    free(big);
    mw__label_configs c = {0};
    size_t n = 0;
    CHECK(mw__label_tags(l, NULL, NULL, &c) == MW_OK);
    CHECK(c.nerrors == 2);
    CHECK_STR(c.nerrors > 0 ? c.errors[0] : NULL,
              "label com.datadoghq.ad.tags: more than 100 tags: the rest skipped");
    CHECK_STR(c.nerrors > 1 ? c.errors[1] : NULL,
              "label moonwatch.ad.tags: [0] is longer than 200 bytes: skipped");
    mw__label_configs_free(&c);
    mw__buf_reset(&b);
    CHECK(mw__label_tags(l, collect, &b, NULL) == MW_OK);
    for (const char *p = mw__buf_str(&b); *p; p++)
        n += *p == ',';
    CHECK(n == MW_LABEL_TAGS_MAX);
    mw__buf_free(&b);
    cJSON_Delete(l);
    CHECK(mw__label_tags(NULL, collect, NULL, NULL) == MW_OK);
}

/* A label that is not a string (never from Docker) is ignored. */
static void test_non_string_label(void)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(l, DD "check_names", 1);
    mw__label_configs c = {0};
    CHECK(mw__label_configs_parse(l, &c) == MW_OK);
    CHECK(c.n == 0 && c.nerrors == 0);
    mw__label_configs_free(&c);
    cJSON_Delete(l);
}

int main(void)
{
    test_none();
    test_v1();
    test_v2();
    test_precedence();
    test_disable_files();
    test_bad_json();
    test_v1_shapes();
    test_check_names();
    test_v2_shapes();
    test_non_string_label();
    test_tags();
    return TEST_RESULT();
}

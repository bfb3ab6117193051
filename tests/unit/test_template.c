/*
 * test_template.c - template directories: what loads, what is skipped and
 * reported (exact "file:line:col: message"), `.default` superseding, check
 * names from paths, and finding check files. Fixture trees live in
 * tests/fixtures/templates/{good,bad,checks1,checks2}.
 */
#include "core/base/diag.h"
#include "core/base/util.h"
#include "discovery/template.h"
#include "test.h"

#include <stdlib.h>

#define TPL MW_TEST_FIXTURES "/templates"

static const mw__template *find(const mw__template_set *set, const char *file_suffix)
{
    size_t m = strlen(file_suffix);
    for (size_t i = 0; i < set->n; i++) {
        size_t n = strlen(set->v[i].file);
        if (n >= m && strcmp(set->v[i].file + n - m, file_suffix) == 0)
            return &set->v[i];
    }
    return NULL;
}

static int has_diag(const mw__diag *d, const char *want)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->items[i], want) == 0)
            return 1;
    fprintf(stderr, "missing diag: %s\n", want);
    return 0;
}

static char *print(const cJSON *v)
{
    return v ? cJSON_PrintUnformatted(v) : NULL;
}

#define CHECK_JSON(node, want)                                                                     \
    do {                                                                                           \
        char *j_ = print(node);                                                                    \
        CHECK_STR(j_, want);                                                                       \
        free(j_);                                                                                  \
    } while (0)

static void test_good_dir(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    CHECK(mw__templates_load_dir(&set, TPL "/good", &diag) == 0);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "unexpected: %s\n", diag.items[i]);
    /* disk has conf.yaml and conf.yaml.default until finish. */
    CHECK(set.n == 7);
    mw__template_set_finish(&set);
    CHECK(set.n == 6);

    /* Sorted by path, hidden files and other extensions ignored. */
    static const char *const order[] = {
        "/good/disk.d/conf.yaml",         "/good/http_check.d/conf.yaml",
        "/good/mysql.d/conf.yml",         "/good/nginx.yaml",
        "/good/redisdb.d/auto_conf.yaml", "/good/system.d/conf.yaml.default"};
    for (size_t i = 0; i < set.n && i < MW_ARRAY_LEN(order); i++) {
        const char *f = set.v[i].file;
        CHECK(strlen(f) > strlen(order[i]) &&
              strcmp(f + strlen(f) - strlen(order[i]), order[i]) == 0);
    }

    const mw__template *t = find(&set, "/redisdb.d/auto_conf.yaml");
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(t->check, "redisdb");
        CHECK_JSON(t->ad_identifiers, "[\"redis\"]");
        CHECK_JSON(t->init_config, "{}");
        /* Template variables are kept verbatim, as strings. */
        CHECK_JSON(t->instances, "[{\"host\":\"%%host%%\",\"port\":\"%%port%%\","
                                 "\"password\":\"%%env_REDIS_PASSWORD%%\","
                                 "\"tags\":[\"redis_port:%%port%%\"]}]");
        CHECK(!t->is_default);
    }

    t = find(&set, "/http_check.d/conf.yaml");
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(t->check, "http_check");
        CHECK(t->ad_identifiers == NULL);
        CHECK_JSON(t->init_config, "{\"timeout\":5}");
        CHECK(cJSON_GetArraySize(t->instances) == 2);
        const cJSON *home = cJSON_GetArrayItem(t->instances, 0);
        CHECK_NEAR(cJSON_GetObjectItem(home, "min_collection_interval")->valuedouble, 30, 0);
        CHECK_NEAR(cJSON_GetObjectItem(home, "timeout")->valuedouble, 2.5, 0);
        CHECK_JSON(cJSON_GetObjectItem(home, "tags"), "[\"env:test\",\"team:core\"]");
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(home, "ignore_autodiscovery_tags")));
        /* `tags:` with its items commented out is absent; `no` is false. */
        CHECK_JSON(cJSON_GetArrayItem(t->instances, 1),
                   "{\"name\":\"health\",\"url\":\"http://127.0.0.1:8080/health\","
                   "\"verify\":false}");
    }

    t = find(&set, "/nginx.yaml");
    CHECK(t && strcmp(t->check, "nginx") == 0);
    t = find(&set, "/mysql.d/conf.yml");
    CHECK(t && strcmp(t->check, "mysql") == 0);

    /* .default superseded by conf.yaml of the same check... */
    CHECK(find(&set, "/disk.d/conf.yaml.default") == NULL);
    t = find(&set, "/disk.d/conf.yaml");
    CHECK(t && !t->is_default);
    /* ...and kept when it is the check's only config. */
    t = find(&set, "/system.d/conf.yaml.default");
    CHECK(t && t->is_default && strcmp(t->check, "system") == 0);

    mw__template_set_free(&set);
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

static void test_bad_dir(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    size_t n = mw__templates_load_dir(&set, TPL "/bad", &diag);
    CHECK(n == diag.n);
    CHECK(n == 21);
    const char *const want[] = {
        TPL "/bad/bad+name.d: not a valid check name (letters, digits, '_', '-')",
        TPL "/bad/bad name.yaml: not a valid check name (letters, digits, '_', '-')",
        TPL "/bad/broken.d/conf.yaml:4:10: mapping values are not allowed in this context",
        TPL "/bad/empty.d/conf.yaml:2:12: \"instances\" is empty: a template needs at least "
            "one instance",
        TPL "/bad/list.yaml:1:1: expected a mapping with \"instances\" at the top level, found "
            "a list",
        TPL "/bad/noinst.yaml:1:1: no \"instances\": a template needs a list of at least one "
            "instance",
        TPL "/bad/void.yaml: empty file: expected a mapping with \"instances\"",
        TPL "/bad/notmap.d/conf.yaml:4:5: an instance must be a mapping, found a string "
            "(instance 2 skipped)",
        TPL "/bad/notmap.d/conf.yaml:6:16: \"tags\" item 2 must be a non-empty string, found a "
            "number (instance 3 skipped)",
        TPL "/bad/notmap.d/conf.yaml:8:30: \"min_collection_interval\" is 0.5, below the 1 "
            "second minimum: using 1",
        TPL "/bad/types.d/conf.yaml:3:5: \"ad_identifiers\" item 2 must be a non-empty string, "
            "found an empty string",
        TPL "/bad/types.d/conf.yaml:4:14: \"init_config\" must be a mapping or empty, found a "
            "list",
        TPL "/bad/types.d/conf.yaml:6:30: \"min_collection_interval\" must be a number of "
            "seconds, found a string (instance 1 skipped)",
        TPL "/bad/types.d/conf.yaml:7:14: \"timeout\" must be greater than 0, found 0 (instance "
            "2 skipped)",
        TPL "/bad/types.d/conf.yaml:8:11: \"tags\" must be a list of strings, found a string "
            "(instance 2 skipped)",
        TPL "/bad/types.d/conf.yaml:9:22: \"memory_limit_mb\" must be greater than 0, found -1 "
            "(instance 3 skipped)",
        TPL "/bad/types.d/conf.yaml:10:14: \"service\" must be a string, found a list (instance "
            "3 skipped)",
        TPL "/bad/types.d/conf.yaml:11:32: \"ignore_autodiscovery_tags\" must be true or false, "
            "found a string (instance 3 skipped)",
        TPL "/bad/discobad.d/auto_conf.yaml:3:12: \"discovery\" must be a mapping, found a "
            "boolean",
        TPL "/bad/cardbad.d/auto_conf.yaml:3:24: \"check_tag_cardinality\" must be low, "
            "orchestrator or high, found \"medium\"",
        TPL "/bad/dockerimg.d/conf.yaml:3:3: \"docker_images\" is no longer read: use "
            "\"ad_identifiers\"",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(want); i++)
        CHECK(has_diag(&diag, want[i]));

    /* The sound files and instances still load. */
    CHECK(set.n == 2);
    const mw__template *t = find(&set, "/fine.d/conf.yaml");
    CHECK(t && strcmp(t->check, "fine") == 0);
    t = find(&set, "/notmap.d/conf.yaml");
    CHECK(t != NULL);
    if (t)
        CHECK_JSON(t->instances,
                   "[{\"host\":\"a\"},{\"host\":\"d\",\"min_collection_interval\":1}]");
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

/* Constructs of the templates Datadog's integrations ship, one file each
 * in tests/fixtures/templates/datadog: every one loads without a problem;
 * those that schedule nothing say why. */
static void test_datadog_dir(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    CHECK(mw__templates_load_dir(&set, TPL "/datadog", &diag) == 0);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "unexpected: %s\n", diag.items[i]);
    /* Logs-only and JMX metrics files are not checks: 12 of 14 load. */
    CHECK(set.n == 12);
    CHECK(find(&set, "/logs_ad.d/auto_conf.yaml") == NULL);
    CHECK(find(&set, "/jmx_metrics.d/extra-metrics.yaml") == NULL);

    /* Configuration discovery: loaded, no instances, and why. */
    const char *idle[] = {"/discovery_empty.d/auto_conf.yaml",
                          "/discovery_prefix.d/auto_conf.yaml"};
    for (size_t i = 0; i < MW_ARRAY_LEN(idle); i++) {
        const mw__template *t = find(&set, idle[i]);
        CHECK(t && t->ad_identifiers && cJSON_GetArraySize(t->instances) == 0);
        CHECK(t && t->idle && strstr(t->idle, "configuration discovery template"));
    }
    /* ...unless it has instances of its own: those stay. */
    const mw__template *t = find(&set, "/discovery_ports.d/auto_conf.yaml");
    CHECK(t && !t->idle);
    if (t)
        CHECK_JSON(t->instances,
                   "[{\"openmetrics_endpoint\":\"http://%%host%%:%%discovered_port%%/metrics\"}]");

    /* A null item is skipped; only null items: loaded, nothing to run. */
    t = find(&set, "/null_first.d/auto_conf.yaml");
    CHECK(t && !t->idle);
    if (t)
        CHECK_JSON(t->instances, "[{\"host\":\"%%host%%\",\"port\":\"9012\"}]");
    t = find(&set, "/null_only.d/conf.yaml.default");
    CHECK(t && t->idle && cJSON_GetArraySize(t->instances) == 0 && !t->ad_identifiers);
    CHECK(t && t->idle && strstr(t->idle, "every item of \"instances\" is empty"));
    /* A dash, comments, then keys deeper: a mapping, not a null. */
    t = find(&set, "/dash_options.d/conf.yaml.default");
    CHECK(t && !t->idle);
    if (t) {
        CHECK_JSON(t->instances, "[{\"min_collection_interval\":20}]");
        CHECK_JSON(t->ad_identifiers, "[\"_special_listener\"]");
    }

    /* Typed options holding a variable wait for their value. */
    t = find(&set, "/typed_var.d/auto_conf.yaml");
    CHECK(t != NULL);
    if (t)
        CHECK_JSON(t->instances, "[{\"ip_address\":\"%%host%%\",\"timeout\":\"%%extra_timeout%%\","
                                 "\"min_collection_interval\":\"%%extra_interval%%\","
                                 "\"ignore_autodiscovery_tags\":\"%%extra_no_tags%%\"}]");
    t = find(&set, "/extra_vars.d/auto_conf.yaml");
    CHECK(t && !t->idle && cJSON_GetArraySize(t->instances) == 1);

    /* CEL selectors load (not evaluated: the identifiers match). */
    t = find(&set, "/cel_containers.d/auto_conf.yaml");
    CHECK(t && !t->idle && t->ad_identifiers);
    t = find(&set, "/cel_processes.d/auto_conf_process.yaml");
    CHECK(t && !t->idle && strcmp(t->check, "cel_processes") == 0);
    if (t)
        CHECK_JSON(t->ad_identifiers, "[\"cel://process\"]");

    /* File-level options. */
    t = find(&set, "/file_options.d/auto_conf.yaml");
    CHECK(t && t->ignore_ad_tags && !t->idle);
    t = find(&set, "/advanced_ad.d/conf.yaml");
    CHECK(t && !t->ad_identifiers && t->idle && strstr(t->idle, "advanced_ad_identifiers"));
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

/* Which templates schedule nothing whatever the containers, and why. */
static void test_not_scheduled(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    CHECK(mw__template_load_file(&set, TPL "/datadog/discovery_empty.d/auto_conf.yaml", "foo",
                                 &diag) == MW_OK);
    CHECK(mw__template_load_file(&set, TPL "/good/nginx.yaml", "bar", &diag) == MW_OK);
    CHECK(mw__template_load_file(&set, TPL "/good/nginx.yaml", "nope", &diag) == MW_OK);
    CHECK(set.n == 3 && diag.n == 0);
    const char *dirs[] = {TPL "/checks1", TPL "/checks2"};
    CHECK(mw__template_set_mark_checks(&set, dirs, 2) == 1);
    CHECK(set.n == 3 && !set.v[0].no_check && !set.v[1].no_check && set.v[2].no_check);
    char *why = mw__template_not_scheduled(&set.v[0]);
    CHECK(why && strncmp(why, "configuration discovery template", 32) == 0 &&
          !strstr(why, "no check named"));
    free(why);
    CHECK(mw__template_not_scheduled(&set.v[1]) == NULL);
    why = mw__template_not_scheduled(&set.v[2]);
    CHECK_STR(why, "no check named nope (no nope.lua in the checks directories)");
    free(why);
    /* Both: the template's own reason, then the missing check. */
    set.v[0].no_check = 1;
    why = mw__template_not_scheduled(&set.v[0]);
    CHECK(why && strstr(why, "nothing is scheduled; no check named foo"));
    free(why);
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

static void test_load_file(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    CHECK(mw__template_load_file(&set, TPL "/good/nginx.yaml", "nginx", &diag) == MW_OK);
    CHECK(mw__template_load_file(&set, TPL "/bad/empty.d/conf.yaml", "empty", &diag) == MW_EINVAL);
    CHECK(mw__template_load_file(&set, TPL "/nope.yaml", "nope", &diag) == MW_EIO);
    /* A logs-only Datadog config is not a check: nothing loaded, no problem. */
    CHECK(mw__template_load_file(&set, TPL "/good/logs_only.d/conf.yaml", "logs_only", &diag) ==
          MW_OK);
    CHECK(set.n == 1 && diag.n == 2);
    CHECK(diag.n == 2 && strstr(diag.items[1], "/nope.yaml: cannot read: ") != NULL);
    /* YAML that does not parse, and a file whose instances are all bad. */
    CHECK(mw__template_load_file(&set, TPL "/bad/broken.d/conf.yaml", "broken", &diag) ==
          MW_EPARSE);
    CHECK(mw__template_load_file(&set, TPL "/bad/types.d/conf.yaml", "types", &diag) == MW_EINVAL);
    CHECK(set.n == 1 && diag.n > 3);
    /* Missing directory: reported, nothing else happens. */
    CHECK(mw__templates_load_dir(&set, TPL "/missing", &diag) == 1);
    CHECK(set.n == 1);
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

/* Unknown template variables are reported with their position at load;
 * the instances stay (every matching container reports them unresolved). */
static void test_unknown_vars(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    const char *f = TPL "/vars/typo.d/auto_conf.yaml";
    CHECK(mw__template_load_file(&set, f, "typo", &diag) == MW_OK);
    CHECK(set.n == 1 && cJSON_GetArraySize(set.v[0].instances) == 2);
    CHECK(diag.n == 2);
    char want[512];
    snprintf(want, sizeof want, "%s:7:10: %%%%hots%%%%: unknown template variable", f);
    CHECK_STR(diag.n > 0 ? diag.items[0] : NULL, want);
    snprintf(want, sizeof want, "%s:10:42: %%%%nope%%%%: unknown template variable", f);
    CHECK_STR(diag.n > 1 ? diag.items[1] : NULL, want);
    mw__diag_free(&diag);
    mw__template_set_free(&set);
}

static void test_finish_across_dirs(void)
{
    /* A .default in one directory yields to a config in another. */
    mw__template_set set = {0};
    mw__diag diag = {0};
    CHECK(mw__template_load_file(&set, TPL "/good/system.d/conf.yaml.default", "system", &diag) ==
          MW_OK);
    CHECK(mw__template_load_file(&set, TPL "/good/nginx.yaml", "system", &diag) == MW_OK);
    CHECK(mw__template_load_file(&set, TPL "/good/disk.d/conf.yaml.default", "disk", &diag) ==
          MW_OK);
    mw__template_set_finish(&set);
    CHECK(set.n == 2);
    CHECK(set.n == 2 && !set.v[0].is_default && strcmp(set.v[0].check, "system") == 0);
    CHECK(set.n == 2 && set.v[1].is_default && strcmp(set.v[1].check, "disk") == 0);
    mw__template_set_free(&set);
    mw__diag_free(&diag);
}

#define CHECK_NAME(path, want)                                                                     \
    do {                                                                                           \
        char *n_ = mw__template_check_name(path);                                                  \
        const char *w_ = (want);                                                                   \
        if (w_)                                                                                    \
            CHECK_STR(n_, w_);                                                                     \
        else                                                                                       \
            CHECK(n_ == NULL);                                                                     \
        free(n_);                                                                                  \
    } while (0)

static void test_check_name(void)
{
    CHECK_NAME("/etc/mw/redisdb.d/conf.yaml", "redisdb");
    CHECK_NAME("/etc/mw/redisdb.d/auto_conf.yaml", "redisdb");
    CHECK_NAME("redisdb.d/conf.yaml.default", "redisdb");
    CHECK_NAME("x/mysql.d/conf.yml", "mysql");
    CHECK_NAME("/etc/mw/nginx.yaml", "nginx");
    CHECK_NAME("nginx.yaml", "nginx");
    CHECK_NAME("./nginx.yml", "nginx");
    CHECK_NAME("/etc/datadog-agent/conf.d/http_check.yaml", "http_check");
    CHECK_NAME("/a/b.c-d_e.d/x.yaml", "b.c-d_e");
    CHECK_NAME("/etc/mw/redisdb.d/conf.yaml.example", NULL);
    CHECK_NAME("/etc/mw/redisdb.d/.conf.yaml", NULL);
    CHECK_NAME("/etc/mw/redisdb.d/README.md", NULL);
    CHECK_NAME("/etc/mw/.d/conf.yaml", NULL);
    CHECK_NAME("/etc/mw/bad name.d/conf.yaml", NULL);
    CHECK_NAME("/etc/mw/.yaml", NULL);
    CHECK_NAME("", NULL);
}

static void test_check_find(void)
{
    const char *dirs[] = {TPL "/checks1", TPL "/checks2", TPL "/missing"};
    char *p = mw__check_find(dirs, 3, "foo");
    CHECK_STR(p, TPL "/checks1/foo.lua");
    free(p);
    p = mw__check_find(dirs, 3, "bar");
    CHECK_STR(p, TPL "/checks2/bar.lua");
    free(p);
    /* checks1/dir.lua is a directory: not a check, the next dir's file wins. */
    p = mw__check_find(dirs, 3, "dir");
    CHECK_STR(p, TPL "/checks2/dir.lua");
    free(p);
    CHECK(mw__check_find(dirs, 3, "baz") == NULL);
    CHECK(mw__check_find(dirs, 0, "foo") == NULL);
    static const char *const refused[] = {
        "../x",    "a/b", "",     "..",   ".",   "/etc",           "a..b",
        ".hidden", "a b", "a\\b", "f\no", "x;y", "../checks1/foo", "checks1/foo"};
    for (size_t i = 0; i < MW_ARRAY_LEN(refused); i++)
        CHECK(mw__check_find(dirs, 3, refused[i]) == NULL);
    CHECK(mw__check_find(dirs, 3, NULL) == NULL);
    /* A name that walks up from one dir into another is refused too. */
    const char *up[] = {TPL "/checks1"};
    CHECK(mw__check_find(up, 1, "../checks2/bar") == NULL);
}

int main(void)
{
    test_good_dir();
    test_bad_dir();
    test_unknown_vars();
    test_datadog_dir();
    test_not_scheduled();
    test_load_file();
    test_finish_across_dirs();
    test_check_name();
    test_check_find();
    return TEST_RESULT();
}

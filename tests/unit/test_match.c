/*
 * test_match.c - which configs a service gets: identifiers (docker://id,
 * long and short image, or only the check.id label), file templates
 * matched on ad_identifiers (tests/fixtures/match/templates), label
 * configs replacing file templates of the same check, `check_names: []`,
 * per-instance resolution where one bad instance never spoils another,
 * service tags merged into instance tags, and label problems reported
 * with the service id.
 *
 * A result is written out one line per item ("check source#index
 * init=<json> instance=<json>" or "check source#index unresolved:
 * <reason>"), then "problem: ..." lines, and compared whole.
 */
#include "core/base/buf.h"
#include "core/base/diag.h"
#include "core/base/util.h"
#include "discovery/match.h"
#include "test.h"
#include "tests/support/svc_spec.h"

#include <stdlib.h>

#define TPL MW_TEST_FIXTURES "/match/templates"
#define CID MW_TEST_CID
#define AID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* ------------------------------------------------------------ services */

static void svc_label(mw__service *s, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(s->labels, key);
    cJSON_AddStringToObject(s->labels, key, value);
}

/* ------------------------------------------------------------ matching */

static mw__template_set set;
static const char *const allow[] = {"PORT"};
static const mw__tmplvars_opts opts = {NULL, allow, MW_ARRAY_LEN(allow)};

static const char *rel(const char *path)
{
    size_t n = strlen(TPL "/");
    return strncmp(path, TPL "/", n) == 0 ? path + n : path;
}

static char *describe(const mw__match_result *r)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    for (size_t i = 0; i < r->n; i++) {
        const mw__match_item *it = &r->v[i];
        mw__buf_addf(&b, "%s %s#%zu ", it->check, rel(it->source), it->index);
        if (it->reason) {
            CHECK(it->init_config == NULL && it->instance == NULL);
            mw__buf_addf(&b, "unresolved: %s\n", it->reason);
            continue;
        }
        char *init = cJSON_PrintUnformatted(it->init_config);
        char *inst = cJSON_PrintUnformatted(it->instance);
        mw__buf_addf(&b, "init=%s instance=%s\n", init, inst);
        free(init);
        free(inst);
    }
    for (size_t i = 0; i < r->nproblems; i++)
        mw__buf_addf(&b, "problem: %s\n", r->problems[i]);
    char *s = mw__buf_take(&b, NULL);
    return s ? s : mw__strdup("");
}

static char *match_with(const mw__template_set *ts, const mw__service *svc)
{
    mw__match_result r = {0};
    CHECK(mw__match_service(ts, svc, &opts, &r) == MW_OK);
    char *s = describe(&r);
    mw__match_result_free(&r);
    CHECK(r.n == 0 && r.v == NULL && r.nproblems == 0);
    return s;
}

#define CHECK_MATCH_SET(ts, svc, want)                                                             \
    do {                                                                                           \
        char *got_ = match_with(ts, svc);                                                          \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

#define CHECK_MATCH(svc, want) CHECK_MATCH_SET(&set, svc, want)

/* The tags every "redis" service below carries. */
#define REDIS_TAGS "'tags':['image_name:docker.io/library/redis','short_image:redis']"
#define REDIS      "{'nets':[['bridge','127.0.0.2','']],'ports':[[6379,'tcp']]," REDIS_TAGS "}"
#define TAGS_JSON  "\"image_name:docker.io/library/redis\",\"short_image:redis\""

/* ------------------------------------------------------------ tests */

static void test_identifiers(void)
{
    const char *ids[3];
    mw__service *s = mw__test_service("{}");
    CHECK(mw__match_identifiers(s, ids) == 3);
    CHECK_STR(ids[0], "docker://" CID);
    CHECK_STR(ids[1], "docker.io/library/redis");
    CHECK_STR(ids[2], "redis");
    svc_label(s, "com.datadoghq.ad.check.id", "");
    CHECK(mw__match_identifiers(s, ids) == 3);
    svc_label(s, "com.datadoghq.ad.check.id", "my-custom-id");
    CHECK(mw__match_identifiers(s, ids) == 1);
    CHECK_STR(ids[0], "my-custom-id");
    mw__service_free(s);

    s = mw__test_service("{'image_long':'redis','image_short':'redis'}");
    CHECK(mw__match_identifiers(s, ids) == 2);
    CHECK_STR(ids[0], "docker://" CID);
    CHECK_STR(ids[1], "redis");
    mw__service_free(s);

    s = mw__test_service("{'image_long':'','image_short':'busybox'}");
    CHECK(mw__match_identifiers(s, ids) == 2);
    CHECK_STR(ids[1], "busybox");
    mw__service_free(s);
}

static void test_short_image(void)
{
    mw__service *s = mw__test_service(REDIS);
    CHECK_MATCH(s, "multi multi.d/conf.yaml#0 init={\"verbose\":true} "
                   "instance={\"host\":\"127.0.0.2\",\"tags\":[\"a:1\",\"b:2\"," TAGS_JSON "]}\n"
                   "multi multi.d/conf.yaml#1 unresolved: %%env_NOPE%%: NOPE is not in the env "
                   "allowlist\n"
                   "multi multi.d/conf.yaml#2 init={\"verbose\":true} "
                   "instance={\"host\":\"127.0.0.2\",\"ignore_autodiscovery_tags\":true,"
                   "\"tags\":[\"z:1\"]}\n"
                   "multi multi.d/conf.yaml#3 init={\"verbose\":true} "
                   "instance={\"url\":\"http://127.0.0.2:6379\",\"tags\":[" TAGS_JSON "]}\n"
                   "other other.yaml#0 init={} instance={\"name\":\"other\",\"tags\":[" TAGS_JSON
                   "]}\n"
                   "redisdb redisdb.d/auto_conf.yaml#0 init={} "
                   "instance={\"host\":\"127.0.0.2\",\"port\":6379,\"tags\":[" TAGS_JSON "]}\n");
    mw__service_free(s);
}

static void test_long_image(void)
{
    mw__service *s =
        mw__test_service("{'image_long':'docker.io/library/nginx','image_short':'nginx',"
                         "'nets':[['bridge','127.0.0.3','']],'ports':[[80,'tcp']]}");
    CHECK_MATCH(s, "nginx nginx.d/auto_conf.yaml#0 init={} "
                   "instance={\"nginx_status_url\":\"http://127.0.0.3:80/nginx_status/\"}\n"
                   "other other.yaml#0 init={} instance={\"name\":\"other\"}\n");
    mw__service_free(s);

    /* Another registry's nginx: only the short name matches. */
    s = mw__test_service("{'image_long':'registry.local:5000/team/nginx','image_short':'nginx'}");
    CHECK_MATCH(s, "other other.yaml#0 init={} instance={\"name\":\"other\"}\n");
    mw__service_free(s);
}

static void test_docker_id(void)
{
    mw__service *s =
        mw__test_service("{'cid':'" AID "','image_long':'busybox','image_short':'busybox',"
                         "'nets':[['bridge','','fd00::2']],'ports':[[8080,'tcp']]}");
    CHECK_MATCH(s,
                "byid byid.d/conf.yaml#0 init={} instance={\"url\":\"http://[fd00::2]:8080/\"}\n");
    mw__service_free(s);
}

static void test_check_id_label(void)
{
    /* The label replaces the image names: redis templates no longer match. */
    mw__service *s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.check.id", "my-custom-id");
    CHECK_MATCH(s, "custom custom.d/conf.yaml#0 init={} "
                   "instance={\"name\":\"custom\",\"tags\":[" TAGS_JSON "]}\n");
    mw__service_free(s);
}

static void test_label_overrides_file(void)
{
    mw__service *s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.checks",
              "{\"redisdb\":{\"init_config\":{\"k\":\"%%container_name%%\"},"
              "\"instances\":[{\"host\":\"%%host%%\",\"from\":\"label\"}]},"
              "\"aaa\":{\"instances\":[{\"p\":\"%%port%%\"}]}}");
    /* Files first (no file redisdb any more), then labels by check name. */
    char *got = match_with(&set, s);
    const char *tail =
        "other other.yaml#0 init={} instance={\"name\":\"other\",\"tags\":[" TAGS_JSON "]}\n"
        "aaa label:com.datadoghq.ad.checks#0 init={} "
        "instance={\"p\":6379,\"tags\":[" TAGS_JSON "]}\n"
        "redisdb label:com.datadoghq.ad.checks#0 init={\"k\":\"web\"} "
        "instance={\"host\":\"127.0.0.2\",\"from\":\"label\",\"tags\":[" TAGS_JSON "]}\n";
    CHECK(strncmp(got, "multi multi.d/conf.yaml#0 ", 26) == 0);
    CHECK(strlen(got) > strlen(tail) && strcmp(got + strlen(got) - strlen(tail), tail) == 0);
    CHECK(strstr(got, "redisdb.d") == NULL);
    free(got);
    mw__service_free(s);

    /* A label config that did not load leaves the file template in place. */
    s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.checks", "{\"redisdb\":{\"instances\":\"nope\"}}");
    got = match_with(&set, s);
    CHECK(strstr(got, "redisdb redisdb.d/auto_conf.yaml#0 ") != NULL);
    CHECK(strstr(got,
                 "problem: docker://" CID " label com.datadoghq.ad.checks: check "
                 "\"redisdb\": \"instances\" must be a list of objects, found a string\n") != NULL);
    free(got);
    mw__service_free(s);
}

static void test_disable_files(void)
{
    mw__service *s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.check_names", "[]");
    CHECK_MATCH(s, "");
    /* Files off, the moonwatch.ad. label config still applies. */
    svc_label(s, "moonwatch.ad.checks", "{\"redisdb\":{\"instances\":[{\"h\":\"%%host%%\"}]}}");
    CHECK_MATCH(s, "redisdb label:moonwatch.ad.checks#0 init={} "
                   "instance={\"h\":\"127.0.0.2\",\"tags\":[" TAGS_JSON "]}\n");
    mw__service_free(s);
}

static void test_label_tags(void)
{
    mw__service *s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.check_names", "[\"a\",\"b\"]");
    svc_label(s, "com.datadoghq.ad.init_configs", "[{},{}]");
    svc_label(s, "com.datadoghq.ad.instances",
              "[[{\"tags\":\"x:1\"},{\"tags\":[\"ok\",1]},{\"tags\":null},{\"tags\":[]},"
              "{\"n\":\"%%nope%%\"},{\"tags\":[\"short_image:redis\",\"c\"]}],"
              "{\"ignore_autodiscovery_tags\":false,\"tags\":[\"t\"]}]");
    /* One bad instance never spoils its neighbours. */
    CHECK_MATCH_SET(
        NULL, s,
        "a label:com.datadoghq.ad.instances#0 unresolved: \"tags\" must be a list of "
        "strings, found a string\n"
        "a label:com.datadoghq.ad.instances#1 unresolved: \"tags\"[1] must be a "
        "string, found a number\n"
        "a label:com.datadoghq.ad.instances#2 init={} instance={\"tags\":[" TAGS_JSON "]}\n"
        "a label:com.datadoghq.ad.instances#3 init={} instance={\"tags\":[" TAGS_JSON "]}\n"
        "a label:com.datadoghq.ad.instances#4 unresolved: %%nope%%: unknown template "
        "variable\n"
        "a label:com.datadoghq.ad.instances#5 init={} "
        "instance={\"tags\":[\"c\"," TAGS_JSON "]}\n"
        "b label:com.datadoghq.ad.instances#0 init={} "
        "instance={\"ignore_autodiscovery_tags\":false,\"tags\":[" TAGS_JSON ",\"t\"]}\n");
    /* ignore_autodiscovery_tags on the label config: tags left alone. */
    svc_label(s, "com.datadoghq.ad.ignore_autodiscovery_tags", "true");
    CHECK_MATCH_SET(NULL, s,
                    "a label:com.datadoghq.ad.instances#0 init={} instance={\"tags\":\"x:1\"}\n"
                    "a label:com.datadoghq.ad.instances#1 init={} instance={\"tags\":[\"ok\",1]}\n"
                    "a label:com.datadoghq.ad.instances#2 init={} instance={\"tags\":null}\n"
                    "a label:com.datadoghq.ad.instances#3 init={} instance={\"tags\":[]}\n"
                    "a label:com.datadoghq.ad.instances#4 unresolved: %%nope%%: unknown template "
                    "variable\n"
                    "a label:com.datadoghq.ad.instances#5 init={} "
                    "instance={\"tags\":[\"short_image:redis\",\"c\"]}\n"
                    "b label:com.datadoghq.ad.instances#0 init={} "
                    "instance={\"ignore_autodiscovery_tags\":false,\"tags\":[\"t\"]}\n");
    mw__service_free(s);

    /* v2's check-level flag. */
    s = mw__test_service(REDIS);
    svc_label(s, "moonwatch.ad.checks",
              "{\"x\":{\"ignore_autodiscovery_tags\":true,\"instances\":[{}]},"
              "\"y\":{\"instances\":[{}]}}");
    CHECK_MATCH_SET(NULL, s,
                    "x label:moonwatch.ad.checks#0 init={} instance={}\n"
                    "y label:moonwatch.ad.checks#0 init={} instance={\"tags\":[" TAGS_JSON "]}\n");
    mw__service_free(s);

    /* No service tags, no instance tags: no "tags" key appears. */
    s = mw__test_service("{}");
    svc_label(s, "moonwatch.ad.checks", "{\"y\":{\"instances\":[{\"a\":1}]}}");
    CHECK_MATCH_SET(NULL, s, "y label:moonwatch.ad.checks#0 init={} instance={\"a\":1}\n");
    mw__service_free(s);
}

static void test_init_config_unresolved(void)
{
    mw__service *s = mw__test_service("{'image_long':'initfail','image_short':'initfail'}");
    CHECK_MATCH(s, "initfail initfail.d/conf.yaml#0 unresolved: init_config: %%env_TOKEN%%: "
                   "TOKEN is not in the env allowlist\n"
                   "initfail initfail.d/conf.yaml#1 unresolved: init_config: %%env_TOKEN%%: "
                   "TOKEN is not in the env allowlist\n");
    mw__service_free(s);
}

static void test_problems(void)
{
    mw__service *s = mw__test_service("{'image_long':'busybox','image_short':'busybox'}");
    svc_label(s, "com.datadoghq.ad.check_names", "[\"a\",\"../b\"]");
    svc_label(s, "com.datadoghq.ad.init_configs", "[{},{}]");
    svc_label(s, "com.datadoghq.ad.instances", "[{\"v\":\"%%env_PORT%%\"},{}]");
    svc_label(s, "moonwatch.ad.checks", "{\"c\":");
    svc_label(s, "com.datadoghq.ad.tags", "[\"team:a\",\"oops\"]");
    cJSON_AddStringToObject(s->env, "PORT", "8125");
    CHECK_MATCH(s, "a label:com.datadoghq.ad.instances#0 init={} instance={\"v\":8125}\n"
                   "problem: docker://" CID " label com.datadoghq.ad.check_names: [1] \"../b\" is "
                   "not a valid check name (letters, digits, '_', '-', '.'; no leading '.', no "
                   "\"..\")\n"
                   "problem: docker://" CID " label moonwatch.ad.checks: invalid JSON: unexpected "
                   "end at byte 5\n"
                   "problem: docker://" CID " label com.datadoghq.ad.tags: [1] \"oops\" is not "
                   "key:value (one ':' between a key and a value): skipped\n");
    mw__service_free(s);
}

/* The constructs of Datadog's shipped templates, against containers of
 * the images they name (tests/fixtures/templates/datadog). */
static void test_datadog_templates(void)
{
    mw__template_set dd = {0};
    mw__diag diag = {0};
    CHECK(mw__templates_load_dir(&dd, MW_TEST_FIXTURES "/templates/datadog", &diag) == 0);
#define DD_SVC(img)                                                                                \
    "{'image_long':'" img "','image_short':'" img "','nets':[['bridge','127.0.0.2','']],"          \
    "'ports':[[80,'tcp']],'tags':['short_image:" img "']}"
    /* Configuration discovery: nothing for the container. */
    mw__service *s = mw__test_service(DD_SVC("disco-app"));
    CHECK_MATCH_SET(&dd, s, "");
    mw__service_free(s);
    /* ...its own instances resolve, up to %%discovered_port%%. */
    s = mw__test_service(DD_SVC("probed-app"));
    CHECK_MATCH_SET(&dd, s,
                    "discovery_ports " MW_TEST_FIXTURES "/templates/datadog/discovery_ports.d/"
                    "auto_conf.yaml#0 unresolved: %%discovered_port%%: set by the Datadog Agent's "
                    "configuration discovery, which moonwatch does not do\n");
    mw__service_free(s);
    /* The null item is gone: one instance. */
    s = mw__test_service(DD_SVC("twin-app"));
    CHECK_MATCH_SET(&dd, s,
                    "null_first " MW_TEST_FIXTURES
                    "/templates/datadog/null_first.d/auto_conf.yaml#0 "
                    "init={\"is_jmx\":true} instance={\"host\":\"127.0.0.2\",\"port\":\"9012\","
                    "\"tags\":[\"short_image:twin-app\"]}\n");
    mw__service_free(s);
    /* A file's ignore_autodiscovery_tags holds for its instances. */
    s = mw__test_service(DD_SVC("quiet-app"));
    CHECK_MATCH_SET(&dd, s,
                    "file_options " MW_TEST_FIXTURES "/templates/datadog/file_options.d/"
                    "auto_conf.yaml#0 init={} instance={\"url\":\"http://127.0.0.2/\"}\n");
    /* A template whose check has no script matches nothing. */
    for (size_t i = 0; i < dd.n; i++)
        dd.v[i].no_check = strcmp(dd.v[i].check, "file_options") == 0;
    CHECK_MATCH_SET(&dd, s, "");
    mw__service_free(s);
    /* Values only a listener has: unresolved, saying so. */
    s = mw__test_service(DD_SVC("managed_db"));
    CHECK_MATCH_SET(&dd, s,
                    "extra_vars " MW_TEST_FIXTURES "/templates/datadog/extra_vars.d/"
                    "auto_conf.yaml#0 unresolved: %%extra_region%%: the service has no extra "
                    "values (they come from the source, such as ECS task metadata; a Docker "
                    "container has none)\n");
    mw__service_free(s);
    /* ...and resolved where the service has them. */
    s = mw__test_service("{'image_long':'device','image_short':'device','nets':[['bridge',"
                         "'127.0.0.2','']],'extra':{'timeout':'3','interval':'30',"
                         "'no_tags':'true'},'tags':['short_image:device']}");
    CHECK_MATCH_SET(&dd, s,
                    "typed_var " MW_TEST_FIXTURES "/templates/datadog/typed_var.d/auto_conf.yaml#0 "
                    "init={} instance={\"ip_address\":\"127.0.0.2\",\"timeout\":3,"
                    "\"min_collection_interval\":30,\"ignore_autodiscovery_tags\":true}\n");
    mw__service_free(s);
#undef DD_SVC
    mw__template_set_free(&dd);
    mw__diag_free(&diag);
}

/* The bundled docker template (ad_identifiers: [_any_container]) matches
 * every container, whatever its image or check.id label, with its id and
 * tags; check_names: [] and a label config of its own still win. */
static void test_any_container(void)
{
    mw__template_set ts = {0};
    mw__diag diag = {0};
    const char *file = MW_TEST_SOURCE_DIR "/templates/docker.d/auto_conf.yaml";
    CHECK(mw__template_load_file(&ts, file, "docker", &diag) == 0 && ts.n == 1 && diag.n == 0);
    char want[1024];
    snprintf(want, sizeof want,
             "docker %s#0 init={} instance={\"container_id\":\"" CID "\",\"tags\":[" TAGS_JSON
             "]}\n",
             file);
    mw__service *s = mw__test_service(REDIS);
    CHECK_MATCH_SET(&ts, s, want);
    svc_label(s, "com.datadoghq.ad.check.id", "my-custom-id");
    CHECK_MATCH_SET(&ts, s, want);
    mw__service_free(s);
    s = mw__test_service("{'image_long':'busybox','image_short':'busybox'," REDIS_TAGS "}");
    CHECK_MATCH_SET(&ts, s, want);
    svc_label(s, "com.datadoghq.ad.check_names", "[]");
    CHECK_MATCH_SET(&ts, s, "");
    mw__service_free(s);
    s = mw__test_service("{'pid':4242," REDIS_TAGS "}");
    svc_label(s, "com.datadoghq.ad.checks",
              "{\"docker\":{\"instances\":[{\"container_id\":"
              "\"%%container_id%%\",\"pid\":\"%%pid%%\"}]}}");
    CHECK_MATCH_SET(
        &ts, s,
        "docker label:com.datadoghq.ad.checks#0 init={} instance={\"container_id\":\"" CID
        "\",\"pid\":4242,\"tags\":[" TAGS_JSON "]}\n");
    mw__service_free(s);
    mw__template_set_free(&ts);
    mw__diag_free(&diag);
}

/* Each origin has its identifier: the docker template is for the
 * containers of a Docker engine, the ecs_fargate one for those of the
 * task metadata endpoint, and neither matches the other's. */
static void test_origin_identifiers(void)
{
    mw__template_set ts = {0};
    mw__diag diag = {0};
    const char *docker = MW_TEST_SOURCE_DIR "/templates/docker.d/auto_conf.yaml";
    const char *fargate = MW_TEST_SOURCE_DIR "/templates/ecs_fargate.d/auto_conf.yaml";
    CHECK(mw__template_load_file(&ts, docker, "docker", &diag) == 0);
    CHECK(mw__template_load_file(&ts, fargate, "ecs_fargate", &diag) == 0);
    CHECK(ts.n == 2 && diag.n == 0);
    mw__service *s = mw__test_service(REDIS);
    char *got = match_with(&ts, s);
    CHECK(strncmp(got, "docker ", 7) == 0 && !strstr(got, "ecs_fargate"));
    free(got);
    mw__service_free(s);
    s = mw__test_service("{'origin':'task_metadata'," REDIS_TAGS "}");
    got = match_with(&ts, s);
    CHECK(strncmp(got, "ecs_fargate ", 12) == 0 && !strstr(got, "\ndocker "));
    CHECK(strstr(got, "instance={\"container_id\":\"" CID "\"") != NULL);
    free(got);
    mw__service_free(s);
    mw__template_set_free(&ts);
    mw__diag_free(&diag);
}

/* Matching the same service twice gives the same result. */
static void test_stable(void)
{
    mw__service *s = mw__test_service(REDIS);
    svc_label(s, "com.datadoghq.ad.checks",
              "{\"b\":{\"instances\":[{}]},\"a\":{\"instances\":[{}]}}");
    char *a = match_with(&set, s), *b = match_with(&set, s);
    CHECK_STR(a, b);
    CHECK(strstr(a, "a label:") < strstr(a, "b label:"));
    free(a);
    free(b);
    mw__service_free(s);
}

/* ------------------------------------------------------------ torture */

/*
 * Allocation torture (as tests/unit/test_torture.c, after curl's
 * `runtests.pl -t`): one match over labels of every kind, run with the
 * 1st, 2nd, ... allocation failing until none is left to fail. Each run
 * must either give the full result or return MW_ENOMEM, and leak nothing.
 * malloc and friends forward to glibc's __libc_* entry points, so cJSON
 * allocates through them too; under AddressSanitizer it is skipped.
 */
#include "failalloc.h"

#ifndef FAILALLOC_SKIP

static mw__service *torture_svc;
static char *torture_want;

/* 0: the whole result; 1: MW_ENOMEM returned; -1: a failure went
 * unreported, or came back as another code. */
static int torture_run(long n)
{
    mw__match_result r = {0};
    mw_code rc = mw__match_service(&set, torture_svc, &opts, &r);
    failalloc_disarm(); /* what follows is the test's own work */
    char *got = rc == MW_OK ? describe(&r) : NULL;
    mw__match_result_free(&r);
    int out = rc == MW_ENOMEM ? 1 : rc != MW_OK ? -1 : strcmp(got, torture_want) == 0 ? 0 : -1;
    if (out < 0)
        fprintf(stderr, "torture: failing allocation %ld changed the result (%s):\n%s\n", n,
                mw_strerror(rc), got ? got : "");
    free(got);
    return out;
}

static void test_torture(void)
{
    torture_svc =
        mw__test_service("{'nets':[['bridge','','fd00::2']],'ports':[[6379,'tcp']]," REDIS_TAGS
                         ",'env':{'PORT':'9000'}}");
    svc_label(torture_svc, "com.datadoghq.ad.check_names", "[\"a\",\"../bad\",\"b\"]");
    svc_label(torture_svc, "com.datadoghq.ad.init_configs", "[{},null,[{\"k\":\"%%port%%\"}]]");
    svc_label(torture_svc, "com.datadoghq.ad.instances",
              "[[{\"u\":\"http://%%host%%:%%port%%\"},{\"p\":\"%%env_PORT%%\",\"tags\":[\"z\"]}],"
              "{},{\"x\":\"%%nope%%\"}]");
    svc_label(torture_svc, "moonwatch.ad.checks",
              "{\"b\":{\"instances\":[{\"tags\":\"bad\"},{\"v\":[1,{\"w\":\"%%host%%\"}]}]},"
              "\"c\":{\"instances\":[]}}");
    svc_label(torture_svc, "com.datadoghq.ad.checks.broken", "{");
    torture_want = match_with(&set, torture_svc);
    CHECK(strstr(torture_want, "redisdb redisdb.d/auto_conf.yaml#0 ") != NULL);
    CHECK(strstr(torture_want, "b label:moonwatch.ad.checks#1 ") != NULL);
    CHECK(strstr(torture_want, "problem: ") != NULL);

    long n;
    for (n = 1;; n++) {
        long before = failalloc_live();
        failalloc_arm(n);
        int rc = torture_run(n);
        failalloc_disarm();
        if (rc < 0 || failalloc_live() != before) {
            fprintf(stderr, "torture: failing allocation %ld: %s (live %+ld)\n", n,
                    rc < 0 ? "failure not reported" : "leak", failalloc_live() - before);
            CHECK(0);
        }
        if (failalloc_refused() == 0) {
            CHECK(rc == 0);
            break;
        }
    }
    CHECK(n > 100);
    printf("torture: %ld allocation points\n", n - 1);
    free(torture_want);
    mw__service_free(torture_svc);
}

#else

static void test_torture(void)
{
    printf("torture: skipped under a sanitizer that owns malloc\n");
}

#endif

int main(void)
{
    mw__diag diag = {0};
    CHECK(mw__templates_load_dir(&set, TPL, &diag) == 0);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "unexpected: %s\n", diag.items[i]);
    mw__template_set_finish(&set);
    CHECK(set.n == 8);

    test_identifiers();
    test_short_image();
    test_long_image();
    test_docker_id();
    test_check_id_label();
    test_label_overrides_file();
    test_disable_files();
    test_label_tags();
    test_init_config_unresolved();
    test_problems();
    test_datadog_templates();
    test_any_container();
    test_origin_identifiers();
    test_stable();
    test_torture();

    mw__template_set_free(&set);
    mw__diag_free(&diag);
    return TEST_RESULT();
}

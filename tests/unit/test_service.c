/*
 * test_service.c - the service model built from Docker inspect documents
 * (tests/fixtures/docker/inspect/: three recorded from dockerd 20.10,
 * the others written for one case each): every field of each service,
 * the exact sorted tag list, Datadog's image split, errors that name the
 * field, and a digest that ignores only state and health.
 *
 * Without AddressSanitizer the test also fails each allocation of a
 * build in turn (malloc is interposed by failalloc.h): every
 * run must either build the same service or fail with "out of memory",
 * and leave no allocation behind.
 */
#include "core/base/util.h"
#include "discovery/service.h"
#include "test.h"

#include <stdlib.h>

#include "failalloc.h"

#define FIX MW_TEST_FIXTURES "/docker/inspect/"

#define RUNNING_ID "48e480741cf597bef7d0c47ea63c11923c7400290164687a7693f51692fecf89"
#define IMAGE_ID   "sha256:b1445f956df70c3b19034fe033fefb0936899fc01addcde7ac21511f6e2e9535"
#define DIGEST     "sha256:5bef08742407efd622d243692b79ba0055383bbce12900324f75e56f589aedb0"

/* ------------------------------------------------------------ helpers */

static cJSON *load(const char *name)
{
    char path[512];
    size_t len;
    char *text;
    cJSON *doc;

    snprintf(path, sizeof(path), FIX "%s", name);
    if (mw__read_file(path, 1 << 20, &text, &len) != MW_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    doc = cJSON_Parse(text);
    free(text);
    if (!doc) {
        fprintf(stderr, "cannot parse %s\n", path);
        exit(2);
    }
    return doc;
}

/* Builds the service of fixture `name`; the error (or "ok") goes to `err`. */
static mw__service *build(const char *name, const char *image, char *err, size_t errsz)
{
    cJSON *doc = load(name);
    char *e = NULL;
    mw__service *s = NULL;
    mw_code rc = mw__service_from_inspect(doc, image, &s, &e);

    CHECK((rc == MW_OK) == (s != NULL));
    snprintf(err, errsz, "%s", s ? "ok" : e ? e : "(no message)");
    free(e);
    cJSON_Delete(doc);
    return s;
}

/* Appends `piece` to a comma-separated list in `out`. */
static void join(char *out, size_t size, const char *piece)
{
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s%s", n ? "," : "", piece);
}

static const char *tags_of(const mw__service *s)
{
    static char out[4096];
    out[0] = '\0';
    for (size_t i = 0; i < s->ntags; i++)
        join(out, sizeof(out), s->tags[i]);
    return out;
}

/* "name=ip|ip6,..." */
static const char *nets_of(const mw__service *s)
{
    static char out[1024];
    char one[256];
    out[0] = '\0';
    for (size_t i = 0; i < s->nnets; i++) {
        snprintf(one, sizeof(one), "%s=%s|%s", s->nets[i].name, s->nets[i].ip, s->nets[i].ip6);
        join(out, sizeof(out), one);
    }
    return out;
}

/* "80/tcp,..."; a port with a name would show as "80/tcp=name". */
static const char *ports_of(const mw__service *s)
{
    static char out[1024];
    char one[64];
    out[0] = '\0';
    for (size_t i = 0; i < s->nports; i++) {
        snprintf(one, sizeof(one), "%d/%s%s%s", s->ports[i].number, s->ports[i].proto,
                 s->ports[i].name ? "=" : "", s->ports[i].name ? s->ports[i].name : "");
        join(out, sizeof(out), one);
    }
    return out;
}

/* "k=v,..." in the object's order (the service keeps keys sorted). */
static const char *object_of(const cJSON *o)
{
    static char out[2048];
    char one[512];
    const cJSON *c;
    out[0] = '\0';
    cJSON_ArrayForEach(c, o)
    {
        snprintf(one, sizeof(one), "%s=%s", c->string, cJSON_IsString(c) ? c->valuestring : "?");
        join(out, sizeof(out), one);
    }
    return out;
}

/* ------------------------------------------------------------ recorded inspects */

static void test_running_healthy(void)
{
    char err[256];
    mw__service *s = build("container_inspect.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK_STR(s->id, "docker://" RUNNING_ID);
    CHECK_STR(s->cid, RUNNING_ID);
    CHECK_STR(s->name, "ecs-curltest-26-curl-a0e7dba5aca6d8cb2e00");
    CHECK_STR(s->image, "demo/busybox:1.0");
    CHECK_STR(s->image_long, "demo/busybox");
    CHECK_STR(s->image_short, "busybox");
    CHECK_STR(s->image_tag, "1.0");
    CHECK(cJSON_IsObject(s->labels));
    CHECK_STR(object_of(s->labels),
              "com.amazonaws.ecs.cluster=default,com.amazonaws.ecs.container-name=curl,"
              "com.amazonaws.ecs.task-arn=arn:aws:ecs:us-west-2:111122223333:task/default/"
              "158d1c8083dd49d6b527399fd6414f5c,"
              "com.amazonaws.ecs.task-definition-family=curltest,"
              "com.amazonaws.ecs.task-definition-version=26");
    CHECK_STR(object_of(s->env), "APP_MODE=demo,ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.170/"
                                 "v4/ee08638adaaf009d78c248913f629e38");
    /* The top-level NetworkSettings.IPAddress (127.0.0.2) is not read:
     * both networks come from Networks, sorted. */
    CHECK_STR(nets_of(s), "appnet=127.0.0.12|,bridge=127.0.0.2|");
    CHECK(s->host_network == 0);
    CHECK_STR(ports_of(s), "8080/tcp,9090/tcp");
    CHECK(s->pid == 24874);
    CHECK_STR(s->hostname, "48e480741cf5");
    CHECK_STR(s->health, "healthy");
    CHECK_STR(s->state, "running");
    CHECK(s->restart_count == 0);
    CHECK_STR(tags_of(s), "container_id:" RUNNING_ID ","
                          "container_name:ecs-curltest-26-curl-a0e7dba5aca6d8cb2e00,"
                          "docker_image:demo/busybox:1.0,image_name:demo/busybox,image_tag:1.0,"
                          "short_image:busybox");
    CHECK(s->digest != 0 && s->digest == mw__service_digest(s));
    CHECK_STR(mw__service_label(s, "com.amazonaws.ecs.container-name"), "curl");
    CHECK(mw__service_label(s, "com.amazonaws.ecs") == NULL);
    CHECK_STR(mw__service_env(s, "APP_MODE"), "demo");
    CHECK(mw__service_env(s, "app_mode") == NULL);
    mw__service_free(s);
}

static void test_exited_and_oomkilled(void)
{
    char err[256];
    mw__service *s = build("container_inspect_exited.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (s) {
        CHECK_STR(s->id,
                  "docker://fc18d3bc8a95f48867c3bab57e2bfedc6fe179d2e5396377cc42b7a6272b55e3");
        CHECK_STR(s->name, "exiter");
        CHECK_STR(object_of(s->labels), "com.example.role=batch");
        CHECK(cJSON_IsObject(s->env) && s->env->child == NULL); /* "Env": null */
        CHECK_STR(nets_of(s), "bridge=|");
        CHECK(s->nports == 0 && s->ports == NULL);
        CHECK(s->pid == 0);
        CHECK_STR(s->health, "");
        CHECK_STR(s->state, "exited");
        CHECK_STR(s->hostname, "fc18d3bc8a95");
        CHECK_STR(tags_of(s), "container_id:fc18d3bc8a95f48867c3bab57e2bfedc6fe179d2e5396377cc42b7"
                              "a6272b55e3,container_name:exiter,docker_image:demo/busybox:1.0,"
                              "image_name:demo/busybox,image_tag:1.0,short_image:busybox");
    }
    mw__service_free(s);

    s = build("container_inspect_oomkilled.json", NULL, err, sizeof(err));
    CHECK_STR(err, "ok");
    if (s) {
        CHECK_STR(s->name, "oomer");
        CHECK(cJSON_IsObject(s->labels) && s->labels->child == NULL);
        CHECK_STR(s->state, "exited");
        CHECK(s->ntags == 6);
    }
    mw__service_free(s);
}

/* ------------------------------------------------------------ written variants */

static void test_host_network(void)
{
    char err[256];
    mw__service *s = build("host_network.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK(s->host_network == 1);
    CHECK_STR(nets_of(s), "host=|");
    CHECK_STR(ports_of(s), "8081/tcp");
    CHECK_STR(s->name, "web-host");
    CHECK_STR(s->image_long, "docker.io/library/nginx");
    CHECK_STR(s->image_short, "nginx");
    CHECK_STR(s->image_tag, "1.25");
    CHECK_STR(s->hostname, "buildhost");
    CHECK(s->pid == 25110);
    CHECK(s->restart_count == 2);
    CHECK_STR(s->health, "");
    CHECK_STR(object_of(s->labels), "com.example.tier=edge");
    CHECK_STR(tags_of(s), "container_id:a3f1c0de5b7e4d2a9c8b6f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7"
                          "f8e9d0c,container_name:web-host,"
                          "docker_image:docker.io/library/nginx:1.25,"
                          "image_name:docker.io/library/nginx,image_tag:1.25,short_image:nginx");
    mw__service_free(s);
}

static void test_two_networks_ipv6(void)
{
    char err[256];
    mw__service *s = build("two_networks_ipv6.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK_STR(nets_of(s), "backend=127.0.0.32|,frontend=127.0.0.22|::1");
    CHECK(s->host_network == 0);
    /* The union of ExposedPorts (53/udp, 8443, 9100) and Ports (53/tcp
     * too), by number then protocol, each once. */
    CHECK_STR(ports_of(s), "53/tcp,53/udp,8443/tcp,9100/tcp");
    CHECK_STR(s->health, "starting");
    CHECK_STR(s->image_long, "example/api");
    CHECK_STR(s->image_short, "api");
    CHECK_STR(s->image_tag, "3.4.1");
    CHECK_STR(object_of(s->env), "LISTEN=:8443,PATH=/usr/bin:/bin");
    mw__service_free(s);
}

static void test_image_id(void)
{
    char err[256];
    cJSON *doc = load("image_id.json");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "Config");
    mw__service *s;

    CHECK(mw__service_image_is_id(cJSON_GetObjectItemCaseSensitive(cfg, "Image")->valuestring));
    cJSON_Delete(doc);

    /* Resolved by the source: the repo tag replaces the id everywhere. */
    s = build("image_id.json", "demo/busybox:1.0", err, sizeof(err));
    CHECK_STR(err, "ok");
    if (s) {
        CHECK_STR(s->image, "demo/busybox:1.0");
        CHECK_STR(s->image_long, "demo/busybox");
        CHECK_STR(s->image_short, "busybox");
        CHECK_STR(s->image_tag, "1.0");
        CHECK_STR(nets_of(s), "bridge=127.0.0.4|");
        CHECK(cJSON_IsObject(s->labels) && s->labels->child == NULL); /* "Labels": null */
        CHECK_STR(tags_of(s), "container_id:6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5"
                              "c4b3a29180f7,container_name:by-id,docker_image:demo/busybox:1.0,"
                              "image_name:demo/busybox,image_tag:1.0,short_image:busybox");
    }
    mw__service_free(s);

    /* Not resolved: the id is its own name, never split at its colon. */
    s = build("image_id.json", NULL, err, sizeof(err));
    CHECK_STR(err, "ok");
    if (s) {
        CHECK_STR(s->image, IMAGE_ID);
        CHECK_STR(s->image_long, IMAGE_ID);
        CHECK_STR(s->image_short, IMAGE_ID);
        CHECK_STR(s->image_tag, "latest");
    }
    mw__service_free(s);
}

static void test_registry_port_digest(void)
{
    char err[256];
    mw__service *s = build("registry_port_digest.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK_STR(s->image, "registry.local:5000/team/cache:7.2@" DIGEST);
    CHECK_STR(s->image_long, "registry.local:5000/team/cache");
    CHECK_STR(s->image_short, "cache");
    CHECK_STR(s->image_tag, "7.2");
    CHECK_STR(s->health, "unhealthy");
    CHECK_STR(ports_of(s), "6379/tcp");
    CHECK_STR(tags_of(s), "container_id:7f6e5d4c3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a190817f6e5"
                          "d4c3b2a1,container_name:pinned,"
                          "docker_image:registry.local:5000/team/cache:7.2@" DIGEST ","
                          "image_name:registry.local:5000/team/cache,image_tag:7.2,"
                          "short_image:cache");
    mw__service_free(s);
}

static void test_dd_tags(void)
{
    char err[256];
    mw__service *s = build("dd_tags.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    /* Sorted by name; DD_ENV given twice keeps its last value; "DEBUG"
     * (no '=') is ""; only the first '=' splits. */
    CHECK_STR(object_of(s->env),
              "DD_ENV=staging-2,DD_SERVICE=from-env,DD_VERSION=4.2,DEBUG=,EMPTY=,OPTS=-Xmx=512m");
    CHECK_STR(object_of(s->labels),
              "com.datadoghq.tags.env=prod,com.datadoghq.tags.service=web,com.example.team=shop");
    CHECK_STR(s->image_tag, "latest");
    /* env and service from the labels (they win), version from DD_VERSION. */
    CHECK_STR(tags_of(s), "container_id:8a7b6c5d4e3f201918a7b6c5d4e3f201918a7b6c5d4e3f201918a7b6c"
                          "5d4e3f2,container_name:shop-web,docker_image:shop/web,env:prod,"
                          "image_name:shop/web,image_tag:latest,service:web,short_image:web,"
                          "version:4.2");
    mw__service_free(s);
}

/* The com.datadoghq.ad.tags label (and moonwatch.ad.tags): its key:value
 * items join the container's tags, the rest is skipped. */
static void test_ad_tags_label(void)
{
    char err[256];
    mw__service *s = build("ad_tags_label.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK_STR(tags_of(s), "container_id:5c4d3e2f1a0b99887766554433221100ffeeddccbbaa998877665544"
                          "33221100,container_name:orders-api,docker_image:shop/orders:3.1,"
                          "env:prod,image_name:shop/orders,image_tag:3.1,service:orders,"
                          "short_image:orders,team:payments,tier:api,zone:eu-west");
    mw__service_free(s);
}

static void test_null_fields(void)
{
    char err[256];
    mw__service *s = build("null_fields.json", NULL, err, sizeof(err));

    CHECK_STR(err, "ok");
    if (!s)
        return;
    CHECK(cJSON_IsObject(s->labels) && s->labels->child == NULL);
    CHECK(cJSON_IsObject(s->env) && s->env->child == NULL);
    CHECK(s->nnets == 0 && s->nets == NULL);
    CHECK(s->nports == 0 && s->ports == NULL);
    CHECK(s->host_network == 0);
    CHECK_STR(s->hostname, "");
    CHECK_STR(s->health, "");
    CHECK_STR(s->state, "created");
    CHECK(s->pid == 0 && s->restart_count == 0);
    CHECK_STR(s->image_long, "busybox");
    CHECK_STR(s->image_short, "busybox");
    CHECK_STR(s->image_tag, "latest");
    CHECK_STR(tags_of(s), "container_id:9b8c7d6e5f4a302119b8c7d6e5f4a302119b8c7d6e5f4a302119b8c7d"
                          "6e5f4a3,container_name:bare,docker_image:busybox,image_name:busybox,"
                          "image_tag:latest,short_image:busybox");
    mw__service_free(s);
}

/* Every fixture read as the Docker source reads it (only the members
 * of mw__service_inspect_pick) builds what the whole document builds. */
static void test_picked_fixtures(void)
{
    static const char *const names[] = {
        "ad_tags_label.json",
        "container_inspect.json",
        "container_inspect_exited.json",
        "container_inspect_oomkilled.json",
        "dd_tags.json",
        "host_network.json",
        "id_wrong_type.json",
        "image_id.json",
        "missing_config.json",
        "null_fields.json",
        "registry_port_digest.json",
        "two_networks_ipv6.json",
    };

    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        char path[512], *text = NULL, *err1 = NULL, *err2 = NULL;
        size_t len = 0;
        mw__service *s1 = NULL, *s2 = NULL;

        snprintf(path, sizeof(path), FIX "%s", names[i]);
        CHECK(mw__read_file(path, 1 << 20, &text, &len) == MW_OK);
        cJSON *whole = cJSON_ParseWithLength(text, len);
        cJSON *picked = mw__json_pick_parse(text, len, mw__service_inspect_pick);
        CHECK(whole && picked);
        CHECK(cJSON_GetArraySize(picked) < cJSON_GetArraySize(whole));
        mw_code rc1 = mw__service_from_inspect(whole, NULL, &s1, &err1);
        mw_code rc2 = mw__service_from_inspect(picked, NULL, &s2, &err2);
        CHECK(rc1 == rc2);
        CHECK(s1 ? s2 && s1->digest == s2->digest && strcmp(s1->state, s2->state) == 0 &&
                       strcmp(s1->health, s2->health) == 0 && s1->pid == s2->pid &&
                       s1->restart_count == s2->restart_count
                 : !s2 && err1 && err2 && strcmp(err1, err2) == 0);
        if (rc1 != rc2)
            fprintf(stderr, "%s: %s vs %s\n", names[i], err1 ? err1 : "built",
                    err2 ? err2 : "built");
        mw__service_free(s1);
        mw__service_free(s2);
        free(err1);
        free(err2);
        cJSON_Delete(whole);
        cJSON_Delete(picked);
        free(text);
    }
}

static void test_fixture_errors(void)
{
    char err[256];

    CHECK(build("missing_config.json", NULL, err, sizeof(err)) == NULL);
    CHECK_STR(err, "Config: missing");
    CHECK(build("id_wrong_type.json", NULL, err, sizeof(err)) == NULL);
    CHECK_STR(err, "Id: not a string");
}

/* ------------------------------------------------------------ inline documents */

static const struct {
    const char *json;
    const char *image;
    const char *want; /* the error, or the ports for a good document */
} inline_cases[] = {
    {"[]", NULL, "inspect: not an object"},
    {"{\"Config\":{}}", NULL, "Id: missing"},
    {"{\"Id\":null,\"Config\":{}}", NULL, "Id: missing"},
    {"{\"Id\":\"\",\"Config\":{}}", NULL, "Id: not a container id"},
    {"{\"Id\":\"ab/../cd\",\"Config\":{}}", NULL, "Id: not a container id"},
    {"{\"Id\":\"abc\"}", NULL, "Config: missing"},
    {"{\"Id\":\"abc\",\"Config\":[]}", NULL, "Config: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{}}", NULL, "Config.Image: missing"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"\"}}", NULL, "Config.Image: empty"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":5}}", NULL, "Config.Image: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\":7\"}}", NULL,
     "Config.Image: malformed image reference ':7'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"team/\"}}", NULL,
     "Config.Image: malformed image reference 'team/'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"}}", "", "image: empty"},
    {"{\"Id\":\"abc\",\"Name\":7,\"Config\":{\"Image\":\"x\"}}", NULL, "Name: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"Hostname\":[]}}", NULL,
     "Config.Hostname: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"Labels\":[]}}", NULL,
     "Config.Labels: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"Labels\":{\"a\":\"1\",\"b\":2}}}", NULL,
     "Config.Labels.b: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"Env\":{}}}", NULL, "Config.Env: not an array"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"Env\":[\"A=1\",2]}}", NULL,
     "Config.Env[1]: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":[]}}", NULL,
     "Config.ExposedPorts: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"http\":{}}}}", NULL,
     "Config.ExposedPorts: bad port 'http'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"0/tcp\":{}}}}", NULL,
     "Config.ExposedPorts: bad port '0/tcp'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"65536/tcp\":{}}}}", NULL,
     "Config.ExposedPorts: bad port '65536/tcp'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"80/\":{}}}}", NULL,
     "Config.ExposedPorts: bad port '80/'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"80/tcpudpsctp\":{}}}}", NULL,
     "Config.ExposedPorts: bad port '80/tcpudpsctp'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/TCP\":"
     "null}}}",
     NULL, "NetworkSettings.Ports: bad port '80/TCP'"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":\"x\"}", NULL,
     "NetworkSettings: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Networks\":[]}}", NULL,
     "NetworkSettings.Networks: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"b\":3}}}",
     NULL, "NetworkSettings.Networks.b: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"b\":{"
     "\"IPAddress\":1}}}}",
     NULL, "NetworkSettings.Networks.b.IPAddress: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"b\":{"
     "\"GlobalIPv6Address\":false}}}}",
     NULL, "NetworkSettings.Networks.b.GlobalIPv6Address: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"b\":{},"
     "\"a\":{},\"b\":{}}}}",
     NULL, "NetworkSettings.Networks.b: duplicate network"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"HostConfig\":[]}", NULL,
     "HostConfig: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"HostConfig\":{\"NetworkMode\":1}}", NULL,
     "HostConfig.NetworkMode: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":1}", NULL, "State: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Pid\":\"12\"}}", NULL,
     "State.Pid: not a number"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Pid\":-1}}", NULL,
     "State.Pid: not an integer in [0, 2147483647]"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Pid\":1.5}}", NULL,
     "State.Pid: not an integer in [0, 2147483647]"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Status\":0}}", NULL,
     "State.Status: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Health\":\"ok\"}}", NULL,
     "State.Health: not an object"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":{\"Health\":{\"Status\":true}}}", NULL,
     "State.Health.Status: not a string"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"RestartCount\":\"2\"}", NULL,
     "RestartCount: not a number"},
    /* Good documents: "ports ..." lists the ports. */
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\",\"ExposedPorts\":{\"80\":{},\"80/tcp\":{},"
     "\"7/sctp\":{}}},\"NetworkSettings\":{\"Ports\":{\"7/sctp\":[]}}}",
     NULL, "ports 7/sctp,80/tcp"},
    {"{\"Id\":\"abc\",\"Config\":{\"Image\":\"x\"},\"State\":null,\"NetworkSettings\":null,"
     "\"HostConfig\":null,\"Name\":null}",
     NULL, "ports "},
};

/* Each document read whole, then as the Docker source reads it (only
 * mw__service_inspect_pick): the same service or the same message. */
static void test_inline_documents(void)
{
    for (size_t k = 0; k < 2 * MW_ARRAY_LEN(inline_cases); k++) {
        size_t i = k / 2;
        const char *json = inline_cases[i].json;
        cJSON *doc = k % 2 ? mw__json_pick_parse(json, strlen(json), mw__service_inspect_pick)
                           : cJSON_Parse(json);
        char *err = NULL, got[512];
        mw__service *s;
        mw_code rc;

        CHECK(doc != NULL);
        rc = mw__service_from_inspect(doc, inline_cases[i].image, &s, &err);
        if (s)
            snprintf(got, sizeof(got), "ports %s", ports_of(s));
        else
            snprintf(got, sizeof(got), "%s", err ? err : "(no message)");
        CHECK_STR(got, inline_cases[i].want);
        CHECK((s == NULL) != (err == NULL));
        CHECK(s ? rc == MW_OK : rc == MW_EPARSE);
        mw__service_free(s);
        free(err);
        /* The error pointer is optional. */
        rc = mw__service_from_inspect(doc, inline_cases[i].image, &s, NULL);
        CHECK((rc == MW_OK) == (strncmp(inline_cases[i].want, "ports ", 6) == 0));
        CHECK((s != NULL) == (rc == MW_OK));
        mw__service_free(s);
        cJSON_Delete(doc);
    }
    {
        mw__service *s = (mw__service *)1;
        CHECK(mw__service_from_inspect(NULL, NULL, &s, NULL) == MW_EPARSE && s == NULL);
    }
    mw__service_free(NULL);
}

/* ------------------------------------------------------------ images */

static void test_image_split(void)
{
    /* Datadog's TestSplitImageName cases, with "latest" for no tag. */
    static const char *const cases[][4] = {
        {"redis", "redis", "redis", "latest"},
        {"redis:latest", "redis", "redis", "latest"},
        {"redis:7", "redis", "redis", "7"},
        {"docker.io/library/redis:7", "docker.io/library/redis", "redis", "7"},
        {"datadog/docker-dd-agent:latest", "datadog/docker-dd-agent", "docker-dd-agent", "latest"},
        {"datadog/docker-dd-agent:latest-jmx", "datadog/docker-dd-agent", "docker-dd-agent",
         "latest-jmx"},
        {"myregistry.local:5000/testing/test-image:version",
         "myregistry.local:5000/testing/test-image", "test-image", "version"},
        {"myregistry.local:5000/testing/test-image", "myregistry.local:5000/testing/test-image",
         "test-image", "latest"},
        {"myregistry.local:5000/testing/test-image@" DIGEST,
         "myregistry.local:5000/testing/test-image", "test-image", "latest"},
        {"myregistry.local:5000/testing/test-image:version@" DIGEST,
         "myregistry.local:5000/testing/test-image", "test-image", "version"},
        {"dockerio/test-image:latest@" DIGEST, "dockerio/test-image", "test-image", "latest"},
        {"busybox@" DIGEST, "busybox", "busybox", "latest"},
        {"localhost:5000/app", "localhost:5000/app", "app", "latest"},
        {"redis:", "redis", "redis", "latest"},
    };
    static const char *const bad[] = {"", ":7", "team/", "host:5000/", "/:x"};

    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char *l = NULL, *s = NULL, *t = NULL;
        CHECK(mw__image_split(cases[i][0], &l, &s, &t) == MW_OK);
        CHECK_STR(l, cases[i][1]);
        CHECK_STR(s, cases[i][2]);
        CHECK_STR(t, cases[i][3]);
        free(l);
        free(s);
        free(t);
    }
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        char *l = (char *)"x", *s = (char *)"x", *t = (char *)"x";
        CHECK(mw__image_split(bad[i], &l, &s, &t) == MW_EPARSE);
        CHECK(l == NULL && s == NULL && t == NULL);
    }
}

static void test_image_is_id(void)
{
    const char *hex = &IMAGE_ID[7]; /* past "sha256:" */
    char upper[80];

    CHECK(mw__service_image_is_id(IMAGE_ID));
    CHECK(mw__service_image_is_id(hex));
    CHECK(!mw__service_image_is_id("sha256:b1445f"));
    CHECK(!mw__service_image_is_id("sha512:b1445f956df70c3b19034fe033fefb0936899fc01addcde7ac2151"
                                   "1f6e2e9535"));
    CHECK(!mw__service_image_is_id(IMAGE_ID "0"));
    CHECK(!mw__service_image_is_id("redis:7"));
    CHECK(!mw__service_image_is_id(""));
    CHECK(!mw__service_image_is_id(NULL));
    snprintf(upper, sizeof(upper), "%s", hex);
    upper[0] = 'B';
    CHECK(!mw__service_image_is_id(upper));
}

/* An id is its own names (tag latest); a reference splits as Datadog's. */
static void test_image_names(void)
{
    char *l, *s, *t;

    CHECK(mw__image_names(IMAGE_ID, &l, &s, &t) == MW_OK);
    CHECK(l && s && t && strcmp(l, IMAGE_ID) == 0 && strcmp(s, IMAGE_ID) == 0 &&
          strcmp(t, "latest") == 0);
    free(l);
    free(s);
    free(t);
    CHECK(mw__image_names("docker.io/library/redis:7", &l, &s, &t) == MW_OK);
    CHECK(l && s && t && strcmp(l, "docker.io/library/redis") == 0 && strcmp(s, "redis") == 0 &&
          strcmp(t, "7") == 0);
    free(l);
    free(s);
    free(t);
    CHECK(mw__image_names("", &l, &s, &t) == MW_EPARSE);
    CHECK(l == NULL && s == NULL && t == NULL);
}

/* ------------------------------------------------------------ digest */

/* The digest of the running container after `edit` changed its inspect. */
static uint64_t digest_after(void (*edit)(cJSON *doc), mw__service **out)
{
    cJSON *doc = load("container_inspect.json");
    char *err = NULL;
    mw__service *s;
    uint64_t d;

    if (edit)
        edit(doc);
    CHECK(mw__service_from_inspect(doc, NULL, &s, &err) == MW_OK);
    CHECK(s != NULL);
    free(err);
    cJSON_Delete(doc);
    d = s ? s->digest : 0;
    if (out)
        *out = s;
    else
        mw__service_free(s);
    return d;
}

static cJSON *path(cJSON *doc, const char *a, const char *b)
{
    cJSON *j = cJSON_GetObjectItemCaseSensitive(doc, a);
    return b ? cJSON_GetObjectItemCaseSensitive(j, b) : j;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(value));
}

static void edit_state_health(cJSON *doc)
{
    set_string(path(doc, "State", NULL), "Status", "restarting");
    set_string(path(doc, "State", "Health"), "Status", "unhealthy");
}

static void edit_label(cJSON *doc)
{
    set_string(path(doc, "Config", "Labels"), "com.amazonaws.ecs.cluster", "prod");
}

static void edit_add_label(cJSON *doc)
{
    cJSON_AddStringToObject(path(doc, "Config", "Labels"), "com.example.new", "1");
}

/* The same labels in the reverse order. */
static void edit_label_order(cJSON *doc)
{
    cJSON *labels = path(doc, "Config", "Labels"), *rev = cJSON_CreateObject(), *c, *items[16];
    int n = 0;
    cJSON_ArrayForEach(c, labels)
    {
        if (n < 16)
            items[n++] = c;
    }
    while (n-- > 0)
        cJSON_AddStringToObject(rev, items[n]->string, items[n]->valuestring);
    CHECK(strcmp(rev->child->string, labels->child->string) != 0);
    cJSON_ReplaceItemInObjectCaseSensitive(path(doc, "Config", NULL), "Labels", rev);
}

static void edit_env(cJSON *doc)
{
    cJSON_AddItemToArray(path(doc, "Config", "Env"), cJSON_CreateString("APP_MODE=prod"));
}

static void edit_ip(cJSON *doc)
{
    set_string(cJSON_GetObjectItemCaseSensitive(path(doc, "NetworkSettings", "Networks"), "bridge"),
               "IPAddress", "127.0.0.9");
}

static void edit_top_level_ip(cJSON *doc)
{
    set_string(path(doc, "NetworkSettings", NULL), "IPAddress", "127.0.0.99");
}

static void edit_host_mode(cJSON *doc)
{
    set_string(path(doc, "HostConfig", NULL), "NetworkMode", "host");
}

static void edit_port(cJSON *doc)
{
    cJSON_AddItemToObject(path(doc, "Config", "ExposedPorts"), "9090/udp", cJSON_CreateObject());
}

static void edit_pid(cJSON *doc)
{
    cJSON_ReplaceItemInObjectCaseSensitive(path(doc, "State", NULL), "Pid", cJSON_CreateNumber(1));
}

static void edit_restarts(cJSON *doc)
{
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "RestartCount", cJSON_CreateNumber(1));
}

static void edit_name(cJSON *doc)
{
    set_string(doc, "Name", "/renamed");
}

static void edit_hostname(cJSON *doc)
{
    set_string(path(doc, "Config", NULL), "Hostname", "other");
}

static void edit_image(cJSON *doc)
{
    set_string(path(doc, "Config", NULL), "Image", "demo/busybox:1.1");
}

/* A label "A"="1" and no env, against an env "A=1" and no label. */
static void edit_label_a(cJSON *doc)
{
    cJSON *cfg = path(doc, "Config", NULL), *labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "A", "1");
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "Labels", labels);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "Env", cJSON_CreateArray());
}

static void edit_env_a(cJSON *doc)
{
    cJSON *cfg = path(doc, "Config", NULL), *env = cJSON_CreateArray();
    cJSON_AddItemToArray(env, cJSON_CreateString("A=1"));
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "Labels", cJSON_CreateObject());
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "Env", env);
}

static void test_digest(void)
{
    static void (*const changes[])(cJSON *) = {
        edit_label, edit_add_label, edit_env,  edit_ip,       edit_host_mode, edit_port,
        edit_pid,   edit_restarts,  edit_name, edit_hostname, edit_image,
    };
    mw__service *a = NULL, *b = NULL;
    uint64_t base = digest_after(NULL, &a);

    CHECK(base == digest_after(NULL, NULL)); /* stable */
    CHECK(base == digest_after(edit_state_health, &b));
    if (a && b) {
        CHECK_STR(b->state, "restarting");
        CHECK_STR(b->health, "unhealthy");
        CHECK(strcmp(a->state, b->state) != 0);
    }
    mw__service_free(a);
    mw__service_free(b);
    CHECK(base == digest_after(edit_label_order, NULL));
    CHECK(base == digest_after(edit_top_level_ip, NULL)); /* a field not read */
    for (size_t i = 0; i < MW_ARRAY_LEN(changes); i++) {
        uint64_t d = digest_after(changes[i], NULL);
        if (d == base)
            fprintf(stderr, "change %zu kept the digest\n", i);
        CHECK(d != base);
    }
    CHECK(digest_after(edit_label_a, NULL) != digest_after(edit_env_a, NULL));
    /* The image override counts like the image. */
    {
        cJSON *doc = load("container_inspect.json");
        mw__service *o = NULL, *p = NULL;
        CHECK(mw__service_from_inspect(doc, "demo/busybox:1.0", &o, NULL) == MW_OK);
        CHECK(mw__service_from_inspect(doc, "demo/busybox:2.0", &p, NULL) == MW_OK);
        CHECK(o && p && o->digest == base && p->digest != base);
        mw__service_free(o);
        mw__service_free(p);
        cJSON_Delete(doc);
    }
}

/* ------------------------------------------------------------ allocation failures */

#ifndef FAILALLOC_SKIP

/* Builds `name` with each allocation failing in turn. */
static void torture(const char *name, const char *image)
{
    cJSON *doc = load(name);
    mw__service *ref = NULL;
    long points = 0;

    CHECK(mw__service_from_inspect(doc, image, &ref, NULL) == MW_OK);
    CHECK(ref != NULL);
    for (long n = 1; ref; n++) {
        long before = failalloc_live();
        char *err = NULL;
        mw__service *s = NULL;
        mw_code rc;
        int ok, built;

        failalloc_arm(n);
        rc = mw__service_from_inspect(doc, image, &s, &err);
        failalloc_disarm();
        /* Built in full, or failed for want of memory (the message itself
         * may be what could not be allocated). */
        ok = rc == MW_OK ? s && s->digest == ref->digest && !err
                         : rc == MW_ENOMEM && !s && (!err || strcmp(err, "out of memory") == 0);
        if (!ok)
            fprintf(stderr, "%s: allocation %ld: %s\n", name, n, err ? err : "wrong service");
        CHECK(ok);
        built = s != NULL;
        mw__service_free(s);
        free(err);
        if (failalloc_live() != before)
            fprintf(stderr, "%s: allocation %ld: leak\n", name, n);
        CHECK(failalloc_live() == before);
        if (failalloc_refused() == 0) {
            CHECK(built);
            break;
        }
        points = n;
    }
    CHECK(points > 20);
    mw__service_free(ref);
    cJSON_Delete(doc);
}

static void test_allocation_failures(void)
{
    torture("container_inspect.json", NULL);
    torture("two_networks_ipv6.json", NULL);
    torture("dd_tags.json", NULL);
    torture("ad_tags_label.json", NULL);
    torture("image_id.json", "demo/busybox:1.0");
    torture("image_id.json", NULL);
}

#else

static void test_allocation_failures(void)
{
    printf("allocation failures: skipped under a sanitizer that owns malloc\n");
}

#endif

/* ------------------------------------------------------------ from parts */

#define FG_ID "a9b4c54d8e9e4f2f8e6e5b3b6a2c1d0e-1234567890"

/* A container the ECS task metadata endpoint lists: the same tags as from
 * an inspect, its labels read the same way, its own origin. */
static void test_from_parts(void)
{
    cJSON *labels = cJSON_Parse("{\"com.datadoghq.tags.env\":\"prod\","
                                "\"com.datadoghq.ad.tags\":\"[\\\"team:web\\\"]\","
                                "\"a\":\"1\"}");
    mw__svc_network nets[] = {{"awsvpc", "127.0.0.61", NULL}};
    mw__svc_port ports[] = {{8080, "tcp", NULL}, {53, "udp", NULL}, {8080, "tcp", NULL}};
    mw__service_parts p = {
        .origin = MW_SVC_TASK_METADATA,
        .cid = FG_ID,
        .name = "app",
        .image = "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
        .labels = labels,
        .nets = nets,
        .nnets = 1,
        .ports = ports,
        .nports = 3,
    };
    mw__service *s = NULL, *t = NULL;
    char *err = NULL;
    CHECK(mw__service_from_parts(&p, &s, &err) == MW_OK && err == NULL);
    if (!s)
        goto out;
    CHECK(s->origin == MW_SVC_TASK_METADATA);
    CHECK_STR(s->id, "docker://" FG_ID);
    CHECK_STR(s->state, "running");
    CHECK_STR(s->hostname, "");
    CHECK(s->pid == 0 && cJSON_GetArraySize(s->env) == 0);
    CHECK_STR(nets_of(s), "awsvpc=127.0.0.61|");
    CHECK_STR(ports_of(s), "53/udp,8080/tcp");
    CHECK_STR(object_of(s->labels),
              "a=1,com.datadoghq.ad.tags=[\"team:web\"],com.datadoghq.tags.env=prod");
    CHECK_STR(tags_of(s),
              "container_id:" FG_ID ",container_name:app,"
              "docker_image:111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest,"
              "env:prod,image_name:111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest,"
              "image_tag:latest,short_image:curltest,team:web");
    CHECK(s->digest == mw__service_digest(s));
    /* the same parts make the same digest; another origin another */
    p.nports = 2;
    CHECK(mw__service_from_parts(&p, &t, NULL) == MW_OK && t && t->digest == s->digest);
    mw__service_free(t);
    p.origin = MW_SVC_DOCKER;
    CHECK(mw__service_from_parts(&p, &t, NULL) == MW_OK && t && t->digest != s->digest);
    mw__service_free(t);
    p.origin = MW_SVC_TASK_METADATA;
    /* refusals name the part */
    p.cid = "../x";
    CHECK(mw__service_from_parts(&p, &t, &err) == MW_EPARSE && !t);
    CHECK_STR(err, "container id: not a container id");
    free(err);
    p.cid = FG_ID;
    p.image = "";
    CHECK(mw__service_from_parts(&p, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "image: empty");
    free(err);
    p.image = "busybox";
    ports[0].number = 0;
    CHECK(mw__service_from_parts(&p, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "ports[0]: not a port");
    free(err);
    ports[0].number = 80;
    nets[0].name = "";
    CHECK(mw__service_from_parts(&p, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "networks[0]: no name");
    free(err);
    nets[0].name = "awsvpc";
    cJSON_AddNumberToObject(labels, "n", 1);
    CHECK(mw__service_from_parts(&p, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "Labels.n: not a string");
    free(err);
out:
    mw__service_free(s);
    cJSON_Delete(labels);
}

int main(void)
{
    test_running_healthy();
    test_exited_and_oomkilled();
    test_host_network();
    test_two_networks_ipv6();
    test_image_id();
    test_registry_port_digest();
    test_dd_tags();
    test_ad_tags_label();
    test_null_fields();
    test_fixture_errors();
    test_picked_fixtures();
    test_inline_documents();
    test_image_split();
    test_image_is_id();
    test_image_names();
    test_from_parts();
    test_digest();
    test_allocation_failures();
    return TEST_RESULT();
}

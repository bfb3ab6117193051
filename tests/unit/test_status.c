/*
 * test_status.c - the status listener of a whole engine, driven from this
 * thread (mw_engine_step): /status's shape, /healthz turning 503 once a
 * source has failed longer than health_grace (a Docker host that does
 * not exist), no secret in what it serves (a check whose error carries
 * a URL with a password), /metrics after a flush, and a Datadog sink
 * whose intake refuses connections shown failing, with its queue.
 */
#include "moonwatch.h"
#include "core/base/json.h"
#include "core/base/util.h"
#include "test.h"
#include "tmptree.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static char tmp[64];
static char addr[128];

static void on_log(mw_log_level level, const char *where, const char *msg, void *ud)
{
    const char *p = strstr(msg, "status listener on ");
    MW_UNUSED(level), MW_UNUSED(where), MW_UNUSED(ud);
    if (p)
        sscanf(p + 19, "%127s", addr);
}

/* GET `path` while stepping the engine; the whole response (caller
 * frees), NULL after 5 s. */
static char *get(mw_engine *eng, const char *path)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&in, sizeof in) != 0)
        return close(fd), NULL;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    send(fd, req, (size_t)n, MSG_NOSIGNAL);
    mw__buf b;
    mw__buf_init(&b, 1 << 22);
    double end = mw__mono() + 5;
    while (mw__mono() < end) {
        mw_engine_step(eng, 10);
        char chunk[4096];
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r > 0)
            mw__buf_add(&b, chunk, (size_t)r);
        else if (r == 0 || errno != EAGAIN)
            break;
    }
    close(fd);
    return mw__buf_take(&b, NULL);
}

static const char *body_of(const char *resp)
{
    const char *p = resp ? strstr(resp, "\r\n\r\n") : NULL;
    return p ? p + 4 : "";
}

static mw_engine *make_engine(void)
{
    mw_config *cfg = mw_config_new();
    char *dir = mw__sprintf("%s/checks", tmp), *tdir = mw__sprintf("%s/templates", tmp);
    char *dh = mw__sprintf("unix://%s/no-docker.sock", tmp);
    mw_engine *eng = NULL;
    const char *kv[][2] = {{"listen", "127.0.0.1:0"}, {"docker", "on"},
                           {"docker_host", dh},       {"ecs", "off"},
                           {"health_grace", "0"},     {"no_bundled", "true"},
                           {"sink", "none"},          {"checks_dir", dir},
                           {"templates_dir", tdir},   {"flush_interval", "0.2"}};
    for (size_t i = 0; i < MW_ARRAY_LEN(kv); i++)
        CHECK(mw_config_set(cfg, kv[i][0], kv[i][1], NULL) == MW_OK);
    mw_config_set_log(cfg, on_log, NULL);
    CHECK(mw_engine_new(cfg, &eng, NULL) == MW_OK);
    if (eng)
        CHECK(mw_engine_load(eng) == MW_OK);
    mw_config_free(cfg);
    free(dir);
    free(tdir);
    free(dh);
    return eng;
}

static void test_status(mw_engine *eng)
{
    /* until the check ran, failed, and Docker was found unreachable */
    cJSON *doc = NULL;
    double end = mw__mono() + 10;
    while (mw__mono() < end) {
        char *resp = get(eng, "/status");
        cJSON_Delete(doc);
        doc = cJSON_Parse(body_of(resp));
        free(resp);
        const cJSON *src = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "sources"), 0);
        const cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "instances"), 0);
        if (cJSON_IsString(cJSON_GetObjectItem(src, "error")) &&
            cJSON_GetNumberValue(cJSON_GetObjectItem(in, "errors")) >= 1)
            break;
        mw_engine_step(eng, 50);
    }
    CHECK(doc != NULL);
    static const char *keys[] = {"version",   "uptime_seconds", "health", "sources", "services",
                                 "instances", "unresolved",     "sinks",  "totals",  "memory"};
    for (size_t i = 0; i < MW_ARRAY_LEN(keys); i++)
        CHECK(cJSON_GetObjectItem(doc, keys[i]) != NULL);
    const cJSON *src = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "sources"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "name")), "docker");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "state")), "failing");
    const cJSON *health = cJSON_GetObjectItem(doc, "health");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(health, "status")), "failing");
    const cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "instances"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(in, "check")), "leaky");
    const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(in, "last_error"));
    CHECK(err && strstr(err, "http://***@db.internal/") != NULL);
    const cJSON *sinks = cJSON_GetObjectItem(doc, "sinks");
    CHECK(cJSON_GetArraySize(sinks) == 1);
    const cJSON *prom = cJSON_GetArrayItem(sinks, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(prom, "name")), "prometheus");
    CHECK(cJSON_GetObjectItem(prom, "queued_payloads") == NULL); /* nothing to deliver */
    CHECK(cJSON_GetNumberValue(
              cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "memory"), "rss_bytes")) > 0);
    cJSON_Delete(doc);

    char *resp = get(eng, "/status");
    CHECK(resp && strstr(resp, "hunter2") == NULL);
    CHECK(resp && strstr(resp, "Content-Type: application/json\r\n") != NULL);
    free(resp);
}

static void test_healthz(mw_engine *eng)
{
    char *resp = get(eng, "/healthz");
    CHECK(resp && strncmp(resp, "HTTP/1.1 503 ", 13) == 0);
    CHECK(strstr(body_of(resp), "docker failing for ") != NULL);
    free(resp);
}

static void test_metrics(mw_engine *eng)
{
    const char *sc = "moonwatch_service_check_status{check=\"moonwatch.check_status\"";
    char *resp = NULL;
    double end = mw__mono() + 5;
    while (mw__mono() < end) {
        free(resp);
        resp = get(eng, "/metrics");
        if (strstr(body_of(resp), sc))
            break;
        mw_engine_step(eng, 50);
    }
    CHECK(strstr(body_of(resp), sc) != NULL);
    CHECK(strstr(body_of(resp), "{check=\"docker.service_up\",host=") != NULL);
    if (!strstr(body_of(resp), sc))
        fprintf(stderr, "%s\n", resp ? resp : "(no answer)");
    CHECK(strstr(body_of(resp), "hunter2") == NULL);
    free(resp);
    resp = get(eng, "/nope");
    CHECK(resp && strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
    free(resp);
}

/* A Datadog intake that refuses every connection (nothing listens on
 * 127.0.0.1:1): /status shows the sink failing with its queue, /healthz
 * turns 503 past health_grace, and the API key is in neither. */
static void test_datadog_failing(void)
{
    mw_config *cfg = mw_config_new();
    mw_engine *eng = NULL;
    const char *kv[][2] = {{"listen", "127.0.0.1:0"},
                           {"docker", "off"},
                           {"ecs", "off"},
                           {"health_grace", "0"},
                           {"no_bundled", "true"},
                           {"sink", "datadog"},
                           {"api_key", "k3y-n0t-for-status"},
                           {"dd_url", "http://127.0.0.1:1"},
                           {"forwarder_backoff_max", "0.2"},
                           {"flush_interval", "0.2"}};
    addr[0] = '\0';
    for (size_t i = 0; i < MW_ARRAY_LEN(kv); i++)
        CHECK(mw_config_set(cfg, kv[i][0], kv[i][1], NULL) == MW_OK);
    mw_config_set_log(cfg, on_log, NULL);
    CHECK(mw_engine_new(cfg, &eng, NULL) == MW_OK);
    mw_config_free(cfg);
    if (!eng || !addr[0] || mw_engine_load(eng) != MW_OK) {
        CHECK(!"an engine with a listener");
        mw_engine_free(eng);
        return;
    }
    CHECK(mw_engine_submit(eng, MW_GAUGE, "app.up", 1, NULL, 0, NULL) == MW_OK);
    mw_engine_flush(eng);
    char *resp = NULL;
    double end = mw__mono() + 5;
    while (mw__mono() < end) {
        free(resp);
        resp = get(eng, "/healthz");
        if (resp && !strncmp(resp, "HTTP/1.1 503 ", 13))
            break;
        mw_engine_step(eng, 50);
    }
    CHECK(resp && strncmp(resp, "HTTP/1.1 503 ", 13) == 0);
    CHECK(strstr(body_of(resp), "datadog failing for ") != NULL);
    CHECK(strstr(body_of(resp), "POST /api/v1/series") != NULL);
    CHECK(resp && strstr(resp, "k3y") == NULL);
    free(resp);

    resp = get(eng, "/status");
    CHECK(resp && strstr(resp, "k3y") == NULL);
    cJSON *doc = cJSON_Parse(body_of(resp));
    const cJSON *dd = NULL, *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(doc, "sinks"))
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "name")), "datadog"))
            dd = s;
    }
    CHECK(dd != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(dd, "state")), "failing");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dd, "queued_payloads")) >= 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dd, "queue_max_bytes")) == 32 << 20);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dd, "retries")) >= 1);
    CHECK(cJSON_GetNumberValue(
              cJSON_GetObjectItem(cJSON_GetObjectItem(dd, "dropped"), "queue_full")) == 0);
    cJSON_Delete(doc);
    free(resp);
    mw_engine_free(eng);
}

int main(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-status");
    tmptree_put(tmp, "checks/leaky.lua",
                "return { run = function(self)\n"
                "  error('GET http://admin:hunter2@db.internal/ failed', 0)\n"
                "end }\n");
    tmptree_put(tmp, "templates/leaky.d/conf.yaml", "instances:\n  - min_collection_interval: 1\n");
    mw_engine *eng = make_engine();
    CHECK(eng != NULL);
    CHECK(addr[0] != '\0');
    if (eng && addr[0]) {
        test_status(eng);
        test_healthz(eng);
        test_metrics(eng);
    }
    mw_engine_free(eng);
    test_datadog_failing();
    tmptree_remove(tmp);
    return TEST_RESULT();
}

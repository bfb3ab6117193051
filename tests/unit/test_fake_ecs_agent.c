/*
 * test_fake_ecs_agent.c - the fake ECS agent (tests/support/fake_ecs_agent.h)
 * is as strict as the real one, since the ECS source's tests lean on it:
 * exact paths, 404 with the agent's empty task for an unknown id, 400
 * when both query parameters are given or a short id prefix is
 * ambiguous, 405 for other methods; the v1 shape (internal containers
 * hidden, DesiredStatus left out as the agent leaves it out); answers in
 * a changing order unless asked not to; and its controls: going down and
 * up, failures, latency, counters, keep-alive.
 *
 * Requests are made with a small blocking client over a loopback socket.
 */
#include "core/base/util.h"
#include "test.h"
#include "tests/support/fake_ecs_agent.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define FIX "tests/fixtures/ecs"
#define ID1 "9581a69a761a557fbfce1d0f6745e4af5b9dbfb86b6b2c5c4df156f1a5932ff1"
#define ID2 "bf25c5c5b2d4dba68846c7236e75b6915e1e778d31611e3c6a06831e39814a15"
#define ARN "arn:aws:ecs:us-west-2:012345678910:task/default/example5-58ff-46c9-ae05-543f8example"

typedef struct reply {
    int status; /* -1: connect refused or broken */
    char body[65536];
} reply;

static int dial(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (Content-Length framed) from `fd` into `r`. */
static void read_reply(int fd, reply *r, int head_only)
{
    static char buf[sizeof r->body + 1024];
    size_t n = 0, want = 0;
    char *body = NULL;
    r->status = -1;
    r->body[0] = '\0';
    while (n < sizeof buf - 1) {
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        buf[n] = '\0';
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            char *cl = strstr(buf, "Content-Length: ");
            body += 4;
            want = head_only ? 0 : cl ? strtoul(cl + 16, NULL, 10) : 0;
        }
        if (body && (size_t)(buf + n - body) >= want) {
            sscanf(buf, "HTTP/1.1 %d", &r->status);
            snprintf(r->body, sizeof r->body, "%.*s", (int)want, body);
            return;
        }
    }
}

static void request_on(int fd, const char *method, const char *target, reply *r)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, target);
    r->status = -1;
    if (fd < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return;
    read_reply(fd, r, !strcmp(method, "HEAD"));
}

static reply *get(mw__fea *a, const char *target)
{
    static reply r;
    int fd = dial(mw__fea_port(a));
    request_on(fd, "GET", target, &r);
    if (fd >= 0)
        close(fd);
    return &r;
}

static cJSON *get_json(mw__fea *a, const char *target, int want_status)
{
    reply *r = get(a, target);
    CHECK(r->status == want_status);
    return cJSON_Parse(r->body);
}

static mw__fea *start(int keep_order)
{
    char *err = NULL;
    mw__fea_opts o = {.keep_order = keep_order};
    mw__fea *a = mw__fea_new(&o, &err);
    if (!a) {
        fprintf(stderr, "fake agent: %s\n", err);
        exit(2);
    }
    CHECK(mw__fea_load(a, MW_TEST_SOURCE_DIR "/" FIX "/introspection_v1_tasks.json") == 0);
    return a;
}

/* ------------------------------------------------------------ routes */

static void test_routes(void)
{
    mw__fea *a = start(1);
    reply *r;
    cJSON *j = get_json(a, "/v1/metadata", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Cluster")), "default");
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Version")) != NULL);
    cJSON_Delete(j);

    /* exact paths only */
    const char *wrong[] = {"/v1/tasks/",   "/v1/task",      "/v1",        "/",
                           "/v2/metadata", "/v1/metadata/", "/x/v1/tasks"};
    for (size_t i = 0; i < MW_ARRAY_LEN(wrong); i++) {
        r = get(a, wrong[i]);
        CHECK(r->status == 404);
        CHECK_STR(r->body, "404 page not found\n");
    }
    int fd = dial(mw__fea_port(a));
    reply pr;
    request_on(fd, "POST", "/v1/tasks", &pr);
    CHECK(pr.status == 405);
    close(fd);

    /* ?dockerid=: full id exactly, a short one as a prefix */
    j = get_json(a, "/v1/tasks?dockerid=" ID1, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Arn")), ARN);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "Containers")) == 2);
    cJSON_Delete(j);
    j = get_json(a, "/v1/tasks?dockerid=9581a69a761a", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Arn")), ARN);
    cJSON_Delete(j);
    r = get(a, "/v1/tasks?dockerid=9581a69a761a557"); /* over 12: must be whole */
    CHECK(r->status == 404);
    CHECK_STR(r->body, "{\"Arn\":\"\",\"KnownStatus\":\"\",\"Family\":\"\",\"Version\":\"\","
                       "\"Containers\":null}");
    r = get(a, "/v1/tasks?dockerid=ffffffffffff");
    CHECK(r->status == 404);
    /* both parameters */
    r = get(a, "/v1/tasks?dockerid=" ID1 "&taskarn=" ARN);
    CHECK(r->status == 400);
    CHECK_STR(r->body, "");
    /* ?taskarn=, percent-encoded as a client sends it */
    j = get_json(a,
                 "/v1/tasks?taskarn=arn%3Aaws%3Aecs%3Aus-west-2%3A012345678910%3Atask%2Fdefault%2F"
                 "example5-58ff-46c9-ae05-543f8example",
                 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Family")), "hello_world");
    cJSON_Delete(j);
    r = get(a, "/v1/tasks?taskarn=arn:nope");
    CHECK(r->status == 404);
    /* an ambiguous short id */
    CHECK(mw__fea_put_task(a, "{\"Arn\":\"arn:aws:ecs:us-west-2:1:task/default/t2\","
                              "\"Family\":\"f\",\"Version\":\"1\",\"Containers\":[{\"Name\":"
                              "\"c\",\"DockerId\":\"9581a69a761a0000\"}]}") == 0);
    r = get(a, "/v1/tasks?dockerid=9581a69a");
    CHECK(r->status == 400);
    j = get_json(a, "/v1/tasks?dockerid=9581a69a761a0000", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "Family")), "f");
    cJSON_Delete(j);
    /* counted by kind, logged */
    mw__fea_request last;
    CHECK(mw__fea_last_request(a, MW_FEA_EP_TASK, &last) == 0);
    CHECK_STR(last.target, "/v1/tasks?dockerid=9581a69a761a0000");
    CHECK(last.status == 200);
    CHECK(mw__fea_count(a, MW_FEA_EP_METADATA) == 1);
    CHECK(mw__fea_count(a, MW_FEA_EP_OTHER) == MW_ARRAY_LEN(wrong));
    mw__fea_free(a);
}

/* ------------------------------------------------------------ v1 shape */

static const cJSON *task_named(const cJSON *doc, const char *arn)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "Tasks"))
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "Arn")), arn))
            return t;
    }
    return NULL;
}

static void test_v1_shape(void)
{
    mw__fea *a = start(1);
    /* a v4 task: the pause container is hidden, the fields renamed */
    CHECK(mw__fea_load(a, MW_TEST_SOURCE_DIR "/" FIX "/v4_task.json") == 0);
    cJSON *doc = get_json(a, "/v1/tasks", 200);
    const cJSON *t = task_named(doc, "arn:aws:ecs:us-west-2:111122223333:task/default/"
                                     "158d1c8083dd49d6b527399fd6414f5c");
    CHECK(t != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "Version")), "26");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(t, "Containers")) == 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(
                  cJSON_GetArrayItem(cJSON_GetObjectItem(t, "Containers"), 0), "Name")),
              "curl");
    CHECK(cJSON_GetObjectItem(t, "Cluster") == NULL && cJSON_GetObjectItem(t, "TaskARN") == NULL);
    cJSON_Delete(doc);

    /* DesiredStatus as the agent shows it */
    struct {
        const char *known, *desired;
        int shown;
    } cases[] = {
        {"RUNNING", "RUNNING", 1}, {"RUNNING", "PENDING", 0}, {"STOPPED", "RUNNING", 0},
        {"STOPPED", "STOPPED", 1}, {"PENDING", "RUNNING", 1}, {"RUNNING", "", 0},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        CHECK(mw__fea_task_status(a, ARN, cases[i].known, cases[i].desired) == 0);
        doc = get_json(a, "/v1/tasks", 200);
        t = task_named(doc, ARN);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "KnownStatus")), cases[i].known);
        CHECK((cJSON_GetObjectItem(t, "DesiredStatus") != NULL) == cases[i].shown);
        cJSON_Delete(doc);
    }
    /* a container created later, one stopped */
    CHECK(mw__fea_put_container(a, ARN, "sidecar", "", NULL) == 0);
    doc = get_json(a, "/v1/tasks?dockerid=" ID2, 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "Containers")) == 3);
    cJSON_Delete(doc);
    CHECK(mw__fea_put_container(a, ARN, "sidecar", "abcdef0123456789", "ecs-sidecar") == 0);
    doc = get_json(a, "/v1/tasks?dockerid=abcdef0123456789", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "Arn")), ARN);
    cJSON_Delete(doc);
    CHECK(mw__fea_container_stop(a, ARN, "sidecar", 3) == 0);
    CHECK(mw__fea_container_stop(a, ARN, "nope", 3) == -1);
    CHECK(strstr(mw__fea_error(a), "nope") != NULL);
    /* removal, and the empty list */
    CHECK(mw__fea_remove_task(a, ARN) == 0);
    CHECK(get(a, "/v1/tasks?dockerid=" ID1)->status == 404);
    CHECK(mw__fea_clear(a) == 0 && mw__fea_task_count(a) == 0);
    CHECK_STR(get(a, "/v1/tasks")->body, "{\"Tasks\":[]}");
    CHECK(mw__fea_put_task(a, "{\"Family\":\"x\"}") == -1);
    mw__fea_free(a);
}

/* Many tasks come in changing orders, always the same set. */
static void test_order(void)
{
    mw__fea *a = start(0);
    char json[512];
    for (int i = 0; i < 20; i++) {
        snprintf(json, sizeof json,
                 "{\"Arn\":\"arn:aws:ecs:us-west-2:1:task/c/t%02d\",\"Family\":\"f\","
                 "\"Version\":\"1\",\"Containers\":[{\"Name\":\"a\",\"DockerId\":\"a%02d\"},"
                 "{\"Name\":\"b\",\"DockerId\":\"b%02d\"}]}",
                 i, i, i);
        CHECK(mw__fea_put_task(a, json) == 0);
    }
    static char first[sizeof(reply){0}.body];
    snprintf(first, sizeof first, "%s", get(a, "/v1/tasks")->body);
    int differ = 0;
    for (int k = 0; k < 5; k++) {
        reply *r = get(a, "/v1/tasks");
        differ += strcmp(r->body, first) != 0;
        CHECK(strlen(r->body) == strlen(first));
        cJSON *doc = cJSON_Parse(r->body);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "Tasks")) == 21);
        cJSON_Delete(doc);
    }
    CHECK(differ > 0);
    mw__fea_free(a);
}

/* ------------------------------------------------------------ controls */

static void test_controls(void)
{
    mw__fea *a = start(1);
    int port = mw__fea_port(a);
    double t0;
    reply r;

    /* keep-alive: two requests, one connection; HEAD has no body */
    int fd = dial(port);
    request_on(fd, "HEAD", "/v1/metadata", &r);
    CHECK(r.status == 200 && r.body[0] == '\0');
    request_on(fd, "GET", "/v1/metadata", &r);
    CHECK(r.status == 200 && strstr(r.body, "\"Cluster\"") != NULL);
    /* down: the open connection is closed, a new one refused */
    CHECK(mw__fea_down(a) == 0);
    request_on(fd, "GET", "/v1/metadata", &r);
    CHECK(r.status == -1);
    close(fd);
    CHECK(dial(port) == -1 && errno == ECONNREFUSED);
    CHECK(mw__fea_up(a) == 0 && mw__fea_port(a) == port);
    CHECK(get(a, "/v1/metadata")->status == 200);

    /* a malformed payload, twice, then the real one */
    CHECK(mw__fea_fail_next(a, MW_FEA_EP_TASKS, 200, "{\"Tasks\":[{", 2) == 0);
    CHECK_STR(get(a, "/v1/tasks")->body, "{\"Tasks\":[{");
    CHECK_STR(get(a, "/v1/tasks")->body, "{\"Tasks\":[{");
    CHECK(strstr(get(a, "/v1/tasks")->body, "hello_world") != NULL);
    CHECK(mw__fea_fail_next(a, MW_FEA_EP_METADATA, 503, NULL, 1) == 0);
    CHECK(get(a, "/v1/metadata")->status == 503);
    CHECK(get(a, "/v1/metadata")->status == 200);

    /* latency, per kind (the other kinds answer at once: well within it,
     * however loaded the machine) */
    CHECK(mw__fea_set_latency(a, MW_FEA_EP_TASK, 1500) == 0);
    t0 = mw__mono();
    CHECK(get(a, "/v1/tasks?dockerid=" ID1)->status == 200);
    CHECK(mw__mono() - t0 >= 1.49);
    t0 = mw__mono();
    CHECK(get(a, "/v1/metadata")->status == 200);
    CHECK(mw__mono() - t0 < 1.4);

    /* counters and waits */
    mw__fea_counts_reset(a);
    CHECK(mw__fea_count(a, MW_FEA_EP_COUNT) == 0);
    get(a, "/v1/tasks");
    CHECK(mw__fea_wait_count(a, MW_FEA_EP_TASKS, 1, 1000) == 0);
    CHECK(mw__fea_wait_count(a, MW_FEA_EP_TASKS, 2, 100) == -1);
    CHECK(mw__fea_set_metadata(a, "arn:aws:ecs:us-west-2:1:cluster/prod", NULL, NULL) == 0);
    CHECK(strstr(get(a, "/v1/metadata")->body, "cluster/prod") != NULL);
    mw__fea_free(a);
}

/* ------------------------------------------------------------ v4 */

#define FG     "arn:aws:ecs:us-east-2:111122223333:task/fargate-demo/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define FG_WEB "0a1b2c3d4e5f60718293a4b5c6d7e8f9-2222222222"

static const cJSON *container_named(const cJSON *task, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(task, "Containers"))
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "Name")), name))
            return c;
    }
    return NULL;
}

/* The task metadata endpoint v4: every field put, the state now, the
 * tags only at /taskWithTags, the asking container, the stats. */
static void test_v4(void)
{
    mw__fea *a = start(0);
    char path[256];
    reply *r;
    CHECK(mw__fea_load(a, MW_TEST_SOURCE_DIR "/" FIX "/v4_task_fargate.json") == 0);
    /* /v4 serves the first task put (the v1 one here) unless told */
    cJSON *j = get_json(a, MW_FEA_V4_PATH "/task", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "TaskARN")), ARN);
    CHECK(cJSON_GetObjectItem(j, "Revision") != NULL);
    cJSON_Delete(j);
    CHECK(mw__fea_v4_select(a, FG, NULL) == 0);
    CHECK(strstr(mw__fea_v4_url(a), mw__fea_url(a)) == mw__fea_v4_url(a));
    CHECK(strstr(mw__fea_v4_url(a), MW_FEA_V4_PATH) != NULL);
    j = get_json(a, MW_FEA_V4_PATH "/task", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "TaskARN")), FG);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "LaunchType")), "FARGATE");
    CHECK(cJSON_GetObjectItem(j, "TaskTags") == NULL && cJSON_GetObjectItem(j, "Arn") == NULL);
    const cJSON *web = container_named(j, "web");
    CHECK(web && cJSON_GetArraySize(cJSON_GetObjectItem(web, "Ports")) == 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(web, "KnownStatus")), "RUNNING");
    CHECK(cJSON_GetObjectItem(web, "ExitCode") == NULL);
    cJSON_Delete(j);
    j = get_json(a, MW_FEA_V4_PATH "/taskWithTags", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "TaskTags"), "team")),
              "storefront");
    cJSON_Delete(j);
    /* the state changes show */
    CHECK(mw__fea_container_stop(a, FG, "web", 3) == 0);
    CHECK(mw__fea_task_status(a, FG, "STOPPED", "STOPPED") == 0);
    j = get_json(a, MW_FEA_V4_PATH "/task", 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "KnownStatus")), "STOPPED");
    web = container_named(j, "web");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(web, "ExitCode")) == 3);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(web, "KnownStatus")), "STOPPED");
    cJSON_Delete(j);
    CHECK(mw__fea_container_status(a, FG, "web", "RUNNING") == 0);
    CHECK(mw__fea_container_status(a, FG, "nope", "RUNNING") == -1);
    /* no asking container named: 404; then the one named */
    r = get(a, MW_FEA_V4_PATH);
    CHECK(r->status == 404);
    CHECK(mw__fea_v4_select(a, FG, "moonwatch") == 0);
    j = get_json(a, MW_FEA_V4_PATH, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "DockerId")),
              "0a1b2c3d4e5f60718293a4b5c6d7e8f9-1111111111");
    cJSON_Delete(j);
    /* stats: null until put, the map keyed by DockerId */
    j = get_json(a, MW_FEA_V4_PATH "/task/stats", 200);
    CHECK(cJSON_GetArraySize(j) == 3 && cJSON_IsNull(cJSON_GetObjectItem(j, FG_WEB)));
    cJSON_Delete(j);
    CHECK(mw__fea_load_stats(a, MW_TEST_SOURCE_DIR "/" FIX "/v4_task_stats_cgroupv2.json") == 0);
    j = get_json(a, MW_FEA_V4_PATH "/task/stats", 200);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, FG_WEB), "memory_stats") != NULL);
    cJSON_Delete(j);
    CHECK(mw__fea_put_stats(a, "0a1b2c3d4e5f60718293a4b5c6d7e8f9-1111111111",
                            "{\"pids_stats\":{\"current\":2}}") == 0);
    j = get_json(a, MW_FEA_V4_PATH "/stats", 200);
    CHECK(cJSON_GetNumberValue(
              cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pids_stats"), "current")) == 2);
    cJSON_Delete(j);
    CHECK(mw__fea_put_stats(a, FG_WEB, NULL) == 0);
    j = get_json(a, MW_FEA_V4_PATH "/task/stats", 200);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, FG_WEB)));
    cJSON_Delete(j);
    /* other paths under it, failures, counters */
    snprintf(path, sizeof path, "%s/tasks", MW_FEA_V4_PATH);
    CHECK(get(a, path)->status == 404);
    CHECK(mw__fea_fail_next(a, MW_FEA_EP_V4_TASK, 200, "not json", 1) == 0);
    r = get(a, MW_FEA_V4_PATH "/task");
    CHECK(r->status == 200 && !strcmp(r->body, "not json"));
    CHECK(mw__fea_count(a, MW_FEA_EP_V4_TASK) == 5 && mw__fea_count(a, MW_FEA_EP_V4_STATS) == 4);
    CHECK(mw__fea_count(a, MW_FEA_EP_V4_CONTAINER) == 2);
    /* no task at all */
    CHECK(mw__fea_clear(a) == 0);
    CHECK(get(a, MW_FEA_V4_PATH "/task")->status == 404);
    mw__fea_free(a);
}

int main(void)
{
    test_routes();
    test_v1_shape();
    test_order();
    test_controls();
    test_v4();
    return TEST_RESULT();
}

/*
 * test_ecs_task.c - the ECS task model read from the AWS documentation
 * examples (tests/fixtures/ecs/): the introspection API's /v1/tasks,
 * ?dockerid= and /v1/metadata answers and the task metadata v4 /task
 * answer into one model; each malformed field refused with a message
 * naming it; containers sorted so that order does not change a task; the
 * order-insensitive JSON digest; and the limits on sizes.
 */
#include "core/base/buf.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_task.h"
#include "test.h"

#include <stdlib.h>

#define FIX MW_TEST_FIXTURES "/ecs"

static char *slurp(const char *name, size_t *len)
{
    char path[256], *text = NULL;
    snprintf(path, sizeof path, "%s/%s", FIX, name);
    CHECK(mw__read_file(path, 1 << 20, &text, len) == MW_OK);
    return text;
}

/* A task from a JSON text with single quotes for double. */
static mw_code task_from(const char *spec, mw__ecs_format f, mw__ecs_task **t, char **err)
{
    char *s = mw__strdup(spec);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    mw_code rc = mw__ecs_task_parse(s, strlen(s), f, t, err);
    free(s);
    return rc;
}

/* The message a bad task document gets (v1), "" when it is accepted. */
static char *refusal(const char *spec, mw__ecs_format f)
{
    mw__ecs_task *t = NULL;
    char *err = NULL;
    mw_code rc = task_from(spec, f, &t, &err);
    if (rc == MW_OK) {
        CHECK(t != NULL && err == NULL);
        mw__ecs_task_free(t);
        return mw__strdup("");
    }
    CHECK(rc == MW_EPARSE && t == NULL && err != NULL);
    return err ? err : mw__strdup("(no message)");
}

#define CHECK_REFUSED(spec, f, want)                                                               \
    do {                                                                                           \
        char *got_ = refusal(spec, f);                                                             \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

/* ------------------------------------------------------------ fixtures */

static void test_v1_tasks(void)
{
    size_t len = 0;
    char *text = slurp("introspection_v1_tasks.json", &len), *err = NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *tasks = NULL;
    mw__ecs_task *t = NULL;

    CHECK(mw__ecs_tasks_array(root, &tasks, &err) == MW_OK && err == NULL);
    CHECK(cJSON_GetArraySize(tasks) == 1);
    CHECK(mw__ecs_task_read(cJSON_GetArrayItem(tasks, 0), MW_ECS_V1, "Tasks[0]", &t, &err) ==
          MW_OK);
    if (!t)
        goto out;
    CHECK_STR(t->arn, "arn:aws:ecs:us-west-2:012345678910:task/default/"
                      "example5-58ff-46c9-ae05-543f8example");
    CHECK_STR(t->family, "hello_world");
    CHECK_STR(t->version, "8");
    CHECK_STR(t->known_status, "RUNNING");
    CHECK_STR(t->desired_status, "RUNNING");
    CHECK(t->cluster == NULL && t->availability_zone == NULL && t->launch_type == NULL);
    CHECK(t->ncontainers == 2);
    /* sorted by name */
    CHECK_STR(t->containers[0].name, "mysql");
    CHECK_STR(t->containers[0].docker_id,
              "9581a69a761a557fbfce1d0f6745e4af5b9dbfb86b6b2c5c4df156f1a5932ff1");
    CHECK_STR(t->containers[0].docker_name, "ecs-hello_world-8-mysql-fcae8ac8f9f1d89d8301");
    CHECK_STR(t->containers[0].type, "NORMAL");
    CHECK(t->containers[0].image == NULL && t->containers[0].known_status == NULL);
    CHECK(!t->containers[0].has_exit_code && t->containers[0].labels == NULL);
    CHECK_STR(t->containers[1].name, "wordpress");
    CHECK(mw__ecs_task_container(t,
                                 "bf25c5c5b2d4dba68846c7236e75b6915e1e778d31611e3c6a06831e39814a1"
                                 "5") == &t->containers[1]);
    CHECK(mw__ecs_task_container(t, "bf25c5c5b2d4") == NULL); /* exact ids only */
    CHECK(t->digest == mw__ecs_task_digest(t) && t->digest != 0);
out:
    mw__ecs_task_free(t);
    cJSON_Delete(root);
    free(text);
}

static void test_v1_dockerid(void)
{
    size_t len = 0;
    char *text = slurp("introspection_v1_tasks_dockerid.json", &len), *err = NULL;
    mw__ecs_task *t = NULL;

    CHECK(mw__ecs_task_parse(text, len, MW_ECS_V1, &t, &err) == MW_OK && err == NULL);
    if (t) {
        CHECK_STR(t->family, "nginx-efs");
        CHECK_STR(t->version, "2");
        CHECK(t->ncontainers == 1);
        CHECK_STR(t->containers[0].name, "nginx");
    }
    mw__ecs_task_free(t);
    /* The same document read as v4 lacks TaskARN. */
    CHECK(mw__ecs_task_parse(text, len, MW_ECS_V4, &t, &err) == MW_EPARSE && t == NULL);
    CHECK_STR(err, "TaskARN: missing");
    free(err);
    free(text);
}

static void test_v4_task(void)
{
    size_t len = 0;
    char *text = slurp("v4_task.json", &len), *err = NULL;
    mw__ecs_task *t = NULL;

    CHECK(mw__ecs_task_parse(text, len, MW_ECS_V4, &t, &err) == MW_OK && err == NULL);
    if (!t)
        goto out;
    CHECK_STR(t->arn, "arn:aws:ecs:us-west-2:111122223333:task/default/"
                      "158d1c8083dd49d6b527399fd6414f5c");
    CHECK_STR(t->family, "curltest");
    CHECK_STR(t->version, "26");
    CHECK_STR(t->cluster, "default");
    CHECK_STR(t->availability_zone, "us-west-2d");
    CHECK_STR(t->launch_type, "EC2");
    CHECK(t->ncontainers == 2);
    /* "curl" sorts before "~internal~ecs~pause" */
    const mw__ecs_container *c = &t->containers[0], *p = &t->containers[1];
    CHECK_STR(c->name, "curl");
    CHECK_STR(c->type, "NORMAL");
    CHECK_STR(c->image, "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest");
    CHECK_STR(c->known_status, "RUNNING");
    CHECK(c->nipv4 == 1 && c->nipv4 && strcmp(c->ipv4[0], "127.0.0.61") == 0);
    CHECK_STR(cJSON_GetStringValue(
                  cJSON_GetObjectItemCaseSensitive(c->labels, "com.amazonaws.ecs.container-name")),
              "curl");
    CHECK_STR(c->network_mode, "awsvpc");
    CHECK(c->nports == 0 && t->resource_tags == NULL);
    CHECK_STR(p->type, "CNI_PAUSE");
    CHECK_STR(p->known_status, "RESOURCES_PROVISIONED");
out:
    mw__ecs_task_free(t);
    free(text);
    /* taskWithTags: the same task, and its resource tags */
    uint64_t digest = 0;
    text = slurp("v4_task.json", &len);
    if (mw__ecs_task_parse(text, len, MW_ECS_V4, &t, &err) == MW_OK)
        digest = t->digest;
    mw__ecs_task_free(t);
    free(text);
    text = slurp("v4_task_with_tags.json", &len);
    CHECK(mw__ecs_task_parse(text, len, MW_ECS_V4, &t, &err) == MW_OK);
    if (t) {
        CHECK_STR(t->containers[0].name, "curl");
        CHECK(cJSON_GetArraySize(t->resource_tags) == 2);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->resource_tags, "tag-use")),
                  "task-metadata-endpoint-test");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->resource_tags, "tag_key")),
                  "tag_value");
        CHECK(t->digest != digest); /* the tags count */
    }
    mw__ecs_task_free(t);
    free(text);
}

/* Ports (v4): container ports, sorted and unique, tcp by default; items
 * without a ContainerPort skipped; TaskTags win over
 * ContainerInstanceTags. */
static void test_v4_ports_tags(void)
{
    mw__ecs_task *t = NULL;
    char *err = NULL;
    CHECK(task_from("{'TaskARN':'arn:a','TaskTags':{'team':'web','env':'prod'},"
                    "'ContainerInstanceTags':{'env':'staging','rack':'r1'},"
                    "'Containers':[{'Name':'a','Ports':[{'ContainerPort':8080,'Protocol':'tcp',"
                    "'HostPort':8080,'HostIp':'0.0.0.0'},{'ContainerPort':53,'Protocol':'udp'},"
                    "{'ContainerPort':80},{'HostPort':9},{'ContainerPort':80,'Protocol':'tcp'}],"
                    "'Networks':[{'NetworkMode':'host'},{'NetworkMode':'bridge',"
                    "'IPv4Addresses':['127.0.0.9']}]}]}",
                    MW_ECS_V4, &t, &err) == MW_OK);
    if (t) {
        const mw__ecs_container *c = &t->containers[0];
        CHECK(c->nports == 3);
        if (c->nports == 3) {
            CHECK(c->ports[0].number == 53 && !strcmp(c->ports[0].proto, "udp"));
            CHECK(c->ports[1].number == 80 && !strcmp(c->ports[1].proto, "tcp"));
            CHECK(c->ports[2].number == 8080 && !strcmp(c->ports[2].proto, "tcp"));
        }
        CHECK_STR(c->network_mode, "host");
        CHECK(c->nipv4 == 1);
        CHECK(cJSON_GetArraySize(t->resource_tags) == 3);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->resource_tags, "env")), "prod");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->resource_tags, "rack")), "r1");
    }
    mw__ecs_task_free(t);
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Ports':{}}]}", MW_ECS_V4,
                  "Containers[0].Ports: not an array");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Ports':[{'ContainerPort':0}]}]}",
                  MW_ECS_V4, "Containers[0].Ports[0].ContainerPort: not a port number");
    CHECK_REFUSED(
        "{'TaskARN':'arn:a','Containers':[{'Name':'a','Ports':[{'ContainerPort':'80'}]}]}",
        MW_ECS_V4, "Containers[0].Ports[0].ContainerPort: not a port number");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Ports':[{'ContainerPort':80,"
                  "'Protocol':'TCP/x'}]}]}",
                  MW_ECS_V4, "Containers[0].Ports[0].Protocol: not a protocol name");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Ports':[7]}]}", MW_ECS_V4,
                  "Containers[0].Ports[0]: not an object");
    CHECK_REFUSED("{'TaskARN':'arn:a','TaskTags':[]}", MW_ECS_V4, "TaskTags: not an object");
    CHECK_REFUSED("{'TaskARN':'arn:a','ContainerInstanceTags':{'k':true}}", MW_ECS_V4,
                  "ContainerInstanceTags: \"k\": not a string");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Networks':[{'NetworkMode':1}]}]}",
                  MW_ECS_V4, "Containers[0].Networks[0].NetworkMode: not a string");
    /* v1 does not read Ports nor tags */
    CHECK_REFUSED("{'Arn':'arn:a','TaskTags':7,'Containers':[{'Name':'a','Ports':[{'x':1}]}]}",
                  MW_ECS_V1, "");
    /* at most MW_ECS_TAGS_MAX tags of a kind */
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    mw__buf_addf(&b, "{\"TaskARN\":\"arn:a\",\"TaskTags\":{");
    for (int i = 0; i <= MW_ECS_TAGS_MAX; i++)
        mw__buf_addf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i);
    mw__buf_addf(&b, "}}");
    CHECK(mw__ecs_task_parse(mw__buf_str(&b), b.len, MW_ECS_V4, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "TaskTags: more than 64 members");
    free(err);
    mw__buf_free(&b);
}

static void test_metadata(void)
{
    size_t len = 0;
    char *text = slurp("introspection_v1_metadata.json", &len), *err = NULL;
    mw__ecs_metadata m;

    CHECK(mw__ecs_metadata_parse(text, len, &m, &err) == MW_OK && err == NULL);
    CHECK_STR(m.cluster, "cluster_name");
    CHECK_STR(m.instance_arn, "arn:aws:ecs:region:aws_account_id:container-instance/cluster_name/"
                              "container_instance_id");
    CHECK_STR(m.version, "Amazon ECS Agent - v1.30.0 (02ff320c)");
    mw__ecs_metadata_clear(&m);
    free(text);

    /* A container instance not registered yet: ContainerInstanceArn null. */
    const char *unreg = "{\"Cluster\":\"c\",\"ContainerInstanceArn\":null,\"Version\":\"v\"}";
    CHECK(mw__ecs_metadata_parse(unreg, strlen(unreg), &m, &err) == MW_OK);
    CHECK_STR(m.instance_arn, "");
    mw__ecs_metadata_clear(&m);
    const char *bad = "{\"Cluster\":7}";
    CHECK(mw__ecs_metadata_parse(bad, strlen(bad), &m, &err) == MW_EPARSE && m.cluster == NULL);
    CHECK_STR(err, "Cluster: not a string");
    free(err);
    CHECK(mw__ecs_metadata_parse("[", 1, &m, &err) == MW_EPARSE);
    CHECK_STR(err, "metadata: not a JSON object");
    free(err);
}

/* ------------------------------------------------------------ rules */

static void test_refusals(void)
{
    CHECK_REFUSED("[]", MW_ECS_V1, "task: not a JSON object");
    CHECK_REFUSED("{}", MW_ECS_V1, "Arn: missing");
    CHECK_REFUSED("{'Arn':''}", MW_ECS_V1, "Arn: empty");
    CHECK_REFUSED("{'Arn':3}", MW_ECS_V1, "Arn: not a string");
    CHECK_REFUSED("{'Arn':'task-1'}", MW_ECS_V1, "Arn: not an ARN: \"task-1\"");
    CHECK_REFUSED("{'Arn':'arn:a','Family':['x']}", MW_ECS_V1, "Family: not a string");
    CHECK_REFUSED("{'Arn':'arn:a','Version':8}", MW_ECS_V1, "Version: not a string");
    CHECK_REFUSED("{'Arn':'arn:a','Containers':{}}", MW_ECS_V1, "Containers: not an array");
    CHECK_REFUSED("{'Arn':'arn:a','Containers':[7]}", MW_ECS_V1, "Containers[0]: not an object");
    CHECK_REFUSED("{'Arn':'arn:a','Containers':[{'Name':'a'},{'DockerId':'x'}]}", MW_ECS_V1,
                  "Containers[1].Name: missing");
    CHECK_REFUSED("{'Arn':'arn:a','Containers':[{'Name':'a','DockerId':'../etc'}]}", MW_ECS_V1,
                  "Containers[0].DockerId: not a container id");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','ExitCode':'1'}]}", MW_ECS_V4,
                  "Containers[0].ExitCode: not an integer");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','ExitCode':1.5}]}", MW_ECS_V4,
                  "Containers[0].ExitCode: not an integer");
    CHECK_REFUSED("{'TaskARN':'arn:a','Containers':[{'Name':'a','Labels':{'k':1}}]}", MW_ECS_V4,
                  "Containers[0].Labels: \"k\": not a string");
    CHECK_REFUSED(
        "{'TaskARN':'arn:a','Containers':[{'Name':'a','Networks':[{'IPv4Addresses':[1]}]}]}",
        MW_ECS_V4, "Containers[0].Networks[0].IPv4Addresses: [0] is not an address");
    CHECK_REFUSED("{'TaskARN':'arn:a','Cluster':{}}", MW_ECS_V4, "Cluster: not a string");
    /* What the model does not hold is not read: any shape passes. */
    CHECK_REFUSED("{'Arn':'arn:a','Containers':[{'Name':'a','Ports':7,'Volumes':'x'}],'X':[]}",
                  MW_ECS_V1, "");
    /* v1 fields that only v4 reads are ignored in v1. */
    CHECK_REFUSED("{'Arn':'arn:a','Cluster':{}}", MW_ECS_V1, "");
    /* Omitted fields, null fields, a container not created yet. */
    mw__ecs_task *t = NULL;
    char *err = NULL;
    CHECK(
        task_from("{'Arn':'arn:a','DesiredStatus':null,'Containers':[{'Name':'db','DockerId':''}]}",
                  MW_ECS_V1, &t, &err) == MW_OK);
    if (t) {
        CHECK_STR(t->family, "");
        CHECK_STR(t->desired_status, "");
        CHECK_STR(t->containers[0].docker_id, "");
        CHECK(mw__ecs_task_container(t, "") == NULL);
    }
    mw__ecs_task_free(t);
    /* The ?dockerid= 404 body: an empty task. */
    CHECK(task_from("{'Arn':'','KnownStatus':'','Family':'','Version':'','Containers':null}",
                    MW_ECS_V1, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "Arn: empty");
    free(err);
    CHECK(mw__ecs_task_parse("{", 1, MW_ECS_V1, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "task: not JSON");
    free(err);
    /* A list item's messages carry its path. */
    cJSON *item = cJSON_Parse("{\"Arn\":\"arn:a\",\"Containers\":[{\"Name\":5}]}");
    CHECK(mw__ecs_task_read(item, MW_ECS_V1, "Tasks[4]", &t, &err) == MW_EPARSE);
    CHECK_STR(err, "Tasks[4].Containers[0].Name: not a string");
    free(err);
    cJSON_Delete(item);
}

static void test_limits(void)
{
    /* A string over MW_ECS_STR_MAX, a task with too many containers. */
    mw__buf b;
    mw__ecs_task *t = NULL;
    char *err = NULL;

    mw__buf_init(&b, 1 << 20);
    mw__buf_adds(&b, "{\"Arn\":\"arn:");
    for (int i = 0; i < MW_ECS_STR_MAX; i++)
        mw__buf_addc(&b, 'x');
    mw__buf_adds(&b, "\"}");
    CHECK(mw__ecs_task_parse(mw__buf_str(&b), b.len, MW_ECS_V1, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "Arn: longer than 2048 bytes");
    free(err);
    mw__buf_reset(&b);
    mw__buf_adds(&b, "{\"Arn\":\"arn:a\",\"Containers\":[");
    for (int i = 0; i <= MW_ECS_CONTAINERS_MAX; i++)
        mw__buf_addf(&b, "%s{\"Name\":\"c%d\"}", i ? "," : "", i);
    mw__buf_adds(&b, "]}");
    CHECK(mw__ecs_task_parse(mw__buf_str(&b), b.len, MW_ECS_V1, &t, &err) == MW_EPARSE);
    CHECK_STR(err, "Containers: more than 256 containers");
    free(err);
    mw__buf_free(&b);
}

static void test_tasks_array(void)
{
    const cJSON *tasks = (const cJSON *)1;
    char *err = NULL;
    cJSON *j = cJSON_Parse("{\"Tasks\":null}");
    CHECK(mw__ecs_tasks_array(j, &tasks, &err) == MW_OK && tasks == NULL && err == NULL);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"Tasks\":[]}");
    CHECK(mw__ecs_tasks_array(j, &tasks, &err) == MW_OK && cJSON_GetArraySize(tasks) == 0);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"tasks\":[]}");
    CHECK(mw__ecs_tasks_array(j, &tasks, &err) == MW_EPARSE);
    CHECK_STR(err, "Tasks: missing");
    free(err);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"Tasks\":{}}");
    CHECK(mw__ecs_tasks_array(j, &tasks, &err) == MW_EPARSE);
    CHECK_STR(err, "Tasks: not an array");
    free(err);
    cJSON_Delete(j);
    CHECK(mw__ecs_tasks_array(NULL, &tasks, &err) == MW_EPARSE);
    CHECK_STR(err, "tasks: not a JSON object");
    free(err);
}

/* The same task, containers and members in another order: the same
 * model digest and the same JSON digest; a changed value: another. */
static void test_digests(void)
{
    const char *a = "{'Arn':'arn:x','Family':'f','Version':'1','KnownStatus':'RUNNING',"
                    "'Containers':[{'Name':'a','DockerId':'aa'},{'Name':'b','DockerId':'bb'}]}";
    const char *b = "{'Containers':[{'DockerId':'bb','Name':'b'},{'Name':'a','DockerId':'aa'}],"
                    "'KnownStatus':'RUNNING','Version':'1','Family':'f','Arn':'arn:x'}";
    const char *c = "{'Arn':'arn:x','Family':'f','Version':'1','KnownStatus':'STOPPED',"
                    "'Containers':[{'Name':'a','DockerId':'aa'},{'Name':'b','DockerId':'bb'}]}";
    mw__ecs_task *ta = NULL, *tb = NULL, *tc = NULL;
    char *err = NULL;
    CHECK(task_from(a, MW_ECS_V1, &ta, &err) == MW_OK);
    CHECK(task_from(b, MW_ECS_V1, &tb, &err) == MW_OK);
    CHECK(task_from(c, MW_ECS_V1, &tc, &err) == MW_OK);
    if (ta && tb && tc) {
        CHECK(ta->digest == tb->digest);
        CHECK(ta->digest != tc->digest);
    }
    mw__ecs_task_free(ta);
    mw__ecs_task_free(tb);
    mw__ecs_task_free(tc);

    char *sa = mw__strdup(a), *sb = mw__strdup(b), *sc = mw__strdup(c);
    for (char *p = sa; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    for (char *p = sb; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    for (char *p = sc; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    cJSON *ja = cJSON_Parse(sa), *jb = cJSON_Parse(sb), *jc = cJSON_Parse(sc);
    CHECK(mw__ecs_json_digest(ja) == mw__ecs_json_digest(jb));
    CHECK(mw__ecs_json_digest(ja) != mw__ecs_json_digest(jc));
    /* A key moved to another object is a change; so is a string that
     * becomes a number. */
    cJSON *j1 = cJSON_Parse("{\"a\":{\"b\":\"1\"},\"c\":{}}");
    cJSON *j2 = cJSON_Parse("{\"a\":{},\"c\":{\"b\":\"1\"}}");
    cJSON *j3 = cJSON_Parse("{\"a\":{\"b\":1},\"c\":{}}");
    CHECK(mw__ecs_json_digest(j1) != mw__ecs_json_digest(j2));
    CHECK(mw__ecs_json_digest(j1) != mw__ecs_json_digest(j3));
    cJSON_Delete(j1);
    cJSON_Delete(j2);
    cJSON_Delete(j3);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    cJSON_Delete(jc);
    free(sa);
    free(sb);
    free(sc);
}

static void test_ids(void)
{
    CHECK(mw__ecs_id_valid("9581a69a761a557fbfce1d0f6745e4af5b9dbfb86b6b2c5c4df156f1a5932ff1"));
    CHECK(mw__ecs_id_valid("1e1f4a1b2b8c4b6e9f3a0d2c5e7b9a11-2531612879")); /* Fargate */
    CHECK(!mw__ecs_id_valid(""));
    CHECK(!mw__ecs_id_valid("a/b"));
    CHECK(!mw__ecs_id_valid("a b"));
    CHECK(!mw__ecs_id_valid("a?x=1"));
}

int main(void)
{
    test_v1_tasks();
    test_v1_dockerid();
    test_v4_task();
    test_v4_ports_tags();
    test_metadata();
    test_refusals();
    test_limits();
    test_tasks_array();
    test_digests();
    test_ids();
    return TEST_RESULT();
}

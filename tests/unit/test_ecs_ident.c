/*
 * test_ecs_ident.c - a container's ECS identity from its com.amazonaws.ecs.*
 * labels and from the task model, and what follows: the cluster's short
 * name and the region from ARNs, the tags under Datadog's names, the
 * service view that carries them (merged tags, `extra`, digest), and
 * the %%task_arn%%-style template variables resolved against it - or
 * left unresolved with the reason for a container outside ECS.
 *
 * The property the join depends on: a container described by its labels
 * and the same container described by the agent (a cluster given as an
 * ARN or a name) give equal identities and views with equal digests.
 */
#include "core/base/buf.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_ident.h"
#include "discovery/tmplvars.h"
#include "test.h"
#include "tests/support/svc_spec.h"

#include <stdlib.h>

#define ARN       "arn:aws:ecs:us-west-2:012345678910:task/default/example5-58ff-46c9-ae05-543f8example"
#define MYSQL_ID  "9581a69a761a557fbfce1d0f6745e4af5b9dbfb86b6b2c5c4df156f1a5932ff1"
#define CLUSTER_A "arn:aws:ecs:us-west-2:012345678910:cluster/default"

/* The labels the ECS agent puts on the mysql container of the
 * introspection example. */
static const char *const mysql_labels = "{'com.amazonaws.ecs.task-arn':'" ARN "',"
                                        "'com.amazonaws.ecs.container-name':'mysql',"
                                        "'com.amazonaws.ecs.task-definition-family':'hello_world',"
                                        "'com.amazonaws.ecs.task-definition-version':'8',"
                                        "'com.amazonaws.ecs.cluster':'default'}";

static mw__ecs_task *example_task(void)
{
    char *text = NULL, *err = NULL;
    size_t len = 0;
    cJSON *root;
    const cJSON *tasks = NULL;
    mw__ecs_task *t = NULL;
    CHECK(mw__read_file(MW_TEST_FIXTURES "/ecs/introspection_v1_tasks.json", 1 << 20, &text,
                        &len) == MW_OK);
    root = cJSON_ParseWithLength(text, len);
    CHECK(mw__ecs_tasks_array(root, &tasks, &err) == MW_OK);
    CHECK(mw__ecs_task_read(cJSON_GetArrayItem(tasks, 0), MW_ECS_V1, "", &t, &err) == MW_OK);
    cJSON_Delete(root);
    free(text);
    return t;
}

/* The tags of `id`, one string "a,b,c" in the order given. */
static mw_code add_tag(void *ud, const char *tag)
{
    mw__buf *b = ud;
    if (b->len)
        mw__buf_addc(b, ',');
    return mw__buf_adds(b, tag);
}

static char *tags_of(const mw__ecs_ident *id)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 16);
    CHECK(mw__ecs_ident_tags(id, add_tag, &b) == MW_OK);
    char *s = mw__strdup(mw__buf_str(&b));
    mw__buf_free(&b);
    return s;
}

/* ------------------------------------------------------------ ARNs */

static void test_arns(void)
{
    char *s;
    CHECK_STR(s = mw__ecs_cluster_short("default"), "default");
    free(s);
    CHECK_STR(s = mw__ecs_cluster_short(CLUSTER_A), "default");
    free(s);
    CHECK(mw__ecs_cluster_short("") == NULL && mw__ecs_cluster_short(NULL) == NULL);
    CHECK_STR(s = mw__ecs_arn_region(ARN), "us-west-2");
    free(s);
    CHECK(mw__ecs_arn_region("arn:aws:ecs::1:task/x") == NULL);
    CHECK(mw__ecs_arn_region("task/x") == NULL);
    CHECK(mw__ecs_arn_region("arn:aws") == NULL);
    CHECK_STR(s = mw__ecs_arn_task_cluster(ARN), "default");
    free(s);
    /* the short, older form names no cluster */
    CHECK(mw__ecs_arn_task_cluster("arn:aws:ecs:us-east-1:012345678910:task/0b69d5c0-d655") ==
          NULL);
    CHECK(mw__ecs_arn_task_cluster("arn:aws:ecs:us-east-1:1:container-instance/c/x") == NULL);
    CHECK(mw__ecs_arn_task_cluster("arn:aws:ecs:us-east-1:1:task//x") == NULL);
}

/* ------------------------------------------------------------ identity */

static void test_from_labels(void)
{
    cJSON *labels = mw__test_spec_parse(mysql_labels);
    mw__ecs_ident id;
    CHECK(mw__ecs_ident_for(labels, NULL, NULL, NULL, "EC2", &id) == MW_OK);
    char *tags = tags_of(&id);
    CHECK_STR(tags, "task_arn:" ARN ",task_family:hello_world,task_version:8,"
                    "task_name:hello_world,ecs_cluster_name:default,cluster_name:default,"
                    "ecs_container_name:mysql,region:us-west-2,ecs_launch_type:ec2");
    free(tags);
    mw__ecs_ident_clear(&id);
    CHECK(id.task_arn == NULL);

    /* Only the task ARN: the cluster from a long ARN, the rest unknown. */
    cJSON *only = mw__test_spec_parse("{'com.amazonaws.ecs.task-arn':'" ARN "'}");
    CHECK(mw__ecs_ident_for(only, NULL, NULL, NULL, NULL, &id) == MW_OK);
    tags = tags_of(&id);
    CHECK_STR(tags, "task_arn:" ARN ",ecs_cluster_name:default,cluster_name:default,"
                    "region:us-west-2");
    free(tags);
    mw__ecs_ident_clear(&id);
    cJSON_Delete(only);

    /* Not an ECS container. */
    cJSON *none = mw__test_spec_parse("{'com.amazonaws.ecs.cluster':'default'}");
    CHECK(mw__ecs_ident_for(none, NULL, NULL, NULL, "EC2", &id) == MW_ENOTFOUND);
    CHECK(mw__ecs_ident_for(NULL, NULL, NULL, NULL, "EC2", &id) == MW_ENOTFOUND);
    cJSON *empty = mw__test_spec_parse("{'com.amazonaws.ecs.task-arn':''}");
    CHECK(mw__ecs_ident_for(empty, NULL, NULL, NULL, "EC2", &id) == MW_ENOTFOUND);
    cJSON_Delete(none);
    cJSON_Delete(empty);
    cJSON_Delete(labels);
}

/* The labels and the agent say the same, whichever way the cluster is
 * written; the model wins where they differ, labels fill the gaps. */
static void test_model_and_labels(void)
{
    cJSON *labels = mw__test_spec_parse(mysql_labels);
    mw__ecs_task *t = example_task();
    const mw__ecs_container *c = mw__ecs_task_container(t, MYSQL_ID);
    mw__ecs_ident a, b, m;
    CHECK(c != NULL);
    CHECK(mw__ecs_ident_for(labels, NULL, NULL, NULL, "EC2", &a) == MW_OK);
    CHECK(mw__ecs_ident_for(labels, t, c, CLUSTER_A, "EC2", &b) == MW_OK);
    CHECK(mw__ecs_ident_equal(&a, &b));
    mw__ecs_ident_clear(&b);
    /* the agent alone (no labels), cluster as a short name */
    CHECK(mw__ecs_ident_for(NULL, t, c, "default", "EC2", &b) == MW_OK);
    CHECK(mw__ecs_ident_equal(&a, &b));
    mw__ecs_ident_clear(&b);
    /* no metadata yet: the task ARN names the cluster */
    CHECK(mw__ecs_ident_for(NULL, t, c, NULL, "EC2", &b) == MW_OK);
    CHECK(mw__ecs_ident_equal(&a, &b));
    mw__ecs_ident_clear(&b);

    /* Where they differ, the model wins, field by field. */
    cJSON *other = mw__test_spec_parse("{'com.amazonaws.ecs.task-arn':'" ARN "',"
                                       "'com.amazonaws.ecs.container-name':'old',"
                                       "'com.amazonaws.ecs.task-definition-version':'7',"
                                       "'com.amazonaws.ecs.cluster':'elsewhere'}");
    CHECK(mw__ecs_ident_for(other, t, c, NULL, "EC2", &m) == MW_OK);
    CHECK_STR(m.container_name, "mysql");
    CHECK_STR(m.version, "8");
    CHECK_STR(m.cluster, "elsewhere"); /* the agent's metadata is not known: the label */
    mw__ecs_ident_clear(&m);
    cJSON_Delete(other);
    mw__ecs_ident_clear(&a);
    mw__ecs_task_free(t);
    cJSON_Delete(labels);
}

/* A v4 task says its launch type and zone. */
static void test_v4_identity(void)
{
    char *text = NULL, *err = NULL;
    size_t len = 0;
    mw__ecs_task *t = NULL;
    mw__ecs_ident id;
    CHECK(mw__read_file(MW_TEST_FIXTURES "/ecs/v4_task.json", 1 << 20, &text, &len) == MW_OK);
    CHECK(mw__ecs_task_parse(text, len, MW_ECS_V4, &t, &err) == MW_OK);
    free(text);
    if (!t)
        return;
    CHECK(mw__ecs_ident_for(NULL, t, &t->containers[0], NULL, NULL, &id) == MW_OK);
    char *tags = tags_of(&id);
    CHECK_STR(tags, "task_arn:arn:aws:ecs:us-west-2:111122223333:task/default/"
                    "158d1c8083dd49d6b527399fd6414f5c,task_family:curltest,task_version:26,"
                    "task_name:curltest,ecs_cluster_name:default,cluster_name:default,"
                    "ecs_container_name:curl,region:us-west-2,ecs_launch_type:ec2,"
                    "availability_zone:us-west-2d");
    free(tags);
    mw__ecs_ident_clear(&id);
    mw__ecs_task_free(t);
}

/* ------------------------------------------------------------ views */

static void test_view(void)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{'cid':'%s','name':'ecs-hello_world-8-mysql','labels':%s,"
             "'nets':[['bridge','127.0.0.9','']],'ports':[[3306,'tcp']],"
             "'tags':['container_id:%s','region:us-west-2','short_image:mysql']}",
             MYSQL_ID, mysql_labels, MYSQL_ID);
    mw__service *base = mw__test_service(spec);
    base->digest = mw__service_digest(base);
    mw__ecs_task *t = example_task();
    mw__ecs_ident from_labels, from_agent;
    mw__ecs_view v1, v2;
    CHECK(mw__ecs_ident_for(base->labels, NULL, NULL, NULL, "EC2", &from_labels) == MW_OK);
    CHECK(mw__ecs_ident_for(base->labels, t, mw__ecs_task_container(t, MYSQL_ID), CLUSTER_A, "EC2",
                            &from_agent) == MW_OK);
    CHECK(mw__ecs_view_make(base, &from_labels, &v1) == MW_OK);
    CHECK(mw__ecs_view_make(base, &from_agent, &v2) == MW_OK);
    CHECK(v1.svc.digest == v2.svc.digest);
    CHECK(v1.svc.digest != base->digest);
    CHECK(v1.svc.digest == mw__service_digest(&v1.svc));
    /* tags: the base's and the identity's, sorted, the shared one once */
    const char *want[] = {
        "cluster_name:default",     "container_id:" MYSQL_ID, "ecs_cluster_name:default",
        "ecs_container_name:mysql", "ecs_launch_type:ec2",    "region:us-west-2",
        "short_image:mysql",        "task_arn:" ARN,          "task_family:hello_world",
        "task_name:hello_world",    "task_version:8"};
    CHECK(v1.svc.ntags == MW_ARRAY_LEN(want));
    for (size_t i = 0; i < MW_ARRAY_LEN(want) && i < v1.svc.ntags; i++)
        CHECK_STR(v1.svc.tags[i], want[i]);
    /* the base is untouched */
    CHECK(base->ntags == 3 && base->extra == NULL);
    CHECK(v1.svc.labels == base->labels && v1.svc.nets == base->nets);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v1.svc.extra, "task_arn")),
              ARN);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v1.svc.extra, "region")),
              "us-west-2");

    /* The template variables resolve against the view... */
    cJSON *tmpl = mw__test_spec_parse(
        "{'arn':'%%task_arn%%','family':'%%task_family%%','version':'%%task_version%%',"
        "'name':'%%task_name%%','cluster':'%%ecs_cluster_name%%',"
        "'container':'%%ecs_container_name%%','region':'%%extra_region%%',"
        "'url':'http://%%host%%:%%port%%/%%ecs_container_name%%'}");
    cJSON *out = NULL;
    char *reason = NULL;
    CHECK(mw__tmplvars_resolve(tmpl, &v1.svc, NULL, &out, &reason) == MW_OK);
    char *got = cJSON_PrintUnformatted(out);
    CHECK_STR(got, "{\"arn\":\"" ARN "\",\"family\":\"hello_world\",\"version\":8,"
                   "\"name\":\"hello_world\",\"cluster\":\"default\",\"container\":\"mysql\","
                   "\"region\":\"us-west-2\",\"url\":\"http://127.0.0.9:3306/mysql\"}");
    free(got);
    cJSON_Delete(out);
    /* ...and leave the config unresolved, with the reason, for the base. */
    CHECK(mw__tmplvars_resolve(tmpl, base, NULL, &out, &reason) == MW_EINVAL && out == NULL);
    CHECK_STR(reason, "%%task_arn%%: the container is not part of an ECS task (no "
                      "com.amazonaws.ecs.task-arn label, not listed by the ECS agent; or ECS "
                      "discovery is off)");
    free(reason);
    cJSON_Delete(tmpl);
    /* An ECS container whose identity lacks a value. */
    mw__ecs_ident bare;
    cJSON *only = mw__test_spec_parse("{'com.amazonaws.ecs.task-arn':'arn:aws:ecs:eu-west-1:1:"
                                      "task/t1'}");
    mw__ecs_view v3;
    CHECK(mw__ecs_ident_for(only, NULL, NULL, NULL, NULL, &bare) == MW_OK);
    CHECK(mw__ecs_view_make(base, &bare, &v3) == MW_OK);
    tmpl = mw__test_spec_parse("'%%ecs_cluster_name%%'");
    CHECK(mw__tmplvars_resolve(tmpl, &v3.svc, NULL, &out, &reason) == MW_EINVAL);
    CHECK_STR(reason, "%%ecs_cluster_name%%: not known for this ECS task container");
    free(reason);
    cJSON_Delete(tmpl);
    mw__ecs_view_clear(&v3);
    mw__ecs_ident_clear(&bare);
    cJSON_Delete(only);

    mw__ecs_view_clear(&v1);
    mw__ecs_view_clear(&v2);
    CHECK(v1.svc.tags == NULL && v1.own == NULL);
    mw__ecs_ident_clear(&from_labels);
    mw__ecs_ident_clear(&from_agent);
    mw__ecs_task_free(t);
    mw__service_free(base);
}

/* The variables are known names: templates using them load without a
 * typo warning. */
static void test_known_names(void)
{
    const char *names[] = {"%%task_arn%%",  "%%task_family%%",      "%%task_version%%",
                           "%%task_name%%", "%%ecs_cluster_name%%", "%%ecs_container_name%%"};
    char *reason = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        CHECK(mw__tmplvars_check(names[i], &reason) == MW_OK && reason == NULL);
        free(reason);
    }
    CHECK(mw__tmplvars_check("%%task_id%%", &reason) == MW_EINVAL);
    CHECK_STR(reason, "%%task_id%%: unknown template variable");
    free(reason);
}

int main(void)
{
    test_arns();
    test_from_labels();
    test_model_and_labels();
    test_v4_identity();
    test_view();
    test_known_names();
    return TEST_RESULT();
}

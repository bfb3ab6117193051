/*
 * fuzz_ecs_task.c - libFuzzer target: the ECS payload readers
 * (discovery/ecs/ecs_task.h) over one input taken every way the ECS
 * source takes an answer: a GET /v1/tasks document (the Tasks array, each
 * item read on its own), a bare task in the introspection (v1) and task
 * metadata v4 formats (the ?dockerid= and /task answers), and a
 * /v1/metadata document; then each container's identity (ecs_ident.h)
 * and its tags, with and without the task's own com.amazonaws.ecs.*
 * labels.
 *
 * Properties: a refusal is MW_EPARSE (or MW_ENOMEM) with a message and
 * no task; a task read has the shape ecs_task.h promises (an ARN, strings
 * set, ids valid or "", containers sorted by name then id, at most the
 * cap, its digest); the same object with its containers in reverse order
 * reads to the same digest, and so does its order-insensitive JSON
 * digest; every tag is "key:value"; and an identity made from the labels
 * the agent would set equals the one made from the task.
 */
#include "discovery/ecs/ecs_ident.h"
#include "discovery/ecs/ecs_task.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(mw_code rc, const void *out, const char *err)
{
    if ((rc != MW_EPARSE && rc != MW_ENOMEM) || out || (rc == MW_EPARSE && (!err || !err[0])))
        abort(); /* a refusal says why and makes nothing */
}

static void check_shape(const mw__ecs_task *t)
{
    const char *strs[] = {t->arn, t->family, t->version, t->known_status, t->desired_status};

    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!strs[i] || strlen(strs[i]) > MW_ECS_STR_MAX)
            abort();
    if (strncmp(t->arn, "arn:", 4) != 0 || t->ncontainers > MW_ECS_CONTAINERS_MAX)
        abort();
    for (size_t i = 0; i < t->ncontainers; i++) {
        const mw__ecs_container *c = &t->containers[i], *p = i ? c - 1 : NULL;
        if (!c->name || !c->name[0] || !c->docker_id || !c->docker_name || !c->type)
            abort();
        if (c->docker_id[0] && !mw__ecs_id_valid(c->docker_id))
            abort();
        if (p && (strcmp(p->name, c->name) > 0 ||
                  (strcmp(p->name, c->name) == 0 && strcmp(p->docker_id, c->docker_id) > 0)))
            abort();
        for (size_t k = 0; k < c->nipv4; k++)
            if (!c->ipv4[k])
                abort();
    }
    if (t->digest != mw__ecs_task_digest(t))
        abort();
}

/* The object with its Containers reversed reads to the same model. */
static void check_reordered(const cJSON *obj, mw__ecs_format f, const mw__ecs_task *t)
{
    cJSON *copy = cJSON_Duplicate(obj, 1), *list, *rev;
    mw__ecs_task *u = NULL;
    char *err = NULL;

    if (!copy)
        return;
    list = cJSON_GetObjectItemCaseSensitive(copy, "Containers");
    rev = cJSON_IsArray(list) ? cJSON_CreateArray() : NULL;
    while (rev && list->child)
        cJSON_AddItemToArray(rev, cJSON_DetachItemViaPointer(list, list->child));
    if (rev) {
        while (rev->child) /* append each at the front: reversed */
            cJSON_InsertItemInArray(list, 0, cJSON_DetachItemViaPointer(rev, rev->child));
        cJSON_Delete(rev);
        if (mw__ecs_json_digest(copy) != mw__ecs_json_digest(obj))
            abort();
        mw_code rc = mw__ecs_task_read(copy, f, "", &u, &err);
        if (rc == MW_OK && u->digest != t->digest)
            abort();
        if (rc == MW_EPARSE)
            abort(); /* read once, read always */
    }
    mw__ecs_task_free(u);
    free(err);
    cJSON_Delete(copy);
}

static mw_code tag_ok(void *ud, const char *tag)
{
    const char *colon = strchr(tag, ':');
    (void)ud;
    if (!colon || colon == tag || !colon[1])
        abort();
    return MW_OK;
}

/* The labels the agent sets, from the task itself. */
static cJSON *labels_of(const mw__ecs_task *t, const mw__ecs_container *c)
{
    cJSON *l = cJSON_CreateObject();
    if (!l)
        return NULL;
    cJSON_AddStringToObject(l, MW_ECS_LABEL_TASK_ARN, t->arn);
    cJSON_AddStringToObject(l, MW_ECS_LABEL_CONTAINER, c->name);
    cJSON_AddStringToObject(l, MW_ECS_LABEL_FAMILY, t->family);
    cJSON_AddStringToObject(l, MW_ECS_LABEL_VERSION, t->version);
    if (t->cluster)
        cJSON_AddStringToObject(l, MW_ECS_LABEL_CLUSTER, t->cluster);
    return l;
}

static void check_identities(const mw__ecs_task *t)
{
    for (size_t i = 0; i < t->ncontainers; i++) {
        const mw__ecs_container *c = &t->containers[i];
        mw__ecs_ident a, b;
        cJSON *labels = labels_of(t, c);
        if (mw__ecs_ident_for(NULL, t, c, t->cluster, "EC2", &a) != MW_OK)
            continue; /* out of memory */
        mw__ecs_ident_tags(&a, tag_ok, NULL);
        if (labels && mw__ecs_ident_for(labels, NULL, NULL, NULL, "EC2", &b) == MW_OK) {
            /* the labels hold no zone, launch type, address or tags */
            if (!a.availability_zone && !t->launch_type && !a.ipv4 && !a.resource_tags &&
                !mw__ecs_ident_equal(&a, &b))
                abort();
            mw__ecs_ident_clear(&b);
        }
        mw__ecs_ident_clear(&a);
        cJSON_Delete(labels);
    }
}

static void one_task(const cJSON *obj, mw__ecs_format f, const char *path)
{
    mw__ecs_task *t = NULL;
    char *err = NULL;
    mw_code rc = mw__ecs_task_read(obj, f, path, &t, &err);

    if (rc != MW_OK) {
        check_refusal(rc, t, err);
    } else {
        if (err)
            abort();
        check_shape(t);
        check_reordered(obj, f, t);
        check_identities(t);
    }
    mw__ecs_task_free(t);
    free(err);
}

static void tasks_list(const cJSON *doc)
{
    const cJSON *tasks = NULL, *it;
    char *err = NULL;
    mw_code rc = mw__ecs_tasks_array(doc, &tasks, &err);

    if (rc != MW_OK) {
        check_refusal(rc, tasks, err);
        free(err);
        return;
    }
    cJSON_ArrayForEach(it, tasks) one_task(it, MW_ECS_V1, "Tasks[i]");
}

static void metadata(const uint8_t *data, size_t size)
{
    mw__ecs_metadata m;
    char *err = NULL;
    mw_code rc = mw__ecs_metadata_parse((const char *)data, size, &m, &err);

    if (rc != MW_OK) {
        check_refusal(rc, m.cluster, err);
    } else if (err || !m.cluster || !m.instance_arn || !m.version) {
        abort();
    } else {
        char *s = mw__ecs_cluster_short(m.cluster);
        if (m.cluster[0] && !s)
            abort();
        free(s);
    }
    mw__ecs_metadata_clear(&m);
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);

    metadata(data, size);
    if (!doc)
        return 0;
    tasks_list(doc);
    one_task(doc, MW_ECS_V1, "");
    one_task(doc, MW_ECS_V4, "");
    cJSON_Delete(doc);
    return 0;
}

/*
 * fake_ecs_agent_v4.c - the fake ECS agent's task metadata endpoint v4
 * (see fake_ecs_agent.h): the task and its containers rebuilt from the
 * JSON they were put with and their current state, the asking
 * container, and the stats documents. Called with the lock held.
 *
 * Ownership: every answer is a new document, handed to the caller.
 */
#include "tests/support/fake_ecs_agent_int.h"

#include <stdlib.h>
#include <string.h>

/* The container named `name` in the put document, or NULL. */
static const cJSON *doc_container(const mw__feai_task *t, const char *name)
{
    const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(t->doc, "Containers");
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "Name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return it;
    }
    return NULL;
}

static void set_string(cJSON *o, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (value && *value)
        cJSON_AddStringToObject(o, key, value);
}

/* One container as it is now, over what it was put with. */
static cJSON *v4_container(const mw__feai_task *t, const mw__feai_ctr *c)
{
    const cJSON *base = doc_container(t, c->name);
    cJSON *o = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    if (!o)
        return NULL;
    set_string(o, "Name", c->name);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "DockerId");
    cJSON_AddStringToObject(o, "DockerId", c->docker_id);
    set_string(o, "DockerName", c->docker_name);
    set_string(o, "Type", c->type);
    set_string(o, "KnownStatus", c->known);
    set_string(o, "Image", c->image);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "ExitCode");
    if (c->has_exit)
        cJSON_AddNumberToObject(o, "ExitCode", c->exit_code);
    return o;
}

/* The task as it is now; its resource tags only `with_tags`. */
static cJSON *v4_task(mw__fea *a, const mw__feai_task *t, int with_tags)
{
    cJSON *o = cJSON_Duplicate(t->doc, 1), *list;
    size_t *ix = calloc(t->nc ? t->nc : 1, sizeof *ix);
    static const char *const drop[] = {"Arn", "Version", "Containers"};
    if (!o || !ix) {
        free(ix);
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, drop[i]);
    if (!with_tags) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "TaskTags");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "ContainerInstanceTags");
    }
    set_string(o, "TaskARN", t->arn);
    set_string(o, "Family", t->family);
    set_string(o, "Revision", t->version);
    set_string(o, "KnownStatus", t->known);
    set_string(o, "DesiredStatus", t->desired);
    list = cJSON_AddArrayToObject(o, "Containers");
    mw__feai_order(a, ix, t->nc);
    for (size_t i = 0; list && i < t->nc; i++)
        cJSON_AddItemToArray(list, v4_container(t, &t->c[ix[i]]));
    free(ix);
    return o;
}

static const mw__feai_ctr *self_of(const mw__fea *a, const mw__feai_task *t)
{
    for (size_t i = 0; t && a->v4_self && i < t->nc; i++)
        if (strcmp(t->c[i].name, a->v4_self) == 0)
            return &t->c[i];
    return NULL;
}

static cJSON *stats_of(const mw__fea *a, const char *docker_id)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(a->stats, docker_id);
    return s ? cJSON_Duplicate(s, 1) : cJSON_CreateNull();
}

static cJSON *task_stats(const mw__fea *a, const mw__feai_task *t)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < t->nc; i++)
        if (t->c[i].docker_id[0])
            cJSON_AddItemToObject(o, t->c[i].docker_id, stats_of(a, t->c[i].docker_id));
    return o;
}

static void not_found(mw__feai_answer *out, const char *why)
{
    mw__feai_answer_text(out, 404, "text/plain; charset=utf-8", why);
}

void mw__feai_answer_v4(mw__fea *a, const char *rest, mw__fea_ep *ep, mw__feai_answer *out)
{
    mw__feai_task *t = mw__feai_v4_task(a);
    const mw__feai_ctr *self = self_of(a, t);
    int is_task = !strcmp(rest, "/task") || !strcmp(rest, "/taskWithTags");
    int is_stats = !strcmp(rest, "/task/stats") || !strcmp(rest, "/stats");

    *ep = is_task ? MW_FEA_EP_V4_TASK : is_stats ? MW_FEA_EP_V4_STATS : MW_FEA_EP_V4_CONTAINER;
    if (!is_task && !is_stats && strcmp(rest, "") != 0) {
        *ep = MW_FEA_EP_OTHER;
        not_found(out, "404 page not found\n");
    } else if (!t) {
        not_found(out, "no task\n");
    } else if (is_task) {
        mw__feai_answer_json(out, 200, v4_task(a, t, !strcmp(rest, "/taskWithTags")));
    } else if (!strcmp(rest, "/task/stats")) {
        mw__feai_answer_json(out, 200, task_stats(a, t));
    } else if (!self) {
        not_found(out, "no container asks\n");
    } else if (is_stats) {
        mw__feai_answer_json(out, 200, stats_of(a, self->docker_id));
    } else {
        mw__feai_answer_json(out, 200, v4_container(t, self));
    }
}

/*
 * svc_spec.c - services for tests from a compact JSON spec (see
 * svc_spec.h).
 */
#include "tests/support/svc_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *mw__test_spec_parse(const char *spec)
{
    char *s = strdup(spec);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j)
        fprintf(stderr, "bad spec: %s\n", spec);
    return j;
}

static char *str_of(const cJSON *o, const char *key, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return strdup(cJSON_IsString(v) ? v->valuestring : def);
}

static cJSON *obj_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v ? cJSON_Duplicate(v, 1) : cJSON_CreateObject();
}

static char *item_str(const cJSON *a, int i)
{
    const cJSON *v = cJSON_GetArrayItem(a, i);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static void nets_of(mw__service *s, const cJSON *a)
{
    const cJSON *it;
    s->nets = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *s->nets);
    cJSON_ArrayForEach(it, a)
    {
        mw__svc_network *n = &s->nets[s->nnets++];
        n->name = item_str(it, 0);
        n->ip = item_str(it, 1);
        n->ip6 = item_str(it, 2);
    }
}

static void ports_of(mw__service *s, const cJSON *a)
{
    const cJSON *it;
    s->ports = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *s->ports);
    cJSON_ArrayForEach(it, a)
    {
        mw__svc_port *p = &s->ports[s->nports++];
        char *proto = item_str(it, 1);
        p->number = cJSON_GetArrayItem(it, 0)->valueint;
        snprintf(p->proto, sizeof p->proto, "%s", proto ? proto : "tcp");
        free(proto);
        p->name = item_str(it, 2);
    }
}

mw__service *mw__test_service(const char *spec)
{
    cJSON *sp = mw__test_spec_parse(spec);
    mw__service *s = calloc(1, sizeof *s);
    const cJSON *a, *it;
    char id[128];

    s->cid = str_of(sp, "cid", MW_TEST_CID);
    snprintf(id, sizeof id, "docker://%s", s->cid);
    s->id = strdup(id);
    s->name = str_of(sp, "name", "web");
    s->image = str_of(sp, "image", "redis:7");
    s->image_long = str_of(sp, "image_long", "docker.io/library/redis");
    s->image_short = str_of(sp, "image_short", "redis");
    s->image_tag = str_of(sp, "image_tag", "7");
    s->labels = obj_of(sp, "labels");
    s->env = obj_of(sp, "env");
    if (cJSON_GetObjectItemCaseSensitive(sp, "extra"))
        s->extra = obj_of(sp, "extra");
    s->hostname = str_of(sp, "hostname", "");
    s->health = strdup("");
    s->state = strdup("running");
    s->host_network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sp, "host_network"));
    a = cJSON_GetObjectItemCaseSensitive(sp, "origin");
    s->origin = cJSON_IsString(a) && !strcmp(a->valuestring, "task_metadata") ? MW_SVC_TASK_METADATA
                                                                              : MW_SVC_DOCKER;
    a = cJSON_GetObjectItemCaseSensitive(sp, "pid");
    s->pid = cJSON_IsNumber(a) ? (long)a->valuedouble : 0;
    nets_of(s, cJSON_GetObjectItemCaseSensitive(sp, "nets"));
    ports_of(s, cJSON_GetObjectItemCaseSensitive(sp, "ports"));
    a = cJSON_GetObjectItemCaseSensitive(sp, "tags");
    s->tags = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *s->tags);
    cJSON_ArrayForEach(it, a) s->tags[s->ntags++] = strdup(it->valuestring);
    cJSON_Delete(sp);
    return s;
}

/*
 * ecs_ident.c - a container's ECS identity from its labels and the task
 * model, its tags and extra values, and the service view that carries
 * them (see ecs_ident.h).
 *
 * Ownership: an identity's strings are its own; a view owns its tag
 * array, the tag strings it added and its extra object, and borrows the
 * rest from its base service.
 */
#include "discovery/ecs/ecs_ident.h"

#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ ARNs */

char *mw__ecs_cluster_short(const char *cluster)
{
    const char *slash;

    if (!cluster || !*cluster)
        return NULL;
    if (strncmp(cluster, "arn:", 4) == 0 && (slash = strrchr(cluster, '/')) && slash[1])
        return mw__strdup(slash + 1);
    return mw__strdup(cluster);
}

/* The `i`-th (0-based) ':'-separated field of `arn` as [*start, *n). */
static int arn_field(const char *arn, int i, const char **start, size_t *n)
{
    const char *p = arn, *colon;

    if (!arn || strncmp(arn, "arn:", 4) != 0)
        return 0;
    for (; i > 0; i--) {
        if (!(p = strchr(p, ':')))
            return 0;
        p++;
    }
    colon = strchr(p, ':');
    *start = p;
    *n = colon ? (size_t)(colon - p) : strlen(p);
    return 1;
}

char *mw__ecs_arn_region(const char *arn)
{
    const char *p;
    size_t n;

    if (!arn_field(arn, 3, &p, &n) || n == 0)
        return NULL;
    return mw__strndup(p, n);
}

char *mw__ecs_arn_task_cluster(const char *arn)
{
    const char *p, *slash;
    size_t n;

    if (!arn_field(arn, 5, &p, &n) || strncmp(p, "task/", 5) != 0)
        return NULL;
    p += 5;
    slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1])
        return NULL; /* the short form: task/<id> */
    return mw__strndup(p, (size_t)(slash - p));
}

/* ------------------------------------------------------------ identity */

/* A label's non-empty string value, or NULL. */
static const char *label(const cJSON *labels, const char *key)
{
    const cJSON *j = labels ? cJSON_GetObjectItemCaseSensitive(labels, key) : NULL;
    return cJSON_IsString(j) && j->valuestring[0] ? j->valuestring : NULL;
}

/* `s` when non-empty, else `fallback` when non-empty, else NULL. */
static const char *first(const char *s, const char *fallback)
{
    if (s && *s)
        return s;
    return fallback && *fallback ? fallback : NULL;
}

/* Copies `s` (NULL stays NULL); 0 on OOM. */
static int dup_opt(char **out, const char *s)
{
    *out = s ? mw__strdup(s) : NULL;
    return !s || *out;
}

static char *lower(const char *s)
{
    char *out = s ? mw__strdup(s) : NULL;

    for (char *p = out; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* The cluster's short name: the task's (v4), the agent's, the label's,
 * else the one a long task ARN names. */
static int make_cluster(mw__ecs_ident *out, const cJSON *labels, const mw__ecs_task *task,
                        const char *agent_cluster)
{
    const char *c = first(task ? task->cluster : NULL, first(agent_cluster, NULL));

    c = first(c, label(labels, MW_ECS_LABEL_CLUSTER));
    if (c)
        return (out->cluster = mw__ecs_cluster_short(c)) != NULL;
    out->cluster = mw__ecs_arn_task_cluster(out->task_arn);
    return 1; /* NULL: unknown, or OOM - then it is just unknown */
}

mw_code mw__ecs_ident_for(const cJSON *labels, const mw__ecs_task *task,
                          const mw__ecs_container *ctr, const char *agent_cluster,
                          const char *launch_type, mw__ecs_ident *out)
{
    const char *arn = task ? task->arn : label(labels, MW_ECS_LABEL_TASK_ARN);
    const char *lt;

    memset(out, 0, sizeof *out);
    if (!arn)
        return MW_ENOTFOUND;
    lt = first(task ? task->launch_type : NULL, launch_type);
    if (!dup_opt(&out->task_arn, arn) ||
        !dup_opt(&out->family,
                 first(task ? task->family : NULL, label(labels, MW_ECS_LABEL_FAMILY))) ||
        !dup_opt(&out->version,
                 first(task ? task->version : NULL, label(labels, MW_ECS_LABEL_VERSION))) ||
        !dup_opt(&out->container_name,
                 first(ctr ? ctr->name : NULL, label(labels, MW_ECS_LABEL_CONTAINER))) ||
        !dup_opt(&out->availability_zone, first(task ? task->availability_zone : NULL, NULL)) ||
        !make_cluster(out, labels, task, agent_cluster) ||
        (lt && !(out->launch_type = lower(lt))) ||
        !dup_opt(&out->ipv4, ctr && ctr->nipv4 ? ctr->ipv4[0] : NULL) ||
        (task && task->resource_tags &&
         !(out->resource_tags = cJSON_Duplicate(task->resource_tags, 1))))
        goto oom;
    out->region = mw__ecs_arn_region(arn); /* NULL: none, or OOM - then unknown */
    return MW_OK;
oom:
    mw__ecs_ident_clear(out);
    return MW_ENOMEM;
}

void mw__ecs_ident_clear(mw__ecs_ident *id)
{
    free(id->task_arn);
    free(id->family);
    free(id->version);
    free(id->cluster);
    free(id->container_name);
    free(id->region);
    free(id->availability_zone);
    free(id->launch_type);
    free(id->ipv4);
    cJSON_Delete(id->resource_tags);
    memset(id, 0, sizeof *id);
}

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int mw__ecs_ident_equal(const mw__ecs_ident *a, const mw__ecs_ident *b)
{
    return same(a->task_arn, b->task_arn) && same(a->family, b->family) &&
           same(a->version, b->version) && same(a->cluster, b->cluster) &&
           same(a->container_name, b->container_name) && same(a->region, b->region) &&
           same(a->availability_zone, b->availability_zone) &&
           same(a->launch_type, b->launch_type) && same(a->ipv4, b->ipv4) &&
           (a->resource_tags == b->resource_tags ||
            (a->resource_tags && b->resource_tags &&
             cJSON_Compare(a->resource_tags, b->resource_tags, 1)));
}

/* ------------------------------------------------------------ tags, extra */

/* The identity as (name, value) pairs: tags and extra values alike. */
typedef struct pair {
    const char *key, *value;
} pair;

static size_t pairs_of(const mw__ecs_ident *id, pair out[10])
{
    const pair all[] = {
        {"task_arn", id->task_arn},
        {"task_family", id->family},
        {"task_version", id->version},
        {"task_name", id->family},
        {"ecs_cluster_name", id->cluster},
        {"cluster_name", id->cluster},
        {"ecs_container_name", id->container_name},
        {"region", id->region},
        {"ecs_launch_type", id->launch_type},
        {"availability_zone", id->availability_zone},
    };
    size_t n = 0;

    for (size_t i = 0; i < MW_ARRAY_LEN(all); i++)
        if (all[i].value && *all[i].value)
            out[n++] = all[i];
    return n;
}

mw_code mw__ecs_ident_tags(const mw__ecs_ident *id, mw__ecs_tag_fn add, void *ud)
{
    pair p[10];
    size_t n = pairs_of(id, p);
    mw_code rc = MW_OK;

    const cJSON *rt;

    for (size_t i = 0; i < n && rc == MW_OK; i++) {
        char *tag = mw__sprintf("%s:%s", p[i].key, p[i].value);
        rc = tag ? add(ud, tag) : MW_ENOMEM;
        free(tag);
    }
    cJSON_ArrayForEach(rt, id->resource_tags)
    {
        char *tag;
        if (rc != MW_OK || !cJSON_IsString(rt) || !rt->string[0] || !rt->valuestring[0])
            continue;
        tag = mw__sprintf("%s:%s", rt->string, rt->valuestring);
        rc = tag ? add(ud, tag) : MW_ENOMEM;
        free(tag);
    }
    return rc;
}

mw_code mw__ecs_ident_extra(const mw__ecs_ident *id, cJSON *extra)
{
    pair p[10];
    size_t n = pairs_of(id, p);

    for (size_t i = 0; i < n; i++) {
        cJSON *v = cJSON_CreateString(p[i].value);
        cJSON_DeleteItemFromObjectCaseSensitive(extra, p[i].key);
        if (!v || !cJSON_AddItemToObject(extra, p[i].key, v)) {
            cJSON_Delete(v);
            return MW_ENOMEM;
        }
    }
    return MW_OK;
}

/* ------------------------------------------------------------ views */

static mw_code own_tag(void *ud, const char *tag)
{
    mw__ecs_view *v = ud;
    char *t = mw__strdup(tag);
    char **grown = t ? realloc(v->own, (v->nown + 1) * sizeof *grown) : NULL;

    if (!grown) {
        free(t);
        return MW_ENOMEM;
    }
    v->own = grown;
    v->own[v->nown++] = t;
    return MW_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The base's tags and the view's own, both sorted, merged without
 * repeats into a new array. */
static mw_code merge_tags(mw__ecs_view *v, const mw__service *base)
{
    size_t i = 0, j = 0, n = 0;
    char **all = malloc((base->ntags + v->nown + 1) * sizeof *all);

    if (!all)
        return MW_ENOMEM;
    qsort(v->own, v->nown, sizeof *v->own, str_cmp);
    while (i < base->ntags || j < v->nown) {
        int c = i == base->ntags ? 1 : j == v->nown ? -1 : strcmp(base->tags[i], v->own[j]);
        char *next = c <= 0 ? base->tags[i++] : v->own[j++];
        if (c == 0)
            j++;
        if (n == 0 || strcmp(all[n - 1], next) != 0)
            all[n++] = next;
    }
    v->svc.tags = all;
    v->svc.ntags = n;
    return MW_OK;
}

/* 1 when some network of `s` has an address. */
static int has_address(const mw__service *s)
{
    for (size_t i = 0; i < s->nnets; i++)
        if ((s->nets[i].ip && s->nets[i].ip[0]) || (s->nets[i].ip6 && s->nets[i].ip6[0]))
            return 1;
    return 0;
}

static int net_cmp(const void *a, const void *b)
{
    return strcmp(((const mw__svc_network *)a)->name, ((const mw__svc_network *)b)->name);
}

/* The identity's address on network "awsvpc", for a base without one. */
static mw_code add_network(mw__ecs_view *v, const mw__service *base, const mw__ecs_ident *id)
{
    static char awsvpc[] = "awsvpc", none[] = "";
    mw__svc_network *nets;

    if (!id->ipv4 || base->host_network || has_address(base))
        return MW_OK;
    for (size_t i = 0; i < base->nnets; i++)
        if (strcmp(base->nets[i].name, awsvpc) == 0)
            return MW_OK;
    if (!(v->ip = mw__strdup(id->ipv4)) || !(nets = calloc(base->nnets + 1, sizeof *nets)))
        return MW_ENOMEM;
    if (base->nnets)
        memcpy(nets, base->nets, base->nnets * sizeof *nets);
    nets[base->nnets] = (mw__svc_network){awsvpc, v->ip, none};
    qsort(nets, base->nnets + 1, sizeof *nets, net_cmp);
    v->nets = v->svc.nets = nets;
    v->svc.nnets = base->nnets + 1;
    return MW_OK;
}

mw_code mw__ecs_view_make(const mw__service *base, const mw__ecs_ident *id, mw__ecs_view *out)
{
    mw_code rc;

    memset(out, 0, sizeof *out);
    out->svc = *base;
    out->svc.tags = NULL;
    out->svc.ntags = 0;
    out->svc.extra = base->extra ? cJSON_Duplicate(base->extra, 1) : cJSON_CreateObject();
    rc = out->svc.extra ? MW_OK : MW_ENOMEM;
    if (rc == MW_OK)
        rc = mw__ecs_ident_extra(id, out->svc.extra);
    if (rc == MW_OK)
        rc = mw__ecs_ident_tags(id, own_tag, out);
    if (rc == MW_OK)
        rc = merge_tags(out, base);
    if (rc == MW_OK)
        rc = add_network(out, base, id);
    if (rc != MW_OK) {
        mw__ecs_view_clear(out);
        return rc;
    }
    out->svc.digest = mw__service_digest(&out->svc);
    return MW_OK;
}

void mw__ecs_view_clear(mw__ecs_view *v)
{
    free(v->svc.tags);
    cJSON_Delete(v->svc.extra);
    for (size_t i = 0; i < v->nown; i++)
        free(v->own[i]);
    free(v->own);
    free(v->nets);
    free(v->ip);
    memset(v, 0, sizeof *v);
}

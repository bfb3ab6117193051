/*
 * fake_aws_ecs.c - the fake ECS API's cluster model and its actions:
 * ListClusters, DescribeClusters, ListContainerInstances,
 * DescribeContainerInstances, ListServices, DescribeServices, with the
 * real API's pagination (maxResults, an opaque nextToken), batch limits
 * and errors (ClusterNotFoundException, InvalidParameterException).
 *
 * The model is a cJSON array of clusters, each {"name","arn",
 * "instances":[...],"services":[...]}, whose instances and services are
 * kept as the tests put them (the shapes DescribeContainerInstances and
 * DescribeServices answer). Everything runs under the server's lock.
 *
 * As the real API: ListContainerInstances leaves INACTIVE (deregistered)
 * instances out unless its `status` asks for them; ListServices leaves
 * INACTIVE (deleted) services out; DescribeClusters describes at most
 * 100 clusters, the `default` one when none is named, and counts from
 * the model: registeredContainerInstancesCount (instances not INACTIVE),
 * activeServicesCount (services ACTIVE or without a status),
 * runningTasksCount and pendingTasksCount (the sums over those
 * instances).
 */
#include "tests/support/fake_aws_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DESCRIBE_INSTANCES 100
#define MAX_DESCRIBE_SERVICES  10
#define MAX_DESCRIBE_CLUSTERS  100

/* ------------------------------------------------------------- model */

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The cluster `name` names: its name, or its whole ARN. */
static cJSON *cluster_named(mw__faws *f, const char *name)
{
    cJSON *c;
    int arn = strncmp(name ? name : "", "arn:", 4) == 0;
    if (!name)
        name = "default";
    cJSON_ArrayForEach(c, f->clusters)
    {
        const char *have = str(c, arn ? "arn" : "name");
        if (have && strcmp(have, name) == 0)
            return c;
    }
    return NULL;
}

static cJSON *add_cluster(mw__faws *f, const char *name)
{
    cJSON *c = cluster_named(f, name);
    if (c)
        return c;
    char arn[256];
    snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:cluster/%s", f->region, f->account, name);
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "arn", arn);
    cJSON_AddArrayToObject(c, "instances");
    cJSON_AddArrayToObject(c, "services");
    cJSON_AddItemToArray(f->clusters, c);
    return c;
}

/* Replaces the item of `list` whose `key` equals the new one's, or adds. */
static void put_item(cJSON *list, cJSON *item, const char *key)
{
    const char *want = str(item, key);
    int i = 0;
    cJSON *old;
    cJSON_ArrayForEach(old, list)
    {
        const char *have = str(old, key);
        if (have && want && strcmp(have, want) == 0) {
            cJSON_ReplaceItemInArray(list, i, item);
            return;
        }
        i++;
    }
    cJSON_AddItemToArray(list, item);
}

static int put_instance(mw__faws *f, cJSON *c, cJSON *inst)
{
    if (!str(inst, "containerInstanceArn")) {
        const char *ec2 = str(inst, "ec2InstanceId");
        char arn[256];
        if (!ec2)
            return -1;
        snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:container-instance/%s/%s", f->region,
                 f->account, str(c, "name"), ec2);
        cJSON_AddStringToObject(inst, "containerInstanceArn", arn);
    }
    put_item(cJSON_GetObjectItemCaseSensitive(c, "instances"), inst, "containerInstanceArn");
    return 0;
}

static int put_service(mw__faws *f, cJSON *c, cJSON *svc)
{
    const char *name = str(svc, "serviceName");
    if (!name)
        return -1;
    if (!str(svc, "serviceArn")) {
        char arn[256];
        snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:service/%s/%s", f->region, f->account,
                 str(c, "name"), name);
        cJSON_AddStringToObject(svc, "serviceArn", arn);
    }
    if (!cJSON_GetObjectItemCaseSensitive(svc, "clusterArn"))
        cJSON_AddStringToObject(svc, "clusterArn", str(c, "arn"));
    put_item(cJSON_GetObjectItemCaseSensitive(c, "services"), svc, "serviceName");
    return 0;
}

/* Parses `json` and puts it with `fn` into cluster `cluster`. */
static int put_json(mw__faws *f, const char *cluster, const char *json,
                    int (*fn)(mw__faws *, cJSON *, cJSON *))
{
    cJSON *item = cJSON_Parse(json);
    pthread_mutex_lock(&f->mu);
    cJSON *c = cJSON_IsObject(item) ? add_cluster(f, cluster) : NULL;
    int rc = c ? fn(f, c, item) : -1;
    pthread_mutex_unlock(&f->mu);
    if (rc != 0)
        cJSON_Delete(item);
    return rc;
}

int mw__faws_put_cluster(mw__faws *f, const char *name)
{
    pthread_mutex_lock(&f->mu);
    int rc = add_cluster(f, name) ? 0 : -1;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int mw__faws_put_instance(mw__faws *f, const char *cluster, const char *json)
{
    return put_json(f, cluster, json, put_instance);
}

int mw__faws_put_service(mw__faws *f, const char *cluster, const char *json)
{
    return put_json(f, cluster, json, put_service);
}

static int remove_item(mw__faws *f, const char *cluster, const char *list, const char *key,
                       const char *want)
{
    pthread_mutex_lock(&f->mu);
    cJSON *c = cluster_named(f, cluster), *item;
    int i = 0, rc = -1;
    cJSON *l = c ? cJSON_GetObjectItemCaseSensitive(c, list) : NULL;
    cJSON_ArrayForEach(item, l)
    {
        const char *have = str(item, key);
        if (have && strcmp(have, want) == 0) {
            cJSON_DeleteItemFromArray(l, i);
            rc = 0;
            break;
        }
        i++;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int mw__faws_remove_instance(mw__faws *f, const char *cluster, const char *arn)
{
    return remove_item(f, cluster, "instances", "containerInstanceArn", arn);
}

int mw__faws_remove_service(mw__faws *f, const char *cluster, const char *name)
{
    return remove_item(f, cluster, "services", "serviceName", name);
}

int mw__faws_load(mw__faws *f, const char *json)
{
    cJSON *doc = cJSON_Parse(json), *c, *item;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "clusters");
    int rc = cJSON_IsArray(list) ? 0 : -1;
    pthread_mutex_lock(&f->mu);
    cJSON_ArrayForEach(c, list)
    {
        const char *name = str(c, "name");
        cJSON *cl = name ? add_cluster(f, name) : NULL;
        if (!cl) {
            rc = -1;
            continue;
        }
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "containerInstances")) rc |=
            put_instance(f, cl, cJSON_Duplicate(item, 1));
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "services")) rc |=
            put_service(f, cl, cJSON_Duplicate(item, 1));
    }
    pthread_mutex_unlock(&f->mu);
    cJSON_Delete(doc);
    return rc;
}

/* ------------------------------------------------------------- actions */

static int error(char **out, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int error(char **out, const char *type, const char *fmt, ...)
{
    char msg[512], t[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(t, sizeof t, "com.amazonaws.ecs#%s", type);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", t);
    cJSON_AddStringToObject(o, "message", msg);
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return 400;
}

/* One page of `arns` (strings) under `key`, from the request's nextToken
 * and maxResults (1..100, `def` when absent). */
static int page(const cJSON *in, cJSON *arns, const char *key, int def, char **out)
{
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(in, "maxResults");
    const char *tok = str(in, "nextToken");
    int max = cJSON_IsNumber(mr) ? mr->valueint : def, from = 0;
    if (max < 1 || max > 100) {
        cJSON_Delete(arns);
        return error(out, "InvalidParameterException", "maxResults must be from 1 to 100");
    }
    if (tok && (sscanf(tok, "fake-next-%d", &from) != 1 || from < 0)) {
        cJSON_Delete(arns);
        return error(out, "InvalidParameterException", "Invalid nextToken");
    }
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, key);
    int n = cJSON_GetArraySize(arns);
    for (int i = from; i < n && i < from + max; i++)
        cJSON_AddItemToArray(list, cJSON_Duplicate(cJSON_GetArrayItem(arns, i), 1));
    if (from + max < n) {
        char next[64];
        snprintf(next, sizeof next, "fake-next-%d", from + max);
        cJSON_AddStringToObject(o, "nextToken", next);
    }
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON_Delete(arns);
    return 200;
}

/* The strings `key` of every item of `list`. */
static cJSON *arns_of(const cJSON *list, const char *key)
{
    cJSON *arns = cJSON_CreateArray(), *item;
    cJSON_ArrayForEach(item, list)
    {
        const char *a = str(item, key);
        if (a)
            cJSON_AddItemToArray(arns, cJSON_CreateString(a));
    }
    return arns;
}

/* 1 when `item`'s status is `status`. */
static int is_status(const cJSON *item, const char *status)
{
    const char *s = str(item, "status");
    return s && strcmp(s, status) == 0;
}

static int list_clusters(mw__faws *f, const cJSON *in, char **out)
{
    return page(in, arns_of(f->clusters, "arn"), "clusterArns", 100, out);
}

/* The cluster the request names, or an error answer. */
static cJSON *req_cluster(mw__faws *f, const cJSON *in, char **out, int *status)
{
    const char *name = str(in, "cluster");
    cJSON *c = cluster_named(f, name);
    if (!c)
        *status = error(out, "ClusterNotFoundException", "Cluster not found.");
    return c;
}

static int list_instances(mw__faws *f, const cJSON *in, char **out)
{
    int st = 0;
    cJSON *c = req_cluster(f, in, out, &st);
    if (!c)
        return st;
    const char *status = str(in, "status");
    cJSON *arns = cJSON_CreateArray(), *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "instances"))
    {
        if (status ? is_status(item, status) : !is_status(item, "INACTIVE"))
            cJSON_AddItemToArray(arns, cJSON_CreateString(str(item, "containerInstanceArn")));
    }
    return page(in, arns, "containerInstanceArns", 100, out);
}

static int list_services(mw__faws *f, const cJSON *in, char **out)
{
    int st = 0;
    cJSON *c = req_cluster(f, in, out, &st);
    if (!c)
        return st;
    cJSON *arns = cJSON_CreateArray(), *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "services"))
    {
        if (!is_status(item, "INACTIVE"))
            cJSON_AddItemToArray(arns, cJSON_CreateString(str(item, "serviceArn")));
    }
    return page(in, arns, "serviceArns", 10, out);
}

/* The item of `list` whose `arn_key` or `name_key` (or the last part of
 * its ARN) is `want`. */
static const cJSON *find(const cJSON *list, const char *arn_key, const char *name_key,
                         const char *want)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const char *arn = str(item, arn_key), *name = name_key ? str(item, name_key) : NULL;
        const char *slash = arn ? strrchr(arn, '/') : NULL;
        if ((arn && strcmp(arn, want) == 0) || (name && strcmp(name, want) == 0) ||
            (slash && strcmp(slash + 1, want) == 0))
            return item;
    }
    return NULL;
}

/* Describe*: `items` of the request looked up in `list`, at most `max`. */
static int describe(const cJSON *in, const cJSON *list, const char *req_key, const char *out_key,
                    const char *arn_key, const char *name_key, int max, char **out)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(in, req_key), *w;
    int n = cJSON_GetArraySize(want);
    if (!cJSON_IsArray(want) || n < 1 || n > max)
        return error(out, "InvalidParameterException", "%s can have at most %d items.", req_key,
                     max);
    cJSON *o = cJSON_CreateObject(), *found = cJSON_AddArrayToObject(o, out_key);
    cJSON *failures = cJSON_AddArrayToObject(o, "failures");
    cJSON_ArrayForEach(w, want)
    {
        const cJSON *item =
            cJSON_IsString(w) ? find(list, arn_key, name_key, w->valuestring) : NULL;
        if (item) {
            cJSON_AddItemToArray(found, cJSON_Duplicate(item, 1));
            continue;
        }
        cJSON *fl = cJSON_CreateObject();
        cJSON_AddStringToObject(fl, "arn", cJSON_IsString(w) ? w->valuestring : "");
        cJSON_AddStringToObject(fl, "reason", "MISSING");
        cJSON_AddItemToArray(failures, fl);
    }
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return 200;
}

static int describe_instances(mw__faws *f, const cJSON *in, char **out)
{
    int st = 0;
    cJSON *c = req_cluster(f, in, out, &st);
    if (!c)
        return st;
    return describe(in, cJSON_GetObjectItemCaseSensitive(c, "instances"), "containerInstances",
                    "containerInstances", "containerInstanceArn", NULL, MAX_DESCRIBE_INSTANCES,
                    out);
}

static int describe_services(mw__faws *f, const cJSON *in, char **out)
{
    int st = 0;
    cJSON *c = req_cluster(f, in, out, &st);
    if (!c)
        return st;
    return describe(in, cJSON_GetObjectItemCaseSensitive(c, "services"), "services", "services",
                    "serviceArn", "serviceName", MAX_DESCRIBE_SERVICES, out);
}

/* The numbers DescribeClusters gives of cluster `c`, into `d`. */
static void cluster_counts(const cJSON *c, cJSON *d)
{
    double instances = 0, services = 0, running = 0, pending = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "instances"))
    {
        if (is_status(item, "INACTIVE"))
            continue;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(item, "runningTasksCount");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(item, "pendingTasksCount");
        instances++;
        running += cJSON_IsNumber(r) ? r->valuedouble : 0;
        pending += cJSON_IsNumber(p) ? p->valuedouble : 0;
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(c, "services"))
    {
        services += !str(item, "status") || is_status(item, "ACTIVE");
    }
    cJSON_AddNumberToObject(d, "registeredContainerInstancesCount", instances);
    cJSON_AddNumberToObject(d, "runningTasksCount", running);
    cJSON_AddNumberToObject(d, "pendingTasksCount", pending);
    cJSON_AddNumberToObject(d, "activeServicesCount", services);
}

static int describe_clusters(mw__faws *f, const cJSON *in, char **out)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(in, "clusters"), *w;
    int n = cJSON_GetArraySize(want);
    if (want && (!cJSON_IsArray(want) || n > MAX_DESCRIBE_CLUSTERS))
        return error(out, "InvalidParameterException", "clusters can have at most %d items.",
                     MAX_DESCRIBE_CLUSTERS);
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "clusters");
    cJSON *failures = cJSON_AddArrayToObject(o, "failures");
    cJSON *dflt = want && n ? NULL : cJSON_CreateStringReference("default");
    if (dflt) /* none named: the default cluster */
        want = dflt, n = 1;
    for (int i = 0; i < n; i++) {
        w = dflt ? dflt : cJSON_GetArrayItem(want, i);
        const char *name = cJSON_IsString(w) ? w->valuestring : "";
        cJSON *c = *name ? cluster_named(f, name) : NULL;
        if (!c) {
            cJSON *fl = cJSON_CreateObject();
            cJSON_AddStringToObject(fl, "arn", name);
            cJSON_AddStringToObject(fl, "reason", "MISSING");
            cJSON_AddItemToArray(failures, fl);
            continue;
        }
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "clusterArn", str(c, "arn"));
        cJSON_AddStringToObject(d, "clusterName", str(c, "name"));
        cJSON_AddStringToObject(d, "status", "ACTIVE");
        cluster_counts(c, d);
        cJSON_AddItemToArray(list, d);
    }
    cJSON_Delete(dflt);
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return 200;
}

static const struct action {
    const char *name;
    int (*fn)(mw__faws *f, const cJSON *in, char **out);
} actions[] = {
    {"ListClusters", list_clusters},
    {"DescribeClusters", describe_clusters},
    {"ListContainerInstances", list_instances},
    {"DescribeContainerInstances", describe_instances},
    {"ListServices", list_services},
    {"DescribeServices", describe_services},
};

int mw__faws_ecs_call(mw__faws *f, const char *action, const cJSON *in, char **out)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, action) == 0)
            return actions[i].fn(f, in, out);
    return error(out, "UnknownOperationException", "Unknown operation %s", action);
}

/*
 * ecs_task.c - the ECS task model read from introspection (v1) and task
 * metadata v4 documents, its digest, and the order-insensitive digest of
 * raw JSON that lets a poll skip the tasks that did not change (see
 * ecs_task.h for the rules).
 *
 * Ownership: the readers make calloc'd tasks that own everything they
 * point to, so mw__ecs_task_free() releases a half-built one on every
 * error path; the documents are borrowed, never modified.
 *
 * The two formats differ only in some field names: one table says which.
 */
#include "discovery/ecs/ecs_task.h"

#include "core/base/util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OOM          "out of memory"
#define PATH_MAX_LEN 160 /* a field's path, for messages */

/* Field names that differ between the formats. */
typedef struct names {
    const char *arn, *version;
} names;

static const names format_names[] = {
    [MW_ECS_V1] = {"Arn", "Version"},
    [MW_ECS_V4] = {"TaskARN", "Revision"},
};

/* ------------------------------------------------------------ errors */

/* Sets `*err` to the message (the first error only); returns MW_EPARSE. */
__attribute__((format(printf, 2, 3))) static mw_code fail(char **err, const char *fmt, ...)
{
    va_list ap;

    if (*err)
        return MW_EPARSE;
    va_start(ap, fmt);
    *err = mw__vsprintf(fmt, ap);
    va_end(ap);
    return MW_EPARSE;
}

static mw_code oom(char **err)
{
    fail(err, OOM);
    return MW_ENOMEM;
}

/* Field `key` of the object at `path` ("" at the top) is wrong: sets
 * "<path>.<key>: <why>" (the first error only); returns MW_EPARSE. The
 * path is only written out here, when something failed. */
__attribute__((format(printf, 4, 5))) static mw_code fail_at(char **err, const char *path,
                                                             const char *key, const char *fmt, ...)
{
    va_list ap;
    char *why;

    if (*err)
        return MW_EPARSE;
    va_start(ap, fmt);
    why = mw__vsprintf(fmt, ap);
    va_end(ap);
    *err = mw__sprintf("%s%s%s: %s", path && *path ? path : "", path && *path ? "." : "", key,
                       why ? why : OOM);
    free(why);
    return MW_EPARSE;
}

/* "<path>[<i>]" into `out` (PATH_MAX_LEN bytes, cut to fit). */
static void item_path(char *out, const char *path, const char *key, size_t i)
{
    snprintf(out, PATH_MAX_LEN, "%.100s%s%.32s[%zu]", path && *path ? path : "",
             path && *path ? "." : "", key, i);
}

/* ------------------------------------------------------------ JSON access */

/* A member, or NULL when absent or null. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNull(j) ? NULL : j;
}

/* A string member copied into `*out`: NULL when absent (MW_EPARSE when
 * `required`), else at most MW_ECS_STR_MAX bytes. */
static mw_code read_str(const cJSON *obj, const char *path, const char *key, int required,
                        char **out, char **err)
{
    const cJSON *j = member(obj, key);

    *out = NULL;
    if (!j)
        return required ? fail_at(err, path, key, "missing") : MW_OK;
    if (!cJSON_IsString(j))
        return fail_at(err, path, key, "not a string");
    if (strlen(j->valuestring) > MW_ECS_STR_MAX)
        return fail_at(err, path, key, "longer than %d bytes", MW_ECS_STR_MAX);
    if (required && !j->valuestring[0])
        return fail_at(err, path, key, "empty");
    *out = mw__strdup(j->valuestring);
    return *out ? MW_OK : oom(err);
}

/* The same, "" when absent. */
static mw_code read_str_or_empty(const cJSON *obj, const char *path, const char *key, char **out,
                                 char **err)
{
    mw_code rc = read_str(obj, path, key, 0, out, err);

    if (rc == MW_OK && !*out && !(*out = mw__strdup("")))
        return oom(err);
    return rc;
}

int mw__ecs_id_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MW_ECS_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ containers */

/* An object of strings at `key` (at most `max` members), copied into
 * `*out`; NULL when absent. */
static mw_code read_str_object(const cJSON *j, const char *path, const char *key, size_t max,
                               cJSON **out, char **err)
{
    const cJSON *obj = member(j, key), *it;
    size_t n = 0;

    *out = NULL;
    if (!obj)
        return MW_OK;
    if (!cJSON_IsObject(obj))
        return fail_at(err, path, key, "not an object");
    cJSON_ArrayForEach(it, obj)
    {
        const char *k = it->string ? it->string : "?";
        if (++n > max)
            return fail_at(err, path, key, "more than %zu members", max);
        if (!cJSON_IsString(it))
            return fail_at(err, path, key, "\"%.64s\": not a string", k);
        if (strlen(k) > MW_ECS_STR_MAX || strlen(it->valuestring) > MW_ECS_STR_MAX)
            return fail_at(err, path, key, "\"%.64s\": longer than %d bytes", k, MW_ECS_STR_MAX);
    }
    *out = cJSON_Duplicate(obj, 1);
    return *out ? MW_OK : oom(err);
}

/* Labels: an object of strings, copied. */
static mw_code read_labels(mw__ecs_container *c, const cJSON *j, const char *path, char **err)
{
    return read_str_object(j, path, "Labels", (size_t)-1, &c->labels, err);
}

/* One network's IPv4Addresses, appended to c->ipv4. */
static mw_code read_net_ips(mw__ecs_container *c, const cJSON *net, const char *path, size_t *cap,
                            char **err)
{
    const cJSON *ips = member(net, "IPv4Addresses"), *ip;
    size_t i = 0;

    if (!ips)
        return MW_OK;
    if (!cJSON_IsArray(ips))
        return fail_at(err, path, "IPv4Addresses", "not an array");
    cJSON_ArrayForEach(ip, ips)
    {
        if (!cJSON_IsString(ip) || strlen(ip->valuestring) > 64)
            return fail_at(err, path, "IPv4Addresses", "[%zu] is not an address", i);
        i++;
        if (mw__grow(&c->ipv4, cap, c->nipv4 + 1, sizeof *c->ipv4) != MW_OK ||
            !(c->ipv4[c->nipv4] = mw__strdup(ip->valuestring)))
            return oom(err);
        c->nipv4++;
    }
    return MW_OK;
}

/* Networks[].IPv4Addresses[], flattened in order; the first network's
 * NetworkMode. */
static mw_code read_networks(mw__ecs_container *c, const cJSON *j, const char *path, char **err)
{
    const cJSON *nets = member(j, "Networks"), *net;
    char item[PATH_MAX_LEN];
    size_t cap = 0, i = 0;
    mw_code rc;

    if (!nets)
        return MW_OK;
    if (!cJSON_IsArray(nets))
        return fail_at(err, path, "Networks", "not an array");
    cJSON_ArrayForEach(net, nets)
    {
        item_path(item, path, "Networks", i);
        if (!cJSON_IsObject(net))
            return fail_at(err, path, "Networks", "[%zu] is not an object", i);
        if (i++ == 0 &&
            (rc = read_str(net, item, "NetworkMode", 0, &c->network_mode, err)) != MW_OK)
            return rc;
        if ((rc = read_net_ips(c, net, item, &cap, err)) != MW_OK)
            return rc;
    }
    return MW_OK;
}

static int port_cmp(const void *a, const void *b)
{
    const mw__ecs_port *x = a, *y = b;

    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return strcmp(x->proto, y->proto);
}

/* One item of Ports: ContainerPort (1..65535; absent: the item is
 * skipped, *p->number stays 0) and Protocol (lower case letters). */
static mw_code read_port(mw__ecs_port *p, const cJSON *it, const char *path, char **err)
{
    const cJSON *num = member(it, "ContainerPort"), *proto = member(it, "Protocol");
    size_t n;

    if (!cJSON_IsObject(it))
        return fail(err, "%s: not an object", path);
    if (num && (!cJSON_IsNumber(num) || !(num->valuedouble >= 1 && num->valuedouble <= 65535) ||
                num->valuedouble != (double)(int)num->valuedouble))
        return fail_at(err, path, "ContainerPort", "not a port number");
    if (proto && !cJSON_IsString(proto))
        return fail_at(err, path, "Protocol", "not a string");
    n = proto ? strlen(proto->valuestring) : 0;
    if (n >= sizeof p->proto ||
        (proto && strspn(proto->valuestring, "abcdefghijklmnopqrstuvwxyz") != n))
        return fail_at(err, path, "Protocol", "not a protocol name");
    p->number = num ? (int)num->valuedouble : 0;
    snprintf(p->proto, sizeof p->proto, "%s", n ? proto->valuestring : "tcp");
    return MW_OK;
}

/* Ports[] with a ContainerPort, ascending and unique. */
static mw_code read_ports(mw__ecs_container *c, const cJSON *j, const char *path, char **err)
{
    const cJSON *list = member(j, "Ports"), *it;
    char item[PATH_MAX_LEN];
    size_t n, kept = 0, i = 0;
    mw_code rc;

    if (!list)
        return MW_OK;
    if (!cJSON_IsArray(list))
        return fail_at(err, path, "Ports", "not an array");
    n = (size_t)cJSON_GetArraySize(list);
    if (n > MW_ECS_PORTS_MAX)
        return fail_at(err, path, "Ports", "more than %d ports", MW_ECS_PORTS_MAX);
    if (n == 0)
        return MW_OK;
    if (!(c->ports = calloc(n, sizeof *c->ports)))
        return oom(err);
    cJSON_ArrayForEach(it, list)
    {
        item_path(item, path, "Ports", i++);
        if ((rc = read_port(&c->ports[c->nports], it, item, err)) != MW_OK)
            return rc;
        if (c->ports[c->nports].number)
            c->nports++;
    }
    qsort(c->ports, c->nports, sizeof *c->ports, port_cmp);
    for (size_t k = 0; k < c->nports; k++)
        if (kept == 0 || port_cmp(&c->ports[kept - 1], &c->ports[k]) != 0)
            c->ports[kept++] = c->ports[k];
    c->nports = kept;
    return MW_OK;
}

/* ExitCode: an integer (v4, once stopped). */
static mw_code read_exit_code(mw__ecs_container *c, const cJSON *j, const char *path, char **err)
{
    const cJSON *x = member(j, "ExitCode");

    if (!x)
        return MW_OK;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= INT_MIN && x->valuedouble <= INT_MAX) ||
        x->valuedouble != (double)(int)x->valuedouble)
        return fail_at(err, path, "ExitCode", "not an integer");
    c->has_exit_code = 1;
    c->exit_code = (int)x->valuedouble;
    return MW_OK;
}

/* DockerId: "" until created, else an id. */
static mw_code read_docker_id(mw__ecs_container *c, const cJSON *j, const char *path, char **err)
{
    mw_code rc = read_str_or_empty(j, path, "DockerId", &c->docker_id, err);

    if (rc == MW_OK && c->docker_id[0] && !mw__ecs_id_valid(c->docker_id))
        return fail_at(err, path, "DockerId", "not a container id");
    return rc;
}

/* Ports are read from v4 only: newer agents add them to v1 in shapes of
 * their own, which the model does not need there. */
static mw_code read_container(mw__ecs_container *c, const cJSON *j, const char *path,
                              mw__ecs_format f, char **err)
{
    mw_code rc;

    if (!cJSON_IsObject(j))
        return fail(err, "%s: not an object", path);
    if ((rc = read_str(j, path, "Name", 1, &c->name, err)) != MW_OK ||
        (rc = read_docker_id(c, j, path, err)) != MW_OK ||
        (rc = read_str_or_empty(j, path, "DockerName", &c->docker_name, err)) != MW_OK ||
        (rc = read_str(j, path, "Type", 0, &c->type, err)) != MW_OK ||
        (rc = read_str(j, path, "Image", 0, &c->image, err)) != MW_OK ||
        (rc = read_str(j, path, "KnownStatus", 0, &c->known_status, err)) != MW_OK ||
        (rc = read_str(j, path, "DesiredStatus", 0, &c->desired_status, err)) != MW_OK ||
        (rc = read_exit_code(c, j, path, err)) != MW_OK ||
        (rc = read_labels(c, j, path, err)) != MW_OK ||
        (rc = read_networks(c, j, path, err)) != MW_OK ||
        (f == MW_ECS_V4 && (rc = read_ports(c, j, path, err)) != MW_OK))
        return rc;
    if (!c->type && !(c->type = mw__strdup("NORMAL")))
        return oom(err);
    return MW_OK;
}

static void container_clear(mw__ecs_container *c)
{
    free(c->docker_id);
    free(c->docker_name);
    free(c->name);
    free(c->type);
    free(c->image);
    free(c->known_status);
    free(c->desired_status);
    cJSON_Delete(c->labels);
    for (size_t i = 0; i < c->nipv4; i++)
        free(c->ipv4[i]);
    free(c->ipv4);
    free(c->network_mode);
    free(c->ports);
}

static int container_cmp(const void *a, const void *b)
{
    const mw__ecs_container *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : strcmp(x->docker_id, y->docker_id);
}

static mw_code read_containers(mw__ecs_task *t, const cJSON *j, const char *path, mw__ecs_format f,
                               char **err)
{
    const cJSON *list = member(j, "Containers"), *it;
    char item[PATH_MAX_LEN];
    size_t n;
    mw_code rc;

    if (!list)
        return MW_OK;
    if (!cJSON_IsArray(list))
        return fail_at(err, path, "Containers", "not an array");
    n = (size_t)cJSON_GetArraySize(list);
    if (n > MW_ECS_CONTAINERS_MAX)
        return fail_at(err, path, "Containers", "more than %d containers", MW_ECS_CONTAINERS_MAX);
    if (n == 0)
        return MW_OK;
    if (!(t->containers = calloc(n, sizeof *t->containers)))
        return oom(err);
    cJSON_ArrayForEach(it, list)
    {
        item_path(item, path, "Containers", t->ncontainers);
        rc = read_container(&t->containers[t->ncontainers++], it, item, f, err);
        if (rc != MW_OK)
            return rc;
    }
    qsort(t->containers, t->ncontainers, sizeof *t->containers, container_cmp);
    return MW_OK;
}

/* ------------------------------------------------------------ tasks */

static mw_code read_arn(mw__ecs_task *t, const cJSON *j, const char *path, const char *key,
                        char **err)
{
    mw_code rc = read_str(j, path, key, 1, &t->arn, err);

    if (rc == MW_OK && strncmp(t->arn, "arn:", 4) != 0)
        return fail_at(err, path, key, "not an ARN: \"%.64s\"", t->arn);
    return rc;
}

/* ContainerInstanceTags and TaskTags into one object, TaskTags winning. */
static mw_code read_resource_tags(mw__ecs_task *t, const cJSON *j, const char *path, char **err)
{
    cJSON *inst = NULL, *task = NULL, *it;
    mw_code rc;

    if ((rc = read_str_object(j, path, "ContainerInstanceTags", MW_ECS_TAGS_MAX, &inst, err)) !=
            MW_OK ||
        (rc = read_str_object(j, path, "TaskTags", MW_ECS_TAGS_MAX, &task, err)) != MW_OK)
        goto out;
    if (inst && task) {
        /* The task's tags win over the instance's of the same key. */
        while ((it = task->child)) {
            cJSON_DetachItemViaPointer(task, it);
            cJSON_DeleteItemFromObjectCaseSensitive(inst, it->string);
            cJSON_AddItemToObject(inst, it->string, it);
        }
        cJSON_Delete(task); /* emptied */
        task = NULL;
    }
    t->resource_tags = inst ? inst : task;
    inst = task = NULL;
out:
    cJSON_Delete(inst);
    cJSON_Delete(task);
    return rc;
}

static mw_code read_task(mw__ecs_task *t, const cJSON *j, mw__ecs_format f, const char *path,
                         char **err)
{
    const names *nm = &format_names[f];
    mw_code rc;

    if (!cJSON_IsObject(j))
        return path && *path ? fail(err, "%s: not an object", path)
                             : fail(err, "task: not a JSON object");
    if ((rc = read_arn(t, j, path, nm->arn, err)) != MW_OK ||
        (rc = read_str_or_empty(j, path, "Family", &t->family, err)) != MW_OK ||
        (rc = read_str_or_empty(j, path, nm->version, &t->version, err)) != MW_OK ||
        (rc = read_str_or_empty(j, path, "KnownStatus", &t->known_status, err)) != MW_OK ||
        (rc = read_str_or_empty(j, path, "DesiredStatus", &t->desired_status, err)) != MW_OK)
        return rc;
    if (f == MW_ECS_V4 &&
        ((rc = read_str(j, path, "Cluster", 0, &t->cluster, err)) != MW_OK ||
         (rc = read_str(j, path, "AvailabilityZone", 0, &t->availability_zone, err)) != MW_OK ||
         (rc = read_str(j, path, "LaunchType", 0, &t->launch_type, err)) != MW_OK ||
         (rc = read_resource_tags(t, j, path, err)) != MW_OK))
        return rc;
    return read_containers(t, j, path, f, err);
}

mw_code mw__ecs_task_read(const cJSON *j, mw__ecs_format f, const char *path, mw__ecs_task **out,
                          char **err)
{
    mw__ecs_task *t = NULL;
    char *e = NULL;
    mw_code rc;

    *out = NULL;
    if (f != MW_ECS_V1 && f != MW_ECS_V4) {
        rc = fail(&e, "unknown task format %d", (int)f);
        goto out;
    }
    if (!(t = calloc(1, sizeof *t))) {
        rc = oom(&e);
        goto out;
    }
    if ((rc = read_task(t, j, f, path, &e)) != MW_OK)
        goto out;
    t->digest = mw__ecs_task_digest(t);
    *out = t;
    t = NULL;
out:
    mw__ecs_task_free(t);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

mw_code mw__ecs_task_parse(const char *text, size_t len, mw__ecs_format f, mw__ecs_task **out,
                           char **err)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    mw_code rc;

    *out = NULL;
    if (err)
        *err = NULL;
    if (!root) {
        if (err)
            *err = mw__strdup("task: not JSON");
        return MW_EPARSE;
    }
    rc = mw__ecs_task_read(root, f, "", out, err);
    cJSON_Delete(root);
    return rc;
}

void mw__ecs_task_free(mw__ecs_task *t)
{
    if (!t)
        return;
    free(t->arn);
    free(t->family);
    free(t->version);
    free(t->known_status);
    free(t->desired_status);
    free(t->cluster);
    free(t->availability_zone);
    free(t->launch_type);
    cJSON_Delete(t->resource_tags);
    for (size_t i = 0; i < t->ncontainers; i++)
        container_clear(&t->containers[i]);
    free(t->containers);
    free(t);
}

const mw__ecs_container *mw__ecs_task_container(const mw__ecs_task *t, const char *docker_id)
{
    for (size_t i = 0; t && docker_id && i < t->ncontainers; i++)
        if (t->containers[i].docker_id[0] && strcmp(t->containers[i].docker_id, docker_id) == 0)
            return &t->containers[i];
    return NULL;
}

mw_code mw__ecs_tasks_array(const cJSON *root, const cJSON **tasks, char **err)
{
    const cJSON *j;

    *tasks = NULL;
    *err = NULL;
    if (!cJSON_IsObject(root)) {
        *err = mw__strdup("tasks: not a JSON object");
        return MW_EPARSE;
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "Tasks");
    if (!j) {
        *err = mw__strdup("Tasks: missing");
        return MW_EPARSE;
    }
    if (cJSON_IsNull(j))
        return MW_OK;
    if (!cJSON_IsArray(j)) {
        *err = mw__strdup("Tasks: not an array");
        return MW_EPARSE;
    }
    *tasks = j;
    return MW_OK;
}

/* ------------------------------------------------------------ digests */

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return mw__hash(h, b, sizeof b);
}

/* NULL and "" hash apart. */
static uint64_t hash_str(uint64_t h, const char *s)
{
    unsigned char present = s != NULL;

    h = mw__hash(h, &present, 1);
    return s ? mw__hash(h, s, strlen(s) + 1) : h;
}

/* An object of strings, whatever its key order. */
static uint64_t hash_labels(uint64_t h, const cJSON *o)
{
    const cJSON *c;
    uint64_t sum = 0, n = 0;

    cJSON_ArrayForEach(c, o)
    {
        sum += hash_str(hash_str(MW_HASH_INIT, c->string), c->valuestring);
        n++;
    }
    return hash_u64(hash_u64(hash_u64(h, o != NULL), n), sum);
}

static uint64_t hash_container(uint64_t h, const mw__ecs_container *c)
{
    const char *strs[] = {c->docker_id, c->docker_name,  c->name,           c->type,
                          c->image,     c->known_status, c->desired_status, c->network_mode};

    for (size_t i = 0; i < MW_ARRAY_LEN(strs); i++)
        h = hash_str(h, strs[i]);
    h = hash_u64(hash_u64(h, (uint64_t)c->has_exit_code), (uint64_t)(int64_t)c->exit_code);
    h = hash_labels(h, c->labels);
    h = hash_u64(h, c->nipv4);
    for (size_t i = 0; i < c->nipv4; i++)
        h = hash_str(h, c->ipv4[i]);
    h = hash_u64(h, c->nports);
    for (size_t i = 0; i < c->nports; i++)
        h = hash_str(hash_u64(h, (uint64_t)c->ports[i].number), c->ports[i].proto);
    return h;
}

uint64_t mw__ecs_task_digest(const mw__ecs_task *t)
{
    const char *strs[] = {t->arn,
                          t->family,
                          t->version,
                          t->known_status,
                          t->desired_status,
                          t->cluster,
                          t->availability_zone,
                          t->launch_type};
    uint64_t h = MW_HASH_INIT, sum = 0;

    for (size_t i = 0; i < MW_ARRAY_LEN(strs); i++)
        h = hash_str(h, strs[i]);
    h = hash_labels(h, t->resource_tags);
    /* summed: containers that sort as equals (a repeated name and id)
     * may come in either order */
    for (size_t i = 0; i < t->ncontainers; i++)
        sum += hash_container(MW_HASH_INIT, &t->containers[i]);
    return hash_u64(hash_u64(h, t->ncontainers), sum);
}

/* Members and items are summed, so their order does not count; the
 * nesting depth is bounded by cJSON's own parser limit. */
uint64_t mw__ecs_json_digest(const cJSON *j)
{
    uint64_t h = hash_u64(MW_HASH_INIT, j ? (uint64_t)(j->type & 0xFF) : 0);
    uint64_t sum = 0, n = 0;
    const cJSON *c;

    if (!j)
        return h;
    if (cJSON_IsString(j))
        return hash_str(h, j->valuestring);
    if (cJSON_IsNumber(j)) {
        uint64_t bits;
        double d = j->valuedouble;
        memcpy(&bits, &d, sizeof bits);
        return hash_u64(h, bits);
    }
    if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
        return h;
    for (c = j->child; c; c = c->next, n++)
        sum += cJSON_IsObject(j)
                   ? hash_u64(hash_str(MW_HASH_INIT, c->string), mw__ecs_json_digest(c))
                   : mw__ecs_json_digest(c);
    return hash_u64(hash_u64(h, n), sum);
}

/* ------------------------------------------------------------ metadata */

mw_code mw__ecs_metadata_parse(const char *text, size_t len, mw__ecs_metadata *out, char **err)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    mw__ecs_metadata m = {0};
    char *e = NULL;
    mw_code rc;

    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(root)) {
        rc = fail(&e, "metadata: not a JSON object");
        goto out;
    }
    if ((rc = read_str_or_empty(root, "", "Cluster", &m.cluster, &e)) != MW_OK ||
        (rc = read_str_or_empty(root, "", "ContainerInstanceArn", &m.instance_arn, &e)) != MW_OK ||
        (rc = read_str_or_empty(root, "", "Version", &m.version, &e)) != MW_OK)
        goto out;
    *out = m;
    memset(&m, 0, sizeof m);
out:
    mw__ecs_metadata_clear(&m);
    cJSON_Delete(root);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

void mw__ecs_metadata_clear(mw__ecs_metadata *m)
{
    free(m->cluster);
    free(m->instance_arn);
    free(m->version);
    memset(m, 0, sizeof *m);
}

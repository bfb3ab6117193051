/*
 * ecs_stats.c - one container's numbers from the ECS task metadata
 * endpoint's /task/stats and /task answers (see ecs_stats.h).
 *
 * A reading (`rd`) carries the first error met; every reader returns at
 * once after it. The cJSON tree is the only allocation, made and freed by
 * the public calls; the readers fill the caller's struct.
 */
#include "lua/ecs_stats.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NO_LIMIT  ((uint64_t)1 << 62) /* a memory "limit" this high is none */
#define TWO_TO_64 18446744073709551616.0
#define PATH_LEN  160 /* a field's path in a message */
#define SHOWN_MAX 40  /* bytes of a bad string value quoted in a message */

typedef struct rd {
    mw_code rc;
    char *err;
    size_t errlen;
    const char *ctx; /* said before the message ("container <id>"); NULL: none */
} rd;

static void fail(rd *r, mw_code rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error only. */
static void fail(rd *r, mw_code rc, const char *fmt, ...)
{
    va_list ap;
    int n = 0;
    if (r->rc != MW_OK)
        return;
    r->rc = rc;
    if (r->ctx && r->errlen > 0)
        n = snprintf(r->err, r->errlen, "%s: ", r->ctx);
    if (n < 0 || (size_t)n >= r->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* "string \"abc\"", "number -1", "boolean true", "array", "object",
 * "no value". */
static void describe(const cJSON *j, char *out, size_t n)
{
    char s[SHOWN_MAX + 1];
    if (!j) {
        snprintf(out, n, "no value");
    } else if (cJSON_IsString(j)) {
        size_t i = 0;
        for (const char *p = j->valuestring; *p && i < SHOWN_MAX; p++)
            s[i++] = *p >= 0x20 && *p < 0x7f && *p != '"' ? *p : '?';
        s[i] = '\0';
        snprintf(out, n, "string \"%s\"%s", s, strlen(j->valuestring) > SHOWN_MAX ? "..." : "");
    } else if (cJSON_IsNumber(j)) {
        snprintf(out, n, "number %.17g", j->valuedouble);
    } else if (cJSON_IsBool(j)) {
        snprintf(out, n, "boolean %s", cJSON_IsTrue(j) ? "true" : "false");
    } else {
        snprintf(out, n, "%s", cJSON_IsArray(j) ? "array" : cJSON_IsObject(j) ? "object" : "null");
    }
}

static void wrong_type(rd *r, const char *path, const char *expected, const cJSON *got)
{
    char d[SHOWN_MAX + 32];
    describe(got, d, sizeof d);
    fail(r, MW_EPARSE, "%s: %s expected, got %s", path, expected, d);
}

/* "prefix.key" into `out` (PATH_LEN bytes), "..." at the end if cut. */
static const char *path_of(char *out, const char *prefix, const char *key)
{
    if (snprintf(out, PATH_LEN, "%s%s%s", prefix, *prefix ? "." : "", key) >= PATH_LEN)
        memcpy(out + PATH_LEN - 4, "...", 4);
    return out;
}

/* "prefix[i]" into `out`, as path_of(). */
static const char *item_of(char *out, const char *prefix, int i)
{
    if (snprintf(out, PATH_LEN, "%s[%d]", prefix, i) >= PATH_LEN)
        memcpy(out + PATH_LEN - 4, "...", 4);
    return out;
}

static int absent(const cJSON *j)
{
    return !j || cJSON_IsNull(j);
}

/* The object at o[key]; NULL when absent or null (or on error). */
static const cJSON *obj_at(rd *r, const cJSON *o, const char *prefix, const char *key)
{
    char path[PATH_LEN];
    const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (absent(j) || r->rc != MW_OK)
        return NULL;
    if (!cJSON_IsObject(j)) {
        wrong_type(r, path_of(path, prefix, key), "object", j);
        return NULL;
    }
    return j;
}

/* A non-negative integer below 2^64 into `*v`: 0; not one: -1. */
static int u64_of(const cJSON *j, uint64_t *v)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
    if (!(d >= 0) || d >= TWO_TO_64 || d != floor(d))
        return -1;
    *v = (uint64_t)d;
    return 0;
}

/* o[key] into `*v`: 1 read, 0 absent or null, -1 error (recorded). */
static int u64_at(rd *r, const cJSON *o, const char *prefix, const char *key, uint64_t *v)
{
    char path[PATH_LEN];
    const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (absent(j) || r->rc != MW_OK)
        return 0;
    if (u64_of(j, v) != 0) {
        wrong_type(r, path_of(path, prefix, key), "non-negative integer", j);
        return -1;
    }
    return 1;
}

static void set(mw__ecs_stats *s, enum mw__ecs_field f, uint64_t v)
{
    s->v[f] = v;
    s->set |= 1u << f;
}

typedef struct num_field {
    const char *key;
    enum mw__ecs_field f;
} num_field;

static void read_nums(rd *r, const cJSON *o, const char *prefix, const num_field *want, size_t n,
                      mw__ecs_stats *s)
{
    uint64_t v;
    for (size_t i = 0; i < n; i++)
        if (u64_at(r, o, prefix, want[i].key, &v) == 1)
            set(s, want[i].f, v);
}

/* ------------------------------------------------------------- stats */

static const num_field cpu_usage_fields[] = {
    {"total_usage", MW_ECS_CPU_USAGE},
    {"usage_in_usermode", MW_ECS_CPU_USER},
    {"usage_in_kernelmode", MW_ECS_CPU_SYSTEM},
};

/* online_cpus, else the length of percpu_usage (docker stats' rule). */
static void read_online(rd *r, const cJSON *cpu, const cJSON *usage, mw__ecs_stats *s)
{
    uint64_t v;
    if (u64_at(r, cpu, "cpu_stats", "online_cpus", &v) == 1 && v > 0) {
        set(s, MW_ECS_CPU_ONLINE, v);
        return;
    }
    const cJSON *per = usage ? cJSON_GetObjectItemCaseSensitive(usage, "percpu_usage") : NULL;
    if (absent(per) || r->rc != MW_OK)
        return;
    if (!cJSON_IsArray(per))
        wrong_type(r, "cpu_stats.cpu_usage.percpu_usage", "array", per);
    else if (cJSON_GetArraySize(per) > 0)
        set(s, MW_ECS_CPU_ONLINE, (uint64_t)cJSON_GetArraySize(per));
}

static void read_cpu(rd *r, const cJSON *e, mw__ecs_stats *s)
{
    uint64_t v;
    const cJSON *cpu = obj_at(r, e, "", "cpu_stats");
    const cJSON *usage = obj_at(r, cpu, "cpu_stats", "cpu_usage");
    read_nums(r, usage, "cpu_stats.cpu_usage", cpu_usage_fields,
              sizeof cpu_usage_fields / sizeof cpu_usage_fields[0], s);
    if (u64_at(r, cpu, "cpu_stats", "system_cpu_usage", &v) == 1)
        set(s, MW_ECS_CPU_HOST, v);
    read_online(r, cpu, usage, s);
}

/* usage - what `docker stats` leaves out of it, 0 when that is more. */
static void working_set(mw__ecs_stats *s)
{
    enum mw__ecs_field minus = s->cgroup == 1 ? MW_ECS_MEM_CACHE : MW_ECS_MEM_INACTIVE;
    if (!s->cgroup || !mw__ecs_has(s, MW_ECS_MEM_USAGE) || !mw__ecs_has(s, minus))
        return;
    uint64_t u = s->v[MW_ECS_MEM_USAGE], m = s->v[minus];
    set(s, MW_ECS_MEM_WORKING_SET, m < u ? u - m : 0);
}

static const num_field mem_stat_fields[] = {
    {"rss", MW_ECS_MEM_RSS},
    {"cache", MW_ECS_MEM_CACHE},
    {"inactive_file", MW_ECS_MEM_INACTIVE},
};

static void read_mem(rd *r, const cJSON *e, mw__ecs_stats *s)
{
    static const num_field top[] = {{"usage", MW_ECS_MEM_USAGE},
                                    {"max_usage", MW_ECS_MEM_MAX_USAGE}};
    uint64_t v;
    const cJSON *mem = obj_at(r, e, "", "memory_stats");
    const cJSON *st = obj_at(r, mem, "memory_stats", "stats");
    read_nums(r, mem, "memory_stats", top, sizeof top / sizeof top[0], s);
    if (u64_at(r, mem, "memory_stats", "limit", &v) == 1 && v < NO_LIMIT)
        set(s, MW_ECS_MEM_LIMIT, v);
    read_nums(r, st, "memory_stats.stats", mem_stat_fields,
              sizeof mem_stat_fields / sizeof mem_stat_fields[0], s);
    /* cgroup's "no value" is a huge number, as for the limit */
    for (size_t i = 0; i < sizeof mem_stat_fields / sizeof mem_stat_fields[0]; i++)
        if (s->v[mem_stat_fields[i].f] >= NO_LIMIT) {
            s->v[mem_stat_fields[i].f] = 0;
            s->set &= ~(1u << mem_stat_fields[i].f);
        }
    if (st && cJSON_GetObjectItemCaseSensitive(st, "cache"))
        s->cgroup = 1;
    else if (st && (cJSON_GetObjectItemCaseSensitive(st, "anon") ||
                    cJSON_GetObjectItemCaseSensitive(st, "file")))
        s->cgroup = 2;
    if (r->rc == MW_OK)
        working_set(s);
}

/* "read" or "write" in any case: 0 or 1; another op: -1. */
static int op_of(const char *op)
{
    return strcasecmp(op, "read") == 0 ? 0 : strcasecmp(op, "write") == 0 ? 1 : -1;
}

/* One entry {op, value} of a blkio list, added to sum[op]. */
static void blkio_entry(rd *r, const cJSON *it, const char *path, uint64_t sum[2])
{
    char p[PATH_LEN];
    uint64_t v;
    const cJSON *op;
    if (!cJSON_IsObject(it)) {
        wrong_type(r, path, "object", it);
        return;
    }
    op = cJSON_GetObjectItemCaseSensitive(it, "op");
    if (!cJSON_IsString(op)) {
        wrong_type(r, path_of(p, path, "op"), "string", op);
        return;
    }
    int k = op_of(op->valuestring);
    if (k < 0 || u64_at(r, it, path, "value", &v) != 1)
        return;
    if (sum[k] > UINT64_MAX - v)
        fail(r, MW_EPARSE, "%s: the %s values add up to more than 2^64", path, op->valuestring);
    else
        sum[k] += v;
}

/* A blkio list into its read and write fields; null leaves them unset. */
static void blkio_list(rd *r, const cJSON *blkio, const char *key, enum mw__ecs_field f_read,
                       mw__ecs_stats *s)
{
    char path[PATH_LEN], item[PATH_LEN];
    uint64_t sum[2] = {0, 0};
    const cJSON *list = blkio ? cJSON_GetObjectItemCaseSensitive(blkio, key) : NULL, *it;
    int i = 0;
    path_of(path, "blkio_stats", key);
    if (absent(list) || r->rc != MW_OK)
        return;
    if (!cJSON_IsArray(list)) {
        wrong_type(r, path, "array", list);
        return;
    }
    cJSON_ArrayForEach(it, list)
    {
        blkio_entry(r, it, item_of(item, path, i++), sum);
        if (r->rc != MW_OK)
            return;
    }
    set(s, f_read, sum[0]);
    set(s, f_read + 1, sum[1]); /* the write field follows the read one */
}

static void read_blkio(rd *r, const cJSON *e, mw__ecs_stats *s)
{
    const cJSON *blkio = obj_at(r, e, "", "blkio_stats");
    blkio_list(r, blkio, "io_service_bytes_recursive", MW_ECS_IO_READ_BYTES, s);
    blkio_list(r, blkio, "io_serviced_recursive", MW_ECS_IO_READ_OPS, s);
}

static int ifname_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > MW_ECS_STATS_IFNAME_MAX)
        return 0;
    for (; *n; n++)
        if (*n <= 0x20 || *n >= 0x7f || strchr(",/:", *n))
            return 0;
    return 1;
}

static const char *const net_keys[MW_ECS_NET_NFIELDS] = {
    [MW_ECS_NET_RX_BYTES] = "rx_bytes",
    [MW_ECS_NET_TX_BYTES] = "tx_bytes",
    [MW_ECS_NET_RX_ERRORS] = "rx_errors",
    [MW_ECS_NET_TX_ERRORS] = "tx_errors",
};

static void read_iface(rd *r, const cJSON *it, mw__ecs_stats *s)
{
    char path[PATH_LEN];
    mw__ecs_iface *f = &s->net[s->nnet];
    path_of(path, "networks", it->string);
    if (!ifname_valid(it->string)) {
        fail(r, MW_EPARSE, "networks: \"%.*s\" is not an interface name", SHOWN_MAX, it->string);
        return;
    }
    if (!cJSON_IsObject(it)) {
        wrong_type(r, path, "object", it);
        return;
    }
    if (s->nnet == MW_ECS_STATS_IFACES_MAX) {
        fail(r, MW_EPARSE, "networks: more than %d interfaces", MW_ECS_STATS_IFACES_MAX);
        return;
    }
    memset(f, 0, sizeof *f);
    memcpy(f->name, it->string, strlen(it->string) + 1);
    for (int k = 0; k < MW_ECS_NET_NFIELDS; k++)
        if (u64_at(r, it, path, net_keys[k], &f->v[k]) == 1)
            f->set |= 1u << k;
    s->nnet++;
}

static void read_net(rd *r, const cJSON *e, mw__ecs_stats *s)
{
    const cJSON *nets = obj_at(r, e, "", "networks"), *it;
    cJSON_ArrayForEach(it, nets)
    {
        if (!cJSON_IsNull(it))
            read_iface(r, it, s);
        if (r->rc != MW_OK)
            return;
    }
}

/* ------------------------------------------------------------- documents */

int mw__ecs_stats_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > MW_ECS_STATS_ID_MAX)
        return 0;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '_' || *id == '.' || *id == '-'))
            return 0;
    return 1;
}

/* The document as an object, or NULL with the error recorded. */
static cJSON *parse_object(rd *r, const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc) {
        if (end && end >= json && end <= json + len)
            fail(r, MW_EPARSE, "not JSON (at byte %zu)", (size_t)(end - json));
        else
            fail(r, MW_ENOMEM, "out of memory");
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        wrong_type(r, "the answer", "JSON object", doc);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

mw_code mw__ecs_stats_parse(const char *json, size_t len, const char *id, mw__ecs_stats *out,
                            char *err, size_t errlen)
{
    rd r = {MW_OK, err, errlen, NULL};
    char ctx[MW_ECS_STATS_ID_MAX + 16];
    cJSON *doc = NULL;
    const cJSON *e;
    memset(out, 0, sizeof *out);
    if (!mw__ecs_stats_id_valid(id)) {
        fail(&r, MW_EINVAL, "not a container id");
        goto out;
    }
    if (!(doc = parse_object(&r, json, len)))
        goto out;
    e = cJSON_GetObjectItemCaseSensitive(doc, id);
    if (!e)
        fail(&r, MW_ENOTFOUND, "no stats of container %s (stopped, or not of this task)", id);
    else if (cJSON_IsNull(e))
        fail(&r, MW_ENOTFOUND, "no stats of container %s yet (null: the agent has none)", id);
    else if (!cJSON_IsObject(e))
        wrong_type(&r, id, "object (the container's stats)", e);
    if (r.rc != MW_OK)
        goto out;
    if (snprintf(ctx, sizeof ctx, "container %s", id) < (int)sizeof ctx)
        r.ctx = ctx;
    read_cpu(&r, e, out);
    read_mem(&r, e, out);
    read_blkio(&r, e, out);
    read_net(&r, e, out);
out:
    cJSON_Delete(doc);
    if (r.rc != MW_OK)
        memset(out, 0, sizeof *out);
    return r.rc;
}

/* ------------------------------------------------------------- limits */

/* Limits.CPU and Limits.Memory of `o` into v[cpu], v[cpu + 1]. */
static void read_limits(rd *r, const cJSON *o, const char *prefix, enum mw__ecs_limit cpu,
                        mw__ecs_limits *out)
{
    static const char *const keys[] = {"CPU", "Memory"};
    char where[PATH_LEN], path[PATH_LEN];
    const cJSON *lim = obj_at(r, o, prefix, "Limits");
    path_of(where, prefix, "Limits");
    for (int k = 0; lim && k < 2; k++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(lim, keys[k]);
        double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
        if (absent(j))
            continue;
        if (!(d >= 0) || !isfinite(d)) {
            wrong_type(r, path_of(path, where, keys[k]), "non-negative number", j);
            return;
        }
        if (d > 0) {
            out->v[cpu + k] = d;
            out->set |= 1u << (cpu + k);
        }
    }
}

/* The container of DockerId `id` in the task's Containers, or NULL. */
static const cJSON *container_of(rd *r, const cJSON *task, const char *id, char *path)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(task, "Containers"), *it;
    int i = 0;
    if (absent(list))
        return NULL;
    if (!cJSON_IsArray(list)) {
        wrong_type(r, "Containers", "array", list);
        return NULL;
    }
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *did = cJSON_GetObjectItemCaseSensitive(it, "DockerId");
        item_of(path, "Containers", i++);
        if (!cJSON_IsObject(it)) {
            wrong_type(r, path, "object", it);
            return NULL;
        }
        if (!absent(did) && !cJSON_IsString(did)) {
            char p[PATH_LEN];
            wrong_type(r, path_of(p, path, "DockerId"), "string", did);
            return NULL;
        }
        if (cJSON_IsString(did) && strcmp(did->valuestring, id) == 0)
            return it;
    }
    return NULL;
}

mw_code mw__ecs_limits_parse(const char *json, size_t len, const char *id, mw__ecs_limits *out,
                             char *err, size_t errlen)
{
    rd r = {MW_OK, err, errlen, NULL};
    char path[PATH_LEN];
    cJSON *doc = NULL;
    const cJSON *c;
    memset(out, 0, sizeof *out);
    if (!mw__ecs_stats_id_valid(id)) {
        fail(&r, MW_EINVAL, "not a container id");
        goto out;
    }
    if (!(doc = parse_object(&r, json, len)))
        goto out;
    read_limits(&r, doc, "", MW_ECS_LIMIT_TASK_CPU, out);
    c = container_of(&r, doc, id, path);
    if (c)
        read_limits(&r, c, path, MW_ECS_LIMIT_CPU, out);
    else
        fail(&r, MW_ENOTFOUND, "the task does not list container %s", id);
out:
    cJSON_Delete(doc);
    if (r.rc != MW_OK)
        memset(out, 0, sizeof *out);
    return r.rc;
}

/*
 * fuzz_ecs_stats.c - libFuzzer target: the readers of the ECS task
 * metadata endpoint's /task/stats and /task answers (lua/ecs_stats.h),
 * over one input taken as either: the stats of each container the
 * document names (its first keys that are DockerIds, and one it does not
 * name), and the limits of each container its Containers list names.
 *
 * Properties: every call returns MW_OK, MW_ENOTFOUND (no such container),
 * MW_EPARSE (with a message) or MW_ENOMEM; a refusal leaves the result
 * zeroed; a result has the shape ecs_stats.h promises (only known bits
 * set, cgroup 0 to 2, no "unlimited" value kept, CPUs online > 0, the
 * working set exactly usage minus cache (v1) or inactive_file (v2) and
 * set exactly when both are, an unset number 0, at most the cap of
 * interfaces, each name valid; limits positive and finite); a second read of the same input
 * gives the same result, and so does a read whose message buffer is 8
 * bytes; a bad id is MW_EINVAL.
 */
#include "lua/ecs_stats.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IDS_MAX  4
#define NO_LIMIT ((uint64_t)1 << 62)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_code(mw_code rc, const char *err)
{
    if (rc != MW_OK && rc != MW_ENOTFOUND && rc != MW_EPARSE && rc != MW_ENOMEM)
        abort();
    if (rc != MW_OK && !err[0])
        abort(); /* a refusal says why */
}

static int zeroed(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static int has(const mw__ecs_stats *s, enum mw__ecs_field f)
{
    return mw__ecs_has(s, f);
}

static void check_working_set(const mw__ecs_stats *s)
{
    enum mw__ecs_field minus = s->cgroup == 1 ? MW_ECS_MEM_CACHE : MW_ECS_MEM_INACTIVE;
    int want = s->cgroup && has(s, MW_ECS_MEM_USAGE) && has(s, minus);
    if (want != has(s, MW_ECS_MEM_WORKING_SET))
        abort();
    if (!want)
        return;
    uint64_t u = s->v[MW_ECS_MEM_USAGE], m = s->v[minus];
    if (s->v[MW_ECS_MEM_WORKING_SET] != (m < u ? u - m : 0))
        abort();
}

static int ifname_ok(const char *n)
{
    size_t len = strnlen(n, MW_ECS_STATS_IFNAME_MAX + 1);
    if (len == 0 || len > MW_ECS_STATS_IFNAME_MAX)
        return 0;
    for (; *n; n++)
        if (*n <= 0x20 || *n >= 0x7f || strchr(",/:", *n))
            return 0;
    return 1;
}

static void check_stats(const mw__ecs_stats *s)
{
    static const enum mw__ecs_field kept_below[] = {MW_ECS_MEM_LIMIT, MW_ECS_MEM_RSS,
                                                    MW_ECS_MEM_CACHE, MW_ECS_MEM_INACTIVE};
    if (s->set >> MW_ECS_NFIELDS || s->cgroup < 0 || s->cgroup > 2)
        abort();
    for (size_t i = 0; i < sizeof kept_below / sizeof kept_below[0]; i++)
        if (has(s, kept_below[i]) && s->v[kept_below[i]] >= NO_LIMIT)
            abort();
    if (has(s, MW_ECS_CPU_ONLINE) && s->v[MW_ECS_CPU_ONLINE] == 0)
        abort();
    for (int f = 0; f < MW_ECS_NFIELDS; f++)
        if (!has(s, (enum mw__ecs_field)f) && s->v[f] != 0)
            abort(); /* unset is 0 */
    check_working_set(s);
    if (s->nnet > MW_ECS_STATS_IFACES_MAX)
        abort();
    for (size_t i = 0; i < s->nnet; i++)
        if (!ifname_ok(s->net[i].name) || s->net[i].set >> MW_ECS_NET_NFIELDS)
            abort();
}

static void one_stats(const uint8_t *data, size_t size, const char *id)
{
    mw__ecs_stats a, b;
    char err[512] = "", small[8] = "";
    mw_code rc = mw__ecs_stats_parse((const char *)data, size, id, &a, err, sizeof err);
    check_code(rc, err);
    if (rc != MW_OK && !zeroed(&a, sizeof a))
        abort();
    if (rc == MW_OK)
        check_stats(&a);
    if (rc == MW_ENOMEM)
        return; /* the next read may well succeed */
    mw_code rc2 = mw__ecs_stats_parse((const char *)data, size, id, &b, small, sizeof small);
    if (rc2 != MW_ENOMEM && (rc2 != rc || memcmp(&a, &b, sizeof a) != 0))
        abort(); /* read once, read the same; the message's room changes nothing */
}

static void one_limits(const uint8_t *data, size_t size, const char *id)
{
    mw__ecs_limits l;
    char err[512] = "";
    mw_code rc = mw__ecs_limits_parse((const char *)data, size, id, &l, err, sizeof err);
    check_code(rc, err);
    if (rc != MW_OK && !zeroed(&l, sizeof l))
        abort();
    if (rc != MW_OK)
        return;
    if (l.set >> MW_ECS_LIMIT_N)
        abort();
    for (int k = 0; k < MW_ECS_LIMIT_N; k++)
        if (((l.set >> k) & 1u) ? !(l.v[k] > 0) || !isfinite(l.v[k]) : l.v[k] != 0)
            abort();
}

/* The DockerIds the document names: its keys, and Containers[].DockerId. */
static size_t ids_of(const cJSON *doc, const char **ids)
{
    size_t n = 0;
    const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(doc, "Containers");
    if (!cJSON_IsArray(list))
        list = NULL;
    cJSON_ArrayForEach(it, doc)
    {
        if (n < IDS_MAX && it->string && mw__ecs_stats_id_valid(it->string))
            ids[n++] = it->string;
    }
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "DockerId");
        if (n < 2 * IDS_MAX && cJSON_IsString(d) && mw__ecs_stats_id_valid(d->valuestring))
            ids[n++] = d->valuestring;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ids[2 * IDS_MAX + 1];
    char err[64];
    mw__ecs_stats s;
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    size_t n = doc && cJSON_IsObject(doc) ? ids_of(doc, ids) : 0;

    ids[n++] = "5fc21e5b015f899d22618f8aede80b6d70d71b2a75465ea49d9462c8f3d2d3af";
    for (size_t i = 0; i < n; i++) {
        one_stats(data, size, ids[i]);
        one_limits(data, size, ids[i]);
    }
    if (mw__ecs_stats_parse((const char *)data, size, "../x", &s, err, sizeof err) != MW_EINVAL)
        abort();
    cJSON_Delete(doc);
    return 0;
}

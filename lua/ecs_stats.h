/*
 * ecs_stats.h - the numbers of one container of an Amazon ECS task, read
 * from the task metadata endpoint's answers (v4, and v3 which has the
 * same shape), for mw.ecs (ecs_lua.c) and the ecs_fargate check:
 *
 *   ${URI}/task/stats  {"<DockerId>": Docker stats or null, ...}: each
 *                      container's `docker stats` document, cgroup v1 form
 *                      (memory_stats.stats: cache, rss, total_*) or v2
 *                      form (anon, file, inactive_file; no cache, no
 *                      max_usage)
 *   ${URI}/task        the task: Limits {CPU (vCPUs), Memory (MiB)} and
 *                      Containers [{DockerId, Limits {CPU (CPU units, 1024
 *                      a vCPU), Memory (MiB)}}]
 *
 * What is read from a container's stats (each number unset when the
 * payload does not have it, never made up as 0):
 *   cpu_stats.cpu_usage.total_usage, usage_in_usermode,
 *   usage_in_kernelmode (ns), cpu_stats.system_cpu_usage (ns of the host,
 *   all CPUs), cpu_stats.online_cpus (else the length of percpu_usage, as
 *   `docker stats` does);
 *   memory_stats.usage, max_usage, limit (unset at 2^62 and more: no
 *   limit), stats.rss, stats.cache, stats.inactive_file, and the working
 *   set `docker stats` shows: usage - cache (v1), usage - inactive_file
 *   (v2), 0 when that is more than usage;
 *   blkio_stats.io_service_bytes_recursive and io_serviced_recursive:
 *   the values of the entries whose op is read / write (any case),
 *   summed (an empty list is 0; null, as cgroup v2 sends for the ops, is
 *   unset);
 *   networks.<interface>: rx_bytes, tx_bytes, rx_errors, tx_errors.
 * precpu_stats is not read: it is all zeros in the first stats after a
 * container starts, and covers only the agent's last second.
 *
 * Rules: the documents are untrusted. A number must be a non-negative
 * integer below 2^64 (a limit in /task: a non-negative number); a field
 * of the wrong type is an error naming it by its path
 * ("memory_stats.stats.cache: non-negative integer expected, got string
 * \"12\""); unknown fields are ignored. Nothing else of the document is
 * checked: only the asked container's entry is read.
 *
 * Pure C, no Lua, no I/O; nothing allocated is kept (the JSON tree is
 * made and freed inside each call). The caller owns the structs.
 */
#ifndef MW_ECS_STATS_H
#define MW_ECS_STATS_H

#include "moonwatch.h"

#include <stddef.h>
#include <stdint.h>

/* A DockerId: 1 to 128 of [A-Za-z0-9_.-] (64 hex on EC2, "<32 hex>-<10
 * digits>" on Fargate). */
#define MW_ECS_STATS_ID_MAX 128
/* Interfaces of one container read at most; more is an error. */
#define MW_ECS_STATS_IFACES_MAX 32
/* An interface name: 1 to 15 bytes (IFNAMSIZ - 1) of printable ASCII
 * but space, ',', '/' and ':'. */
#define MW_ECS_STATS_IFNAME_MAX 15

enum mw__ecs_field {
    MW_ECS_CPU_USAGE,       /* ns, user + system */
    MW_ECS_CPU_USER,        /* ns */
    MW_ECS_CPU_SYSTEM,      /* ns */
    MW_ECS_CPU_HOST,        /* ns of the host's CPU time, all CPUs */
    MW_ECS_CPU_ONLINE,      /* CPUs */
    MW_ECS_MEM_USAGE,       /* bytes */
    MW_ECS_MEM_MAX_USAGE,   /* bytes, cgroup v1 */
    MW_ECS_MEM_LIMIT,       /* bytes, when limited */
    MW_ECS_MEM_RSS,         /* bytes, cgroup v1 */
    MW_ECS_MEM_CACHE,       /* bytes, cgroup v1 */
    MW_ECS_MEM_INACTIVE,    /* bytes of inactive page cache (inactive_file) */
    MW_ECS_MEM_WORKING_SET, /* bytes, as `docker stats` shows the usage */
    MW_ECS_IO_READ_BYTES,
    MW_ECS_IO_WRITE_BYTES,
    MW_ECS_IO_READ_OPS,
    MW_ECS_IO_WRITE_OPS,
    MW_ECS_NFIELDS
};

enum mw__ecs_net_field {
    MW_ECS_NET_RX_BYTES,
    MW_ECS_NET_TX_BYTES,
    MW_ECS_NET_RX_ERRORS,
    MW_ECS_NET_TX_ERRORS,
    MW_ECS_NET_NFIELDS
};

typedef struct mw__ecs_iface {
    char name[MW_ECS_STATS_IFNAME_MAX + 1];
    uint64_t v[MW_ECS_NET_NFIELDS];
    uint32_t set; /* bit i: v[i] was read */
} mw__ecs_iface;

typedef struct mw__ecs_stats {
    int cgroup; /* 1 (memory_stats.stats has cache), 2 (anon or file
                 * without cache), 0: not known */
    uint64_t v[MW_ECS_NFIELDS];
    uint32_t set; /* bit i: v[i] was read */
    mw__ecs_iface net[MW_ECS_STATS_IFACES_MAX];
    size_t nnet;
} mw__ecs_stats;

/* From /task; each unset when absent, null or 0 (not limited). */
enum mw__ecs_limit {
    MW_ECS_LIMIT_CPU,         /* the container's, CPU units (1024 a vCPU) */
    MW_ECS_LIMIT_MEMORY,      /* the container's, MiB */
    MW_ECS_LIMIT_TASK_CPU,    /* the task's, vCPUs */
    MW_ECS_LIMIT_TASK_MEMORY, /* the task's, MiB */
    MW_ECS_LIMIT_N
};

typedef struct mw__ecs_limits {
    double v[MW_ECS_LIMIT_N];
    uint32_t set;
} mw__ecs_limits;

/* 1 when `id` is a DockerId (see MW_ECS_STATS_ID_MAX). */
int mw__ecs_stats_id_valid(const char *id);

/*
 * Reads the stats of container `id` (valid, see above) from a /task/stats
 * answer (`len` bytes, need not be NUL-terminated) into `*out`. MW_OK;
 * MW_ENOTFOUND when the answer has no stats of that container (no entry:
 * stopped, or not of this task; null: the agent has none yet); MW_EPARSE
 * for a payload that is not JSON, not an object, or a field of the wrong
 * type; MW_EINVAL for a bad id; MW_ENOMEM. Unless MW_OK, `err` (`errlen`
 * bytes) says why and `*out` is zeroed.
 */
mw_code mw__ecs_stats_parse(const char *json, size_t len, const char *id, mw__ecs_stats *out,
                            char *err, size_t errlen);

/* The limits of container `id` and of its task from a /task answer, as
 * mw__ecs_stats_parse(): MW_ENOTFOUND when the task does not list it. */
mw_code mw__ecs_limits_parse(const char *json, size_t len, const char *id, mw__ecs_limits *out,
                             char *err, size_t errlen);

static inline int mw__ecs_has(const mw__ecs_stats *s, enum mw__ecs_field f)
{
    return (s->set >> f) & 1u;
}

#endif

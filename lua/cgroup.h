/*
 * cgroup.h - a container's resource numbers from the host's cgroup tree
 * (v1 and v2) and /proc, for mw.container.stats (container_lua.c).
 *
 * The container is named by its id (64 lowercase hex) and, when known,
 * its main process. Its cgroup is found, never guessed:
 *  - from /proc/<pid>/cgroup when a pid is given and that process is in
 *    the container (a path component is `<id>` or `<prefix>-<id>.scope`);
 *  - else by looking for the id where runtimes put it, relative to each
 *    hierarchy: `docker/<id>`, `system.slice/docker-<id>.scope`, and
 *    `ecs/<task>/<id>` (the task's directory read, not guessed).
 * No path comes from the caller: the id and the pid are validated, and
 * everything is read below the operator's procfs and cgroup roots.
 *
 * What is read, by version (Datadog's Agent reads the same files):
 *   v1: cpuacct.usage, cpuacct.stat, cpu.stat, memory.stat (total_*,
 *       hierarchical_*), memory.usage_in_bytes,
 *       blkio.throttle.io_service_bytes, pids.current;
 *   v2: cpu.stat, memory.stat (anon, file), memory.current, memory.max,
 *       memory.swap.current, memory.swap.max, io.stat, pids.current;
 *   both: /proc/<pid>/net/dev when the container has a network namespace
 *       of its own (its interfaces but `lo`).
 * A file or field that is missing leaves its number unset.
 *
 * Not for use outside lua/. Pure C: no Lua, no allocation kept.
 */
#ifndef MW_CGROUP_H
#define MW_CGROUP_H

#include "lua/sandbox.h"

#include <stddef.h>
#include <stdint.h>

enum mw__cg_field {
    MW_CG_CPU_USAGE,        /* ns of CPU time, user + system */
    MW_CG_CPU_USER,         /* ns */
    MW_CG_CPU_SYSTEM,       /* ns */
    MW_CG_CPU_PERIODS,      /* CFS enforcement periods elapsed */
    MW_CG_CPU_THROTTLED,    /* periods throttled */
    MW_CG_CPU_THROTTLED_NS, /* ns throttled */
    MW_CG_MEM_USAGE,        /* bytes charged (memory.usage_in_bytes, memory.current) */
    MW_CG_MEM_RSS,          /* bytes of anonymous memory */
    MW_CG_MEM_CACHE,        /* bytes of page cache */
    MW_CG_MEM_SWAP,         /* bytes of swap used */
    MW_CG_MEM_LIMIT,        /* bytes; unset when unlimited */
    MW_CG_MEM_SW_LIMIT,     /* bytes of memory + swap; unset when unlimited */
    MW_CG_IO_READ,          /* bytes read from block devices */
    MW_CG_IO_WRITE,         /* bytes written to block devices */
    MW_CG_THREADS,          /* tasks in the cgroup (pids.current) */
    MW_CG_NFIELDS
};

#define MW_CG_MAX_IFACES 32

typedef struct mw__cg_iface {
    char name[16]; /* IFNAMSIZ */
    uint64_t rx_bytes, tx_bytes;
} mw__cg_iface;

typedef struct mw__cg_stats {
    int version; /* 1 or 2 */
    uint64_t v[MW_CG_NFIELDS];
    uint32_t set;  /* bit i: v[i] was read */
    double time;   /* monotonic seconds when the CPU numbers were read */
    long pid;      /* the process whose interfaces were read; 0: none */
    int own_netns; /* 1: `net` holds the container's own interfaces */
    mw__cg_iface net[MW_CG_MAX_IFACES];
    size_t nnet;
} mw__cg_stats;

/*
 * Where one container's numbers are, found by a first read and reused by
 * the next ones (the check of a container reads the same one every run):
 * its cgroup directories, relative to cgroup_root, and the process whose
 * network namespace was found to be the container's own. A read that
 * finds nothing there any more looks again. Zeroed: nothing known.
 */
typedef struct mw__cg_loc {
    char id[65];
    long pid;        /* the pid the caller gave (0: none) */
    int version;     /* 0: nothing kept */
    long proc;       /* whose interfaces to read; 0: none */
    int own_netns;   /* 1: proc's network namespace is not the host's */
    uint16_t off[5]; /* per directory, into `dirs`; UINT16_MAX: none */
    char dirs[1024]; /* NUL-terminated paths below cgroup_root */
} mw__cg_loc;

/* 1 when `id` is a container id: 64 lowercase hex digits. */
int mw__cg_valid_id(const char *id);

/*
 * Reads the numbers of container `id` (see mw__cg_valid_id) whose main
 * process is `pid` (0: unknown) below `paths` into `*out`, using and
 * updating `loc` (may be NULL). MW_OK; MW_EINVAL for a bad id or pid;
 * MW_ENOTFOUND when no cgroup of that container is there (stopped, or not
 * a container of this host); MW_ENOMEM. On error `err` says why.
 */
mw_code mw__cg_stats_read(const mw__host_paths *paths, const char *id, long pid, mw__cg_loc *loc,
                          mw__cg_stats *out, char *err, size_t errlen);

/* 1 when field `f` of `s` was read. */
static inline int mw__cg_has(const mw__cg_stats *s, enum mw__cg_field f)
{
    return (s->set >> f) & 1u;
}

#endif

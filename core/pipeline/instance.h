/*
 * instance.h - one resolved config of one check: its schedule parameters,
 * its sandbox, its sender and its stats.
 *
 * An instance is made from a check script (shared, refcounted: every
 * instance of a check borrows the same source text) and a resolved config
 * (init_config + one instance mapping). Its id is stable:
 * "<check>:<16 hex digits>" hashed over the canonical JSON of the config,
 * so the same config always yields the same id.
 *
 * The scheduler owns instances; the fields below the "scheduler" line are
 * its business. Stats are guarded by the lock of the worker the instance
 * is pinned to.
 */
#ifndef MW_INSTANCE_H
#define MW_INSTANCE_H

#include "moonwatch.h"
#include "core/base/loop.h"
#include "core/pipeline/sender.h"
#include "lua/sandbox.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>

/* A check's source, shared by its instances. Instances are made on one
 * thread and freed on their workers', so the count is atomic. */
typedef struct mw__script {
    char *check;
    char *path;
    char *text;
    size_t len;
    atomic_uint refs;
} mw__script;

/* Reads `path` as the script of `check` into `*out` (refs 1). MW_OK;
 * MW_EIO when the file cannot be read (or is over 1 MiB); MW_ENOMEM. On
 * error `*err` says why (caller frees). */
mw_code mw__script_load(const char *check, const char *path, mw__script **out, char **err);
mw__script *mw__script_ref(mw__script *s);
void mw__script_unref(mw__script *s);

/* Defaults applied when a config does not say. */
typedef struct mw__instance_defaults {
    double interval; /* seconds, default 15 */
    double timeout;  /* seconds, default 10 (capped by the interval) */
    size_t mem_cap;  /* bytes, default 16 MiB */
} mw__instance_defaults;

/* The resolved, validated parameters of one config. */
typedef struct mw__instance_params {
    double interval;
    double timeout;
    size_t mem_cap;
    /* What the config did not set, a check's own default may change
     * (mw__instance_params_check_default). */
    int interval_set, timeout_set;
    double timeout_default; /* the engine's check_timeout */
    char **tags;            /* sorted, deduplicated; instance `tags` + service:<x> */
    size_t ntags;
} mw__instance_params;

/* Reads interval, timeout, memory limit and tags from `instance` (and
 * `init_config` for memory_limit_mb / timeout). MW_OK; MW_EINVAL with
 * `*err` naming the bad field (caller frees); MW_ENOMEM. */
mw_code mw__instance_params_parse(const cJSON *instance, const cJSON *init_config,
                                  const mw__instance_defaults *d, mw__instance_params *out,
                                  char **err);
void mw__instance_params_free(mw__instance_params *p);
/* The check's own default interval (`interval` > 0, from its script),
 * for a config that sets none: the interval, and the default timeout
 * that follows from it. */
void mw__instance_params_check_default(mw__instance_params *p, double interval);

typedef struct mw__instance {
    char *id;
    char *check;
    char *source; /* where the config came from (file path) */
    mw__script *script;
    cJSON *instance_cfg;
    cJSON *init_config;
    mw__instance_params params;
    mw__sandbox *sb;
    struct mw__sched_state *state; /* the state its sandbox lives in (its lane's, for
                                    * its script): a user of it */
    mw__sender *sender;
    mw_instance_stats stats;
    double total_duration;

    /* scheduler: set on the caller's thread before the instance enters
     * its worker's table, then only touched on that worker, except the
     * fields marked "lane lock" (the worker's table lock) */
    struct mw__sched_lane *lane; /* the worker it is pinned to */
    mw__timer timer;
    mw__timer deadline;            /* the current run's deadline */
    uint64_t planned;              /* monotonic ns the current/next run was due */
    uint64_t run_start;            /* monotonic ns the current run started */
    int running;                   /* a run is in progress (maybe preempted) */
    int waiting;                   /* its run is suspended on I/O */
    int dead;                      /* unscheduled; free when its run ends */
    int manual;                    /* no timer: runs only when asked */
    int run_now;                   /* first run at once, not spread */
    unsigned requests;             /* lane lock: what its worker must do */
    int queued;                    /* lane lock: on the worker's request list */
    size_t lua_bytes;              /* lane lock: what it held in its state after the last run */
    uint64_t ran_on;               /* lane lock: worker threads its runs ran on */
    struct mw__instance *req_next; /* lane lock: request list */
    struct mw__instance *rq_next;  /* runnable queue */
    struct mw__instance *hnext;    /* lane lock: id hash chain */
} mw__instance;

#endif

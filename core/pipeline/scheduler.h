/*
 * scheduler.h - runs check instances on their intervals, spread over the
 * engine's workers (core/pipeline/workers.h).
 *
 * Each instance is pinned to one worker (by a stable hash of its id):
 * its timers, its runs, its I/O and its teardown happen on that worker's
 * loop, so a check's Lua state only ever runs on one thread. Each worker
 * has its own run queue, its own HTTP client (mw__http) and its own time
 * budget slot, so a busy worker never holds up the others.
 *
 * Timers are the worker loop's monotonic min-heap. First runs are spread
 * over the interval; later runs keep their phase (a late run does not
 * push the next ones). The same instance never runs twice at once: a
 * timer that fires while its run is still going counts a skipped run. A
 * run that uses up its time slice is preempted and resumed after other
 * due work of its worker; one that passes its deadline or memory cap is
 * stopped and reported. A run suspended on I/O (mw.http, mw.tcp,
 * mw.sleep) leaves the worker to the others and is resumed when its I/O
 * completes; its deadline still counts: a run still waiting at its
 * deadline is stopped, its transfer aborted and its sockets closed.
 *
 * After each run: stats, the service check `moonwatch.check_status` (OK,
 * or CRITICAL with the reason) and the run's samples are committed to the
 * shared aggregator, a failure is logged with the check id and reason.
 *
 * Threads: add, remove and run_now are called from the engine's control
 * thread (or whatever thread drives a hosted engine) and keep a
 * synchronous contract: the instance (sandbox, sender) is made on the
 * caller's thread and enters its worker's id table before add returns
 * (so a duplicate is refused at once), and a removed id is gone at once.
 * What must happen on the worker (arming the timer, starting a run,
 * stopping and freeing an instance, maybe mid-run) is queued to it in
 * order, or done at once when the caller owns the worker's loop (the
 * workers are not started, see mw__workers_owns()). The stats calls may
 * come from any thread.
 *
 * The scheduler owns its instances and its workers' HTTP clients; the
 * workers (loops, budget) are borrowed and must outlive it.
 */
#ifndef MW_SCHEDULER_H
#define MW_SCHEDULER_H

#include "core/base/log.h"
#include "core/base/loop.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/instance.h"
#include "core/pipeline/workers.h"
#include "lua/sandbox.h"

typedef struct mw__sched mw__sched;

typedef struct mw__sched_opts {
    mw__workers *workers;  /* borrowed: loops, budget slots, threads */
    mw__aggregator *agg;   /* borrowed */
    const mw__log *log;    /* borrowed */
    const char *host;      /* default host of samples */
    mw__stats_fn stats_fn; /* lent to sandboxes for mw.engine_stats() */
    void *stats_ud;
    const mw__io_policy *policy; /* borrowed; what checks' I/O may reach */
    const mw__host_paths *paths; /* borrowed; the host's /proc and cgroups (NULL: defaults) */
    const mw__ecs_endpoint *ecs; /* borrowed; the ECS task metadata endpoint (NULL: none) */
    mw__store_dir *store;        /* borrowed; where mw.state is kept (NULL: memory only) */
    int spread;                  /* 1: spread first runs over the interval */
    int manual;                  /* 1: no timers, runs only via mw__sched_run_now */
} mw__sched_opts;

/* A config to schedule: the script is referenced, the JSON copied. */
typedef struct mw__sched_spec {
    mw__script *script;
    const char *source; /* file the config came from */
    const cJSON *instance;
    const cJSON *init_config;
    const mw__instance_params *params;
    int run_now;    /* 1: first run at once, even when first runs are spread
                     * (an instance for a container that just started) */
    const char *id; /* its mw__instance_id() when the caller has it already
                     * (discovery keys instances by it); NULL: computed */
} mw__sched_spec;

/* A scheduler into `*out`: MW_OK, MW_ENOMEM, or the error of a worker's
 * HTTP client or request descriptor (MW_EIO, MW_ESYS). */
mw_code mw__sched_new(const mw__sched_opts *o, mw__sched **out);
/* Unschedules and frees every instance, serving what was queued to the
 * workers first. No worker thread may run (mw__workers_stop()). */
void mw__sched_free(mw__sched *s);

/*
 * Creates the instance (sandbox and sender) on the calling thread and
 * schedules it on its worker. Returns MW_OK with its id in `*id_out`
 * (borrowed, valid while scheduled; may be NULL), MW_ESTATE when an
 * instance with that id is scheduled already, or an error with a message
 * in `*err` (caller frees).
 */
mw_code mw__sched_add(mw__sched *s, const mw__sched_spec *spec, const char **id_out, char **err);

/* Unschedules `id` at once (a new instance may take the id right away);
 * its worker stops a run in progress and frees it, at once when the
 * caller owns that worker's loop. MW_ENOTFOUND when not scheduled. */
mw_code mw__sched_remove(mw__sched *s, const char *id);

/* The instances that run `script` (compared by address) into `*out`: a
 * cJSON array of {id, source, instance, init_config}, copies the caller
 * deletes, for replacing them with another script (a hot reload). MW_OK,
 * or MW_ENOMEM. Any thread. */
mw_code mw__sched_script_users(mw__sched *s, const mw__script *script, cJSON **out);

/* Copies of the config `id` was scheduled with into `*instance` and
 * `*init_config` (caller deletes both). MW_OK, MW_ENOTFOUND, or MW_ENOMEM
 * (nothing to delete). Any thread. */
mw_code mw__sched_instance_config(mw__sched *s, const char *id, cJSON **instance,
                                  cJSON **init_config);

/* Sets opts.manual for instances added from now on. */
void mw__sched_set_manual(mw__sched *s, int manual);

/* Starts a run of `id` now unless one is going (used by `moonwatch
 * check`). When the caller owns the worker's loop the run starts before
 * this returns (MW_ESTATE if one is going); otherwise it is asked of the
 * worker, which skips it if one is going. */
mw_code mw__sched_run_now(mw__sched *s, const char *id);
/* Runs in progress (including preempted and waiting ones, and runs asked
 * of a worker that has not started them yet). */
size_t mw__sched_running(const mw__sched *s);

size_t mw__sched_count(mw__sched *s);
/* Adds this scheduler's totals into `out` (instances, runs, errors,
 * lua_bytes: its Lua states' heaps as of their last run). Thread-safe. */
void mw__sched_stats(mw__sched *s, mw_engine_stats *out);
/* The same for the instances of worker `i` only. */
void mw__sched_worker_stats(mw__sched *s, unsigned i, mw_engine_stats *out);
mw_code mw__sched_instance_stats(mw__sched *s, const char *id, mw_instance_stats *out);
/* The worker `id` is pinned to, and a mask of the worker threads its runs
 * ran on (bit i: worker i's thread; runs of a hosted engine set none). */
mw_code mw__sched_instance_worker(mw__sched *s, const char *id, unsigned *worker, uint64_t *ran_on);
/* cJSON array of {id, check, source, worker, interval, stats...}; caller
 * deletes. */
cJSON *mw__sched_describe(mw__sched *s);

#endif

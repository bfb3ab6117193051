/*
 * scheduler.h - runs check instances on their intervals on one loop.
 *
 * Timers are the loop's monotonic min-heap. First runs are spread over
 * the interval; later runs keep their phase (a late run does not push the
 * next ones). The same instance never runs twice at once: a timer that
 * fires while its run is still going counts a skipped run. A run that
 * uses up its time slice is preempted and resumed after other due work,
 * so a slow or runaway check never delays the others; one that passes
 * its deadline or memory cap is stopped and reported. A run suspended on
 * I/O (mw.http, mw.tcp, mw.sleep) leaves the loop to the others and is
 * resumed when its I/O completes; its deadline still counts: a run still
 * waiting at its deadline is stopped, its transfer aborted and its
 * sockets closed.
 *
 * After each run: stats, the service check `moonwatch.check_status` (OK,
 * or CRITICAL with the reason) and the run's samples are committed to the
 * aggregator, a failure is logged with the check id and reason.
 *
 * The scheduler owns its instances and the HTTP client (mw__http) their
 * I/O runs on. It lives on one loop thread; only
 * mw__sched_stats()/mw__sched_instance_stats()/mw__sched_ids_json() may
 * be called from other threads.
 */
#ifndef MW_SCHEDULER_H
#define MW_SCHEDULER_H

#include "core/aggregator.h"
#include "core/instance.h"
#include "core/log.h"
#include "core/loop.h"
#include "lua/sandbox.h"

typedef struct mw__sched mw__sched;

typedef struct mw__sched_opts {
    mw__loop *loop;        /* borrowed */
    mw__budget_slot *slot; /* borrowed: this worker's watchdog slot */
    mw__aggregator *agg;   /* borrowed */
    const mw__log *log;    /* borrowed */
    const char *host;      /* default host of samples */
    mw__stats_fn stats_fn; /* lent to sandboxes for mw.engine_stats() */
    void *stats_ud;
    const mw__io_policy *policy; /* borrowed; what checks' I/O may reach */
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

mw__sched *mw__sched_new(const mw__sched_opts *o);
/* Unschedules and frees every instance. */
void mw__sched_free(mw__sched *s);

/*
 * Creates the instance (sandbox and sender) and schedules it. Returns
 * MW_OK with its id in `*id_out` (borrowed, valid while scheduled; may be
 * NULL), MW_ESTATE when an instance with that id already runs, or an
 * error with a message in `*err` (caller frees).
 */
mw_code mw__sched_add(mw__sched *s, const mw__sched_spec *spec, const char **id_out, char **err);

/* Unschedules `id` at once and frees everything of it (a run in progress
 * is aborted). MW_ENOTFOUND when not scheduled. */
mw_code mw__sched_remove(mw__sched *s, const char *id);

/* Sets opts.manual for instances added from now on. */
void mw__sched_set_manual(mw__sched *s, int manual);

/* Starts a run of `id` now unless one is going (used by `moonwatch check`). */
mw_code mw__sched_run_now(mw__sched *s, const char *id);
/* Runs in progress (including preempted ones). */
size_t mw__sched_running(const mw__sched *s);

size_t mw__sched_count(mw__sched *s);
/* Adds this scheduler's totals into `out` (instances, runs, errors,
 * lua_bytes). Thread-safe. */
void mw__sched_stats(mw__sched *s, mw_engine_stats *out);
mw_code mw__sched_instance_stats(mw__sched *s, const char *id, mw_instance_stats *out);
/* cJSON array of {id, check, source, interval, stats...}; caller deletes. */
cJSON *mw__sched_describe(mw__sched *s);

#endif

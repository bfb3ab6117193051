/*
 * engine.h - what the engine shares with the CLI commands inside the
 * project (the public API is include/moonwatch.h).
 */
#ifndef MW_ENGINE_H
#define MW_ENGINE_H

#include "moonwatch.h"
#include "core/base/diag.h"
#include "core/base/log.h"
#include "core/config.h"
#include "core/pipeline/scheduler.h"
#include "core/sinks/forwarder.h"
#include "discovery/discovery.h"
#include "discovery/template.h"

/* The engine's effective checks and templates directories (given ones
 * first, bundled last unless no_bundled). Borrowed. */
const mw__strlist *mw__engine_checks_dirs(mw_engine *eng);
const mw__strlist *mw__engine_templates_dirs(mw_engine *eng);
const mw__log *mw__engine_log(mw_engine *eng);
/* The scheduler over every worker (see core/pipeline/scheduler.h for which of its
 * calls may come from which thread). */
mw__sched *mw__engine_sched(mw_engine *eng);
/* The control loop (discovery, the flush timer); the checks run on the
 * workers' loops, stepped through mw_engine_step() when not started. */
mw__loop *mw__engine_loop(mw_engine *eng);

/* For the status listener (core/status.h). The effective configuration,
 * the discovery (NULL before mw_engine_load()), the default host and the
 * wall time the engine was made; all borrowed. */
const mw_config *mw__engine_config(mw_engine *eng);
mw__discovery *mw__engine_discovery(mw_engine *eng);
const char *mw__engine_host(mw_engine *eng);
/* Where it came from (hostname.h: "env:DD_HOSTNAME", "ec2_instance_id",
 * "system" ...). Borrowed. */
const char *mw__engine_host_origin(mw_engine *eng);
double mw__engine_started(mw_engine *eng);
/* mw_engine_add_sink() with the name the status shows (a literal). */
mw_code mw__engine_add_named_sink(mw_engine *eng, mw_sink_fn fn, void *ud, const char *name);
/* The sinks' names into `names` (room for `max`); returns how many. */
size_t mw__engine_sinks(mw_engine *eng, const char **names, size_t max);
/* The Datadog sink's delivery figures into `*out`: 1; 0 (and `*out`
 * untouched) when the engine has no Datadog sink. Any thread. */
int mw__engine_dd_stats(mw_engine *eng, mw__fwd_stats *out);

/* Loads every template of the engine's directories and marks those whose
 * check has no script (`no_check`); problems go to `diag`. The set is the
 * caller's. */
void mw__engine_load_templates(mw_engine *eng, mw__template_set *set, mw__diag *diag);

/*
 * Schedules every instance of template `t` (the check's script is looked
 * up in the checks directories). `spread` 0 runs first runs at once.
 * Problems go to `diag`; returns the number of instances scheduled.
 */
size_t mw__engine_schedule_template(mw_engine *eng, const mw__template *t, mw__diag *diag);

/* Schedules one instance of check `name` from JSON config; the instance's
 * id in `*id_out` (borrowed). */
mw_code mw__engine_schedule(mw_engine *eng, const char *name, const char *source,
                            const cJSON *instance, const cJSON *init_config, const char **id_out,
                            char **err);

/* mw__engine_schedule() under `id`, the config's mw__instance_id() (a
 * reload replacing an instance keeps its id). */
mw_code mw__engine_schedule_id(mw_engine *eng, const char *name, const char *source,
                               const cJSON *instance, const cJSON *init_config, const char *id,
                               char **err);

/* The scripts loaded so far, one per check, into `*n`; the array is the
 * engine's, and a reload (core/reload.c) may replace its entries (the
 * engine holds one reference on each). Control thread. */
mw__script **mw__engine_scripts(mw_engine *eng, size_t *n);

/* The last reload, for the status: how many were done, the wall time of
 * the last, and its problems ("file:line:col: message") as a cJSON array
 * (caller deletes; NULL on OOM). Control thread. */
cJSON *mw__engine_reload_json(mw_engine *eng);

/* A re-read configuration (SIGHUP): its log_level, default_interval,
 * check_timeout and check_memory_limit_mb are taken at once (the last
 * three for instances scheduled from then on); each other key that
 * changed is logged as needing a restart. Any thread; `cfg` is borrowed
 * for the call. MW_OK, or MW_ENOMEM. */
mw_code mw__engine_reconfigure(mw_engine *eng, const mw_config *cfg);

/*
 * One-shot discovery for `moonwatch configcheck`: loads the templates,
 * lists the services once (waiting at most `timeout` seconds) and returns
 * {"resolved": [...], "unresolved": [...], "not_scheduled": [...]}
 * (caller deletes), static configs included; `not_scheduled` holds
 * {check, source, reason} for every template that schedules nothing
 * whatever the containers (mw__template_not_scheduled). Nothing is
 * scheduled. NULL with `*err` (caller frees). The engine must not have
 * been loaded or started.
 */
cJSON *mw__engine_configcheck(mw_engine *eng, double timeout, char **err);

#endif

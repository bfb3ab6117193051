/*
 * run_now.h - a test engine whose checks run when the test asks:
 * t_asked_only() keeps the scheduler from starting runs of its own,
 * t_schedule() adds an instance, t_run_now() starts its next run.
 * A run reports (its records reach the sinks) from its worker before its
 * completion reaches the scheduler's lane, so a run asked for right after
 * can find the instance still running (MW_ESTATE): t_run_now() steps the
 * engine until the instance takes the new run, for at most 5 s, and
 * returns what mw__sched_run_now() last said. Nothing is kept.
 */
#ifndef MW_TEST_RUN_NOW_H
#define MW_TEST_RUN_NOW_H

#include "moonwatch.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "core/pipeline/scheduler.h"
#include "tests/unit/test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

/* The engine's scheduler starts no run of its own: a first run spread at
 * random over the interval could otherwise land inside a test and be
 * taken for the one it asked for. */
static inline void t_asked_only(mw_engine *eng)
{
    mw__sched_set_manual(mw__engine_sched(eng), 1);
}

/* Schedules `check` with `instance_json`, a 60 s interval and, when
 * `timeout` > 0, that timeout; its id (borrowed from the engine). */
static inline const char *t_schedule(mw_engine *eng, const char *check, const char *instance_json,
                                     double timeout)
{
    cJSON *inst = cJSON_Parse(instance_json);
    const char *id = NULL;
    char *err = NULL;
    CHECK(inst != NULL);
    cJSON_AddNumberToObject(inst, "min_collection_interval", 60);
    if (timeout > 0)
        cJSON_AddNumberToObject(inst, "timeout", timeout);
    mw_code rc = mw__engine_schedule(eng, check, "test", inst, NULL, &id, &err);
    if (rc != MW_OK)
        fprintf(stderr, "schedule %s: %s\n", check, err ? err : mw_strerror(rc));
    CHECK(rc == MW_OK);
    free(err);
    cJSON_Delete(inst);
    return id;
}

static inline mw_code t_run_now(mw_engine *eng, const char *id)
{
    mw_code rc;
    for (double end = mw__mono() + 5;
         (rc = mw__sched_run_now(mw__engine_sched(eng), id)) == MW_ESTATE && mw__mono() < end;)
        mw_engine_step(eng, 5);
    return rc;
}

#endif

/*
 * run_now.h - asking a test engine for an instance's next run at once.
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

static inline mw_code t_run_now(mw_engine *eng, const char *id)
{
    mw_code rc;
    for (double end = mw__mono() + 5;
         (rc = mw__sched_run_now(mw__engine_sched(eng), id)) == MW_ESTATE && mw__mono() < end;)
        mw_engine_step(eng, 5);
    return rc;
}

#endif

/*
 * ecs_report.h - what the ECS source reports upward besides task
 * identity: the service check ecs.agent.up (OK while the agent's
 * introspection API answers, CRITICAL with the reason when it does not).
 *
 * Nothing here keeps state; the record is borrowed by the callback for
 * the call. A record the callback refuses is logged and dropped.
 */
#ifndef MW_ECS_REPORT_H
#define MW_ECS_REPORT_H

#include "core/base/log.h"
#include "discovery/source.h"

/* OK when `up`, else CRITICAL with `why`. */
void mw__ecs_report_agent_up(const mw__source_cbs *out, const mw__log *log, const char *name,
                             int up, const char *why);

#endif

/*
 * ecs_report.h - what the ECS sources report upward besides task
 * identity: the service check ecs.agent.up (OK while the agent's
 * introspection API answers, CRITICAL with the reason when it does not),
 * and the ECS task events (source_type_name amazon_ecs): fail, oom,
 * pending and terminate (ecs_events.h) and reboot (ecs_boot.h), each
 * with a title naming the task family and its container(s), a text with
 * the exit code or the time, and the tags its caller gives plus
 * ecs_event:<kind>.
 *
 * Nothing here keeps state; the record is borrowed by the callback for
 * the call. A record the callback refuses is logged and dropped.
 */
#ifndef MW_ECS_REPORT_H
#define MW_ECS_REPORT_H

#include "core/base/log.h"
#include "discovery/ecs/ecs_events.h"
#include "discovery/source.h"

#define MW_ECS_SOURCE_TYPE "amazon_ecs"

/* OK when `up`, else CRITICAL with `why`. */
void mw__ecs_report_agent_up(const mw__source_cbs *out, const mw__log *log, const char *name,
                             int up, const char *why);

/* One task event with `tags` (borrowed; ecs_event:<kind> is added);
 * `timeout` is ecs_pending_timeout, for a pending event's text. */
void mw__ecs_report_event(const mw__source_cbs *out, const mw__log *log, const mw__ecs_event *ev,
                          const char *const *tags, size_t ntags, double timeout);

/* The host rebooted: its boot ids before and now. */
void mw__ecs_report_reboot(const mw__source_cbs *out, const mw__log *log, const char *before,
                           const char *now);

#endif

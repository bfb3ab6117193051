/*
 * docker_report.h - Docker events turned into records for the source's
 * `record` callback: an event (source_type_name "docker", aggregation
 * key "docker:<name>", the engine's host) for a container killed by the OOM
 * killer, one that exited non-zero, one whose health check failed and
 * one restarting in a loop; and the service check docker.service_up.
 *
 * An event carries the container's tags: its service's when it is one,
 * else container_id, container_name and the image tags built from the
 * event's attributes. Nothing here keeps state; the record is borrowed by
 * the callback for the call. A record it refuses is logged and dropped.
 */
#ifndef MW_DOCKER_REPORT_H
#define MW_DOCKER_REPORT_H

#include "core/base/log.h"
#include "discovery/docker/docker_events.h"
#include "discovery/service.h"
#include "discovery/source.h"

#define MW_DOCKER_SERVICE_UP "docker.service_up"

/* The container an event is about: the event, and its service when the
 * source holds one (NULL otherwise). Both borrowed. */
typedef struct mw__docker_subject {
    const mw__docker_event *ev;
    const mw__service *svc;
} mw__docker_subject;

/* `die` with a non-zero exitCode (nothing for 0 or none). */
void mw__docker_report_die(const mw__source_cbs *out, const mw__log *log, mw__docker_subject s);
void mw__docker_report_oom(const mw__source_cbs *out, const mw__log *log, mw__docker_subject s);
/* `health_status: unhealthy` (nothing for other statuses). */
void mw__docker_report_unhealthy(const mw__source_cbs *out, const mw__log *log,
                                 mw__docker_subject s);
/* `starts` starts within `window_s` seconds. */
void mw__docker_report_restart_loop(const mw__source_cbs *out, const mw__log *log,
                                    mw__docker_subject s, int starts, long long window_s);
/* OK when `up`, else CRITICAL with `why`. */
void mw__docker_report_service_up(const mw__source_cbs *out, const mw__log *log, int up,
                                  const char *why);

#endif

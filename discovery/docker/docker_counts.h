/*
 * docker_counts.h - the container counts of Datadog's Docker check, made
 * from one answer of GET /containers/json?all=1 and reported as gauge
 * records through the source's `record` callback:
 *
 *   docker.containers.running, docker.containers.stopped
 *       per image, tagged docker_image (the image as the list gives it),
 *       image_name, short_image and image_tag (mw__image_names(), as a
 *       container's own tags); an image is reported only for a count
 *       above 0, so an image with no container left is not reported at
 *       all (its series stops, as in Datadog's check);
 *   docker.containers.running.total, docker.containers.stopped.total
 *       untagged, every time, 0 included.
 *
 * A container is running when its State is "running"; any other state
 * (created, restarting, paused, removing, exited, dead, or none given)
 * is stopped, as Datadog's check counts them. Every listed container
 * counts: the container filter, pause containers and moonwatch's own
 * container do not change the counts (Datadog documents these metrics as
 * not affected by container_include / container_exclude).
 *
 * A list entry whose Image is a bare image id (the image it was created
 * from has lost that name) takes the repo tag `resolve` knows for it (the
 * Docker source's image cache, as for its services), else the id stands
 * for its names. One with no Image, or a malformed one, counts in the
 * totals only.
 *
 * Nothing here keeps state or makes requests; each record is borrowed by
 * the callback for the call. Records the callback refuses are logged,
 * once per call, and the others still go.
 */
#ifndef MW_DOCKER_COUNTS_H
#define MW_DOCKER_COUNTS_H

#include "core/base/log.h"
#include "discovery/source.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define MW_DOCKER_RUNNING       "docker.containers.running"
#define MW_DOCKER_STOPPED       "docker.containers.stopped"
#define MW_DOCKER_RUNNING_TOTAL "docker.containers.running.total"
#define MW_DOCKER_STOPPED_TOTAL "docker.containers.stopped.total"

/* The repo tag a bare image id stands for (borrowed), NULL when unknown. */
typedef const char *(*mw__docker_resolve_fn)(void *ud, const char *image_id);

/* Counts the containers of `list` (the parsed answer, borrowed) and
 * reports the gauges, stamped `now` (Unix seconds), through
 * `out->record`; `resolve` may be NULL. MW_OK; MW_EPARSE when `list` is
 * not an array, MW_ENOMEM: nothing was reported then. */
mw_code mw__docker_counts_report(const mw__source_cbs *out, const mw__log *log, const cJSON *list,
                                 mw__docker_resolve_fn resolve, void *ud, int64_t now);

#endif

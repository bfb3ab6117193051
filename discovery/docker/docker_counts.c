/*
 * docker_counts.c - the running and stopped containers per image, and
 * their totals, from a GET /containers/json?all=1 answer (see
 * docker_counts.h). The entries are sorted by image so that each image's
 * containers are counted in one run; the image strings are borrowed from
 * the list and the resolver while the counts are reported.
 */
#include "discovery/docker/docker_counts.h"

#include "core/base/util.h"
#include "discovery/service.h"

#include <stdlib.h>
#include <string.h>

#define WHERE "docker"

/* One listed container: its image (borrowed; NULL when it has none) and
 * whether it runs. */
typedef struct entry {
    const char *image;
    int running;
} entry;

/* One pass: where the gauges go, their time, and what went wrong. */
typedef struct pass {
    const mw__source_cbs *out;
    const mw__log *log;
    int64_t now;
    size_t dropped;
} pass;

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static entry entry_of(const cJSON *item, mw__docker_resolve_fn resolve, void *ud)
{
    const char *image = json_str(item, "Image"), *state = json_str(item, "State");
    const char *tag =
        image && resolve && mw__service_image_is_id(image) ? resolve(ud, image) : NULL;

    return (entry){tag ? tag : image, state && strcmp(state, "running") == 0};
}

/* By image, those without one last. */
static int entry_cmp(const void *a, const void *b)
{
    const char *x = ((const entry *)a)->image, *y = ((const entry *)b)->image;

    if (!x || !y)
        return (x == NULL) - (y == NULL);
    return strcmp(x, y);
}

static void gauge(pass *p, const char *name, size_t value, const char *const *tags, size_t ntags)
{
    mw_record rec = {0};

    rec.type = MW_RECORD_METRIC;
    rec.name = name;
    rec.kind = MW_KIND_GAUGE;
    rec.value = (double)value;
    rec.tags = tags;
    rec.ntags = ntags;
    rec.timestamp = p->now;
    if (p->out->record(p->out->ud, &rec) != MW_OK)
        p->dropped++;
}

/* The gauges of one image, for its counts above 0. */
static void report_image(pass *p, const char *image, size_t running, size_t stopped)
{
    char *lname = NULL, *sname = NULL, *tag = NULL, *tags[4] = {NULL};
    mw_code rc = mw__image_names(image, &lname, &sname, &tag);

    if (rc == MW_EPARSE) {
        mw__debug(p->log, WHERE, "image '%s' is not a usable reference: counted in totals only",
                  image);
        return;
    }
    if (rc == MW_OK) {
        tags[0] = mw__sprintf("docker_image:%s", image);
        tags[1] = mw__sprintf("image_name:%s", lname);
        tags[2] = mw__sprintf("short_image:%s", sname);
        tags[3] = mw__sprintf("image_tag:%s", tag);
    }
    if (!tags[0] || !tags[1] || !tags[2] || !tags[3]) {
        p->dropped += (running > 0) + (stopped > 0);
        goto out;
    }
    if (running)
        gauge(p, MW_DOCKER_RUNNING, running, (const char *const *)tags, 4);
    if (stopped)
        gauge(p, MW_DOCKER_STOPPED, stopped, (const char *const *)tags, 4);
out:
    for (size_t i = 0; i < MW_ARRAY_LEN(tags); i++)
        free(tags[i]);
    free(lname);
    free(sname);
    free(tag);
}

/* Each run of one image in the sorted entries, then the totals. */
static void report_all(pass *p, const entry *e, size_t n)
{
    size_t running = 0, stopped = 0;

    for (size_t i = 0; i < n;) {
        size_t r = 0, s = 0, j = i;

        for (; j < n && entry_cmp(&e[i], &e[j]) == 0; j++) {
            if (e[j].running)
                r++;
            else
                s++;
        }
        if (e[i].image)
            report_image(p, e[i].image, r, s);
        running += r;
        stopped += s;
        i = j;
    }
    gauge(p, MW_DOCKER_RUNNING_TOTAL, running, NULL, 0);
    gauge(p, MW_DOCKER_STOPPED_TOTAL, stopped, NULL, 0);
}

mw_code mw__docker_counts_report(const mw__source_cbs *out, const mw__log *log, const cJSON *list,
                                 mw__docker_resolve_fn resolve, void *ud, int64_t now)
{
    pass p = {out, log, now, 0};
    size_t n = 0;
    entry *e = NULL;
    const cJSON *item;
    mw_code rc = MW_EPARSE;

    if (!cJSON_IsArray(list))
        goto out;
    rc = MW_ENOMEM;
    e = malloc(((size_t)cJSON_GetArraySize(list) + 1) * sizeof(*e));
    if (!e)
        goto out;
    cJSON_ArrayForEach(item, list)
    {
        if (cJSON_IsObject(item)) /* anything else is not a container */
            e[n++] = entry_of(item, resolve, ud);
    }
    qsort(e, n, sizeof(*e), entry_cmp);
    report_all(&p, e, n);
    if (p.dropped)
        mw__warn(log, WHERE,
                 "%zu container count gauges dropped: out of memory or record queue full",
                 p.dropped);
    rc = MW_OK;
out:
    free(e);
    return rc;
}

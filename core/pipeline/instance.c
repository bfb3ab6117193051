/*
 * instance.c - check scripts, instance parameters and stable instance ids.
 */
#include "core/pipeline/instance.h"

#include "core/base/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRIPT_MAX (1024 * 1024)
#define TAGS_MAX   256

/* ------------------------------------------------------------- scripts */

mw__script *mw__script_load(const char *check, const char *path, char **err)
{
    mw__script *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->text = mw__read_file(path, SCRIPT_MAX, &s->len);
    if (!s->text) {
        *err = mw__sprintf("%s: cannot read check script: %s", path,
                           errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        free(s);
        return NULL;
    }
    s->check = mw__strdup(check);
    s->path = mw__strdup(path);
    if (!s->check || !s->path) {
        mw__script_unref(s);
        goto oom;
    }
    atomic_init(&s->refs, 1);
    return s;
oom:
    *err = mw__strdup("out of memory");
    return NULL;
}

mw__script *mw__script_ref(mw__script *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void mw__script_unref(mw__script *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) > 1)
        return;
    free(s->check);
    free(s->path);
    free(s->text);
    free(s);
}

/* ------------------------------------------------------------- params */

/* Largest interval and timeout (seconds) and memory limit (MiB): the
 * scheduler converts seconds to uint64_t nanoseconds and the limit
 * becomes a size_t, and converting a double past either is undefined. */
#define PARAM_MAX 1e9

static int number_field(const cJSON *obj, const char *key, double min, double *out, char **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > PARAM_MAX) {
        *err = mw__sprintf("%s: must be a number >= %g and <= %g", key, min, PARAM_MAX);
        return -1;
    }
    *out = v->valuedouble;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_tag(mw__instance_params *p, const char *tag)
{
    if (p->ntags >= TAGS_MAX)
        return 0;
    char *t = mw__strdup(tag);
    if (!t)
        return -1;
    p->tags[p->ntags++] = t;
    return 0;
}

static void sort_unique(mw__instance_params *p)
{
    if (p->ntags == 0)
        return;
    qsort(p->tags, p->ntags, sizeof *p->tags, cmp_str);
    size_t w = 1;
    for (size_t r = 1; r < p->ntags; r++) {
        if (strcmp(p->tags[r], p->tags[w - 1]) == 0)
            free(p->tags[r]);
        else
            p->tags[w++] = p->tags[r];
    }
    p->ntags = w;
}

static int parse_tags(const cJSON *instance, mw__instance_params *p, char **err)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(instance, "tags");
    const cJSON *service = cJSON_GetObjectItemCaseSensitive(instance, "service");
    p->tags = calloc(TAGS_MAX, sizeof *p->tags);
    if (!p->tags)
        goto oom;
    if (tags && !cJSON_IsNull(tags)) {
        if (!cJSON_IsArray(tags)) {
            *err = mw__strdup("tags: must be a list of strings");
            return -1;
        }
        const cJSON *t;
        cJSON_ArrayForEach(t, tags)
        {
            if (!cJSON_IsString(t) || !t->valuestring[0]) {
                *err = mw__strdup("tags: every tag must be a non-empty string");
                return -1;
            }
            if (push_tag(p, t->valuestring) != 0)
                goto oom;
        }
    }
    if (service && !cJSON_IsNull(service)) {
        if (!cJSON_IsString(service)) {
            *err = mw__strdup("service: must be a string");
            return -1;
        }
        char *t = mw__sprintf("service:%s", service->valuestring);
        int rc = t ? push_tag(p, t) : -1;
        free(t);
        if (rc != 0)
            goto oom;
    }
    sort_unique(p);
    return 0;
oom:
    *err = mw__strdup("out of memory");
    return -1;
}

int mw__instance_params_parse(const cJSON *instance, const cJSON *init_config,
                              const mw__instance_defaults *d, mw__instance_params *out, char **err)
{
    memset(out, 0, sizeof *out);
    double interval = d->interval, timeout = -1, mem_mb = (double)d->mem_cap / 1048576.0;
    if (!cJSON_IsObject(instance)) {
        *err = mw__strdup("instance: must be a mapping");
        return -1;
    }
    if (number_field(instance, "min_collection_interval", 1, &interval, err) < 0 ||
        number_field(init_config, "timeout", 0.001, &timeout, err) < 0 ||
        number_field(instance, "timeout", 0.001, &timeout, err) < 0 ||
        number_field(init_config, "memory_limit_mb", 0.0625, &mem_mb, err) < 0 ||
        number_field(instance, "memory_limit_mb", 0.0625, &mem_mb, err) < 0)
        goto fail;
    out->interval = interval;
    /* Default budget: the configured timeout or the interval, whichever
     * is lower, so a run never overlaps the next one. */
    out->timeout = timeout > 0 ? timeout : (d->timeout < interval ? d->timeout : interval);
    out->mem_cap = (size_t)(mem_mb * 1048576.0);
    if (parse_tags(instance, out, err) != 0)
        goto fail;
    return 0;
fail:
    mw__instance_params_free(out);
    return -1;
}

void mw__instance_params_free(mw__instance_params *p)
{
    for (size_t i = 0; i < p->ntags; i++)
        free(p->tags[i]);
    free(p->tags);
    p->tags = NULL;
    p->ntags = 0;
}

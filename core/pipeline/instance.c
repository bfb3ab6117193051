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

mw_code mw__script_load(const char *check, const char *path, mw__script **out, char **err)
{
    mw_code rc = MW_ENOMEM;
    mw__script *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        goto out;
    atomic_init(&s->refs, 1);
    if ((rc = mw__read_file(path, SCRIPT_MAX, &s->text, &s->len)) != MW_OK) {
        *err = mw__sprintf("%s: cannot read check script: %s", path,
                           rc != MW_EIO     ? mw_strerror(rc)
                           : errno == EFBIG ? "larger than 1 MiB"
                                            : strerror(errno));
        goto out;
    }
    rc = MW_ENOMEM;
    if (!(s->check = mw__strdup(check)) || !(s->path = mw__strdup(path)))
        goto out;
    *out = s;
    s = NULL;
    rc = MW_OK;
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup("out of memory");
    mw__script_unref(s);
    return rc;
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

/* Sets `*out` when `key` is there (absent or null keeps it). */
static mw_code number_field(const cJSON *obj, const char *key, double min, double *out, char **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return MW_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > PARAM_MAX) {
        *err = mw__sprintf("%s: must be a number >= %g and <= %g", key, min, PARAM_MAX);
        return MW_EINVAL;
    }
    *out = v->valuedouble;
    return MW_OK;
}

static int is_set(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static mw_code push_tag(mw__instance_params *p, const char *tag)
{
    if (p->ntags >= TAGS_MAX)
        return MW_OK;
    char *t = mw__strdup(tag);
    if (!t)
        return MW_ENOMEM;
    p->tags[p->ntags++] = t;
    return MW_OK;
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

/* The instance's `tags` list, each a non-empty string. */
static mw_code tag_list(const cJSON *tags, mw__instance_params *p, char **err)
{
    const cJSON *t;
    if (!tags || cJSON_IsNull(tags))
        return MW_OK;
    if (!cJSON_IsArray(tags)) {
        *err = mw__strdup("tags: must be a list of strings");
        return MW_EINVAL;
    }
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t) || !t->valuestring[0]) {
            *err = mw__strdup("tags: every tag must be a non-empty string");
            return MW_EINVAL;
        }
        if (push_tag(p, t->valuestring) != MW_OK)
            return MW_ENOMEM;
    }
    return MW_OK;
}

static mw_code service_tag(const cJSON *service, mw__instance_params *p, char **err)
{
    if (!service || cJSON_IsNull(service))
        return MW_OK;
    if (!cJSON_IsString(service)) {
        *err = mw__strdup("service: must be a string");
        return MW_EINVAL;
    }
    char *t = mw__sprintf("service:%s", service->valuestring);
    mw_code rc = t ? push_tag(p, t) : MW_ENOMEM;
    free(t);
    return rc;
}

static mw_code parse_tags(const cJSON *instance, mw__instance_params *p, char **err)
{
    mw_code rc = MW_ENOMEM;
    if (!(p->tags = calloc(TAGS_MAX, sizeof *p->tags)))
        goto out;
    if ((rc = tag_list(cJSON_GetObjectItemCaseSensitive(instance, "tags"), p, err)) != MW_OK ||
        (rc = service_tag(cJSON_GetObjectItemCaseSensitive(instance, "service"), p, err)) != MW_OK)
        goto out;
    sort_unique(p);
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup("out of memory");
    return rc;
}

mw_code mw__instance_params_parse(const cJSON *instance, const cJSON *init_config,
                                  const mw__instance_defaults *d, mw__instance_params *out,
                                  char **err)
{
    double interval = d->interval, timeout = -1, mem_mb = (double)d->mem_cap / 1048576.0;
    mw_code rc = MW_EINVAL;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(instance)) {
        *err = mw__strdup("instance: must be a mapping");
        goto out;
    }
    if ((rc = number_field(instance, "min_collection_interval", 1, &interval, err)) != MW_OK ||
        (rc = number_field(init_config, "timeout", 0.001, &timeout, err)) != MW_OK ||
        (rc = number_field(instance, "timeout", 0.001, &timeout, err)) != MW_OK ||
        (rc = number_field(init_config, "memory_limit_mb", 0.0625, &mem_mb, err)) != MW_OK ||
        (rc = number_field(instance, "memory_limit_mb", 0.0625, &mem_mb, err)) != MW_OK)
        goto out;
    out->interval = interval;
    out->interval_set = is_set(instance, "min_collection_interval");
    out->timeout_set = timeout > 0;
    out->timeout_default = d->timeout;
    /* Default budget: the configured timeout or the interval, whichever
     * is lower, so a run never overlaps the next one. */
    out->timeout = timeout > 0 ? timeout : (d->timeout < interval ? d->timeout : interval);
    out->mem_cap = (size_t)(mem_mb * 1048576.0);
    rc = parse_tags(instance, out, err);
out:
    if (rc != MW_OK)
        mw__instance_params_free(out);
    return rc;
}

void mw__instance_params_check_default(mw__instance_params *p, double interval)
{
    if (interval <= 0 || p->interval_set)
        return;
    p->interval = interval;
    if (!p->timeout_set)
        p->timeout = p->timeout_default < interval ? p->timeout_default : interval;
}

void mw__instance_params_free(mw__instance_params *p)
{
    for (size_t i = 0; i < p->ntags; i++)
        free(p->tags[i]);
    free(p->tags);
    p->tags = NULL;
    p->ntags = 0;
}

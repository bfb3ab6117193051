/*
 * dd_sink.c - the Datadog sink: settings (options, else the DD_*
 * environment), a payload builder fed by the flush, and a forwarder
 * that delivers what the builder completes (see dd_sink.h).
 */
#include "core/sinks/dd_sink.h"

#include "core/base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE_DEFAULT "datadoghq.com"

struct mw__dd_sink {
    mw__dd_builder *builder;
    mw__fwd *fwd;
    const mw__log *log;
    char *url;
    uint64_t reported[MW_FWD_NREASONS]; /* dropped items already reported */
};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

const char *mw__dd_api_key(const char *configured)
{
    return configured && configured[0] ? configured : env("DD_API_KEY");
}

/* The intake's base URL: caller frees; NULL with `*err` when bad. */
static char *intake_url(const mw__dd_sink_opts *o, char **err)
{
    const char *url = o->url && o->url[0] ? o->url : env("DD_DD_URL");
    if (url) {
        if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
            *err = mw__strdup("datadog: the intake URL (dd_url / DD_DD_URL) must start with "
                              "http:// or https://");
            return NULL;
        }
        return mw__strdup(url);
    }
    const char *site = o->site && o->site[0] ? o->site : env("DD_SITE");
    return mw__sprintf("https://api.%s", site ? site : SITE_DEFAULT);
}

/* DD_TAGS: words separated by spaces or commas. */
static mw_code split_tags(const char *s, char ***out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    while (s && *s) {
        size_t skip = strspn(s, " ,\t"), len;
        s += skip;
        if (!(len = strcspn(s, " ,\t")))
            break;
        if (mw__grow(out, &cap, *n + 1, sizeof **out) != MW_OK ||
            !((*out)[*n] = mw__strndup(s, len)))
            return MW_ENOMEM;
        (*n)++;
        s += len;
    }
    return MW_OK;
}

static void free_tags(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

static void emit(void *ud, mw__dd_payload *p)
{
    mw__dd_sink *s = ud;
    mw__fwd_push(s->fwd, p);
}

static void too_large(void *ud, size_t items)
{
    mw__dd_sink *s = ud;
    mw__fwd_count_drop(s->fwd, MW_FWD_TOO_LARGE, items);
    mw__warn(s->log, "datadog", "%zu records too large for a payload dropped", items);
}

static mw_code make_parts(mw__dd_sink *s, const mw__dd_sink_opts *o, const char *key)
{
    char **tags = NULL;
    size_t ntags = 0;
    mw_code rc = split_tags(o->tags ? o->tags : env("DD_TAGS"), &tags, &ntags);
    if (rc != MW_OK)
        goto out;
    mw__fwd_opts fo = {
        .url = s->url,
        .api_key = key,
        .log = o->log,
        .queue_max = o->queue_max,
        .timeout = o->timeout,
        .backoff_base = o->backoff_base,
        .backoff_max = o->backoff_max,
    };
    if ((rc = mw__fwd_new(&fo, &s->fwd)) != MW_OK)
        goto out;
    mw__dd_builder_opts bo = {
        .host = o->host,
        .tags = (const char *const *)tags,
        .ntags = ntags,
        .max_json = o->max_json,
        .emit = emit,
        .too_large = too_large,
        .ud = s,
    };
    rc = mw__dd_builder_new(&bo, &s->builder);
out:
    free_tags(tags, ntags);
    return rc;
}

mw_code mw__dd_sink_new(const mw__dd_sink_opts *o, mw__dd_sink **out, char **err)
{
    const char *key = mw__dd_api_key(o->api_key);
    mw_code rc = MW_EINVAL;
    mw__dd_sink *s = NULL;
    *out = NULL;
    *err = NULL;
    if (!key) {
        *err = mw__strdup("datadog: no API key (set DD_API_KEY or api_key)");
        goto out;
    }
    rc = MW_ENOMEM;
    if (!(s = calloc(1, sizeof *s)))
        goto out;
    s->log = o->log;
    rc = MW_EINVAL;
    if (!(s->url = intake_url(o, err)))
        goto out;
    if ((rc = make_parts(s, o, key)) != MW_OK) {
        *err = mw__sprintf("datadog: cannot start the forwarder: %s", mw_strerror(rc));
        goto out;
    }
    mw__info(o->log, "datadog", "sending to %s", s->url);
    *out = s;
    s = NULL;
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup(mw_strerror(rc));
    mw__dd_sink_free(s, 0);
    return rc;
}

void mw__dd_sink_free(mw__dd_sink *s, double timeout)
{
    if (!s)
        return;
    mw__dd_builder_free(s->builder);
    mw__fwd_free(s->fwd, timeout);
    free(s->url);
    free(s);
}

void mw__dd_sink_record(const mw_record *rec, void *ud)
{
    mw__dd_sink *s = ud;
    mw__dd_builder_add(s->builder, rec);
}

void mw__dd_sink_flushed(mw__dd_sink *s)
{
    mw__dd_builder_finish(s->builder);
}

void mw__dd_sink_report(mw__dd_sink *s, void (*fn)(void *ud, const char *tag, double n), void *ud)
{
    mw__fwd_stats st;
    char tag[64];
    mw__fwd_stats_get(s->fwd, &st);
    for (int r = 0; r < MW_FWD_NREASONS; r++) {
        uint64_t now = st.dropped_items[r];
        snprintf(tag, sizeof tag, "reason:%s", mw__fwd_reason_name((mw__fwd_reason)r));
        fn(ud, tag, (double)(now - s->reported[r]));
        s->reported[r] = now;
    }
}

mw_code mw__dd_sink_drain(mw__dd_sink *s, double timeout)
{
    return mw__fwd_drain(s->fwd, timeout);
}

void mw__dd_sink_stats(mw__dd_sink *s, mw__fwd_stats *out)
{
    mw__fwd_stats_get(s->fwd, out);
}

const char *mw__dd_sink_url(const mw__dd_sink *s)
{
    return s->url;
}

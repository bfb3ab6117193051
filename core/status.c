/*
 * status.c - the status listener (see status.h): the routes, the /status
 * document, the health rule and the Prometheus sink behind /metrics.
 *
 * Everything here runs on the engine's control loop (the one discovery
 * runs on), so discovery is read directly; the scheduler, aggregator and
 * Prometheus sink are thread-safe for the rest.
 */
#include "core/status.h"

#include "core/base/httpd.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "core/pipeline/sink_prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mw__status {
    mw_engine *eng;
    mw__httpd *httpd;
    mw__prom *prom;
    size_t metrics_hint; /* bytes the last /metrics took, and an eighth */
};

/* ------------------------------------------------------------- secrets */

/* `s` with the user:password@ of every URL masked (caller frees). */
static char *masked(const char *s)
{
    mw__buf b;
    mw__buf_init(&b, (size_t)1 << 20);
    for (const char *p = s ? s : "", *sep; (sep = strstr(p, "://")) != NULL;) {
        const char *host = sep + 3, *end = host + strcspn(host, "/ \"'?#"), *last = NULL;
        for (const char *at = host; at < end; at++)
            if (*at == '@')
                last = at;
        mw__buf_add(&b, p, (size_t)(host - p));
        if (last)
            mw__buf_adds(&b, "***");
        p = last ? last : host;
        s = p;
    }
    mw__buf_adds(&b, s ? s : "");
    char *out = mw__buf_take(&b, NULL);
    return out ? out : mw__strdup("");
}

static void mask_field(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char *m = cJSON_IsString(v) ? masked(v->valuestring) : NULL;
    if (m)
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateString(m));
    free(m);
}

/* ------------------------------------------------------------- health */

/* Seconds the source has not been answering, 0 when it is up. */
static double failing_for(const mw__source_health *h, uint64_t now)
{
    return h->up == 1 || now < h->since ? 0 : (double)(now - h->since) / 1e9;
}

/* 0 (with a reason) when the Datadog intake has refused every attempt
 * for longer than `grace` seconds; 1 otherwise, or without that sink. */
static int sink_health(mw_engine *eng, double grace, uint64_t now, cJSON *reasons)
{
    mw__fwd_stats st;
    if (!mw__engine_dd_stats(eng, &st) || !st.failing_since || now < st.failing_since)
        return 1;
    double secs = (double)(now - st.failing_since) / 1e9;
    if (secs <= grace)
        return 1;
    char *r = mw__sprintf("datadog failing for %.0f s: %s (%llu payloads queued)", secs,
                          st.last_error, (unsigned long long)st.queued_payloads);
    if (r && reasons)
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r));
    free(r);
    return 0;
}

int mw__status_health(mw_engine *eng, cJSON *reasons)
{
    mw__discovery *d = mw__engine_discovery(eng);
    mw__source_health hs[MW_SOURCES];
    size_t n = d ? mw__discovery_health(d, hs) : 0;
    double grace = mw__engine_config(eng)->health_grace;
    uint64_t now = mw__mono_ns();
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double secs = failing_for(&hs[i], now);
        if (secs <= grace)
            continue;
        char *why = masked(hs[i].why);
        char *r = hs[i].up == 0 ? mw__sprintf("%s failing for %.0f s: %s", hs[i].name, secs, why)
                                : mw__sprintf("%s has not answered in %.0f s", hs[i].name, secs);
        if (r && reasons)
            cJSON_AddItemToArray(reasons, cJSON_CreateString(r));
        free(r);
        free(why);
        ok = 0;
    }
    return sink_health(eng, grace, now, reasons) && ok;
}

/* ------------------------------------------------------------- /status */

static cJSON *sources_json(mw_engine *eng)
{
    mw__discovery *d = mw__engine_discovery(eng);
    mw__source_health hs[MW_SOURCES];
    size_t n = d ? mw__discovery_health(d, hs) : 0;
    uint64_t now = mw__mono_ns();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char *why = masked(hs[i].why);
        cJSON_AddStringToObject(o, "name", hs[i].name);
        cJSON_AddStringToObject(o, "state",
                                hs[i].up == 1   ? "up"
                                : hs[i].up == 0 ? "failing"
                                                : "starting");
        cJSON_AddNumberToObject(o, "since_seconds",
                                now > hs[i].since ? (double)(now - hs[i].since) / 1e9 : 0);
        if (hs[i].why)
            cJSON_AddStringToObject(o, "error", why);
        else
            cJSON_AddNullToObject(o, "error");
        cJSON_AddItemToArray(a, o);
        free(why);
    }
    return a;
}

static cJSON *instances_json(mw_engine *eng)
{
    cJSON *a = mw__sched_describe(mw__engine_sched(eng)), *o;
    cJSON_ArrayForEach(o, a)
    {
        mask_field(o, "last_error");
        mask_field(o, "source");
    }
    return a;
}

static cJSON *unresolved_json(mw_engine *eng)
{
    mw__discovery *d = mw__engine_discovery(eng);
    cJSON *resolved = cJSON_CreateArray(), *unresolved = cJSON_CreateArray(), *o;
    if (d && resolved && unresolved)
        mw__discovery_describe(d, resolved, unresolved);
    cJSON_Delete(resolved);
    cJSON_ArrayForEach(o, unresolved) mask_field(o, "reason");
    return unresolved;
}

/* The Datadog sink's delivery: where, its state, its queue and what it
 * dropped, by reason. Never the API key (the URL carries none). */
static void add_dd_delivery(mw_engine *eng, cJSON *o)
{
    mw__fwd_stats st;
    if (!mw__engine_dd_stats(eng, &st))
        return;
    uint64_t now = mw__mono_ns();
    cJSON *dropped = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", st.failing_since ? "failing" : "up");
    cJSON_AddNumberToObject(
        o, "failing_seconds",
        st.failing_since && now > st.failing_since ? (double)(now - st.failing_since) / 1e9 : 0);
    if (st.failing_since)
        cJSON_AddStringToObject(o, "error", st.last_error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddNumberToObject(o, "queued_payloads", (double)st.queued_payloads);
    cJSON_AddNumberToObject(o, "queued_bytes", (double)st.queued_bytes);
    cJSON_AddNumberToObject(o, "queue_max_bytes", (double)st.queue_max);
    cJSON_AddNumberToObject(o, "sent_payloads", (double)st.sent_payloads);
    cJSON_AddNumberToObject(o, "sent_items", (double)st.sent_items);
    cJSON_AddNumberToObject(o, "retries", (double)st.retries);
    for (int r = 0; dropped && r < MW_FWD_NREASONS; r++)
        cJSON_AddNumberToObject(dropped, mw__fwd_reason_name((mw__fwd_reason)r),
                                (double)st.dropped_items[r]);
    cJSON_AddItemToObject(o, "dropped", dropped);
}

static cJSON *sinks_json(mw_engine *eng)
{
    const char *names[32];
    size_t n = mw__engine_sinks(eng, names, MW_ARRAY_LEN(names));
    cJSON *a = cJSON_CreateArray(), *o;
    for (size_t i = 0; a && i < n; i++) {
        cJSON_AddItemToArray(a, o = cJSON_CreateObject());
        cJSON_AddStringToObject(o, "name", names[i]);
        if (!strcmp(names[i], "datadog"))
            add_dd_delivery(eng, o);
    }
    return a;
}

/* The resident set size in bytes (0 when /proc says nothing). */
static double rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static cJSON *totals_json(mw_engine *eng, mw_engine_stats *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "instances", (double)st->instances);
    cJSON_AddNumberToObject(o, "runs", (double)st->runs);
    cJSON_AddNumberToObject(o, "errors", (double)st->errors);
    cJSON_AddNumberToObject(o, "contexts", (double)st->contexts);
    cJSON_AddNumberToObject(o, "flushes", (double)st->flushes);
    cJSON_AddNumberToObject(o, "records", (double)st->records);
    MW_UNUSED(eng);
    return o;
}

static cJSON *health_json(mw_engine *eng)
{
    cJSON *o = cJSON_CreateObject(), *reasons = cJSON_CreateArray();
    int ok = mw__status_health(eng, reasons);
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "failing");
    cJSON_AddItemToObject(o, "reasons", reasons);
    return o;
}

cJSON *mw__status_json(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof st};
    mw__discovery *d = mw__engine_discovery(eng);
    double now = mw__wall();
    cJSON *o = cJSON_CreateObject(), *mem;
    mw_engine_stats_get(eng, &st);
    cJSON_AddStringToObject(o, "version", mw_version_string());
    cJSON_AddStringToObject(o, "hostname", mw__engine_host(eng));
    cJSON_AddStringToObject(o, "hostname_origin", mw__engine_host_origin(eng));
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddNumberToObject(o, "started", mw__engine_started(eng));
    cJSON_AddNumberToObject(o, "uptime_seconds", now - mw__engine_started(eng));
    cJSON_AddItemToObject(o, "health", health_json(eng));
    cJSON_AddItemToObject(o, "sources", sources_json(eng));
    cJSON_AddNumberToObject(o, "services", d ? (double)mw__discovery_services(d) : 0);
    cJSON_AddItemToObject(o, "instances", instances_json(eng));
    cJSON_AddItemToObject(o, "unresolved", unresolved_json(eng));
    cJSON_AddItemToObject(o, "sinks", sinks_json(eng));
    cJSON_AddItemToObject(o, "reload", mw__engine_reload_json(eng));
    cJSON_AddItemToObject(o, "totals", totals_json(eng, &st));
    cJSON_AddItemToObject(o, "memory", mem = cJSON_CreateObject());
    cJSON_AddNumberToObject(mem, "rss_bytes", rss_bytes());
    cJSON_AddNumberToObject(mem, "lua_bytes", (double)st.lua_bytes);
    return o;
}

/* ------------------------------------------------------------- routes */

static void get_status(mw__status *s, mw__httpd_resp *resp)
{
    cJSON *doc = mw__status_json(s->eng);
    char *text = doc ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        resp->status = 500;
        mw__buf_adds(&resp->body, "out of memory\n");
        return;
    }
    resp->content_type = "application/json";
    mw__buf_adds(&resp->body, text);
    mw__buf_addc(&resp->body, '\n');
    free(text);
}

static void get_healthz(mw__status *s, mw__httpd_resp *resp)
{
    cJSON *reasons = cJSON_CreateArray(), *r;
    if (mw__status_health(s->eng, reasons)) {
        mw__buf_adds(&resp->body, "ok\n");
    } else {
        resp->status = 503;
        cJSON_ArrayForEach(r, reasons) mw__buf_addf(&resp->body, "%s\n", r->valuestring);
    }
    cJSON_Delete(reasons);
}

static void get_metrics(mw__status *s, mw__httpd_resp *resp)
{
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    mw__buf_reserve(&resp->body, s->metrics_hint); /* no doubling on the way */
    mw_code rc = mw__prom_render(s->prom, mw__wall(), &resp->body);
    s->metrics_hint = resp->body.len + resp->body.len / 8;
    if (rc != MW_OK) {
        mw__buf_reset(&resp->body);
        resp->status = 500;
        resp->content_type = NULL;
        mw__buf_adds(&resp->body, "the exposition is over the response cap\n");
    }
}

static const struct route {
    const char *path;
    void (*get)(mw__status *s, mw__httpd_resp *resp);
} routes[] = {
    {"/status", get_status},
    {"/healthz", get_healthz},
    {"/metrics", get_metrics},
};

static void handle(void *ud, const mw__httpd_req *req, mw__httpd_resp *resp)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(routes); i++) {
        if (strcmp(req->path, routes[i].path))
            continue;
        if (strcmp(req->method, "GET")) {
            resp->status = 405;
            mw__buf_adds(&resp->body, "only GET\n");
            return;
        }
        routes[i].get(ud, resp);
        return;
    }
    resp->status = 404;
    mw__buf_adds(&resp->body, "not found: try /status, /healthz or /metrics\n");
}

/* ------------------------------------------------------------- lifecycle */

mw_code mw__status_new(mw_engine *eng, mw__status **out, char **err)
{
    const mw_config *c = mw__engine_config(eng);
    mw_code rc = MW_ENOMEM;
    mw__status *s = calloc(1, sizeof *s);
    *out = NULL;
    *err = NULL;
    if (!s || !(s->prom = mw__prom_new(c->context_expiry)))
        goto out;
    s->eng = eng;
    mw__httpd_opts o = {
        .loop = mw__engine_loop(eng),
        .addr = c->listen,
        .allow_any = c->listen_any,
        .handler = handle,
        .ud = s,
    };
    if ((rc = mw__httpd_new(&o, &s->httpd, err)) != MW_OK)
        goto out;
    if ((rc = mw__engine_add_named_sink(eng, mw__prom_sink, s->prom, "prometheus")) != MW_OK)
        goto out;
    mw__info(mw__engine_log(eng), NULL, "status listener on %s (/status, /healthz, /metrics)",
             mw__httpd_addr(s->httpd));
    *out = s;
    s = NULL;
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup("out of memory");
    mw__status_free(s);
    return rc;
}

void mw__status_free(mw__status *s)
{
    if (!s)
        return;
    mw__httpd_free(s->httpd);
    mw__prom_free(s->prom);
    free(s);
}

const char *mw__status_addr(const mw__status *s)
{
    return mw__httpd_addr(s->httpd);
}

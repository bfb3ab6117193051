/*
 * engine.c - the engine handle: wires config, log, aggregator, workers,
 * control loop and scheduler together, owns the sinks, the check
 * scripts and the directory of the checks' state (mw.state), and runs on
 * threads of its own or from the host's loop.
 *
 * Threads when started: the control thread runs the control loop
 * (discovery, the flush timer) and each worker runs its own loop (the
 * checks pinned to it, see core/pipeline/workers.h). Not started, the host's
 * thread steps the control loop, which steps the workers' loops when they
 * have work (mw__workers_attach()).
 *
 * Everything is reachable from the handle; nothing is global.
 */
#include "core/engine.h"

#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/store.h"
#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sink_json.h"
#include "core/pipeline/workers.h"
#include "core/sinks/dd_sink.h"
#include "core/config_diff.h"
#include "core/hostname.h"
#include "core/reload.h"
#include "core/status.h"
#include "core/watch.h"
#include "discovery/discovery.h"
#include "lua/sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SINKS 16
/* A burst of changes in the watched directories (an editor's save, a
 * checkout) makes one reload, this long after the last. */
#define WATCH_DEBOUNCE_MS 200
/* The stdout sink writes its lines out whenever this much is buffered,
 * and at the end of each flush: a flush of many records is never held
 * whole, and the buffer stays about this size. */
#define OUT_CHUNK ((size_t)64 << 10)
/* A buffer grown past this (one huge record) is freed once written. */
#define OUT_KEEP (4 * OUT_CHUNK)

typedef struct sink {
    mw_sink_fn fn;
    void *ud;
    const char *name; /* a literal, for the status */
} sink;

struct mw_engine {
    mw_config *cfg;
    mw__log log;
    char *host, *host_origin; /* hostname.h */
    mw__strlist checks_dirs, templates_dirs;
    int dirs_ready;
    mw__aggregator *agg;
    mw__workers *workers;
    mw__loop *loop;       /* the control loop */
    mw__aws *aws;         /* AWS credentials and requests for checks, on `loop` */
    mw__store_dir *store; /* mw.state: <state_dir>/checks */
    mw__sched *sched;
    mw__discovery *disc;
    mw__timer flush_timer;
    uint64_t flush_ns;
    sink sinks[MAX_SINKS];
    size_t nsinks;
    pthread_mutex_t flush_lock;
    mw__buf out;     /* the stdout sink's lines not written yet */
    mw__dd_sink *dd; /* the Datadog sink, or NULL */
    mw__script **scripts;
    size_t nscripts, scripts_cap;
    mw__io_policy policy; /* from cfg; its strings are cfg's */
    mw__host_paths paths; /* from cfg (or literals) */
    mw__ecs_endpoint ecs; /* its strings are ecs_url and ecs_why */
    char *ecs_url, *ecs_why;
    mw__status *status; /* the listener, NULL without `listen` */
    double started_wall;
    mw__watch *watch;       /* inotify on the dirs (watch_config_dirs), or NULL */
    mw__diag reload_errors; /* the last reload's problems */
    unsigned reloads;
    double reload_wall;
    pthread_t thread;
    int started;
    atomic_uint_fast64_t flushes, records;
};

unsigned mw_version(void)
{
    return MW_VERSION_NUM;
}

const char *mw_version_string(void)
{
    return MW_VERSION;
}

/* ------------------------------------------------------------- sinks */

static void write_out(mw_engine *eng)
{
    if (mw__write_all(STDOUT_FILENO, mw__buf_str(&eng->out), eng->out.len) != 0)
        mw__error(&eng->log, "sink", "stdout: %s", strerror(errno));
    if (eng->out.cap > OUT_KEEP)
        mw__buf_free(&eng->out);
    else
        mw__buf_reset(&eng->out);
}

static void stdout_sink(const mw_record *rec, void *ud)
{
    mw_engine *eng = ud;
    if (mw__record_json(rec, &eng->out) != 0)
        mw__error(&eng->log, "sink", "stdout: record dropped (line too large)");
    if (eng->out.len >= OUT_CHUNK)
        write_out(eng);
}

static void emit(const mw_record *rec, void *ud)
{
    mw_engine *eng = ud;
    for (size_t i = 0; i < eng->nsinks; i++)
        eng->sinks[i].fn(rec, eng->sinks[i].ud);
}

/* moonwatch.forwarder.dropped: what the Datadog sink dropped since the
 * last flush, by reason, counted as a check's count would be. */
static void submit_dropped(void *ud, const char *tag, double n)
{
    mw_engine *eng = ud;
    const char *tags[] = {tag};
    mw__agg_metric(eng->agg, MW_COUNT, "moonwatch.forwarder.dropped", n, tags, 1, NULL, NULL, NULL,
                   mw__wall());
}

mw_code mw_engine_flush(mw_engine *eng)
{
    pthread_mutex_lock(&eng->flush_lock);
    if (eng->dd)
        mw__dd_sink_report(eng->dd, submit_dropped, eng);
    size_t n = mw__agg_flush(eng->agg, mw__wall(), emit, eng);
    write_out(eng);
    if (eng->dd)
        mw__dd_sink_flushed(eng->dd);
    pthread_mutex_unlock(&eng->flush_lock);
    atomic_fetch_add(&eng->flushes, 1);
    atomic_fetch_add(&eng->records, n);
    return MW_OK;
}

static void flush_cb(mw__timer *t)
{
    mw_engine *eng = t->ud;
    mw_engine_flush(eng);
    mw__log_repeats_tick(&eng->log); /* windows that ended while nothing was logged */
    /* keep the phase; a loop that was not driven for a while flushes
     * once, not once per missed interval */
    uint64_t next = t->due + eng->flush_ns, now = mw__loop_now(eng->loop);
    if (next <= now)
        next += ((now - next) / eng->flush_ns + 1) * eng->flush_ns;
    mw__timer_start(eng->loop, t, next);
}

mw_code mw__engine_add_named_sink(mw_engine *eng, mw_sink_fn fn, void *ud, const char *name)
{
    if (!fn)
        return MW_EINVAL;
    if (eng->nsinks == MAX_SINKS)
        return MW_ENOMEM;
    eng->sinks[eng->nsinks++] = (sink){fn, ud, name};
    return MW_OK;
}

mw_code mw_engine_add_sink(mw_engine *eng, mw_sink_fn fn, void *ud)
{
    return mw__engine_add_named_sink(eng, fn, ud, "callback");
}

size_t mw__engine_sinks(mw_engine *eng, const char **names, size_t max)
{
    size_t n = 0;
    for (; n < eng->nsinks && n < max; n++)
        names[n] = eng->sinks[n].name;
    return n;
}

int mw__engine_dd_stats(mw_engine *eng, mw__fwd_stats *out)
{
    if (!eng->dd)
        return 0;
    mw__dd_sink_stats(eng->dd, out);
    return 1;
}

/* ------------------------------------------------------------- stats */

/* The size of the first version of a struct that ends with `last`. */
#define V1_SIZE(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* Copies what fits of `full` (whose `size` is set) into `out`, whose
 * `size` the caller set: the fields a caller built against an older
 * header knows, and `size` then says how much was filled. */
static void copy_sized(void *out, const void *full, size_t full_size)
{
    size_t n = *(const size_t *)out < full_size ? *(const size_t *)out : full_size;
    memcpy(out, full, n);
    *(size_t *)out = n;
}

mw_code mw_engine_stats_get(mw_engine *eng, mw_engine_stats *out)
{
    mw_engine_stats full = {.size = sizeof full};
    if (out->size < V1_SIZE(mw_engine_stats, lua_bytes))
        return MW_EINVAL;
    mw__sched_stats(eng->sched, &full);
    full.contexts = mw__agg_contexts(eng->agg);
    full.flushes = atomic_load(&eng->flushes);
    full.records = atomic_load(&eng->records);
    copy_sized(out, &full, sizeof full);
    return MW_OK;
}

static void stats_for_lua(void *ud, mw_engine_stats *out)
{
    mw_engine_stats_get(ud, out);
}

mw_code mw_engine_instance_stats(mw_engine *eng, const char *id, mw_instance_stats *out)
{
    mw_instance_stats full = {.size = sizeof full};
    if (out->size < V1_SIZE(mw_instance_stats, last_error))
        return MW_EINVAL;
    mw_code rc = mw__sched_instance_stats(eng->sched, id, &full);
    if (rc == MW_OK)
        copy_sized(out, &full, sizeof full);
    return rc;
}

char *mw_engine_instances_json(mw_engine *eng)
{
    cJSON *a = mw__sched_describe(eng->sched);
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

mw_code mw_engine_submit(mw_engine *eng, mw_metric_type type, const char *name, double value,
                         const char *const *tags, size_t ntags, const char *host)
{
    return mw__agg_metric(eng->agg, type, name, value, tags, ntags, host, NULL, NULL, mw__wall());
}

mw_series *mw_series_new(mw_engine *eng, mw_metric_type type, const char *name,
                         const char *const *tags, size_t ntags, const char *host)
{
    mw_code rc;
    return (mw_series *)mw__agg_series_new(eng->agg, type, name, tags, ntags, host, &rc);
}

mw_code mw_series_submit(mw_series *s, double value)
{
    return mw__agg_series_add((mw__agg_series *)s, value, mw__wall());
}

void mw_series_free(mw_series *s)
{
    mw__agg_series_free((mw__agg_series *)s);
}

/* ------------------------------------------------------------- lifecycle */

/* The host name of records that name none, and its origin (hostname.h):
 * before any part that copies it is made. */
static mw_code find_host(mw_engine *eng)
{
    const mw_config *c = eng->cfg;
    mw__hostname_opts o = {
        .configured = c->hostname,
        .origin = mw__config_origin(c, "hostname"),
        .ec2_metadata = c->ec2_metadata,
        .log = &eng->log,
    };
    return mw__hostname_resolve(&o, &eng->host, &eng->host_origin);
}

/* The ECS task metadata endpoint mw.ecs reads (the one discovery's task
 * metadata source reads: the ECS agent's variable), or why there is
 * none: the reason a check then reports. */
static mw_code find_ecs_endpoint(mw_engine *eng)
{
    const char *var = NULL;
    char *why = NULL;
    mw_code rc = MW_OK;
    if (eng->cfg->ecs_mode == MW_ECS_OFF)
        eng->ecs_why = mw__strdup("no ECS task metadata endpoint: ECS is off (ecs: off)");
    else if ((rc = mw__ecs_metadata_url(&eng->ecs_url, &var, &why)) == MW_EINVAL)
        /* not the value: checks send this reason, and a URL may hold a password */
        eng->ecs_why = mw__sprintf("no ECS task metadata endpoint: $%s is not an http:// or "
                                   "https:// URL with a host",
                                   var ? var : MW_ECS_METADATA_V4_VAR);
    else if (rc == MW_OK && !eng->ecs_url)
        eng->ecs_why = mw__strdup("no ECS task metadata endpoint: $" MW_ECS_METADATA_V4_VAR
                                  " and $" MW_ECS_METADATA_V3_VAR
                                  " are not set (moonwatch does not run in an ECS task)");
    free(why);
    if (rc == MW_ENOMEM || (!eng->ecs_url && !eng->ecs_why))
        return MW_ENOMEM;
    eng->ecs = (mw__ecs_endpoint){.url = eng->ecs_url, .why = eng->ecs_why};
    return MW_OK;
}

/* mw.state's directory: <state_dir>/checks, made when a check first
 * saves its state there. */
static mw_code make_store(mw_engine *eng)
{
    char *dir = mw__sprintf("%s/checks", mw__config_state_dir(eng->cfg));
    mw_code rc = dir ? mw__store_dir_new(dir, &eng->log, &eng->store) : MW_ENOMEM;
    free(dir);
    return rc;
}

/* The aggregator, the workers, the control loop, the scheduler and the
 * flush timer; on failure `*what` names the part that failed. */
static mw_code make_parts(mw_engine *eng, const char **what)
{
    const mw_config *c = eng->cfg;
    mw__agg_opts ao = {
        .flush_interval = c->flush_interval,
        .context_expiry = c->context_expiry,
        .host = eng->host,
        .hist_aggregates = c->hist_aggregates,
        .hist_percentiles = c->percentiles,
        .n_percentiles = c->npercentiles,
    };
    mw_code rc;
    *what = "the aggregator";
    if (!(eng->agg = mw__agg_new(&ao)))
        return MW_ENOMEM;
    *what = "the workers";
    if ((rc = mw__workers_new(c->workers, c->time_slice, c->watchdog_signal, &eng->workers)) !=
        MW_OK)
        return rc;
    *what = "the control loop";
    if ((rc = mw__loop_new(&eng->loop)) != MW_OK)
        return rc;
    *what = "the AWS client";
    mw__aws_opts aws = {.home = eng->loop, .log = &eng->log, .imds = c->ec2_metadata};
    if ((rc = mw__aws_new(&aws, &eng->aws)) != MW_OK)
        return rc;
    eng->policy = (mw__io_policy){
        .unix_sockets = (const char *const *)c->unix_sockets.v,
        .n_unix_sockets = c->unix_sockets.n,
        .allow_link_local = c->allow_link_local,
        .aws = eng->aws,
    };
    eng->paths = (mw__host_paths){
        .procfs = mw__config_procfs(c),
        .cgroup = mw__config_cgroup_root(c),
    };
    if (strcmp(eng->paths.procfs, "/proc") || strcmp(eng->paths.cgroup, "/sys/fs/cgroup"))
        mw__info(&eng->log, NULL, "checks read the host's /proc at %s and its cgroups at %s",
                 eng->paths.procfs, eng->paths.cgroup);
    *what = "the ECS endpoint";
    if ((rc = find_ecs_endpoint(eng)) != MW_OK)
        return rc;
    *what = "the check state store";
    if ((rc = make_store(eng)) != MW_OK)
        return rc;
    mw__sched_opts so = {
        .policy = &eng->policy,
        .paths = &eng->paths,
        .ecs = &eng->ecs,
        .store = eng->store,
        .workers = eng->workers,
        .agg = eng->agg,
        .log = &eng->log,
        .host = eng->host,
        .stats_fn = stats_for_lua,
        .stats_ud = eng,
        .spread = 1,
    };
    *what = "the scheduler";
    if ((rc = mw__sched_new(&so, &eng->sched)) != MW_OK)
        return rc;
    *what = "the flush timer";
    eng->flush_ns = (uint64_t)(c->flush_interval * 1e9);
    mw__timer_init(&eng->flush_timer, flush_cb, eng);
    return mw__timer_start(eng->loop, &eng->flush_timer, mw__mono_ns() + eng->flush_ns);
}

/* The sinks of `sink`: when it is not set, stdout, or datadog alone when
 * an API key is set; when set, what it lists, and datadog too when a key
 * is set (but for `sink: none`, and for the CLI's one-shot commands,
 * which set sinks_exact). The Prometheus sink is the status listener's,
 * on whenever `listen` is set; listing it asks for that listener, and
 * is refused without one: there would be nowhere to scrape. */
static mw_code make_sinks(mw_engine *eng, char **err)
{
    const mw_config *c = eng->cfg;
    const char *key = mw__dd_api_key(c->api_key);
    unsigned bits = c->sinks_given ? c->sinks : key ? 0 : MW_SINK_STDOUT;
    if ((bits & MW_SINK_PROMETHEUS) && !c->listen) {
        *err = mw__strdup("sink: prometheus needs listen, the address /metrics is served on "
                          "(--listen 127.0.0.1:9464, or listen: in the config file)");
        return MW_EINVAL;
    }
    if (key && (!c->sinks_given || (c->sinks && !c->sinks_exact)))
        bits |= MW_SINK_DATADOG;
    if (bits & MW_SINK_STDOUT)
        mw__engine_add_named_sink(eng, stdout_sink, eng, "stdout");
    if (!(bits & MW_SINK_DATADOG))
        return MW_OK;
    mw__dd_sink_opts o = {
        .api_key = c->api_key,
        .url = c->dd_url,
        .site = c->site,
        .tags = c->dd_tags,
        .host = eng->host,
        .log = &eng->log,
        .queue_max = (size_t)(c->forwarder_queue_mb * 1048576.0),
        .timeout = c->forwarder_timeout,
        .backoff_max = c->forwarder_backoff_max,
    };
    mw_code rc = mw__dd_sink_new(&o, &eng->dd, err);
    if (rc == MW_OK)
        mw__engine_add_named_sink(eng, mw__dd_sink_record, eng->dd, "datadog");
    return rc;
}

static char *new_error(const char *what, mw_code rc, int errnum)
{
    return mw__sprintf("cannot create %s: %s", what,
                       rc == MW_ESYS ? strerror(errnum) : mw_strerror(rc));
}

mw_code mw_engine_new(const mw_config *cfg, mw_engine **out, char **err)
{
    const char *what = "the engine";
    char *why = NULL;
    mw_config *defaults = NULL;
    mw_code rc = MW_ENOMEM;
    mw_engine *eng = calloc(1, sizeof *eng);
    char *sink_err = NULL;
    *out = NULL;
    if (!err)
        err = &sink_err;
    *err = NULL;
    if (!eng || (!cfg && !(cfg = defaults = mw_config_new())) || !(eng->cfg = mw__config_dup(cfg)))
        goto out;
    eng->log = (mw__log){
        .level = eng->cfg->log_level,
        .json = eng->cfg->log_json,
        .fd = 2,
        .fn = eng->cfg->log_fn,
        .ud = eng->cfg->log_ud,
        /* NULL on OOM: then every line is written */
        .repeats = mw__log_repeats_new(MW_LOG_REPEAT_WINDOW, NULL, NULL),
    };
    pthread_mutex_init(&eng->flush_lock, NULL);
    mw__buf_init(&eng->out, 64u << 20);
    if ((rc = find_host(eng)) != MW_OK)
        goto out;
    eng->started_wall = mw__wall();
    if ((rc = make_parts(eng, &what)) != MW_OK)
        goto out;
    what = "the sinks";
    if ((rc = make_sinks(eng, err)) != MW_OK)
        goto out;
    if (eng->cfg->listen && (rc = mw__status_new(eng, &eng->status, &why)) != MW_OK)
        goto out;
    *out = eng;
    eng = NULL;
out:
    if (rc != MW_OK && err && !*err)
        *err = why ? mw__sprintf("cannot start the status listener: %s", why)
                   : new_error(what, rc, errno);
    free(why);
    free(sink_err);
    mw_config_free(defaults);
    mw_engine_free(eng);
    return rc;
}

void mw_engine_free(mw_engine *eng)
{
    if (!eng)
        return;
    if (eng->started)
        mw_engine_stop(eng);
    if (eng->loop)
        mw__timer_stop(eng->loop, &eng->flush_timer);
    mw__watch_free(eng->watch);
    mw__status_free(eng->status); /* its sink is not called any more */
    eng->nsinks = 0;
    mw__discovery_free(eng->disc);
    mw__sched_free(eng->sched);     /* on the workers' loops, no thread running */
    mw__workers_free(eng->workers); /* their loops, then the budget */
    mw__aws_free(eng->aws);         /* no request left; before its home loop */
    mw__store_dir_free(eng->store); /* its stores were saved and freed with the instances */
    mw__dd_sink_free(eng->dd, eng->cfg ? eng->cfg->shutdown_timeout : 0);
    mw__agg_free(eng->agg);
    mw__loop_free(eng->loop);
    for (size_t i = 0; i < eng->nscripts; i++)
        mw__script_unref(eng->scripts[i]);
    free(eng->scripts);
    mw__buf_free(&eng->out);
    if (eng->cfg)
        pthread_mutex_destroy(&eng->flush_lock);
    mw__strlist_free(&eng->checks_dirs);
    mw__strlist_free(&eng->templates_dirs);
    mw__log_repeats_free(&eng->log); /* nothing logs any more: the last "repeated" lines */
    mw_config_free(eng->cfg);
    free(eng->ecs_url);
    free(eng->ecs_why);
    free(eng->host);
    free(eng->host_origin);
    mw__diag_free(&eng->reload_errors);
    free(eng);
}

mw_code mw_engine_add_checks_dir(mw_engine *eng, const char *dir)
{
    if (eng->dirs_ready)
        return MW_ESTATE;
    return mw__strlist_add(&eng->cfg->checks_dirs, dir) == 0 ? MW_OK : MW_ENOMEM;
}

mw_code mw_engine_add_templates_dir(mw_engine *eng, const char *dir)
{
    if (eng->dirs_ready)
        return MW_ESTATE;
    return mw__strlist_add(&eng->cfg->templates_dirs, dir) == 0 ? MW_OK : MW_ENOMEM;
}

/* Given directories first, the bundled ones last. */
static int settle_dirs(mw_engine *eng)
{
    if (eng->dirs_ready)
        return 0;
    for (size_t i = 0; i < eng->cfg->checks_dirs.n; i++)
        if (mw__strlist_add(&eng->checks_dirs, eng->cfg->checks_dirs.v[i]) != 0)
            return -1;
    for (size_t i = 0; i < eng->cfg->templates_dirs.n; i++)
        if (mw__strlist_add(&eng->templates_dirs, eng->cfg->templates_dirs.v[i]) != 0)
            return -1;
    if (!eng->cfg->no_bundled) {
        char *c = mw__sprintf("%s/checks", mw__bundled_dir());
        char *t = mw__sprintf("%s/templates", mw__bundled_dir());
        int rc = c && t && mw__strlist_add(&eng->checks_dirs, c) == 0 &&
                         mw__strlist_add(&eng->templates_dirs, t) == 0
                     ? 0
                     : -1;
        free(c);
        free(t);
        if (rc != 0)
            return -1;
    }
    eng->dirs_ready = 1;
    return 0;
}

const mw__strlist *mw__engine_checks_dirs(mw_engine *eng)
{
    settle_dirs(eng);
    return &eng->checks_dirs;
}

const mw__strlist *mw__engine_templates_dirs(mw_engine *eng)
{
    settle_dirs(eng);
    return &eng->templates_dirs;
}

const mw__log *mw__engine_log(mw_engine *eng)
{
    return &eng->log;
}

mw__sched *mw__engine_sched(mw_engine *eng)
{
    return eng->sched;
}

mw__loop *mw__engine_loop(mw_engine *eng)
{
    return eng->loop;
}

const mw_config *mw__engine_config(mw_engine *eng)
{
    return eng->cfg;
}

mw__discovery *mw__engine_discovery(mw_engine *eng)
{
    return eng->disc;
}

const char *mw__engine_host(mw_engine *eng)
{
    return eng->host;
}

const char *mw__engine_host_origin(mw_engine *eng)
{
    return eng->host_origin;
}

double mw__engine_started(mw_engine *eng)
{
    return eng->started_wall;
}

/* ------------------------------------------------------------- loading */

/* The script of `check` into `*out` (borrowed), loaded once and shared.
 * MW_ENOTFOUND when no checks directory has it; on error `*err` says why. */
static mw_code script_for(mw_engine *eng, const char *check, mw__script **out, char **err)
{
    mw__script *s = NULL;
    char *path = NULL;
    mw_code rc = MW_ENOTFOUND;
    for (size_t i = 0; i < eng->nscripts; i++)
        if (strcmp(eng->scripts[i]->check, check) == 0)
            return *out = eng->scripts[i], MW_OK;
    const mw__strlist *dirs = mw__engine_checks_dirs(eng);
    if (!(path = mw__check_find((const char *const *)dirs->v, dirs->n, check))) {
        *err = mw__sprintf("no check script %s.lua in the checks directories", check);
        goto out;
    }
    if ((rc = mw__script_load(check, path, &s, err)) != MW_OK)
        goto out;
    rc = MW_ENOMEM;
    if (mw__grow(&eng->scripts, &eng->scripts_cap, eng->nscripts + 1, sizeof *eng->scripts) !=
        MW_OK) {
        *err = mw__strdup("out of memory");
        goto out;
    }
    eng->scripts[eng->nscripts++] = *out = s;
    s = NULL;
    rc = MW_OK;
out:
    mw__script_unref(s);
    free(path);
    return rc;
}

/* `id`: the config's mw__instance_id() when the caller has it, else NULL. */
static mw_code schedule(mw_engine *eng, const char *name, const char *source, const cJSON *instance,
                        const cJSON *init_config, int run_now, const char *id, const char **id_out,
                        char **err)
{
    mw__instance_defaults d = {
        .interval = eng->cfg->default_interval,
        .timeout = eng->cfg->check_timeout,
        .mem_cap = (size_t)(eng->cfg->check_memory_limit_mb * 1048576.0),
    };
    mw__instance_params p;
    mw__script *script;
    mw_code rc;
    *err = NULL;
    if ((rc = script_for(eng, name, &script, err)) != MW_OK ||
        (rc = mw__instance_params_parse(instance, init_config, &d, &p, err)) != MW_OK)
        return rc;
    mw__sched_spec spec = {
        .script = script,
        .source = source,
        .instance = instance,
        .init_config = init_config,
        .params = &p,
        .run_now = run_now,
        .id = id,
    };
    rc = mw__sched_add(eng->sched, &spec, id_out, err);
    mw__instance_params_free(&p);
    return rc;
}

mw_code mw__engine_schedule(mw_engine *eng, const char *name, const char *source,
                            const cJSON *instance, const cJSON *init_config, const char **id_out,
                            char **err)
{
    return schedule(eng, name, source, instance, init_config, 0, NULL, id_out, err);
}

mw_code mw__engine_schedule_id(mw_engine *eng, const char *name, const char *source,
                               const cJSON *instance, const cJSON *init_config, const char *id,
                               char **err)
{
    return schedule(eng, name, source, instance, init_config, 0, id, NULL, err);
}

mw__script **mw__engine_scripts(mw_engine *eng, size_t *n)
{
    *n = eng->nscripts;
    return eng->scripts;
}

size_t mw__engine_schedule_template(mw_engine *eng, const mw__template *t, mw__diag *diag)
{
    size_t n = 0, i = 0;
    const cJSON *inst;
    cJSON_ArrayForEach(inst, t->instances)
    {
        char *err = NULL;
        const char *id = NULL;
        mw_code rc = mw__engine_schedule(eng, t->check, t->file, inst, t->init_config, &id, &err);
        if (rc == MW_OK) {
            mw__debug(&eng->log, id, "scheduled from %s", t->file);
            n++;
        } else {
            mw__diag_add(diag, t->file, 0, 0, "instance %zu of check %s: %s", i, t->check,
                         err ? err : mw_strerror(rc));
        }
        free(err);
        i++;
    }
    return n;
}

void mw__engine_load_templates(mw_engine *eng, mw__template_set *set, mw__diag *diag)
{
    const mw__strlist *dirs = mw__engine_templates_dirs(eng);
    for (size_t i = 0; i < dirs->n; i++)
        mw__templates_load_dir(set, dirs->v[i], diag);
    mw__template_set_finish(set);
    const mw__strlist *checks = mw__engine_checks_dirs(eng);
    mw__template_set_mark_checks(set, (const char *const *)checks->v, checks->n);
}

/* How many templates of `set` are for check `name` and have no script;
 * 0 when one before `upto` already was (that one speaks for them all). */
static size_t missing_from(const mw__template_set *set, size_t upto, const char *name)
{
    size_t n = 0;
    for (size_t k = 0; k < set->n; k++) {
        if (!set->v[k].no_check || strcmp(set->v[k].check, name) != 0)
            continue;
        if (k < upto)
            return 0;
        n++;
    }
    return n;
}

/* Says once per check that the templates of a check with no script are
 * loaded and run nothing (each file is in `configcheck`). */
static void log_missing_checks(mw_engine *eng, const mw__template_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const mw__template *t = &set->v[i];
        size_t n = t->no_check ? missing_from(set, i, t->check) : 0;
        if (n > 0)
            mw__info(&eng->log, NULL,
                     "no check named %s: %zu template file%s loaded (%s%s), "
                     "nothing runs",
                     t->check, n, n == 1 ? "" : "s", t->file, n > 1 ? ", ..." : "");
    }
}

/* Instances found by discovery go to the scheduler through these. Those
 * of the first sync have their first runs spread; after it, a container
 * that starts gets its first run at once. */
static mw_code disc_schedule(void *ud, const mw__match_item *it, const char *id, char **err)
{
    mw_engine *eng = ud;
    int now = eng->disc && mw__discovery_synced(eng->disc);
    return schedule(eng, it->check, it->source, it->instance, it->init_config, now, id, NULL, err);
}

static void disc_unschedule(void *ud, const char *id)
{
    mw_engine *eng = ud;
    mw__sched_remove(eng->sched, id);
}

static mw_code disc_config(void *ud, const char *id, cJSON **instance, cJSON **init_config)
{
    mw_engine *eng = ud;
    return mw__sched_instance_config(eng->sched, id, instance, init_config);
}

/* Records discovery reports (Docker events, docker.service_up) are
 * queued for the next flush, and its gauges (docker.containers.running)
 * are gauge samples as a check's, all under the engine's host name by
 * default. */
static mw_code disc_record(void *ud, const mw_record *rec)
{
    mw_engine *eng = ud;
    mw_record r = *rec;
    if (!r.host)
        r.host = eng->host;
    return mw__agg_record(eng->agg, &r);
}

static mw_code start_discovery(mw_engine *eng, mw__template_set *set, int one_shot)
{
    const mw_config *c = eng->cfg;
    mw__discovery_opts o = {
        .loop = eng->loop,
        .log = &eng->log,
        .record = disc_record,
        .record_ud = eng,
        .docker_mode = c->docker_mode,
        .docker_host = c->docker_host,
        .container_include = c->container_include,
        .container_exclude = c->container_exclude,
        .discover_self = c->discover_self,
        .ecs_mode = c->ecs_mode,
        .ecs_agent_url = c->ecs_agent_url,
        .ecs_config_path = c->ecs_config_path,
        .ecs_poll_interval = c->ecs_poll_interval,
        .ecs_collect_resource_tags = c->ecs_collect_tags,
        .ecs_pending_timeout = c->ecs_pending_timeout,
        .procfs_path = eng->paths.procfs,
        .state_dir = mw__config_state_dir(c),
        .host_network_host = c->host_network_host,
        .env_allowlist = (const char *const *)c->env_allowlist.v,
        .n_env_allowlist = c->env_allowlist.n,
        .ops = {.schedule = one_shot ? NULL : disc_schedule,
                .unschedule = one_shot ? NULL : disc_unschedule,
                .ud = eng,
                .config = one_shot ? NULL : disc_config},
        .one_shot = one_shot,
    };
    const char *off = NULL;
    char *err = NULL;
    mw_code rc = mw__discovery_new(&o, set, &eng->disc, &off, &err);
    if (rc != MW_OK) {
        mw__error(&eng->log, "discovery", "%s", err ? err : mw_strerror(rc));
        free(err);
        return rc;
    }
    if (off)
        mw__info(&eng->log, "discovery", "%s", off);
    return MW_OK;
}

static mw_code reload_here(mw_engine *eng, const void *unused);

/* A change in the directories, settled for WATCH_DEBOUNCE_MS: a reload,
 * on the control thread (the watch's loop). */
static void on_dirs_changed(void *ud)
{
    mw_engine *eng = ud;
    mw__info(&eng->log, "reload", "a checks or templates directory changed: reloading");
    reload_here(eng, NULL);
}

/* inotify on every checks and templates directory; without it (no
 * inotify, too many watches) SIGHUP and mw_engine_reload() still work. */
static void start_watch(mw_engine *eng)
{
    mw__strlist all = {0};
    int ok = 1;
    for (size_t i = 0; ok && i < eng->checks_dirs.n; i++)
        ok = mw__strlist_add(&all, eng->checks_dirs.v[i]) == MW_OK;
    for (size_t i = 0; ok && i < eng->templates_dirs.n; i++)
        ok = mw__strlist_add(&all, eng->templates_dirs.v[i]) == MW_OK;
    mw_code rc = ok ? mw__watch_new(eng->loop, &eng->log, (const char *const *)all.v, all.n,
                                    WATCH_DEBOUNCE_MS, on_dirs_changed, eng, &eng->watch)
                    : MW_ENOMEM;
    if (rc != MW_OK)
        mw__warn(&eng->log, "reload", "cannot watch the directories (%s): reload with SIGHUP",
                 rc == MW_ESYS ? strerror(errno) : mw_strerror(rc));
    else
        mw__debug(&eng->log, "reload", "watching %zu directories", mw__watch_count(eng->watch));
    mw__strlist_free(&all);
}

/* Loads the templates, schedules the static ones (unless `one_shot`) and
 * hands the set to discovery. */
static mw_code load(mw_engine *eng, int one_shot)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    if (eng->disc)
        return MW_ESTATE;
    if (settle_dirs(eng) != 0)
        return MW_ENOMEM;
    mw__engine_load_templates(eng, &set, &diag);
    log_missing_checks(eng, &set);
    size_t scheduled = 0;
    for (size_t i = 0; i < set.n && !one_shot; i++) {
        const mw__template *t = &set.v[i];
        if (t->idle && !t->no_check)
            mw__debug(&eng->log, NULL, "%s: %s", t->file, t->idle);
        if (!t->ad_identifiers && !t->idle && !t->no_check) /* static configs run at start */
            scheduled += mw__engine_schedule_template(eng, t, &diag);
    }
    for (size_t i = 0; i < diag.n; i++)
        mw__error(&eng->log, NULL, "%s", diag.items[i]);
    if (!one_shot)
        mw__info(&eng->log, NULL, "%zu instances scheduled from %zu templates (%zu problems)",
                 scheduled, set.n, diag.n);
    mw__diag_free(&diag);
    mw_code rc = start_discovery(eng, &set, one_shot);
    mw__template_set_free(&set);
    if (rc == MW_OK && !one_shot && eng->cfg->watch_dirs == 1)
        start_watch(eng);
    return rc;
}

mw_code mw_engine_load(mw_engine *eng)
{
    return load(eng, 0);
}

/* Templates that schedule nothing whatever the containers, with why. */
static int describe_not_scheduled(const mw__template_set *set, cJSON *out)
{
    for (size_t i = 0; i < set->n; i++) {
        char *why = mw__template_not_scheduled(&set->v[i]);
        cJSON *o = why ? cJSON_CreateObject() : NULL;
        int ok =
            !why || (o && cJSON_AddStringToObject(o, "check", set->v[i].check) &&
                     cJSON_AddStringToObject(o, "source", set->v[i].file) &&
                     cJSON_AddStringToObject(o, "reason", why) && cJSON_AddItemToArray(out, o));
        if (!ok)
            cJSON_Delete(o);
        free(why);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Static configs as configcheck shows them: each instance resolved as is. */
static void describe_static(mw_engine *eng, const mw__template_set *set, cJSON *resolved)
{
    for (size_t i = 0; i < set->n; i++) {
        const mw__template *t = &set->v[i];
        if (t->ad_identifiers || t->idle || t->no_check)
            continue;
        const cJSON *inst;
        cJSON_ArrayForEach(inst, t->instances)
        {
            char *id = mw__instance_id(t->check, t->init_config, inst);
            cJSON *o = cJSON_CreateObject();
            if (id && o) {
                cJSON_AddStringToObject(o, "check", t->check);
                cJSON_AddStringToObject(o, "id", id);
                cJSON_AddNullToObject(o, "service");
                cJSON_AddStringToObject(o, "source", t->file);
                cJSON_AddItemToObject(o, "init_config", cJSON_Duplicate(t->init_config, 1));
                cJSON_AddItemToObject(o, "instance", cJSON_Duplicate(inst, 1));
                cJSON_AddItemToArray(resolved, o);
                o = NULL;
            }
            cJSON_Delete(o);
            free(id);
        }
    }
    MW_UNUSED(eng);
}

cJSON *mw__engine_configcheck(mw_engine *eng, double timeout, char **err)
{
    *err = NULL;
    if (eng->started || eng->disc) {
        *err = mw__strdup("configcheck needs an engine that was not loaded");
        return NULL;
    }
    if (load(eng, 1) != MW_OK) {
        *err = mw__strdup("cannot start discovery (see the log)");
        return NULL;
    }
    uint64_t end = mw__mono_ns() + (uint64_t)(timeout * 1e9);
    while (!mw__discovery_synced(eng->disc) && mw__mono_ns() < end)
        mw__loop_run_once(eng->loop, 50);
    if (!mw__discovery_synced(eng->disc)) {
        const char *why = mw__discovery_error(eng->disc);
        *err = mw__sprintf("discovery did not finish within %g s%s%s", timeout, why ? ": " : "",
                           why ? why : "");
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *resolved = cJSON_AddArrayToObject(out, "resolved");
    cJSON *unresolved = cJSON_AddArrayToObject(out, "unresolved");
    cJSON *not_scheduled = cJSON_AddArrayToObject(out, "not_scheduled");
    if (!out || !resolved || !unresolved || !not_scheduled) {
        cJSON_Delete(out);
        *err = mw__strdup("out of memory");
        return NULL;
    }
    describe_static(eng, mw__discovery_templates(eng->disc), resolved);
    if (mw__discovery_describe(eng->disc, resolved, unresolved) != MW_OK ||
        describe_not_scheduled(mw__discovery_templates(eng->disc), not_scheduled) != 0) {
        cJSON_Delete(out);
        *err = mw__strdup("out of memory");
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------- running */

static void *engine_thread(void *ud)
{
    mw_engine *eng = ud;
    mw__loop_run(eng->loop);
    return NULL;
}

/* The control thread first (discovery hands the workers their instances
 * from there; claimed, the workers queue them until their threads run). */
mw_code mw_engine_start(mw_engine *eng)
{
    if (eng->started)
        return MW_ESTATE;
    mw__workers_claim(eng->workers);
    if (pthread_create(&eng->thread, NULL, engine_thread, eng) != 0) {
        mw__workers_stop(eng->workers);
        return MW_ESYS;
    }
    if (mw__workers_start(eng->workers) != MW_OK) {
        mw__loop_stop(eng->loop);
        pthread_join(eng->thread, NULL);
        mw__workers_stop(eng->workers);
        return MW_ESYS;
    }
    eng->started = 1;
    return MW_OK;
}

/* The control thread first, so nothing is handed to the workers while
 * they stop; then a final flush, and the Datadog sink's queue delivered
 * within shutdown_timeout (what is left then goes at mw_engine_free()). */
mw_code mw_engine_stop(mw_engine *eng)
{
    if (!eng->started)
        return MW_ESTATE;
    mw__loop_stop(eng->loop);
    pthread_join(eng->thread, NULL);
    mw__workers_stop(eng->workers);
    eng->started = 0;
    mw_engine_flush(eng);
    if (eng->dd && mw__dd_sink_drain(eng->dd, eng->cfg->shutdown_timeout) != MW_OK)
        mw__warn(&eng->log, "datadog", "shutdown: the intake did not take everything within %g s",
                 eng->cfg->shutdown_timeout);
    return MW_OK;
}

int mw_engine_fd(mw_engine *eng)
{
    if (!eng->started && mw__workers_attach(eng->workers, eng->loop) != 0)
        return -1;
    return mw__loop_fd(eng->loop);
}

mw_code mw_engine_step(mw_engine *eng, int timeout_ms)
{
    if (eng->started)
        return MW_ESTATE;
    mw_code rc = mw__workers_attach(eng->workers, eng->loop);
    if (rc != MW_OK)
        return rc;
    mw__loop_run_once(eng->loop, timeout_ms);
    return MW_OK;
}

/* ------------------------------------------------------------- reload */

/* Work asked of the control thread by another, and its answer. */
typedef struct loop_job {
    mw_engine *eng;
    mw_code (*fn)(mw_engine *eng, const void *arg);
    const void *arg;
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    int done;
    mw_code rc;
} loop_job;

/* The last reload's problems joined by newlines (caller frees). */
static char *reload_text(const mw_engine *eng)
{
    mw__buf b;
    mw__buf_init(&b, 1u << 20);
    for (size_t i = 0; i < eng->reload_errors.n; i++)
        mw__buf_addf(&b, "%s%s", i ? "\n" : "", eng->reload_errors.items[i]);
    char *s = mw__strdup(mw__buf_str(&b));
    mw__buf_free(&b);
    return s;
}

/* Runs a reload here (the control thread), logs it and keeps its
 * problems for the status; `arg`, when not NULL, is a char ** that gets
 * them as text when there are some (caller frees). */
static mw_code reload_here(mw_engine *eng, const void *arg)
{
    char **err = (char **)(uintptr_t)arg;
    mw__reload_result res;
    mw__diag diag = {0};
    uint64_t t0 = mw__mono_ns();
    mw_code rc = mw__reload_run(eng, &diag, &res);
    if (rc == MW_ESTATE) {
        mw__diag_free(&diag);
        return rc;
    }
    for (size_t i = 0; i < diag.n; i++)
        mw__error(&eng->log, "reload", "%s (its previous version keeps running)", diag.items[i]);
    mw__info(&eng->log, "reload",
             "%zu scripts changed, %zu instances replaced, %zu static added, %zu static "
             "removed, %zu services matched again, %zu problems (%.1f ms)",
             res.scripts, res.replaced, res.added, res.removed, res.services, diag.n,
             (double)(mw__mono_ns() - t0) / 1e6);
    mw__diag_free(&eng->reload_errors);
    eng->reload_errors = diag;
    eng->reloads++;
    eng->reload_wall = mw__wall();
    if (rc == MW_OK && eng->reload_errors.n > 0)
        rc = MW_EPARSE;
    if (rc == MW_EPARSE && err)
        *err = reload_text(eng);
    return rc;
}

static void job_posted(void *ud)
{
    loop_job *j = ud;
    mw_code rc = j->fn(j->eng, j->arg);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->done_cv);
    pthread_mutex_unlock(&j->lock);
}

/* Runs `fn` on the control thread: here when the engine is not started
 * (the caller drives its loop) or when this is that thread (a sink
 * callback of a periodic flush), else posted to it and waited for. */
static mw_code on_control(mw_engine *eng, mw_code (*fn)(mw_engine *, const void *), const void *arg)
{
    if (!eng->started || pthread_equal(pthread_self(), eng->thread))
        return fn(eng, arg); /* not started, or asked from the control thread itself */
    loop_job j = {.eng = eng, .fn = fn, .arg = arg};
    pthread_mutex_init(&j.lock, NULL);
    pthread_cond_init(&j.done_cv, NULL);
    mw_code rc = mw__loop_post(eng->loop, job_posted, &j);
    pthread_mutex_lock(&j.lock);
    while (rc == MW_OK && !j.done)
        pthread_cond_wait(&j.done_cv, &j.lock);
    pthread_mutex_unlock(&j.lock);
    pthread_cond_destroy(&j.done_cv);
    pthread_mutex_destroy(&j.lock);
    return rc == MW_OK ? j.rc : rc;
}

mw_code mw_engine_reload(mw_engine *eng, char **err)
{
    if (err)
        *err = NULL;
    if (!eng->disc)
        return MW_ESTATE;
    return on_control(eng, reload_here, err);
}

cJSON *mw__engine_reload_json(mw_engine *eng)
{
    cJSON *o = cJSON_CreateObject(), *errs = cJSON_AddArrayToObject(o, "errors");
    if (!o || !errs || !cJSON_AddNumberToObject(o, "count", eng->reloads) ||
        (eng->reloads && !cJSON_AddNumberToObject(o, "last", eng->reload_wall))) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < eng->reload_errors.n; i++)
        cJSON_AddItemToArray(errs, cJSON_CreateString(eng->reload_errors.items[i]));
    return o;
}

/* Takes the settings of `arg` (a mw_config) that can change live, and
 * names those that need a restart. */
static mw_code reconfigure_here(mw_engine *eng, const void *arg)
{
    const mw_config *c = arg;
    const char *restart[64];
    unsigned live = 0;
    size_t n = mw__config_diff(eng->cfg, c, &live, restart, MW_ARRAY_LEN(restart));
    if (live & MW_LIVE_LOG_LEVEL) {
        mw__log_set_level(&eng->log, c->log_level);
        eng->cfg->log_level = c->log_level;
    }
    if (live & MW_LIVE_INTERVAL) /* instances scheduled from now on */
        eng->cfg->default_interval = c->default_interval;
    if (live & MW_LIVE_TIMEOUT)
        eng->cfg->check_timeout = c->check_timeout;
    if (live & MW_LIVE_MEMORY)
        eng->cfg->check_memory_limit_mb = c->check_memory_limit_mb;
    for (size_t i = 0; i < n && i < MW_ARRAY_LEN(restart); i++)
        mw__warn(&eng->log, "reload", "config: %s changed; it takes a restart to apply",
                 restart[i]);
    if (live)
        mw__info(&eng->log, "reload", "config: applied%s%s%s%s",
                 live & MW_LIVE_LOG_LEVEL ? " log_level" : "",
                 live & MW_LIVE_INTERVAL ? " default_interval" : "",
                 live & MW_LIVE_TIMEOUT ? " check_timeout" : "",
                 live & MW_LIVE_MEMORY ? " check_memory_limit_mb" : "");
    return MW_OK;
}

mw_code mw__engine_reconfigure(mw_engine *eng, const mw_config *cfg)
{
    return on_control(eng, reconfigure_here, cfg);
}

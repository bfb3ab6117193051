/*
 * scheduler.c - timers, runs, preemption and per-instance stats.
 *
 * Runs execute on the loop's thread. A run is resumed until it finishes
 * or its slice ends; preempted runs wait in a FIFO that an idle callback
 * drains one slice per loop iteration, so due timers (other checks'
 * starts) are served between slices.
 */
#include "core/scheduler.h"

#include "core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000ULL

struct mw__sched {
    mw__sched_opts o;
    pthread_mutex_t lock; /* the id table and every instance's stats */
    mw__instance **buckets;
    size_t nbuckets, count;
    mw__instance *rq_head, *rq_tail; /* preempted runs */
    mw__idle rq_idle;
    mw__instance *current; /* whose Lua code runs right now */
    size_t running;
    uint64_t rng;
    uint64_t runs, errors;
    mw__http *http;
    mw__io_env io; /* lent to every sandbox */
};

/* ------------------------------------------------------------- table */

static size_t bucket_of(const mw__sched *s, const char *id)
{
    return (size_t)(mw__hash(MW_HASH_INIT, id, strlen(id)) & (s->nbuckets - 1));
}

static mw__instance *find(const mw__sched *s, const char *id)
{
    for (mw__instance *in = s->buckets[bucket_of(s, id)]; in; in = in->hnext)
        if (strcmp(in->id, id) == 0)
            return in;
    return NULL;
}

static int grow(mw__sched *s)
{
    size_t nb = s->nbuckets * 2;
    mw__instance **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (mw__instance *in = s->buckets[i], *next; in; in = next) {
            next = in->hnext;
            size_t k = (size_t)(mw__hash(MW_HASH_INIT, in->id, strlen(in->id)) & (nb - 1));
            in->hnext = b[k];
            b[k] = in;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return 0;
}

static void table_insert(mw__sched *s, mw__instance *in)
{
    pthread_mutex_lock(&s->lock);
    if (s->count >= s->nbuckets)
        grow(s); /* on failure chains just get longer */
    size_t k = bucket_of(s, in->id);
    in->hnext = s->buckets[k];
    s->buckets[k] = in;
    s->count++;
    pthread_mutex_unlock(&s->lock);
}

static void table_remove(mw__sched *s, mw__instance *in)
{
    pthread_mutex_lock(&s->lock);
    for (mw__instance **pp = &s->buckets[bucket_of(s, in->id)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == in) {
            *pp = in->hnext;
            s->count--;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------- queue */

static void rq_push(mw__sched *s, mw__instance *in)
{
    in->rq_next = NULL;
    if (s->rq_tail)
        s->rq_tail->rq_next = in;
    else
        s->rq_head = in;
    s->rq_tail = in;
    mw__idle_start(s->o.loop, &s->rq_idle);
}

static mw__instance *rq_pop(mw__sched *s)
{
    mw__instance *in = s->rq_head;
    if (in) {
        s->rq_head = in->rq_next;
        if (!s->rq_head)
            s->rq_tail = NULL;
        in->rq_next = NULL;
    }
    if (!s->rq_head)
        mw__idle_stop(s->o.loop, &s->rq_idle);
    return in;
}

static void rq_unlink(mw__sched *s, mw__instance *in)
{
    mw__instance *prev = NULL;
    for (mw__instance *it = s->rq_head; it; prev = it, it = it->rq_next) {
        if (it != in)
            continue;
        if (prev)
            prev->rq_next = in->rq_next;
        else
            s->rq_head = in->rq_next;
        if (s->rq_tail == in)
            s->rq_tail = prev;
        break;
    }
    if (!s->rq_head)
        mw__idle_stop(s->o.loop, &s->rq_idle);
}

/* ------------------------------------------------------------- instances */

static void wake_cb(void *ud);

static void instance_free(mw__instance *in)
{
    if (!in)
        return;
    mw__sandbox_free(in->sb);
    mw__sender_free(in->sender);
    mw__script_unref(in->script);
    cJSON_Delete(in->instance_cfg);
    cJSON_Delete(in->init_config);
    mw__instance_params_free(&in->params);
    free(in->id);
    free(in->check);
    free(in->source);
    free(in);
}

/* Deep copy of the parsed params (the spec's stay the caller's). */
static int params_copy(mw__instance_params *dst, const mw__instance_params *src)
{
    *dst = *src;
    dst->tags = calloc(src->ntags ? src->ntags : 1, sizeof *dst->tags);
    if (!dst->tags)
        return -1;
    for (dst->ntags = 0; dst->ntags < src->ntags; dst->ntags++)
        if (!(dst->tags[dst->ntags] = mw__strdup(src->tags[dst->ntags])))
            return -1;
    return 0;
}

static mw__sender *make_sender(mw__sched *s, mw__instance *in)
{
    mw__sender_opts so = {
        .check = in->check,
        .check_id = in->id,
        .tags = (const char *const *)in->params.tags,
        .ntags = in->params.ntags,
        .host = s->o.host,
        .max_bytes = in->params.mem_cap,
    };
    return mw__sender_new(s->o.agg, &so);
}

static mw__sandbox *make_sandbox(mw__sched *s, mw__instance *in, char **err)
{
    char *chunk = mw__sprintf("@%s", in->script->path);
    if (!chunk) {
        *err = mw__strdup("out of memory");
        return NULL;
    }
    mw__sandbox_opts so = {
        .check = in->check,
        .check_id = in->id,
        .chunkname = chunk,
        .script = in->script->text,
        .script_len = in->script->len,
        .instance = in->instance_cfg,
        .init_config = in->init_config,
        .mem_cap = in->params.mem_cap,
        .sender = in->sender,
        .log = s->o.log,
        .stats_fn = s->o.stats_fn,
        .stats_ud = s->o.stats_ud,
        .io = &s->io,
        .wake = wake_cb,
        .wake_ud = in,
    };
    mw__sandbox *sb = mw__sandbox_new(&so, err);
    free(chunk);
    return sb;
}

/* Takes ownership of `id`. */
static mw__instance *instance_new(mw__sched *s, const mw__sched_spec *sp, char *id, char **err)
{
    mw__instance *in = calloc(1, sizeof *in);
    if (!in) {
        free(id);
        goto oom;
    }
    in->id = id;
    in->sched = s;
    in->script = mw__script_ref(sp->script);
    in->check = mw__strdup(sp->script->check);
    in->source = mw__strdup(sp->source ? sp->source : "");
    in->instance_cfg = cJSON_Duplicate(sp->instance, 1);
    in->init_config = sp->init_config ? cJSON_Duplicate(sp->init_config, 1) : cJSON_CreateObject();
    if (!in->check || !in->source || !in->instance_cfg || !in->init_config || !in->id ||
        params_copy(&in->params, sp->params) != 0 || !(in->sender = make_sender(s, in)))
        goto oom;
    if (!(in->sb = make_sandbox(s, in, err)))
        goto fail;
    mw__timer_init(&in->timer, NULL, in);
    mw__timer_init(&in->deadline, NULL, in);
    return in;
oom:
    *err = mw__strdup("out of memory");
fail:
    instance_free(in);
    return NULL;
}

/* ------------------------------------------------------------- runs */

static void run_step(mw__sched *s, mw__instance *in);

static const char *status_reason(mw__instance *in, mw__run_status st)
{
    const char *e = mw__sandbox_error(in->sb);
    if (e && e[0])
        return e;
    switch (st) {
    case MW_RUN_TIMEOUT:
        return "run exceeded its time budget";
    case MW_RUN_NOMEM:
        return "run exceeded its memory limit";
    case MW_RUN_ERROR:
        return "run failed";
    default:
        return "";
    }
}

static void record_stats(mw__sched *s, mw__instance *in, int failed, const char *reason,
                         size_t samples, double dur)
{
    pthread_mutex_lock(&s->lock);
    mw_instance_stats *st = &in->stats;
    st->runs++;
    s->runs++;
    if (failed) {
        st->errors++;
        s->errors++;
    }
    st->warnings += mw__sandbox_warnings(in->sb);
    st->samples += samples;
    st->last_duration = dur;
    in->total_duration += dur;
    st->avg_duration = in->total_duration / (double)st->runs;
    snprintf(st->last_error, sizeof st->last_error, "%s", failed ? reason : "");
    pthread_mutex_unlock(&s->lock);
}

static void run_finish(mw__sched *s, mw__instance *in, mw__run_status st)
{
    mw__timer_stop(s->o.loop, &in->deadline);
    in->waiting = 0;
    double dur = (double)(mw__mono_ns() - in->run_start) / 1e9;
    int failed = st != MW_RUN_OK;
    const char *reason = status_reason(in, st);
    size_t samples = mw__sender_pending(in->sender);
    if (failed)
        mw__error(s->o.log, in->id, "run failed: %s", reason);
    mw__str name = {"moonwatch.check_status", 22};
    mw__str msg = {failed ? reason : "", failed ? strlen(reason) : 0};
    mw__sender_service_check(in->sender, name, failed ? MW_STATUS_CRITICAL : MW_STATUS_OK, NULL, 0,
                             msg);
    mw__sender_commit(in->sender, mw__wall());
    record_stats(s, in, failed, reason, samples, dur);
    in->running = 0;
    s->running--;
}

static void run_step(mw__sched *s, mw__instance *in)
{
    s->current = in;
    mw__run_status st = mw__sandbox_resume(in->sb, s->o.slot);
    s->current = NULL;
    if (in->dead) { /* unscheduled from inside its own run */
        mw__sandbox_abort(in->sb);
        s->running--;
        instance_free(in);
        return;
    }
    if (st == MW_RUN_PREEMPTED)
        rq_push(s, in);
    else if (st == MW_RUN_WAITING)
        in->waiting = 1;
    else
        run_finish(s, in, st);
}

/* The I/O a suspended run waits on completed: run it again. */
static void wake_cb(void *ud)
{
    mw__instance *in = ud;
    if (!in->running || !in->waiting)
        return;
    in->waiting = 0;
    rq_push(in->sched, in);
}

/* The run is out of time while not running Lua code (waiting on I/O or
 * preempted): stop it now rather than when it would next run. */
static void deadline_cb(mw__timer *t)
{
    mw__instance *in = t->ud;
    mw__sched *s = in->sched;
    if (!in->running || s->current == in)
        return;
    rq_unlink(s, in);
    run_finish(s, in, mw__sandbox_expire(in->sb));
}

static void run_start(mw__sched *s, mw__instance *in)
{
    in->running = 1;
    s->running++;
    in->run_start = mw__mono_ns();
    pthread_mutex_lock(&s->lock);
    in->stats.last_run = (int64_t)mw__wall();
    pthread_mutex_unlock(&s->lock);
    mw__sandbox_begin(in->sb, (double)in->run_start / 1e9 + in->params.timeout);
    in->deadline.cb = deadline_cb;
    mw__timer_start(s->o.loop, &in->deadline,
                    in->run_start + (uint64_t)(in->params.timeout * 1e9) + 1000000);
    run_step(s, in);
}

static void rq_idle_cb(mw__idle *idle)
{
    mw__sched *s = idle->ud;
    mw__instance *in = rq_pop(s);
    if (in)
        run_step(s, in);
}

static void timer_cb(mw__timer *t)
{
    mw__instance *in = t->ud;
    mw__sched *s = in->sched;
    uint64_t now = mw__loop_now(s->o.loop);
    uint64_t iv = (uint64_t)(in->params.interval * 1e9);
    /* keep the phase: skip the slots that are already past */
    in->planned += iv;
    if (in->planned <= now)
        in->planned += ((now - in->planned) / iv + 1) * iv;
    mw__timer_start(s->o.loop, &in->timer, in->planned);
    if (in->running) {
        mw__warn(s->o.log, in->id, "previous run still going: run skipped");
        return;
    }
    run_start(s, in);
}

/* ------------------------------------------------------------- public */

mw__sched *mw__sched_new(const mw__sched_opts *o)
{
    mw__sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->nbuckets = 64;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    if (!(s->http = mw__http_new(o->loop))) {
        free(s->buckets);
        free(s);
        return NULL;
    }
    s->io = (mw__io_env){.loop = o->loop, .http = s->http, .policy = o->policy};
    pthread_mutex_init(&s->lock, NULL);
    mw__idle_init(&s->rq_idle, rq_idle_cb, s);
    s->rng = mw__mono_ns() ^ (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL;
    return s;
}

static void unschedule(mw__sched *s, mw__instance *in)
{
    mw__timer_stop(s->o.loop, &in->timer);
    mw__timer_stop(s->o.loop, &in->deadline);
    table_remove(s, in);
    if (in->running) {
        rq_unlink(s, in);
        if (s->current == in) {
            in->dead = 1; /* freed by run_step once its Lua code returns */
            return;
        }
        mw__sandbox_abort(in->sb);
        s->running--;
    }
    instance_free(in);
}

void mw__sched_free(mw__sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        while (s->buckets[i])
            unschedule(s, s->buckets[i]);
    mw__idle_stop(s->o.loop, &s->rq_idle);
    mw__http_free(s->http); /* after the sandboxes: their sockets are its */
    pthread_mutex_destroy(&s->lock);
    free(s->buckets);
    free(s);
}

static uint64_t next_rand(mw__sched *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->rng = x;
}

mw_code mw__sched_add(mw__sched *s, const mw__sched_spec *spec, const char **id_out, char **err)
{
    *err = NULL;
    char *id;
    if (spec->id) {
        id = mw__strdup(spec->id);
    } else {
        cJSON *empty = spec->init_config ? NULL : cJSON_CreateObject();
        id = mw__instance_id(spec->script->check, spec->init_config ? spec->init_config : empty,
                             spec->instance);
        cJSON_Delete(empty);
    }
    if (!id) {
        *err = mw__strdup("out of memory");
        return MW_ENOMEM;
    }
    pthread_mutex_lock(&s->lock);
    int dup = find(s, id) != NULL;
    pthread_mutex_unlock(&s->lock);
    if (dup) {
        *err = mw__sprintf("%s: already scheduled", id);
        free(id);
        return MW_ESTATE;
    }
    mw__instance *in = instance_new(s, spec, id, err);
    if (!in)
        return MW_ECHECK;
    in->timer.cb = timer_cb;
    if (s->o.manual)
        goto out;
    uint64_t iv = (uint64_t)(in->params.interval * 1e9);
    uint64_t now = mw__loop_update_time(s->o.loop);
    in->planned = now + (s->o.spread && !spec->run_now ? next_rand(s) % iv : 0);
    if (mw__timer_start(s->o.loop, &in->timer, in->planned) != 0) {
        *err = mw__strdup("out of memory");
        instance_free(in);
        return MW_ENOMEM;
    }
out:
    table_insert(s, in);
    if (id_out)
        *id_out = in->id;
    return MW_OK;
}

mw_code mw__sched_remove(mw__sched *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    mw__instance *in = find(s, id);
    pthread_mutex_unlock(&s->lock);
    if (!in)
        return MW_ENOTFOUND;
    unschedule(s, in);
    return MW_OK;
}

mw_code mw__sched_run_now(mw__sched *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    mw__instance *in = find(s, id);
    pthread_mutex_unlock(&s->lock);
    if (!in)
        return MW_ENOTFOUND;
    if (in->running)
        return MW_ESTATE;
    run_start(s, in);
    return MW_OK;
}

void mw__sched_set_manual(mw__sched *s, int manual)
{
    s->o.manual = manual;
}

size_t mw__sched_running(const mw__sched *s)
{
    return s->running;
}

size_t mw__sched_count(mw__sched *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void mw__sched_stats(mw__sched *s, mw_engine_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->instances += s->count;
    out->runs += s->runs;
    out->errors += s->errors;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (mw__instance *in = s->buckets[i]; in; in = in->hnext)
            out->lua_bytes += mw__sandbox_mem(in->sb);
    pthread_mutex_unlock(&s->lock);
}

mw_code mw__sched_instance_stats(mw__sched *s, const char *id, mw_instance_stats *out)
{
    pthread_mutex_lock(&s->lock);
    mw__instance *in = find(s, id);
    if (in)
        *out = in->stats;
    pthread_mutex_unlock(&s->lock);
    return in ? MW_OK : MW_ENOTFOUND;
}

static cJSON *describe_one(const mw__instance *in)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const mw_instance_stats *st = &in->stats;
    cJSON_AddStringToObject(o, "id", in->id);
    cJSON_AddStringToObject(o, "check", in->check);
    cJSON_AddStringToObject(o, "source", in->source);
    cJSON_AddNumberToObject(o, "interval", in->params.interval);
    cJSON_AddNumberToObject(o, "timeout", in->params.timeout);
    cJSON_AddNumberToObject(o, "runs", (double)st->runs);
    cJSON_AddNumberToObject(o, "errors", (double)st->errors);
    cJSON_AddNumberToObject(o, "warnings", (double)st->warnings);
    cJSON_AddNumberToObject(o, "samples", (double)st->samples);
    cJSON_AddNumberToObject(o, "last_duration", st->last_duration);
    cJSON_AddNumberToObject(o, "avg_duration", st->avg_duration);
    cJSON_AddNumberToObject(o, "last_run", (double)st->last_run);
    cJSON_AddStringToObject(o, "last_error", st->last_error);
    return o;
}

cJSON *mw__sched_describe(mw__sched *s)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nbuckets; i++)
        for (mw__instance *in = s->buckets[i]; in; in = in->hnext)
            cJSON_AddItemToArray(arr, describe_one(in));
    pthread_mutex_unlock(&s->lock);
    return arr;
}

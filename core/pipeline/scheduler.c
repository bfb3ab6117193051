/*
 * scheduler.c - timers, runs, preemption and per-instance stats, one lane
 * per worker.
 *
 * A lane is the scheduler's part of one worker: the id table of the
 * instances pinned to it (under the lane lock, with their stats), the
 * requests queued to the worker, its run queue, its HTTP client. Runs
 * execute on the worker's loop. A run is resumed until it finishes or its
 * slice ends; preempted runs, and runs whose I/O completed, wait in a
 * FIFO that an idle callback drains each loop iteration for up to
 * RQ_BATCH_NS (a preempted run's slice alone uses that up), so due timers
 * (other checks' starts) are served between slices.
 *
 * Requests: an instance on its lane's request list carries a set of
 * requests (arm its timer, run now, drop it), served in list order by
 * the worker when the lane's eventfd wakes it, or by the caller when it
 * owns the worker's loop. A dropped instance has left the id table
 * already, so nothing can ask anything more of it; drop wins over the
 * requests it was queued with. The eventfd is written only when the lane
 * is not signalled yet, so a burst of adds wakes the worker once.
 *
 * States: a lane keeps one Lua state per check script (a pool entry)
 * that every instance of that script on the lane lives in, so the
 * script is compiled once per worker and an instance costs its own
 * tables only. An entry goes with the last instance that uses it; a new
 * script (a reload) gets entries of its own. A state that became
 * unusable takes no new instance: each of its instances is made again in
 * a fresh one when its next run starts, and that is logged.
 *
 * The scheduler owns its lanes, their pool entries and their instances.
 */
#include "core/pipeline/scheduler.h"

#include "core/base/json.h"
#include "core/base/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Time one loop iteration spends on queued runs (see rq_idle_cb()). */
#define RQ_BATCH_NS 2000000ULL
#define NS          1000000000ULL

enum { REQ_ARM = 1u << 0, REQ_RUN = 1u << 1, REQ_DROP = 1u << 2 };

typedef struct mw__sched_lane lane;

/* The Lua state of one check script on one lane; `script` and `share`
 * are set once, the rest under the lane lock. */
typedef struct mw__sched_state {
    mw__script *script; /* a reference */
    mw__lshare *share;  /* a reference */
    size_t users;       /* instances in it */
    size_t bytes;       /* its whole heap, as of the last run or instance made */
    struct mw__sched_state *next;
} pool_entry;

struct mw__sched_lane {
    mw__sched *s; /* NULL until initialised */
    unsigned index;
    mw__loop *loop;
    mw__budget_slot *slot;
    pthread_mutex_t lock; /* the id table, stats, requests */
    mw__instance **buckets;
    size_t nbuckets, count;
    uint64_t runs, errors;
    mw__instance *req_head, *req_tail;
    pool_entry *pool;
    int signalled; /* the eventfd was written and not read yet */
    int req_fd;    /* eventfd waking the worker for requests */
    mw__io req_io;
    /* the worker's own */
    mw__instance *rq_head, *rq_tail; /* preempted runs */
    mw__idle rq_idle;
    mw__instance *current; /* whose Lua code runs right now */
    atomic_size_t running;
    uint64_t rng;
    mw__http *http;
    mw__io_env io; /* lent to every sandbox of the lane */
};

struct mw__sched {
    mw__sched_opts o;
    atomic_int manual;
    atomic_size_t asked; /* runs asked of workers and not served yet */
    int closing;         /* being freed: requests other than drop are ignored */
    unsigned nlanes;
    lane *lanes;
};

static lane *lane_of(mw__sched *s, const char *id)
{
    return &s->lanes[mw__workers_pick(s->o.workers, id)];
}

static int owns(const lane *l)
{
    return mw__workers_owns(l->s->o.workers, l->index);
}

/* ------------------------------------------------------------- table */

/* The table functions run under the lane lock. */

static size_t bucket_of(const lane *l, const char *id)
{
    return (size_t)(mw__hash(MW_HASH_INIT, id, strlen(id)) & (l->nbuckets - 1));
}

static mw__instance *find(const lane *l, const char *id)
{
    for (mw__instance *in = l->buckets[bucket_of(l, id)]; in; in = in->hnext)
        if (strcmp(in->id, id) == 0)
            return in;
    return NULL;
}

static int grow(lane *l)
{
    size_t nb = l->nbuckets * 2;
    mw__instance **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < l->nbuckets; i++) {
        for (mw__instance *in = l->buckets[i], *next; in; in = next) {
            next = in->hnext;
            size_t k = (size_t)(mw__hash(MW_HASH_INIT, in->id, strlen(in->id)) & (nb - 1));
            in->hnext = b[k];
            b[k] = in;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = nb;
    return 0;
}

static void table_insert(lane *l, mw__instance *in)
{
    if (l->count >= l->nbuckets)
        grow(l); /* on failure chains just get longer */
    size_t k = bucket_of(l, in->id);
    in->hnext = l->buckets[k];
    l->buckets[k] = in;
    l->count++;
}

static void table_remove(lane *l, mw__instance *in)
{
    for (mw__instance **pp = &l->buckets[bucket_of(l, in->id)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == in) {
            *pp = in->hnext;
            l->count--;
            break;
        }
    }
}

static mw__instance *lookup(lane *l, const char *id)
{
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    pthread_mutex_unlock(&l->lock);
    return in;
}

/* ------------------------------------------------------------- queue */

static void rq_push(lane *l, mw__instance *in)
{
    in->rq_next = NULL;
    if (l->rq_tail)
        l->rq_tail->rq_next = in;
    else
        l->rq_head = in;
    l->rq_tail = in;
    mw__idle_start(l->loop, &l->rq_idle);
}

static mw__instance *rq_pop(lane *l)
{
    mw__instance *in = l->rq_head;
    if (in) {
        l->rq_head = in->rq_next;
        if (!l->rq_head)
            l->rq_tail = NULL;
        in->rq_next = NULL;
    }
    if (!l->rq_head)
        mw__idle_stop(l->loop, &l->rq_idle);
    return in;
}

static void rq_unlink(lane *l, mw__instance *in)
{
    mw__instance *prev = NULL;
    for (mw__instance *it = l->rq_head; it; prev = it, it = it->rq_next) {
        if (it != in)
            continue;
        if (prev)
            prev->rq_next = in->rq_next;
        else
            l->rq_head = in->rq_next;
        if (l->rq_tail == in)
            l->rq_tail = prev;
        break;
    }
    if (!l->rq_head)
        mw__idle_stop(l->loop, &l->rq_idle);
}

/* ------------------------------------------------------------- states */

static pool_entry *pool_find(lane *l, const mw__script *script)
{
    for (pool_entry *e = l->pool; e; e = e->next)
        if (e->script == script && !mw__lshare_broken(e->share))
            return e;
    return NULL;
}

/* The lane's state for `script`, made (the script compiled) when it has
 * none that works, with one more user. NULL with `*err` on failure. */
static pool_entry *pool_get(lane *l, mw__script *script, char **err)
{
    pthread_mutex_lock(&l->lock);
    pool_entry *e = pool_find(l, script);
    if (!e && (e = calloc(1, sizeof *e))) {
        char *chunk = mw__sprintf("@%s", script->path);
        e->share = chunk ? mw__lshare_new(chunk, script->text, script->len, err) : NULL;
        free(chunk);
        if (!e->share) {
            free(e);
            e = NULL;
        } else {
            e->script = mw__script_ref(script);
            e->next = l->pool;
            l->pool = e;
        }
    }
    if (e)
        e->users++;
    pthread_mutex_unlock(&l->lock);
    if (!e && !*err)
        *err = mw__strdup("out of memory");
    return e;
}

/* Notes the heap of `e` for the lane's stats (read outside the lane
 * lock: a run holding the state's lock may ask for stats). */
static void pool_note(lane *l, pool_entry *e)
{
    size_t bytes = mw__lshare_mem(e->share);
    pthread_mutex_lock(&l->lock);
    e->bytes = bytes;
    pthread_mutex_unlock(&l->lock);
}

/* An instance left `e`: the last one takes it with it. */
static void pool_put(lane *l, pool_entry *e)
{
    int gone = 0;
    if (!e)
        return;
    pthread_mutex_lock(&l->lock);
    if (--e->users == 0) {
        gone = 1;
        pool_entry **pp = &l->pool;
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
    }
    pthread_mutex_unlock(&l->lock);
    if (gone) {
        mw__lshare_unref(e->share);
        mw__script_unref(e->script);
        free(e);
    }
}

/* ------------------------------------------------------------- instances */

static void wake_cb(void *ud);

static void instance_free(mw__instance *in)
{
    if (!in)
        return;
    mw__sandbox_free(in->sb);
    pool_put(in->lane, in->state);
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

/* The parsed params but their tags (the spec's stay the caller's): the
 * instance's sender has its own packed copy of those, and nothing else
 * reads them once it is made. */
static void params_copy(mw__instance_params *dst, const mw__instance_params *src)
{
    *dst = *src;
    dst->tags = NULL;
    dst->ntags = 0;
}

static mw__sender *make_sender(const mw__sched *s, mw__instance *in, const mw__instance_params *p)
{
    mw__sender_opts so = {
        .check = in->check,
        .check_id = in->id,
        .tags = (const char *const *)p->tags,
        .ntags = p->ntags,
        .host = s->o.host,
        .max_bytes = in->params.mem_cap,
    };
    return mw__sender_new(s->o.agg, &so);
}

/* The instance's sandbox, in the lane's state for its script (of which
 * it becomes a user: in->state). */
static mw__sandbox *make_sandbox(lane *l, mw__instance *in, char **err)
{
    const mw__sched *s = l->s;
    pool_entry *e = pool_get(l, in->script, err);
    if (!e)
        return NULL;
    mw__sandbox_opts so = {
        .check = in->check,
        .check_id = in->id,
        .share = e->share,
        .instance = in->instance_cfg,
        .init_config = in->init_config,
        .mem_cap = in->params.mem_cap,
        .out = mw__sender_out(in->sender),
        .log = s->o.log,
        .stats_fn = s->o.stats_fn,
        .stats_ud = s->o.stats_ud,
        .io = &l->io,
        .paths = s->o.paths,
        .ecs = s->o.ecs,
        .store = s->o.store,
        .wake = wake_cb,
        .wake_ud = in,
    };
    mw__sandbox *sb = mw__sandbox_new(&so, err);
    if (!sb)
        pool_put(l, e);
    else
        in->state = e;
    return sb;
}

/* The state the instance lives in failed (crash-only): it is made again
 * in a fresh state; its Lua values start over, as after a restart. On
 * failure it stays where it is and its runs fail, reported as such. */
static void remake(lane *l, mw__instance *in)
{
    char *err = NULL;
    pool_entry *old_state = in->state;
    mw__sandbox *old = in->sb;
    in->state = NULL;
    mw__sandbox *sb = make_sandbox(l, in, &err);
    if (!sb) {
        in->state = old_state;
        mw__error(l->s->o.log, in->id, "its Lua state failed and a fresh one cannot be made: %s",
                  err ? err : "out of memory");
        free(err);
        return;
    }
    mw__sandbox_free(old);
    pool_put(l, old_state);
    in->sb = sb;
    mw__error(l->s->o.log, in->id, "its Lua state failed: moved to a fresh state");
}

/* Made on the caller's thread; nothing of it runs before its worker has
 * it. Takes ownership of `id`. */
static mw__instance *instance_new(lane *l, const mw__sched_spec *sp, char *id, char **err)
{
    mw__instance *in = calloc(1, sizeof *in), *res = NULL;
    if (!in) {
        free(id);
        goto out;
    }
    in->id = id;
    in->stats.size = sizeof in->stats;
    in->lane = l;
    in->script = mw__script_ref(sp->script);
    in->check = mw__strdup(sp->script->check);
    in->source = mw__strdup(sp->source ? sp->source : "");
    in->instance_cfg = cJSON_Duplicate(sp->instance, 1);
    in->init_config = sp->init_config ? cJSON_Duplicate(sp->init_config, 1) : cJSON_CreateObject();
    params_copy(&in->params, sp->params);
    if (!in->check || !in->source || !in->instance_cfg || !in->init_config || !in->id ||
        !(in->sender = make_sender(l->s, in, sp->params)) || !(in->sb = make_sandbox(l, in, err)))
        goto out;
    mw__instance_params_check_default(&in->params, mw__sandbox_default_interval(in->sb));
    in->lua_bytes = mw__sandbox_mem(in->sb);
    pool_note(l, in->state);
    in->manual = atomic_load(&l->s->manual);
    in->run_now = sp->run_now;
    mw__timer_init(&in->timer, NULL, in);
    mw__timer_init(&in->deadline, NULL, in);
    res = in;
    in = NULL;
out:
    if (!res && !*err)
        *err = mw__strdup("out of memory");
    instance_free(in);
    return res;
}

/* ------------------------------------------------------------- runs */

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

static void record_stats(lane *l, mw__instance *in, int failed, const char *reason, size_t samples,
                         double dur)
{
    int self = mw__workers_self(l->s->o.workers);
    size_t mem = mw__sandbox_mem(in->sb);
    pool_note(l, in->state);
    pthread_mutex_lock(&l->lock);
    mw_instance_stats *st = &in->stats;
    st->runs++;
    l->runs++;
    if (failed) {
        st->errors++;
        l->errors++;
    }
    st->warnings += mw__sandbox_warnings(in->sb);
    st->samples += samples;
    st->last_duration = dur;
    in->total_duration += dur;
    st->avg_duration = in->total_duration / (double)st->runs;
    snprintf(st->last_error, sizeof st->last_error, "%s", failed ? reason : "");
    in->lua_bytes = mem;
    if (self >= 0 && self < 64)
        in->ran_on |= 1ULL << self;
    pthread_mutex_unlock(&l->lock);
}

static void run_finish(lane *l, mw__instance *in, mw__run_status st)
{
    const mw__log *log = l->s->o.log;
    mw__timer_stop(l->loop, &in->deadline);
    in->waiting = 0;
    double dur = (double)(mw__mono_ns() - in->run_start) / 1e9;
    int failed = st != MW_RUN_OK;
    const char *reason = status_reason(in, st);
    size_t samples = mw__sender_pending(in->sender);
    if (failed)
        mw__error(log, in->id, "run failed: %s", reason);
    mw__str name = {"moonwatch.check_status", 22};
    mw__str msg = {failed ? reason : "", failed ? strlen(reason) : 0};
    mw__sender_service_check(in->sender, name, failed ? MW_STATUS_CRITICAL : MW_STATUS_OK, NULL, 0,
                             msg);
    mw__sender_commit(in->sender, mw__wall());
    record_stats(l, in, failed, reason, samples, dur);
    in->running = 0;
    atomic_fetch_sub(&l->running, 1);
}

static void run_step(lane *l, mw__instance *in)
{
    l->current = in;
    mw__run_status st = mw__sandbox_resume(in->sb, l->slot);
    l->current = NULL;
    if (in->dead) { /* unscheduled from inside its own run */
        mw__sandbox_abort(in->sb);
        atomic_fetch_sub(&l->running, 1);
        instance_free(in);
        return;
    }
    if (st == MW_RUN_PREEMPTED)
        rq_push(l, in);
    else if (st == MW_RUN_WAITING)
        in->waiting = 1;
    else
        run_finish(l, in, st);
}

/* The I/O a suspended run waits on completed: run it again. */
static void wake_cb(void *ud)
{
    mw__instance *in = ud;
    if (!in->running || !in->waiting)
        return;
    in->waiting = 0;
    rq_push(in->lane, in);
}

/* The run is out of time while not running Lua code (waiting on I/O or
 * preempted): stop it now rather than when it would next run. */
static void deadline_cb(mw__timer *t)
{
    mw__instance *in = t->ud;
    lane *l = in->lane;
    if (!in->running || l->current == in)
        return;
    rq_unlink(l, in);
    run_finish(l, in, mw__sandbox_expire(in->sb));
}

static void run_start(lane *l, mw__instance *in)
{
    in->running = 1;
    atomic_fetch_add(&l->running, 1);
    in->run_start = mw__mono_ns();
    pthread_mutex_lock(&l->lock);
    in->stats.last_run = (int64_t)mw__wall();
    pthread_mutex_unlock(&l->lock);
    if (mw__sandbox_broken(in->sb))
        remake(l, in);
    mw__sandbox_begin(in->sb, (double)in->run_start / 1e9 + in->params.timeout);
    in->deadline.cb = deadline_cb;
    mw__timer_start(l->loop, &in->deadline,
                    in->run_start + (uint64_t)(in->params.timeout * 1e9) + 1000000);
    run_step(l, in);
}

/* Runs queued runs until the one that was last when this loop turn
 * began, or for RQ_BATCH_NS: runs woken by their I/O are short, and one
 * per loop turn would leave thousands of answered requests waiting
 * behind as many loop turns; a preempted run uses up the batch alone, so
 * due timers still come between slices. */
static void rq_idle_cb(mw__idle *idle)
{
    lane *l = idle->ud;
    mw__instance *last = l->rq_tail;
    uint64_t end = mw__mono_ns() + RQ_BATCH_NS;
    for (;;) {
        mw__instance *in = rq_pop(l);
        if (!in)
            return;
        int was_last = in == last;
        run_step(l, in);
        if (was_last || mw__mono_ns() >= end)
            return;
    }
}

static void timer_cb(mw__timer *t)
{
    mw__instance *in = t->ud;
    lane *l = in->lane;
    uint64_t now = mw__loop_now(l->loop);
    uint64_t iv = (uint64_t)(in->params.interval * 1e9);
    /* keep the phase: skip the slots that are already past */
    in->planned += iv;
    if (in->planned <= now)
        in->planned += ((now - in->planned) / iv + 1) * iv;
    mw__timer_start(l->loop, &in->timer, in->planned);
    if (in->running) {
        mw__warn(l->s->o.log, in->id, "previous run still going: run skipped");
        return;
    }
    run_start(l, in);
}

/* ------------------------------------------------------------- on the worker */

static uint64_t next_rand(lane *l)
{
    uint64_t x = l->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return l->rng = x;
}

/* Arms the first run. Returns 0, or -1 on OOM. */
static int arm(lane *l, mw__instance *in)
{
    if (in->manual)
        return 0;
    uint64_t iv = (uint64_t)(in->params.interval * 1e9);
    uint64_t now = mw__loop_update_time(l->loop);
    in->planned = now + (l->s->o.spread && !in->run_now ? next_rand(l) % iv : 0);
    return mw__timer_start(l->loop, &in->timer, in->planned);
}

/* Stops whatever of `in` is going and frees it; it has left the table. */
static void unschedule(lane *l, mw__instance *in)
{
    mw__timer_stop(l->loop, &in->timer);
    mw__timer_stop(l->loop, &in->deadline);
    if (in->running) {
        rq_unlink(l, in);
        if (l->current == in) {
            in->dead = 1; /* freed by run_step once its Lua code returns */
            return;
        }
        mw__sandbox_abort(in->sb);
        atomic_fetch_sub(&l->running, 1);
    }
    instance_free(in);
}

/* A run asked for leaves `asked` only once it counts in `running` (or
 * was not started), so mw__sched_running() never misses it. */
static void serve_one(lane *l, mw__instance *in, unsigned what)
{
    mw__sched *s = l->s;
    if (what & REQ_DROP) {
        unschedule(l, in);
    } else if (s->closing) {
        /* nothing more starts */
    } else if ((what & REQ_ARM) && arm(l, in) != 0) {
        mw__error(s->o.log, in->id, "out of memory: unscheduled");
        pthread_mutex_lock(&l->lock);
        table_remove(l, in);
        pthread_mutex_unlock(&l->lock);
        unschedule(l, in);
    } else if ((what & REQ_RUN) && !in->running) {
        run_start(l, in);
    }
    if (what & REQ_RUN)
        atomic_fetch_sub(&s->asked, 1);
}

static mw__instance *next_request(lane *l, unsigned *what)
{
    pthread_mutex_lock(&l->lock);
    mw__instance *in = l->req_head;
    if (in) {
        l->req_head = in->req_next;
        if (!l->req_head)
            l->req_tail = NULL;
        *what = in->requests;
        in->requests = 0;
        in->queued = 0;
        in->req_next = NULL;
    }
    pthread_mutex_unlock(&l->lock);
    return in;
}

/* Serves the lane's requests in order; on the worker (or its owner). */
static void serve(lane *l)
{
    unsigned what = 0;
    mw__instance *in;
    while ((in = next_request(l, &what)))
        serve_one(l, in, what);
}

static void req_cb(mw__io *io, uint32_t events)
{
    MW_UNUSED(events);
    lane *l = io->ud;
    uint64_t v;
    ssize_t r = read(l->req_fd, &v, sizeof v);
    MW_UNUSED(r);
    pthread_mutex_lock(&l->lock);
    l->signalled = 0;
    pthread_mutex_unlock(&l->lock);
    serve(l);
}

/* ------------------------------------------------------------- requests */

/* Under the lane lock: adds `what` to the requests of `in`. Returns 1
 * when the caller must wake the worker (wake_worker, after unlocking). */
static int request(lane *l, mw__instance *in, unsigned what)
{
    in->requests |= what;
    if (!in->queued) {
        in->queued = 1;
        in->req_next = NULL;
        if (l->req_tail)
            l->req_tail->req_next = in;
        else
            l->req_head = in;
        l->req_tail = in;
    }
    if (l->signalled)
        return 0;
    l->signalled = 1;
    return 1;
}

static void wake_worker(lane *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->req_fd, &one, sizeof one);
    MW_UNUSED(w);
}

/* After the owner acted on the lane's loop itself: a hosted worker loop
 * is stepped when its descriptor is readable, which only an iteration of
 * it re-arms for new timers: wake it for one. */
static void nudge(lane *l)
{
    pthread_mutex_lock(&l->lock);
    int wake = !l->signalled;
    l->signalled = 1;
    pthread_mutex_unlock(&l->lock);
    if (wake)
        wake_worker(l);
}

/* Hands what was just requested to the worker: at once when the caller
 * owns its loop. */
static void hand_over(lane *l, int wake)
{
    if (wake)
        wake_worker(l);
    if (owns(l))
        serve(l);
}

/* ------------------------------------------------------------- lanes */

static mw_code lane_init(mw__sched *s, unsigned i)
{
    lane *l = &s->lanes[i];
    l->s = s;
    l->index = i;
    l->loop = mw__workers_loop(s->o.workers, i);
    l->slot = mw__workers_slot(s->o.workers, i);
    l->req_fd = -1;
    l->req_io.fd = -1;
    pthread_mutex_init(&l->lock, NULL);
    mw__idle_init(&l->rq_idle, rq_idle_cb, l);
    atomic_init(&l->running, 0);
    l->rng = mw__mono_ns() ^ (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ULL;
    l->nbuckets = 64;
    if (!(l->buckets = calloc(l->nbuckets, sizeof *l->buckets)))
        return MW_ENOMEM;
    mw_code rc = mw__http_new(l->loop, &l->http);
    if (rc != MW_OK)
        return rc;
    l->io = (mw__io_env){.loop = l->loop, .http = l->http, .policy = s->o.policy};
    if ((l->req_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return MW_ESYS;
    return mw__io_start(l->loop, &l->req_io, l->req_fd, EPOLLIN, req_cb, l);
}

static void lane_free(lane *l)
{
    if (!l->s)
        return;
    serve(l); /* drops first: their instances are only on the list */
    for (size_t i = 0; l->buckets && i < l->nbuckets; i++) {
        while (l->buckets[i]) {
            mw__instance *in = l->buckets[i];
            table_remove(l, in);
            unschedule(l, in);
        }
    }
    mw__idle_stop(l->loop, &l->rq_idle);
    mw__io_stop(l->loop, &l->req_io);
    if (l->req_fd >= 0)
        close(l->req_fd);
    mw__http_free(l->http); /* after the sandboxes: their sockets are its */
    while (l->pool) {       /* each went with its last instance; none should be left */
        pool_entry *e = l->pool;
        l->pool = e->next;
        mw__lshare_unref(e->share);
        mw__script_unref(e->script);
        free(e);
    }
    pthread_mutex_destroy(&l->lock);
    free(l->buckets);
}

/* ------------------------------------------------------------- public */

mw_code mw__sched_new(const mw__sched_opts *o, mw__sched **out)
{
    mw_code rc = MW_ENOMEM;
    mw__sched *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        goto out;
    s->o = *o;
    atomic_init(&s->manual, o->manual);
    atomic_init(&s->asked, 0);
    s->nlanes = mw__workers_count(o->workers);
    if (!(s->lanes = calloc(s->nlanes, sizeof *s->lanes)))
        goto out;
    for (unsigned i = 0; i < s->nlanes; i++)
        if ((rc = lane_init(s, i)) != MW_OK)
            goto out;
    *out = s;
    s = NULL;
out:
    mw__sched_free(s);
    return rc;
}

void mw__sched_free(mw__sched *s)
{
    if (!s)
        return;
    s->closing = 1;
    for (unsigned i = 0; s->lanes && i < s->nlanes; i++)
        lane_free(&s->lanes[i]);
    free(s->lanes);
    free(s);
}

static char *spec_id(const mw__sched_spec *spec)
{
    if (spec->id)
        return mw__strdup(spec->id);
    cJSON *empty = spec->init_config ? NULL : cJSON_CreateObject();
    char *id = mw__instance_id(spec->script->check, spec->init_config ? spec->init_config : empty,
                               spec->instance);
    cJSON_Delete(empty);
    return id;
}

/* Enters `in` in its lane and arms it (or asks its worker to). Frees it
 * on failure. */
static mw_code place(lane *l, mw__instance *in, char **err)
{
    int owner = owns(l);
    if (owner)
        serve(l); /* what was asked before goes first */
    pthread_mutex_lock(&l->lock);
    if (find(l, in->id)) { /* added meanwhile by another thread */
        pthread_mutex_unlock(&l->lock);
        *err = mw__sprintf("%s: already scheduled", in->id);
        instance_free(in);
        return MW_ESTATE;
    }
    table_insert(l, in);
    int wake = owner ? 0 : request(l, in, REQ_ARM);
    pthread_mutex_unlock(&l->lock);
    if (!owner) {
        if (wake)
            wake_worker(l);
        return MW_OK;
    }
    if (arm(l, in) != 0) {
        pthread_mutex_lock(&l->lock);
        table_remove(l, in);
        pthread_mutex_unlock(&l->lock);
        *err = mw__strdup("out of memory");
        instance_free(in);
        return MW_ENOMEM;
    }
    nudge(l);
    return MW_OK;
}

mw_code mw__sched_add(mw__sched *s, const mw__sched_spec *spec, const char **id_out, char **err)
{
    *err = NULL;
    char *id = spec_id(spec);
    if (!id) {
        *err = mw__strdup("out of memory");
        return MW_ENOMEM;
    }
    lane *l = lane_of(s, id);
    if (lookup(l, id)) {
        *err = mw__sprintf("%s: already scheduled", id);
        free(id);
        return MW_ESTATE;
    }
    mw__instance *in = instance_new(l, spec, id, err);
    if (!in)
        return MW_ECHECK;
    in->timer.cb = timer_cb;
    const char *kept = in->id;
    mw_code rc = place(l, in, err);
    if (rc == MW_OK && id_out)
        *id_out = kept;
    return rc;
}

mw_code mw__sched_remove(mw__sched *s, const char *id)
{
    lane *l = lane_of(s, id);
    int wake = 0;
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    if (in) {
        table_remove(l, in);
        wake = request(l, in, REQ_DROP);
    }
    pthread_mutex_unlock(&l->lock);
    if (!in)
        return MW_ENOTFOUND;
    hand_over(l, wake);
    return MW_OK;
}

/* {id, source, instance, init_config} of `in`; NULL on OOM. */
static cJSON *user_of(const mw__instance *in)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "id", in->id) ||
        !cJSON_AddStringToObject(o, "source", in->source) ||
        !cJSON_AddItemToObject(o, "instance", cJSON_Duplicate(in->instance_cfg, 1)) ||
        !cJSON_AddItemToObject(o, "init_config", cJSON_Duplicate(in->init_config, 1))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

mw_code mw__sched_instance_config(mw__sched *s, const char *id, cJSON **instance,
                                  cJSON **init_config)
{
    lane *l = lane_of(s, id);
    *instance = *init_config = NULL;
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    if (in) {
        *instance = cJSON_Duplicate(in->instance_cfg, 1);
        *init_config = cJSON_Duplicate(in->init_config, 1);
    }
    pthread_mutex_unlock(&l->lock);
    if (!in)
        return MW_ENOTFOUND;
    if (*instance && *init_config)
        return MW_OK;
    cJSON_Delete(*instance);
    cJSON_Delete(*init_config);
    *instance = *init_config = NULL;
    return MW_ENOMEM;
}

/* Appends lane `l`'s instances of `script` to `out`; -1 on OOM. */
static int lane_users(lane *l, const mw__script *script, cJSON *out)
{
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->nbuckets && rc == 0; i++) {
        for (mw__instance *in = l->buckets[i]; in && rc == 0; in = in->hnext) {
            cJSON *o = in->script == script ? user_of(in) : NULL;
            if (in->script == script && (!o || !cJSON_AddItemToArray(out, o)))
                rc = -1;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

mw_code mw__sched_script_users(mw__sched *s, const mw__script *script, cJSON **out)
{
    cJSON *a = cJSON_CreateArray();
    for (unsigned i = 0; a && i < s->nlanes; i++) {
        if (lane_users(&s->lanes[i], script, a) != 0) {
            cJSON_Delete(a);
            a = NULL;
        }
    }
    *out = a;
    return a ? MW_OK : MW_ENOMEM;
}

mw_code mw__sched_run_now(mw__sched *s, const char *id)
{
    lane *l = lane_of(s, id);
    if (owns(l)) {
        serve(l);
        mw__instance *in = lookup(l, id);
        if (!in)
            return MW_ENOTFOUND;
        if (in->running)
            return MW_ESTATE;
        run_start(l, in);
        nudge(l);
        return MW_OK;
    }
    int wake = 0;
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    if (in) {
        if (!(in->requests & REQ_RUN))
            atomic_fetch_add(&s->asked, 1);
        wake = request(l, in, REQ_RUN);
    }
    pthread_mutex_unlock(&l->lock);
    if (!in)
        return MW_ENOTFOUND;
    if (wake)
        wake_worker(l);
    return MW_OK;
}

void mw__sched_set_manual(mw__sched *s, int manual)
{
    atomic_store(&s->manual, manual);
}

size_t mw__sched_running(const mw__sched *s)
{
    size_t n = atomic_load(&s->asked);
    for (unsigned i = 0; i < s->nlanes; i++)
        n += atomic_load(&s->lanes[i].running);
    return n;
}

size_t mw__sched_count(mw__sched *s)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->nlanes; i++) {
        pthread_mutex_lock(&s->lanes[i].lock);
        n += s->lanes[i].count;
        pthread_mutex_unlock(&s->lanes[i].lock);
    }
    return n;
}

/* ------------------------------------------------------------- stats */

static void lane_stats(lane *l, mw_engine_stats *out)
{
    pthread_mutex_lock(&l->lock);
    out->instances += l->count;
    out->runs += l->runs;
    out->errors += l->errors;
    for (pool_entry *e = l->pool; e; e = e->next)
        out->lua_bytes += e->bytes; /* the states, shared parts included */
    pthread_mutex_unlock(&l->lock);
}

void mw__sched_stats(mw__sched *s, mw_engine_stats *out)
{
    for (unsigned i = 0; i < s->nlanes; i++)
        lane_stats(&s->lanes[i], out);
}

void mw__sched_worker_stats(mw__sched *s, unsigned i, mw_engine_stats *out)
{
    if (i < s->nlanes)
        lane_stats(&s->lanes[i], out);
}

mw_code mw__sched_instance_stats(mw__sched *s, const char *id, mw_instance_stats *out)
{
    lane *l = lane_of(s, id);
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    if (in)
        *out = in->stats;
    pthread_mutex_unlock(&l->lock);
    return in ? MW_OK : MW_ENOTFOUND;
}

mw_code mw__sched_instance_worker(mw__sched *s, const char *id, unsigned *worker, uint64_t *ran_on)
{
    lane *l = lane_of(s, id);
    pthread_mutex_lock(&l->lock);
    mw__instance *in = find(l, id);
    if (in) {
        *worker = l->index;
        *ran_on = in->ran_on;
    }
    pthread_mutex_unlock(&l->lock);
    return in ? MW_OK : MW_ENOTFOUND;
}

static cJSON *describe_one(const mw__instance *in, unsigned worker)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const mw_instance_stats *st = &in->stats;
    cJSON_AddStringToObject(o, "id", in->id);
    cJSON_AddStringToObject(o, "check", in->check);
    cJSON_AddStringToObject(o, "source", in->source);
    cJSON_AddNumberToObject(o, "worker", worker);
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
    for (unsigned k = 0; k < s->nlanes; k++) {
        lane *l = &s->lanes[k];
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < l->nbuckets; i++)
            for (mw__instance *in = l->buckets[i]; in; in = in->hnext)
                cJSON_AddItemToArray(arr, describe_one(in, k));
        pthread_mutex_unlock(&l->lock);
    }
    return arr;
}

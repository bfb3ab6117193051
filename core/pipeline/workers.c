/*
 * workers.c - worker loops and threads, their budget slots, pinning by
 * hash, and stepping the workers from a host loop.
 *
 * Hosted stepping nests epoll: a worker loop's descriptor is its epoll
 * descriptor, readable when the loop has work (mw__loop_fd()), so the
 * host loop watches it like any socket and runs one non-blocking
 * iteration of that worker when it fires.
 *
 * The workers own their loops and the budget; the thread that owns the
 * engine owns the workers.
 */
#include "core/pipeline/workers.h"

#include "core/base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_WORKERS 256

typedef struct worker {
    mw__workers *w;
    unsigned index;
    mw__loop *loop;
    pthread_t thread;
    int running; /* its thread was started */
    mw__io host_io;
    int watched; /* host_io is on the host loop */
} worker;

struct mw__workers {
    mw__budget *budget;
    mw__loop *host; /* attached to (kept while claimed, to re-attach) */
    atomic_int claimed;
    unsigned n;
    worker v[];
};

/* Which worker, of which set, the calling thread is. */
static _Thread_local const mw__workers *tl_workers;
static _Thread_local int tl_index = -1;

static unsigned default_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

mw_code mw__workers_new(unsigned n, double slice, int use_signal, mw__workers **out)
{
    mw_code rc = MW_ENOMEM;
    *out = NULL;
    if (n == 0)
        n = default_count();
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    mw__workers *w = calloc(1, sizeof *w + n * sizeof w->v[0]);
    if (!w)
        goto out;
    w->n = n;
    atomic_init(&w->claimed, 0);
    for (unsigned i = 0; i < n; i++)
        w->v[i] = (worker){.w = w, .index = i, .host_io = {.fd = -1}};
    for (unsigned i = 0; i < n; i++)
        if ((rc = mw__loop_new(&w->v[i].loop)) != MW_OK)
            goto out;
    if ((rc = mw__budget_new(n, slice, use_signal, &w->budget)) != MW_OK)
        goto out;
    *out = w;
    w = NULL;
out:
    mw__workers_free(w);
    return rc;
}

static void detach(mw__workers *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        if (w->v[i].watched)
            mw__io_stop(w->host, &w->v[i].host_io);
        w->v[i].watched = 0;
    }
}

void mw__workers_free(mw__workers *w)
{
    if (!w)
        return;
    mw__workers_stop(w);
    detach(w);
    for (unsigned i = 0; i < w->n; i++)
        mw__loop_free(w->v[i].loop);
    mw__budget_free(w->budget);
    free(w);
}

unsigned mw__workers_count(const mw__workers *w)
{
    return w->n;
}

mw__loop *mw__workers_loop(mw__workers *w, unsigned i)
{
    return i < w->n ? w->v[i].loop : NULL;
}

mw__budget_slot *mw__workers_slot(mw__workers *w, unsigned i)
{
    return mw__budget_slot_get(w->budget, i);
}

unsigned mw__workers_pick(const mw__workers *w, const char *id)
{
    /* The high half: the scheduler's id tables index by the low bits of
     * the same hash, which would otherwise be alike on one worker. */
    uint64_t h = mw__hash(MW_HASH_INIT, id, strlen(id)) >> 32;
    return (unsigned)((h * w->n) >> 32);
}

/* ------------------------------------------------------------- threads */

static void *worker_main(void *ud)
{
    worker *wk = ud;
    tl_workers = wk->w;
    tl_index = (int)wk->index;
    mw__loop_run(wk->loop);
    return NULL;
}

void mw__workers_claim(mw__workers *w)
{
    detach(w);
    atomic_store(&w->claimed, 1);
}

static int reattach(mw__workers *w)
{
    return w->host ? mw__workers_attach(w, w->host) : 0;
}

static void join_all(mw__workers *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        worker *wk = &w->v[i];
        if (!wk->running)
            continue;
        mw__loop_stop(wk->loop);
        pthread_join(wk->thread, NULL);
        wk->running = 0;
    }
}

mw_code mw__workers_start(mw__workers *w)
{
    mw__workers_claim(w);
    for (unsigned i = 0; i < w->n; i++) {
        worker *wk = &w->v[i];
        int e = pthread_create(&wk->thread, NULL, worker_main, wk);
        if (e != 0) {
            join_all(w);
            errno = e;
            return MW_ESYS;
        }
        wk->running = 1;
    }
    return MW_OK;
}

void mw__workers_stop(mw__workers *w)
{
    if (!atomic_load(&w->claimed))
        return;
    join_all(w);
    atomic_store(&w->claimed, 0);
    reattach(w);
}

int mw__workers_owns(const mw__workers *w, unsigned i)
{
    if (!atomic_load(&w->claimed))
        return 1;
    return tl_workers == w && tl_index == (int)i;
}

int mw__workers_self(const mw__workers *w)
{
    return tl_workers == w ? tl_index : -1;
}

/* ------------------------------------------------------------- hosted */

static void step_cb(mw__io *io, uint32_t events)
{
    MW_UNUSED(events);
    worker *wk = io->ud;
    mw__loop_run_once(wk->loop, 0);
}

mw_code mw__workers_attach(mw__workers *w, mw__loop *host)
{
    if (atomic_load(&w->claimed) || (w->host && w->host != host))
        return MW_ESTATE;
    w->host = host;
    for (unsigned i = 0; i < w->n; i++) {
        worker *wk = &w->v[i];
        if (wk->watched)
            continue;
        int fd = mw__loop_fd(wk->loop);
        if (fd < 0 || mw__io_start(host, &wk->host_io, fd, EPOLLIN, step_cb, wk) != MW_OK) {
            detach(w);
            return MW_ESYS;
        }
        wk->watched = 1;
    }
    return MW_OK;
}

/*
 * workers.h - the engine's worker threads: one event loop and one time
 * budget slot per worker, one watchdog (mw__budget) watching them all,
 * and the worker an instance is pinned to.
 *
 * Two ways to run the workers:
 *  - started (mw__workers_start): each worker runs its loop on a thread
 *    of its own until mw__workers_stop();
 *  - hosted: no worker thread; whoever drives the engine steps the
 *    workers' loops. mw__workers_attach() makes that automatic: each
 *    worker's loop descriptor is watched from the host's loop, and a
 *    worker whose loop has work (a descriptor ready, a timer due, idle or
 *    posted work) is stepped from there, so the host loop's descriptor
 *    becomes readable on any worker's work too.
 *
 * Pinning: mw__workers_pick() maps an instance id to a worker with a
 * stable hash, so the same config always lands on the same worker (and
 * any thread can tell which worker holds an id without a shared table).
 *
 * Ownership: the workers own their loops, the budget and the threads;
 * whatever uses a worker's loop (the scheduler) must be freed before
 * mw__workers_free(). mw__workers_owns(), mw__workers_pick() and
 * mw__workers_self() may be called from any thread; everything else from
 * the thread that owns the engine, never concurrently.
 */
#ifndef MW_WORKERS_H
#define MW_WORKERS_H

#include "core/base/loop.h"
#include "lua/sandbox.h"

typedef struct mw__workers mw__workers;

/* `n` workers (0: one per online core), preempting runs after `slice`
 * seconds, signalled by the watchdog unless `use_signal` is 0 (see
 * mw__budget_new()), into `*out`. MW_OK, MW_ENOMEM, MW_EINVAL (a bad
 * slice) or MW_ESYS when a worker's loop cannot be made (errno). */
mw_code mw__workers_new(unsigned n, double slice, int use_signal, mw__workers **out);
/* Stops the threads if started, detaches from the host loop, frees the
 * loops (messages still posted to them are dropped) and the budget. */
void mw__workers_free(mw__workers *w);

unsigned mw__workers_count(const mw__workers *w);
mw__loop *mw__workers_loop(mw__workers *w, unsigned i);
mw__budget_slot *mw__workers_slot(mw__workers *w, unsigned i);

/* The worker instance `id` is pinned to. */
unsigned mw__workers_pick(const mw__workers *w, const char *id);

/*
 * From this call on, work for the workers belongs to their threads:
 * mw__workers_owns() answers 0 to every other thread, so what is handed
 * to them waits on their loops. Detaches them from the host loop. Call
 * before starting a thread that hands them work; mw__workers_start()
 * claims too.
 */
void mw__workers_claim(mw__workers *w);
/* Claims the workers and runs each one's loop on a thread of its own.
 * MW_OK, or MW_ESYS when a thread cannot start (those started are stopped
 * again; the workers stay claimed until mw__workers_stop()). */
mw_code mw__workers_start(mw__workers *w);
/* Stops and joins the threads (work handed to them and not served yet
 * stays queued on their loops), releases the claim and re-attaches to
 * the host loop if they were attached before. */
void mw__workers_stop(mw__workers *w);

/* 1 when the calling thread may use worker `i`'s loop now: it is that
 * worker's thread, or the workers are not claimed (hosted). */
int mw__workers_owns(const mw__workers *w, unsigned i);
/* The index of the worker whose thread calls, or -1 (any other thread,
 * also a host stepping the workers). */
int mw__workers_self(const mw__workers *w);

/* Hosted mode: watch the workers' loops from `host` (see above).
 * Idempotent. MW_ESTATE while claimed or attached to another loop;
 * MW_ESYS when a loop descriptor cannot be made or watched. */
mw_code mw__workers_attach(mw__workers *w, mw__loop *host);

#endif

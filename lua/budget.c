/*
 * budget.c - the time budget of check runs: one watchdog thread per
 * engine, one slot per worker thread, and the Lua hook that preempts or
 * stops a run.
 *
 * While a run is inside its slice no hook is installed, so plain Lua code
 * runs at full speed. The watchdog ticks about every millisecond while at
 * least one slot is busy (it sleeps on a condition variable otherwise):
 *  - past the slice it sets `preempt` and installs a count hook on the
 *    Lua thread running now; the hook yields when it can, and the run comes
 *    back to the worker as MW_RUN_PREEMPTED;
 *  - past the deadline it sets `expired` and installs a hook that fires on
 *    every instruction and line and raises the timeout error each time, so
 *    pcall, xpcall handlers and __close handlers cannot keep running.
 * lua_sethook() only stores the hook and sets trap flags; it is the call
 * lua.c makes from a signal handler, which is why it may come from the
 * watchdog thread. The slot lock guarantees the thread it targets is the
 * running one and still alive: the worker changes `sb->current` under the
 * same lock before it switches coroutines or lets a thread go.
 *
 * Hooks are per Lua thread and outlive the slice that armed them; a hook
 * that finds neither flag set removes itself.
 *
 * The budget owns its slots and its thread; sandboxes are borrowed while
 * attached.
 */
#include "lua/sandbox_int.h"

#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TICK_NS 1000000L /* watchdog period while busy */

struct mw__budget_slot {
    pthread_mutex_t mu;
    mw__budget *b;
    mw__sandbox *sb; /* running sandbox, or NULL */
    uint64_t seq;    /* its run sequence number */
    double slice_end;
    double deadline;
    int preempted; /* preemption requested in this slice */
    int killed;    /* stop requested */
};

struct mw__budget {
    pthread_mutex_t mu; /* busy, started, stop */
    pthread_cond_t cv;
    pthread_t thread;
    int started;
    int failed; /* the thread could not start: runs time themselves */
    int stop;
    unsigned busy;
    double slice;
    unsigned nslots;
    mw__budget_slot slots[];
};

/* ------------------------------------------------------------- hook */

static void hook(lua_State *L, lua_Debug *ar);

static void arm_kill(lua_State *T)
{
    lua_sethook(T, hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
}

static void arm_preempt(lua_State *T)
{
    lua_sethook(T, hook, LUA_MASKCOUNT, 1);
}

void mw__budget_arm_self_timed(lua_State *T)
{
    lua_sethook(T, hook, LUA_MASKCOUNT, MW_SANDBOX_SELF_TIMED_COUNT);
}

int mw__budget_raise_timeout(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    char msg[96];
    snprintf(msg, sizeof(msg), "timeout: run exceeded its time budget of %.3g s",
             sb ? sb->budget : 0.0);
    lua_pushstring(L, msg);
    return lua_error(L);
}

/* Reads the clock for runs no watchdog watches. */
static int self_timed_expired(mw__sandbox *sb)
{
    if (!sb->self_timed || mw__mono() < sb->deadline)
        return 0;
    atomic_store(&sb->expired, 1);
    return 1;
}

void mw__budget_poll(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb)
        return;
    if (atomic_load(&sb->expired) || self_timed_expired(sb))
        mw__budget_raise_timeout(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (self_timed_expired(sb))
        arm_kill(L);
    if (atomic_load(&sb->expired)) {
        mw__budget_raise_timeout(L);
        return;
    }
    if (atomic_load(&sb->preempt)) {
        /* Only count hooks may yield; inside a metamethod or a sort
         * comparator the thread cannot, so try again a bit later. */
        if (ar->event == LUA_HOOKCOUNT && lua_isyieldable(L)) {
            atomic_store(&sb->preempt, 0);
            sb->preempt_yield = 1;
            lua_sethook(L, NULL, 0, 0);
            lua_yield(L, 0); /* returns: the hook must return at once */
            return;
        }
        lua_sethook(L, hook, LUA_MASKCOUNT, MW_SANDBOX_PREEMPT_COUNT);
        return;
    }
    if (!sb->self_timed)
        lua_sethook(L, NULL, 0, 0); /* stale: armed for an earlier slice */
}

/* ------------------------------------------------------------- worker side */

static void slot_lock(mw__budget_slot *s)
{
    pthread_mutex_lock(&s->mu);
}

static void slot_unlock(mw__budget_slot *s)
{
    pthread_mutex_unlock(&s->mu);
}

static void *watchdog(void *arg);

/* Counts a busy slot; wakes (or starts) the watchdog on idle -> busy.
 * Returns 0, or -1 when no watchdog can run. */
static int budget_busy(mw__budget *b)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    if (!b->started && !b->failed) {
        if (pthread_create(&b->thread, NULL, watchdog, b) == 0)
            b->started = 1;
        else
            b->failed = 1;
    }
    if (b->failed) {
        rc = -1;
        goto out;
    }
    if (b->busy++ == 0)
        pthread_cond_signal(&b->cv);
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static void budget_idle(mw__budget *b)
{
    pthread_mutex_lock(&b->mu);
    b->busy--;
    pthread_mutex_unlock(&b->mu);
}

void mw__budget_attach(mw__budget_slot *slot, mw__sandbox *sb)
{
    atomic_store(&sb->preempt, 0);
    sb->preempt_yield = 0;
    if (!slot || budget_busy(slot->b) != 0) {
        sb->self_timed = 1;
        sb->slot = NULL;
        sb->current = sb->co;
        mw__budget_arm_self_timed(sb->co);
        return;
    }
    sb->self_timed = 0;
    double now = mw__mono();
    slot_lock(slot);
    slot->sb = sb;
    slot->seq = sb->seq;
    slot->slice_end = now + slot->b->slice;
    slot->deadline = sb->deadline;
    slot->preempted = 0;
    slot->killed = 0;
    sb->slot = slot;
    sb->current = sb->co;
    slot_unlock(slot);
}

void mw__budget_detach(mw__budget_slot *slot, mw__sandbox *sb)
{
    if (!sb->slot) {
        sb->current = NULL;
        return;
    }
    slot_lock(slot);
    slot->sb = NULL;
    sb->slot = NULL;
    sb->current = NULL;
    slot_unlock(slot);
    budget_idle(slot->b);
}

void mw__budget_set_current(mw__sandbox *sb, lua_State *T)
{
    mw__budget_slot *slot = sb->slot;
    if (!slot) {
        sb->current = T;
        if (sb->self_timed)
            mw__budget_arm_self_timed(T);
        return;
    }
    slot_lock(slot);
    sb->current = T;
    /* The watchdog may have armed the thread we just left. */
    if (atomic_load(&sb->expired))
        arm_kill(T);
    else if (atomic_load(&sb->preempt))
        arm_preempt(T);
    slot_unlock(slot);
}

/* ------------------------------------------------------------- watchdog */

/* One look at one slot, under its lock. */
static void watch_slot(mw__budget_slot *s, double now)
{
    slot_lock(s);
    mw__sandbox *sb = s->sb;
    if (!sb || s->seq != sb->seq || !sb->current || s->killed)
        goto out;
    if (now >= s->deadline) {
        atomic_store(&sb->expired, 1);
        arm_kill(sb->current);
        s->killed = 1;
    } else if (now >= s->slice_end && !s->preempted) {
        atomic_store(&sb->preempt, 1);
        arm_preempt(sb->current);
        s->preempted = 1;
    }
out:
    slot_unlock(s);
}

static void *watchdog(void *arg)
{
    mw__budget *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        if (b->busy == 0) {
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        double now = mw__mono();
        for (unsigned i = 0; i < b->nslots; i++)
            watch_slot(&b->slots[i], now);
        struct timespec ts = {0, TICK_NS};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ------------------------------------------------------------- lifetime */

mw__budget *mw__budget_new(unsigned nslots, double slice)
{
    if (nslots == 0 || !(slice > 0))
        return NULL;
    mw__budget *b = calloc(1, sizeof(*b) + nslots * sizeof(b->slots[0]));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->slice = slice;
    b->nslots = nslots;
    for (unsigned i = 0; i < nslots; i++) {
        pthread_mutex_init(&b->slots[i].mu, NULL);
        b->slots[i].b = b;
    }
    return b;
}

void mw__budget_free(mw__budget *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_signal(&b->cv);
    int started = b->started;
    pthread_mutex_unlock(&b->mu);
    if (started)
        pthread_join(b->thread, NULL);
    for (unsigned i = 0; i < b->nslots; i++)
        pthread_mutex_destroy(&b->slots[i].mu);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

mw__budget_slot *mw__budget_slot_get(mw__budget *b, unsigned i)
{
    return b && i < b->nslots ? &b->slots[i] : NULL;
}

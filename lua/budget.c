/*
 * budget.c - the time budget of check runs: one watchdog thread per
 * engine, one slot per worker thread, and the Lua hook that preempts or
 * stops a run.
 *
 * While a run is inside its slice no hook is installed, so plain Lua code
 * runs at full speed. The watchdog ticks about every millisecond while at
 * least one slot is busy (it sleeps on a condition variable otherwise):
 *  - past the slice it sets `preempt`; a count hook then yields when it
 *    can, and the run comes back to the worker as MW_RUN_PREEMPTED;
 *  - past the deadline it sets `expired`; a hook that fires on every
 *    instruction and line then raises the timeout error each time, so
 *    pcall, xpcall handlers and __close handlers cannot keep running.
 *
 * Who installs the hook: lua_sethook() walks the CallInfo list of the
 * thread it targets, which the worker running that thread changes (and
 * frees, in a GC step) at the same moment, so it must run on the worker.
 * Like lua.c does for SIGINT, it runs in a signal handler: the watchdog
 * records the request in the sandbox's flags under the slot lock and sends
 * the budget signal to the worker with pthread_kill(); the handler,
 * running on the interrupted worker, arms the hook on the Lua thread
 * running now. That thread is stopped between two of its own operations,
 * and luaE_shrinkCI only frees frames above L->ci while settraps walks
 * down from it. The handler only reads lock-free atomics: the thread-local
 * sandbox the worker runs (NULL outside a run: a late signal does
 * nothing), its current Lua thread (one atomic pointer store per coroutine
 * switch, never half-written) and the two flags. Since it acts on the
 * flags of the run it finds, a signal meant for an earlier run or slice
 * does nothing either.
 *
 * A signal can land while the worker itself is inside lua_sethook() (a
 * hook removing itself) and be overwritten: the watchdog sends it again on
 * every tick until the request is served.
 *
 * Fallback: when the signal already has a handler (or SIG_IGN) that is not
 * ours, or the worker blocks it, or no watchdog thread can start, the run
 * times itself: a count hook reads the clock every
 * MW_SANDBOX_SELF_TIMED_COUNT instructions and sets the same flags.
 *
 * Hooks are per Lua thread and outlive the slice that armed them; a hook
 * that finds neither flag set removes itself.
 *
 * The budget owns its slots and its thread; sandboxes are borrowed while
 * attached. The only process-wide state is the signal's disposition,
 * installed once.
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TICK_NS      1000000L /* watchdog period while busy */
#define RESEND_MIN   0.001    /* first gap before a pending request is re-sent */
#define RESEND_MAX   0.064
#define IDLE_TICK_NS 2000000L     /* ... while lingering between runs */
#define LINGER_NS    100000000ULL /* keep ticking this long after the last run */

/* The handler may only touch lock-free atomics. */
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "lock-free atomic pointers needed");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free atomic ints needed");

struct mw__budget_slot {
    pthread_mutex_t mu;
    mw__budget *b;
    mw__sandbox *sb;  /* running sandbox, or NULL */
    uint64_t seq;     /* its run sequence number */
    pthread_t worker; /* the thread running it */
    double slice_end;
    double deadline;
    int preempted; /* preemption requested in this slice */
    int sent;      /* what was signalled: 0, REQ_PREEMPT or REQ_KILL */
    double gap;    /* seconds until that may be signalled again */
    double next_send;
};

struct mw__budget {
    pthread_mutex_t mu; /* busy, started, stop */
    pthread_cond_t cv;
    pthread_t thread;
    int started;
    int failed; /* the thread could not start: runs time themselves */
    int stop;
    int waiting;          /* the watchdog sleeps on cv */
    uint64_t last_attach; /* mw__mono_ns() of the last run that attached */
    unsigned busy;
    double slice;
    unsigned nslots;
    int use_signal; /* 0: runs time themselves */
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

/* Keeps a thread's count when it is armed already: setting a hook resets
 * it, and a run that switches coroutines every few instructions would
 * then never reach it, nor its deadline. */
static void arm_self_timed(lua_State *T)
{
    if (lua_gethook(T) == hook && lua_gethookmask(T) == LUA_MASKCOUNT &&
        lua_gethookcount(T) == MW_SANDBOX_SELF_TIMED_COUNT)
        return;
    lua_sethook(T, hook, LUA_MASKCOUNT, MW_SANDBOX_SELF_TIMED_COUNT);
}

/* Arms on `T` whatever `sb` has pending. Async-signal-safe. */
static void arm_pending(mw__sandbox *sb, lua_State *T)
{
    if (atomic_load(&sb->expired))
        arm_kill(T);
    else if (atomic_load(&sb->preempt))
        arm_preempt(T);
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

/* The self-timed run's slice: asks for one preemption once it is over. */
static void self_timed_slice(mw__sandbox *sb)
{
    if (!sb->self_timed || mw__mono() < sb->slice_end)
        return;
    sb->slice_end = HUGE_VAL;
    atomic_store(&sb->preempt, 1);
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
    self_timed_slice(sb);
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

/* ------------------------------------------------------------- signal */

/* Written once under sig_once, before any slot can name a worker. */
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static int sig_no; /* the budget signal, 0 when another handler owns it */

/* The sandbox this thread runs under a watchdog, or NULL. Written by the
 * worker before its slot is published (which also allocates the variable's
 * storage, so the handler's access never has to). */
static _Thread_local _Atomic(mw__sandbox *) tl_running;

/* Runs on the worker, interrupted anywhere: lock-free atomics and
 * lua_sethook() only. */
static void on_signal(int signo)
{
    (void)signo;
    int saved = errno;
    mw__sandbox *sb = atomic_load(&tl_running);
    lua_State *T = sb ? atomic_load(&sb->current) : NULL;
    if (T)
        arm_pending(sb, T);
    errno = saved;
}

/* Whether nobody else handles (or ignores) `sig`. */
static int signal_free(int sig)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0)
        return 0;
    return !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
}

static void install_signal(void)
{
    int sig = SIGRTMIN + MW_BUDGET_SIGNAL_OFFSET;
    if (sig > SIGRTMAX || !signal_free(sig))
        return;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* the worker's syscalls carry on */
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0)
        sig_no = sig;
}

int mw__budget_signal(void)
{
    pthread_once(&sig_once, install_signal);
    return sig_no;
}

/* Whether the budget signal can interrupt the calling thread now. */
static int signal_usable(void)
{
    sigset_t cur;
    int sig = mw__budget_signal();
    return sig && pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && !sigismember(&cur, sig);
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
    b->last_attach = mw__mono_ns();
    /* Only a sleeping watchdog needs waking: after a run it keeps ticking
     * for LINGER_NS, so checks that run one after the other (thousands a
     * second, each a few microseconds) do not wake it once per run. */
    if (b->busy++ == 0 && b->waiting)
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

void mw__budget_self_time(mw__sandbox *sb, lua_State *T, double slice_end)
{
    sb->self_timed = 1;
    sb->slot = NULL;
    sb->slice_end = slice_end;
    atomic_store(&sb->current, T);
    arm_self_timed(T);
}

/* Publishes the run in `slot`; from then on the watchdog may signal us. */
static void attach_watched(mw__budget_slot *slot, mw__sandbox *sb)
{
    double now = mw__mono();
    sb->self_timed = 0;
    atomic_store(&tl_running, sb);
    slot_lock(slot);
    slot->sb = sb;
    slot->seq = sb->seq;
    slot->worker = pthread_self();
    slot->slice_end = now + slot->b->slice;
    slot->deadline = sb->deadline;
    slot->preempted = 0;
    slot->sent = 0;
    sb->slot = slot;
    slot_unlock(slot);
}

void mw__budget_attach(mw__budget_slot *slot, mw__sandbox *sb)
{
    atomic_store(&sb->preempt, 0);
    sb->preempt_yield = 0;
    atomic_store(&sb->current, sb->co);
    if (slot && slot->b->use_signal && signal_usable() && budget_busy(slot->b) == 0)
        attach_watched(slot, sb);
    else
        mw__budget_self_time(sb, sb->co, slot ? mw__mono() + slot->b->slice : HUGE_VAL);
}

void mw__budget_detach(mw__budget_slot *slot, mw__sandbox *sb)
{
    if (sb->slot) {
        atomic_store(&tl_running, NULL); /* a late signal finds no run */
        slot_lock(slot);
        slot->sb = NULL;
        sb->slot = NULL;
        slot_unlock(slot);
        budget_idle(slot->b);
    }
    atomic_store(&sb->current, NULL);
}

void mw__budget_set_current(mw__sandbox *sb, lua_State *T)
{
    /* One atomic store: a signal sees the old thread or the new one. If
     * it armed the old one, the line below arms the new one too. */
    atomic_store(&sb->current, T);
    if (sb->self_timed)
        arm_self_timed(T);
    arm_pending(sb, T);
}

/* ------------------------------------------------------------- watchdog */

enum { REQ_NONE, REQ_PREEMPT, REQ_KILL };

/* Records what the run watched by `s` needs now: REQ_KILL past the
 * deadline (served when the run detaches), REQ_PREEMPT past the slice
 * until the hook that yields clears it, else REQ_NONE. */
static int decide(mw__budget_slot *s, mw__sandbox *sb, double now)
{
    if (now >= s->deadline) {
        atomic_store(&sb->expired, 1);
        return REQ_KILL;
    }
    if (now < s->slice_end)
        return REQ_NONE;
    if (!s->preempted) {
        s->preempted = 1;
        atomic_store(&sb->preempt, 1);
    }
    return atomic_load(&sb->preempt) ? REQ_PREEMPT : REQ_NONE;
}

/*
 * A new request is signalled at once. One still pending is signalled
 * again (a signal can be overwritten, see above) after a doubling gap:
 * the handler's lua_sethook() walks every frame of the run, and with a
 * very deep stack a signal every tick kept the worker inside handlers,
 * never reaching the instruction where the hook acts.
 */
static int should_send(mw__budget_slot *s, int req, double now)
{
    if (req == REQ_NONE)
        return 0;
    if (req != s->sent) {
        s->sent = req;
        s->gap = RESEND_MIN;
    } else if (now < s->next_send) {
        return 0;
    } else if (s->gap < RESEND_MAX) {
        s->gap *= 2;
    }
    s->next_send = now + s->gap;
    return 1;
}

/* One look at one slot, under its lock: the worker cannot detach, let
 * alone exit, while we signal it. */
static void watch_slot(mw__budget_slot *s, double now)
{
    slot_lock(s);
    mw__sandbox *sb = s->sb;
    if (sb && s->seq == sb->seq && should_send(s, decide(s, sb, now), now))
        pthread_kill(s->worker, sig_no);
    slot_unlock(s);
}

static void *watchdog(void *arg)
{
    mw__budget *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        if (b->busy == 0 && mw__mono_ns() - b->last_attach > LINGER_NS) {
            b->waiting = 1;
            pthread_cond_wait(&b->cv, &b->mu);
            b->waiting = 0;
            continue;
        }
        /* Between runs nothing can overrun: nap longer. A run that starts
         * meanwhile is looked at within IDLE_TICK_NS, before its slice
         * has run twice over. */
        long tick = b->busy ? TICK_NS : IDLE_TICK_NS;
        pthread_mutex_unlock(&b->mu);
        double now = mw__mono();
        for (unsigned i = 0; i < b->nslots; i++)
            watch_slot(&b->slots[i], now);
        struct timespec ts = {0, tick};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ------------------------------------------------------------- lifetime */

mw_code mw__budget_new(unsigned nslots, double slice, int use_signal, mw__budget **out)
{
    *out = NULL;
    if (nslots == 0 || !(slice > 0))
        return MW_EINVAL;
    mw__budget *b = calloc(1, sizeof(*b) + nslots * sizeof(b->slots[0]));
    if (!b)
        return MW_ENOMEM;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->slice = slice;
    b->nslots = nslots;
    b->use_signal = use_signal && !MW_TSAN;
    for (unsigned i = 0; i < nslots; i++) {
        pthread_mutex_init(&b->slots[i].mu, NULL);
        b->slots[i].b = b;
    }
    *out = b;
    return MW_OK;
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

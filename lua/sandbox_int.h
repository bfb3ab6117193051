/*
 * sandbox_int.h - what the files of lua/ share about a sandbox: its
 * struct, the budget hooks, and the openers of the restricted libraries.
 *
 * Not for use outside lua/. The sandbox owns its lua_State and every
 * string in this struct; the sample destination, log and stats callback are borrowed
 * from the engine. Fields marked "slot lock" are written by the worker and
 * read by the watchdog only while holding the lock of the slot the
 * sandbox is attached to. Fields marked "signal" are also read by the
 * budget's signal handler on the worker, so they are lock-free atomics.
 */
#ifndef MW_SANDBOX_INT_H
#define MW_SANDBOX_INT_H

#include "lua/sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>

#define MW_SANDBOX_DEFAULT_MEM ((size_t)16 << 20)
/* What a shared state may hold beyond its members' caps (the libraries,
 * the compiled script), and the most it may hold. */
#define MW_LSHARE_BASE_MEM ((size_t)16 << 20)
#define MW_LSHARE_MAX_MEM  ((size_t)1 << 30)
/* Largest chunk `load` accepts: keeps parsing well under a millisecond. */
#define MW_SANDBOX_MAX_CHUNK ((size_t)256 << 10)
/* Time the script's top level may take in mw__sandbox_new(). */
#define MW_SANDBOX_LOAD_TIMEOUT 1.0
/* Instructions between clock reads when no watchdog watches a run. */
#define MW_SANDBOX_SELF_TIMED_COUNT 1000
/* Instructions between two preemption attempts (non-yieldable code). */
#define MW_SANDBOX_PREEMPT_COUNT 1000
/* Most tags one sample may carry. */
#define MW_SANDBOX_MAX_TAGS 100

/* What one instance's Lua code allocated and still holds (or, for a
 * state's `base` account, what no instance's code did). Every block of a
 * state carries a pointer to its account in a header, so frees are
 * credited to the owner whoever frees them (a collection during another
 * instance's run included). An account outlives its sandbox while blocks
 * still name it: `orphan` is set then, and the last free frees it. */
typedef struct mw__acct {
    size_t used;
    size_t cap;
    size_t nblocks;
    int refused; /* an allocation was refused since the last begin */
    int orphan;  /* its sandbox is gone */
} mw__acct;

/* The allocator's state: first member of mw__lshare, or on its own for
 * the throwaway state of mw__sandbox_check_syntax(). */
typedef struct mw__lmem {
    size_t used;      /* the whole state */
    size_t cap;       /* ... and its cap */
    int refused;      /* the state's cap refused an allocation */
    mw__acct *active; /* charged now; NULL: base */
    mw__acct base;
    mw__sandbox *sb; /* whose code runs now (mw__sandbox_of), or NULL */
} mw__lmem;

/* The allocator of every sandbox state (ud: mw__lmem). */
void *mw__lmem_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void mw__lmem_init(mw__lmem *m, size_t cap);

/* A state shared by the instances of one script (share.c). The lock is
 * held by whoever calls into the state: a worker around each slice of a
 * run, the scheduling thread while it makes an instance. */
struct mw__lshare {
    mw__lmem mem; /* must stay first: lua_getallocf() finds it */
    lua_State *L;
    pthread_mutex_t mu;
    unsigned refs; /* under mu */
    size_t caps;   /* under mu: the members' caps, summed */
    int fn_ref;    /* registry: the script compiled as function(_ENV, ...) */
    /* under mu: an instance is being made off the worker (the scheduling
     * thread): a socket collected then is closed later, on the worker */
    int foreign;
    struct mw__deferred *deferred; /* under mu: connections to close there */
    /* the state cannot be trusted any more: written under mu, read
     * without it (the scheduler asks while holding its own locks) */
    atomic_int broken;
    int private_; /* made by mw__sandbox_new() for one sandbox */
    /* A private state's sandbox: it stays the one mw__sandbox_of() finds
     * and the one charged between entries, as when each instance had a
     * state of its own (tests drive such states directly). */
    mw__sandbox *solo;
};

/* Locks the state and makes `sb` (may be NULL) the one whose code runs
 * and whose account is charged. */
void mw__lshare_enter(mw__lshare *sh, mw__sandbox *sb);
void mw__lshare_leave(mw__lshare *sh);
mw__lshare *mw__lshare_ref(mw__lshare *sh);
/* Protected: pushes a fresh globals table for the sandbox whose code
 * runs (mw__sandbox_of), reading through to the shared libraries. */
int mw__lshare_new_env(lua_State *L);
/* The share `L` belongs to (never the syntax-check state's). */
mw__lshare *mw__lshare_of(lua_State *L);
/* Under the lock: `conn` (an open connection of a collected socket) is
 * closed by mw__lshare_run_deferred() on the worker. Returns -1 when it
 * cannot be recorded (out of memory: it stays open until its client is
 * freed). */
int mw__lshare_defer_close(mw__lshare *sh, struct mw__http_conn *conn);
/* Under the lock, on the worker: closes what was deferred. */
void mw__lshare_run_deferred(mw__lshare *sh);
/* Marks the state unusable: no new instance joins it, and its instances'
 * runs fail until they are moved to a fresh state. */
void mw__lshare_break(mw__lshare *sh);
/* Under the lock: a member's memory cap joins the state's (`add` 1) or
 * leaves it (0). */
void mw__lshare_cap(mw__lshare *sh, size_t cap, int add);

struct mw__sandbox {
    mw__acct *mem;     /* what this instance holds; may outlive it */
    mw__lshare *share; /* the state it lives in (a reference) */
    lua_State *L;      /* the share's */
    char *check;
    char *check_id;
    mw__sample_out out;
    const mw__log *log;
    mw__stats_fn stats_fn;
    void *stats_ud;
    mw__host_paths paths;     /* the opts' strings (borrowed), defaults filled in */
    mw__ecs_endpoint ecs;     /* the opts' strings (borrowed); url NULL: none */
    mw__store_dir *store_dir; /* borrowed; NULL: mw.state in memory only */
    mw__store *state;         /* mw.state's, opened on first use; saved after each run */

    int env_ref;                     /* registry: the instance's globals */
    int mod_ref;                     /* registry: the table the script returned */
    int self_ref;                    /* registry: self */
    int co_ref;                      /* registry: the run coroutine, or false */
    lua_State *co;                   /* the run coroutine while a run is in progress */
    lua_State *idle_co;              /* the last run's coroutine, finished OK: reused */
    size_t http_seen;                /* its largest HTTP answer yet, headers and body */
    struct mw__http_memo *http_memo; /* its last request's URL, parsed */
    int nargs;                       /* values waiting on `co` for its first resume */
    int inited;                      /* init(self) succeeded */
    double default_interval;         /* the script table's min_collection_interval; 0: none */

    double deadline; /* monotonic seconds */
    double budget;   /* seconds the current run was given */
    uint64_t seq;    /* run sequence number */

    mw__budget_slot *slot;        /* slot lock; set while resumed under a watchdog */
    _Atomic(lua_State *) current; /* signal; the Lua thread running now */
    atomic_int expired;           /* signal; past the deadline: every hook raises */
    atomic_int preempt;           /* signal; past the slice: the next hook yields */
    int self_timed;               /* no watchdog: hooks read the clock */
    double slice_end;             /* self-timed: when the hook asks to preempt */
    int preempt_yield;            /* the last yield came from the budget hook */

    unsigned warnings;
    char *err; /* malloc'd; NULL = "" */

    /* I/O (net.c), all on the loop thread of `io` */
    const mw__io_env *io;
    void (*wake)(void *ud);
    void *wake_ud;
    struct mw__io_op *op;   /* what the suspended run waits on, or NULL */
    int io_yield;           /* the last yield came from an I/O call */
    struct mw__sock *socks; /* sockets open in this state */
};

/* The sandbox whose code runs in `L`'s state now, or NULL (syntax-check
 * state, or no run: collection, closing). */
mw__sandbox *mw__sandbox_of(lua_State *L);

/* ---- budget.c */

/* Watches `sb` through `slot` (NULL: the hooks read the clock
 * themselves). Starts a new slice. */
void mw__budget_attach(mw__budget_slot *slot, mw__sandbox *sb);
void mw__budget_detach(mw__budget_slot *slot, mw__sandbox *sb);
/* Records `T` as the running Lua thread of `sb` and, when a stop or a
 * preemption is pending, arms the hook on it. Takes no lock. */
void mw__budget_set_current(mw__sandbox *sb, lua_State *T);
/* Makes `T` the running thread of a run no watchdog watches: a hook reads
 * the clock every few instructions, stops the run at sb->deadline and
 * asks for one preemption at `slice_end` (HUGE_VAL: never). */
void mw__budget_self_time(mw__sandbox *sb, lua_State *T, double slice_end);
/* The budget signal (installing its handler on the first call), or 0 when
 * another handler owns it and watched runs time themselves. */
int mw__budget_signal(void);
/* For C loops that run no hook: raises the timeout error when the run is
 * past its deadline. Cheap enough to call every ~1000 steps. */
void mw__budget_poll(lua_State *L);
/* Raises the timeout error of the current run. */
int mw__budget_raise_timeout(lua_State *L);

/* ---- coro.c: coroutine library with resume/wrap/close that track the
 * running thread and pass preemption yields up. */
int mw__open_coroutine(lua_State *L);
/* Protected: creates the registry state coro.c needs. */
int mw__coro_setup(lua_State *L);
/* xpcall whose message handler never runs once the run is out of time. */
int mw__xpcall(lua_State *L);

/* ---- lstrmatch.c: find/match/gmatch/gsub that poll the deadline. */
void mw__strmatch_install(lua_State *L, int string_table);
/* table.move with the same polling. */
int mw__table_move(lua_State *L);
/* ---- lsort.c: table.sort with the same polling. */
int mw__table_sort(lua_State *L);

/* ---- api.c: pushes the read-only `mw` table. */
int mw__open_api(lua_State *L);
/* The sandbox's print(): to the log, never to stdout. */
int mw__api_print(lua_State *L);
/* Pushes a read-only view of the table at `idx`. */
void mw__push_readonly(lua_State *L, int idx);

/* ---- net.c: mw.http, mw.tcp, mw.sleep. Each I/O call starts an operation
 * (sb->op), sets sb->io_yield and yields; the operation's completion
 * calls sb->wake, and the resumed continuation pushes its results. */
extern const luaL_Reg mw__http_funcs[]; /* request, get */
extern const luaL_Reg mw__tcp_funcs[];  /* connect */
int mw__net_sleep(lua_State *L);
/* mw.time_left(): seconds until the current run's deadline (0 outside a
 * run). */
int mw__net_time_left(lua_State *L);
/* Cancels the pending operation (if any) and closes every open socket of
 * the sandbox: the run is being stopped. */
void mw__net_stop(mw__sandbox *sb);
/* Fails the pending operation at once with `why` (it cannot be waited for
 * here), so that resuming the caller returns nil, why. */
void mw__net_fail(mw__sandbox *sb, const char *why);
/* What the pending operation waits for ("GET http://..."), or NULL. */
const char *mw__net_what(const mw__sandbox *sb);

/* What an engine request (mw__net_engine_get) got: an answer (code
 * MW_OK, any HTTP status, its body) or why there is none. Borrowed for
 * the `read` callback only. */
typedef struct mw__net_answer {
    mw_code code;
    long status;
    const char *body;
    size_t len;
    const char *err;  /* code != MW_OK */
    const char *what; /* "GET http://..." */
} mw__net_answer;
/* How a binding takes the answer: `read` fills its result `res` (C only,
 * it must not raise), then the request's memory is freed, then `push`
 * pushes the call's results from `res` and returns their number (it may
 * raise: it holds nothing). */
typedef struct mw__net_reader {
    void (*read)(const mw__net_answer *a, void *res);
    int (*push)(lua_State *L, void *res);
} mw__net_reader;

/*
 * For bindings whose URL the engine chose (ecs_lua.c), never a check's:
 * GETs `url` without following redirects, link-local addresses allowed,
 * the body capped at `max_body` bytes, waiting at most `timeout` seconds
 * (0, or more than the run has left: what it has left, as mw.http), and
 * suspends the caller like mw.http; the resumed call returns what
 * `reader` pushes (at once, without suspending, when the request cannot
 * start). `res` must live until then: keep it in a userdata on the
 * caller's stack. `fn` names the call in errors.
 */
int mw__net_engine_get(lua_State *L, const char *fn, const char *url, double timeout,
                       size_t max_body, const mw__net_reader *reader, void *res);
/* ---- net.c, for the bindings of other files that wait the same way
 * (aws_lua.c): an operation is made, handed its work, and the caller
 * yields on it; the work's completion stores the results and wakes the
 * run; the continuation takes the op, reads the results and frees it. */
typedef struct mw__io_op mw__io_op;
typedef struct mw__net_results {
    mw_code code;
    long status;
    const char *body; /* NUL-terminated, `len` bytes; borrowed from the op */
    size_t len;
    const char *err; /* NULL when code is MW_OK */
} mw__net_results;
/* Raises unless the caller may suspend; returns the sandbox. */
mw__sandbox *mw__net_io_ready(lua_State *L, const char *fn);
/* Seconds an I/O call may wait (the run's budget less its margin). */
double mw__net_io_left(const mw__sandbox *sb);
/* A new operation named `what` ("ecs ListClusters"); raises on OOM. */
mw__io_op *mw__net_op_new(lua_State *L, const char *what);
/* Its work: an AWS request, cancelled with the op. */
void mw__net_op_set_aws(mw__io_op *op, mw__aws_req *req);
/* Stores the results (copied) and wakes the run. */
void mw__net_op_complete(mw__io_op *op, mw_code code, long status, const char *body, size_t len,
                         const char *err);
/* Makes `op` the run's pending operation and yields to `k`. */
int mw__net_op_wait(lua_State *L, mw__io_op *op, lua_KFunction k);
/* In `k`: the completed op, now the caller's. */
mw__io_op *mw__net_op_take(lua_State *L);
void mw__net_op_results(const mw__io_op *op, mw__net_results *out);
void mw__net_op_free(mw__io_op *op);

/* ---- aws_lua.c: sets the read-only `mw.aws` (request{...}) in the
 * table on top. */
void mw__open_aws(lua_State *L);

/* ---- openmetrics_lua.c
 *
 * Pushes the read-only `mw.openmetrics` table (for lua/api.c):
 *   submit(text [, opts]) -> submitted, skipped
 *     opts: namespace, raw_metric_prefix, metrics, exclude_metrics,
 *     exclude_labels, include_labels, rename_labels, tags,
 *     collect_histogram_buckets (alias send_histograms_buckets),
 *     type_overrides, globs. A bad option raises, naming it. Samples go
 *     to the sandbox's sample destination; skipped = malformed lines + refused
 *     samples, reported once per call as a warning (mw.warning).
 *   parse(text) -> {{name=, type=, help=, unit=, samples={{name=,
 *     labels={...}, value=}, ...}}, ...}, skipped
 */
int mw__open_openmetrics(lua_State *L);

/* ---- container_lua.c: sets the read-only `mw.container` (stats(id [,
 * pid]): a container's cgroup numbers) in the table on top. */
void mw__open_container(lua_State *L);

/* ---- ecs_lua.c: sets the read-only `mw.ecs` (task_stats(id [, opts]),
 * task_limits(id [, opts]): one container's numbers from the task
 * metadata endpoint) in the table on top. */
void mw__open_ecs(lua_State *L);

/* ---- state_lua.c: sets the read-only `mw.state` (get(key), set(key,
 * value), keys([prefix]): the instance's persistent key-value store) in
 * the table on top. */
void mw__open_state(lua_State *L);

/* ---- json.c */

/* Pushes a Lua copy of `j` (NULL pushes an empty table). May raise. */
void mw__json_push_cjson(lua_State *L, const cJSON *j);
/* mw.json.decode / mw.json.encode. */
int mw__json_decode(lua_State *L);
int mw__json_encode(lua_State *L);

#endif

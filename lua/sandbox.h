/*
 * sandbox.h - one check instance's Lua sandbox, and the time budget that
 * stops runaway runs.
 *
 * Each instance owns one mw__sandbox: its environment in a lua_State it
 * shares with the other instances of its check on its worker (see
 * "shares" below), or in one of its own; a capped allocator that charges
 * it what its code holds, only the safe libraries, globals a fresh table
 * over a read-only `mw` API, and the check script loaded as text. A run is a
 * coroutine: mw__sandbox_begin() prepares it, mw__sandbox_resume() runs it
 * until it finishes, fails, or is preempted at the end of its time slice
 * (it is then resumed later, so one busy check never holds a worker).
 *
 * The budget (mw__budget) is one watchdog thread per engine watching one
 * slot per worker thread. While a run stays within its slice and deadline
 * no hook is installed (no per-instruction cost); past the slice a hook
 * yields; past the deadline, a hook raises on every instruction, so pcall
 * cannot swallow the stop. Pattern matching (string.find/match/gmatch/
 * gsub) and table.sort check the same flag, so a backtracking pattern from
 * an untrusted label cannot hang a worker.
 *
 * Signals: Lua only lets the thread running a state install a hook on it,
 * so the watchdog interrupts the worker with the budget signal,
 * SIGRTMIN + MW_BUDGET_SIGNAL_OFFSET, sent with pthread_kill() to that
 * worker only, and the handler installs the hook. The handler is installed
 * once per process, on the first run, with SA_RESTART and an empty mask;
 * it does nothing on a thread that is not running a sandbox. Embedders:
 *  - a worker's blocking calls may see EINTR while its run is past its
 *    slice or deadline (calls SA_RESTART does not restart: poll, sleeps);
 *  - if the signal already has a handler (or is ignored) when the first run
 *    starts, moonwatch leaves it alone; if a worker blocks the signal, its
 *    runs are not signalled. Either way runs fall back to timing
 *    themselves: a hook reads the clock every ~1000 instructions (a few
 *    percent slower Lua), with the same slices and deadline.
 *
 * Threads: a sandbox is used by one worker thread at a time; the watchdog
 * only touches it through its slot, under the slot's lock, and through the
 * signal.
 */
#ifndef MW_SANDBOX_H
#define MW_SANDBOX_H

#include "core/base/aws.h"
#include "core/base/diag.h"
#include "core/base/http.h"
#include "core/base/log.h"
#include "core/base/loop.h"
#include "core/base/store.h"
#include "lua/samples.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mw__sandbox mw__sandbox;
typedef struct mw__lshare mw__lshare;
typedef struct mw__budget mw__budget;
typedef struct mw__budget_slot mw__budget_slot;

/* ------------------------------------------------------------- budget */

/* The budget signal is SIGRTMIN plus this (the public header's). */
#define MW_BUDGET_SIGNAL_OFFSET MW_WATCHDOG_SIGNAL_OFFSET

/*
 * A watchdog for `nslots` workers, preempting runs after `slice` seconds,
 * into `*out`. The thread starts with the first run. `use_signal` 0 makes
 * every run time itself (no signal is ever sent); so does a build under
 * ThreadSanitizer, which holds asynchronous signals back until the
 * thread makes a call it intercepts, never during pure Lua. MW_OK,
 * MW_EINVAL (no slot, a slice that is not positive) or MW_ENOMEM.
 */
mw_code mw__budget_new(unsigned nslots, double slice, int use_signal, mw__budget **out);
/* Joins the watchdog thread. No run may be in progress. */
void mw__budget_free(mw__budget *b);
mw__budget_slot *mw__budget_slot_get(mw__budget *b, unsigned i);

/* ------------------------------------------------------------- shares */

/*
 * One Lua state shared by many instances of one check script (the
 * scheduler keeps one per check script and worker). The script is
 * compiled once per state, as `function(_ENV, ...) <script> end` (line
 * numbers unchanged): each instance calls it with globals of its own, so
 * its module-level locals, upvalues, globals and library tables are its
 * own while the bytecode is shared. `mw`, the library functions and the
 * string metatable are shared and read-only.
 *
 * Memory: every allocation is charged to the instance whose code runs
 * (its script's top level included), and credited back to it when freed,
 * whoever frees it; each instance's memory cap applies to what it holds.
 * The state's cap is the sum of its members' (bounded by
 * MW_LSHARE_MAX_MEM).
 *
 * Threads: a share may be used from any thread, one at a time (it has a
 * lock). Returns NULL with why in `*err` (caller frees with free()) when
 * the script does not compile. The caller holds one reference.
 */
mw__lshare *mw__lshare_new(const char *chunkname, const char *script, size_t len, char **err);
/* Drops a reference; the state is closed with the last (each sandbox in
 * it holds one). NULL is a no-op. */
void mw__lshare_unref(mw__lshare *sh);
/* Whether the state became unusable (it ran out of memory outside what
 * its instances are allowed, or failed outside a protected call): its
 * sandboxes must be made again in a fresh state. */
int mw__lshare_broken(mw__lshare *sh);
/* Bytes the whole state holds now. */
size_t mw__lshare_mem(mw__lshare *sh);

/* ------------------------------------------------------------- sandbox */

/* What a check's I/O may reach (the operator's settings; instance config
 * comes from labels anyone who starts a container controls). */
typedef struct mw__io_policy {
    const char *const *unix_sockets; /* paths mw.http may use as unix_socket */
    size_t n_unix_sockets;
    int allow_link_local; /* 1: link-local addresses (cloud metadata) allowed */
    /* The engine's AWS credentials and requests (mw.aws); borrowed, used
     * from every worker; NULL: mw.aws.request answers nil, err. */
    mw__aws *aws;
} mw__io_policy;

/* Where a sandbox's I/O runs: the loop and HTTP client of the worker the
 * instance is pinned to. Borrowed; outlives the sandboxes that use it. */
typedef struct mw__io_env {
    mw__loop *loop;
    mw__http *http;
    const mw__io_policy *policy;
} mw__io_env;

/* Where the host's /proc and cgroup tree are (the operator's procfs_path
 * and cgroup_root: inside the agent's container, the host's are mounted
 * at /host/proc and /host/sys/fs/cgroup). mw.proc and mw.container read
 * only below these. Borrowed; outlives the sandboxes that use it. */
typedef struct mw__host_paths {
    const char *procfs; /* "/proc" when NULL */
    const char *cgroup; /* "/sys/fs/cgroup" when NULL */
} mw__host_paths;

/* The task metadata endpoint of the ECS task moonwatch runs in, as the
 * engine found it ($ECS_CONTAINER_METADATA_URI_V4, else
 * $ECS_CONTAINER_METADATA_URI: what the ECS agent set, never a check's
 * or a label's choice). mw.ecs reads only below this URL, link-local as
 * it is on AWS (169.254.170.2). Borrowed; outlives the sandboxes that
 * use it. */
typedef struct mw__ecs_endpoint {
    const char *url; /* without trailing '/'; NULL: none */
    const char *why; /* when url is NULL: why there is none; NULL: not set */
} mw__ecs_endpoint;

/* What the engine lends a sandbox for `mw.engine_stats()`. */
typedef void (*mw__stats_fn)(void *ud, mw_engine_stats *out);

typedef struct mw__sandbox_opts {
    const char *check;     /* check name */
    const char *check_id;  /* "<check>:<hash>" */
    const char *chunkname; /* "@path/to/check.lua", for messages */
    const char *script;    /* source text, `script_len` bytes */
    size_t script_len;
    /* The state to live in (its script is used, `script` is not read);
     * NULL: a state of the sandbox's own, made from `script`. */
    mw__lshare *share;
    const cJSON *instance;    /* copied into self.instance */
    const cJSON *init_config; /* copied into self.init_config */
    size_t mem_cap;           /* bytes; 0 = 16 MiB */
    mw__sample_out out;       /* where samples go; its `ud` outlives the sandbox */
    const mw__log *log;       /* borrowed */
    mw__stats_fn stats_fn;    /* may be NULL */
    void *stats_ud;
    const mw__io_env *io;        /* borrowed; NULL: mw.http/mw.tcp/mw.sleep fail */
    const mw__host_paths *paths; /* borrowed; NULL: /proc and /sys/fs/cgroup */
    const mw__ecs_endpoint *ecs; /* borrowed; NULL: no task metadata endpoint */
    /* Where mw.state keeps the instance's state, scoped by check_id;
     * borrowed, outlives the sandbox; NULL: in memory only. */
    mw__store_dir *store;
    /* Called on the loop thread when the I/O a run waits on completes
     * (the run returned MW_RUN_WAITING): resume it then. */
    void (*wake)(void *ud);
    void *wake_ud;
} mw__sandbox_opts;

typedef enum mw__run_status {
    MW_RUN_OK = 0,
    MW_RUN_ERROR,     /* run() raised, or the script is broken */
    MW_RUN_TIMEOUT,   /* past its deadline */
    MW_RUN_NOMEM,     /* past its memory cap */
    MW_RUN_PREEMPTED, /* end of slice: resume it again later */
    MW_RUN_WAITING,   /* suspended on I/O: resume it after `wake` */
} mw__run_status;

/*
 * Creates the state and loads the script (text only); the script must
 * return a table with a `run` function. Returns NULL with a message in
 * `*err` (caller frees with free()) on failure.
 */
mw__sandbox *mw__sandbox_new(const mw__sandbox_opts *o, char **err);
void mw__sandbox_free(mw__sandbox *sb);

/* Prepares a run that must end by monotonic time `deadline` (seconds, as
 * mw__mono()). The first run of a sandbox calls init(self) first. */
void mw__sandbox_begin(mw__sandbox *sb, double deadline);

/* Runs (or continues) the current run on the calling worker, watched
 * through `slot`. */
mw__run_status mw__sandbox_resume(mw__sandbox *sb, mw__budget_slot *slot);

/* Stops the current run (whatever its state) and frees its coroutine;
 * I/O it waits on is cancelled, the sockets it opened are closed. */
void mw__sandbox_abort(mw__sandbox *sb);

/* Stops a run that is out of time while not running (waiting on I/O or
 * preempted): as abort, with the timeout error naming what it waited on.
 * Returns MW_RUN_TIMEOUT. */
mw__run_status mw__sandbox_expire(mw__sandbox *sb);

/* Why the last run failed; "" after a good run. Valid until the next
 * mw__sandbox_begin(). */
const char *mw__sandbox_error(const mw__sandbox *sb);

/* Warnings raised with mw.warning() by the last run. */
unsigned mw__sandbox_warnings(const mw__sandbox *sb);

/* The interval the script's table declares as its default
 * (`min_collection_interval = 60` beside `run`), for configs that set
 * none; 0 when it declares none. */
double mw__sandbox_default_interval(const mw__sandbox *sb);

/* Bytes the sandbox's code allocated in its state and that are not
 * freed yet (its garbage included until collected). */
size_t mw__sandbox_mem(const mw__sandbox *sb);

/* Whether the state the sandbox lives in is unusable (mw__lshare_broken):
 * its runs fail; make the sandbox again in a fresh state. */
int mw__sandbox_broken(const mw__sandbox *sb);

/*
 * Compiles the check script at `path` (text only, in a throwaway state
 * under the default memory cap, nothing run) and adds each problem to
 * `diag` as "path:line: message". MW_OK when the script compiles; else
 * the problem was added: MW_EIO (cannot read it), MW_EPARSE, MW_ENOMEM.
 * For `moonwatch validate`.
 */
mw_code mw__sandbox_check_syntax(const char *path, mw__diag *diag);

#endif

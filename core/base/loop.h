/*
 * loop.h - one event loop per thread: epoll for descriptors, a min-heap
 * of monotonic timers, idle callbacks for work that is ready now, and a
 * wake-up eventfd carrying messages posted from other threads.
 *
 * Every part of the engine plugs into a loop as a source (the Docker
 * events stream, ECS polling, check I/O through curl's socket callbacks,
 * sink delivery) instead of running a loop of its own.
 *
 * Ownership: the loop never owns the mw__timer / mw__io / mw__idle structs
 * handed to it; their owners embed them and must stop them before freeing
 * them. Stopping one from inside any callback is safe, including its own.
 * Only mw__loop_post() and mw__loop_stop() may be called from other
 * threads.
 */
#ifndef MW_LOOP_H
#define MW_LOOP_H

#include "moonwatch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mw__loop mw__loop;
typedef struct mw__timer mw__timer;
typedef struct mw__io mw__io;
typedef struct mw__idle mw__idle;

typedef void (*mw__timer_cb)(mw__timer *t);
typedef void (*mw__io_cb)(mw__io *io, uint32_t events);
typedef void (*mw__idle_cb)(mw__idle *idle);
typedef void (*mw__post_fn)(void *ud);

struct mw__timer {
    uint64_t due; /* monotonic ns */
    uint64_t seq; /* tie-break: earlier armed fires first */
    size_t slot;  /* index in the heap, SIZE_MAX when not armed */
    mw__timer_cb cb;
    void *ud;
};

struct mw__io {
    int fd;
    uint32_t events; /* EPOLLIN | EPOLLOUT ... */
    mw__io_cb cb;
    void *ud;
};

struct mw__idle {
    mw__idle_cb cb;
    void *ud;
    mw__idle *prev, *next;
    int active;
};

/* A new loop into `*out`: MW_OK, MW_ENOMEM, or MW_ESYS when the epoll or
 * eventfd descriptor cannot be made (errno says why). */
mw_code mw__loop_new(mw__loop **out);
/* Frees the loop; messages still queued are dropped (their `ud` is not
 * freed: post only what the poster can release otherwise). */
void mw__loop_free(mw__loop *loop);

/* Runs one iteration: waits up to `timeout_ms` (-1: until something is
 * due; 0: not at all) for descriptors, then fires due timers, idle
 * callbacks and posted messages. Returns the number of callbacks run. */
int mw__loop_run_once(mw__loop *loop, int timeout_ms);
/* Runs until mw__loop_stop(). */
void mw__loop_run(mw__loop *loop);
/* Makes mw__loop_run() return; thread-safe. */
void mw__loop_stop(mw__loop *loop);

/* Queues `fn(ud)` to run on the loop's thread and wakes it; thread-safe.
 * MW_OK, or MW_ENOMEM. */
mw_code mw__loop_post(mw__loop *loop, mw__post_fn fn, void *ud);

/* A descriptor that is readable whenever the loop has work (descriptors
 * ready, a timer due, idle work or a posted message), for hosts that
 * drive the loop from their own. */
int mw__loop_fd(mw__loop *loop);

/* The loop's cached monotonic time (ns), updated each iteration. */
uint64_t mw__loop_now(const mw__loop *loop);
uint64_t mw__loop_update_time(mw__loop *loop);

void mw__timer_init(mw__timer *t, mw__timer_cb cb, void *ud);
/* Arms (or re-arms) `t` to fire once at monotonic time `due` (ns). */
mw_code mw__timer_start(mw__loop *loop, mw__timer *t, uint64_t due);
void mw__timer_stop(mw__loop *loop, mw__timer *t);
static inline int mw__timer_active(const mw__timer *t)
{
    return t->slot != SIZE_MAX;
}
/* Timers armed now. */
size_t mw__loop_timers(const mw__loop *loop);

/* MW_OK, or MW_ESYS when epoll refuses the descriptor (errno). */
mw_code mw__io_start(mw__loop *loop, mw__io *io, int fd, uint32_t events, mw__io_cb cb, void *ud);
mw_code mw__io_modify(mw__loop *loop, mw__io *io, uint32_t events);
void mw__io_stop(mw__loop *loop, mw__io *io);

void mw__idle_init(mw__idle *idle, mw__idle_cb cb, void *ud);
/* While active, the loop does not block and calls `cb` each iteration. */
void mw__idle_start(mw__loop *loop, mw__idle *idle);
void mw__idle_stop(mw__loop *loop, mw__idle *idle);

#endif

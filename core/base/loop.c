/*
 * loop.c - epoll + timer min-heap + idle list + cross-thread messages.
 *
 * The heap is an array of timer pointers; each timer knows its slot so
 * that stopping one is O(log n). Timers due at the same time fire in the
 * order they were armed (seq tie-break), as in libuv.
 *
 * Descriptor events of one epoll_wait batch are dispatched one by one; a
 * watcher stopped during the batch has its remaining entries cleared so
 * its callback never runs on a freed struct.
 */
#include "core/base/loop.h"

#include "core/base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_EVENTS 64

typedef struct heap_entry {
    uint64_t due, seq;
    mw__timer *t;
} heap_entry;

typedef struct post_msg {
    mw__post_fn fn;
    void *ud;
    struct post_msg *next;
} post_msg;

struct mw__loop {
    int epfd;
    int wakefd;  /* eventfd: posted messages and stop */
    int timerfd; /* only armed once a host asked for mw__loop_fd() */
    int external;
    uint64_t now;
    uint64_t timer_seq;
    heap_entry *heap;
    size_t nheap, capheap;
    mw__idle idle_head; /* circular list sentinel */
    mw__io wake_io, timer_io;
    struct epoll_event batch[MAX_EVENTS];
    int nbatch, ibatch;
    pthread_mutex_t post_lock;
    post_msg *post_head, *post_tail;
    atomic_int stopping;
};

/* ------------------------------------------------------------- heap */

/* A 4-ary min-heap whose entries carry their keys, so that sifting
 * compares contiguous memory instead of chasing timer pointers (with
 * thousands of timers spread over as many instances, those were cache
 * misses on every level). */
#define HEAP_D 4

static int key_less(const heap_entry *a, const heap_entry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(mw__loop *loop, size_t i, heap_entry e)
{
    loop->heap[i] = e;
    e.t->slot = i;
}

static void heap_up(mw__loop *loop, size_t i)
{
    heap_entry e = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_D;
        if (!key_less(&e, &loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, e);
}

static void heap_down(mw__loop *loop, size_t i)
{
    heap_entry e = loop->heap[i];
    for (;;) {
        size_t first = HEAP_D * i + 1, m = i;
        const heap_entry *min = &e;
        for (size_t c = first; c < first + HEAP_D && c < loop->nheap; c++)
            if (key_less(&loop->heap[c], min))
                min = &loop->heap[m = c];
        if (m == i)
            break;
        heap_set(loop, i, *min);
        i = m;
    }
    heap_set(loop, i, e);
}

static void heap_remove(mw__loop *loop, mw__timer *t)
{
    size_t i = t->slot;
    heap_entry last = loop->heap[--loop->nheap];
    t->slot = SIZE_MAX;
    if (last.t == t)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last.t->slot);
}

void mw__timer_init(mw__timer *t, mw__timer_cb cb, void *ud)
{
    memset(t, 0, sizeof *t);
    t->slot = SIZE_MAX;
    t->cb = cb;
    t->ud = ud;
}

mw_code mw__timer_start(mw__loop *loop, mw__timer *t, uint64_t due)
{
    if (mw__timer_active(t))
        heap_remove(loop, t);
    if (loop->nheap == loop->capheap) {
        size_t nc = loop->capheap ? loop->capheap * 2 : 64;
        heap_entry *nh = realloc(loop->heap, nc * sizeof *nh);
        if (!nh)
            return MW_ENOMEM;
        loop->heap = nh;
        loop->capheap = nc;
    }
    t->due = due;
    t->seq = loop->timer_seq++;
    heap_set(loop, loop->nheap++, (heap_entry){due, t->seq, t});
    heap_up(loop, t->slot);
    return MW_OK;
}

void mw__timer_stop(mw__loop *loop, mw__timer *t)
{
    if (mw__timer_active(t))
        heap_remove(loop, t);
}

size_t mw__loop_timers(const mw__loop *loop)
{
    return loop->nheap;
}

/* ------------------------------------------------------------- io */

mw_code mw__io_start(mw__loop *loop, mw__io *io, int fd, uint32_t events, mw__io_cb cb, void *ud)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->ud = ud;
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? MW_OK : MW_ESYS;
}

mw_code mw__io_modify(mw__loop *loop, mw__io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->events = events;
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0 ? MW_OK : MW_ESYS;
}

void mw__io_stop(mw__loop *loop, mw__io *io)
{
    if (io->fd < 0)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    for (int i = loop->ibatch; i < loop->nbatch; i++)
        if (loop->batch[i].data.ptr == io)
            loop->batch[i].data.ptr = NULL;
    io->fd = -1;
}

/* ------------------------------------------------------------- idle */

void mw__idle_init(mw__idle *idle, mw__idle_cb cb, void *ud)
{
    memset(idle, 0, sizeof *idle);
    idle->cb = cb;
    idle->ud = ud;
}

void mw__idle_start(mw__loop *loop, mw__idle *idle)
{
    if (idle->active)
        return;
    mw__idle *h = &loop->idle_head;
    idle->prev = h->prev;
    idle->next = h;
    h->prev->next = idle;
    h->prev = idle;
    idle->active = 1;
}

void mw__idle_stop(mw__loop *loop, mw__idle *idle)
{
    MW_UNUSED(loop);
    if (!idle->active)
        return;
    idle->prev->next = idle->next;
    idle->next->prev = idle->prev;
    idle->prev = idle->next = NULL;
    idle->active = 0;
}

static int idle_pending(const mw__loop *loop)
{
    return loop->idle_head.next != &loop->idle_head;
}

/* Runs each idle callback active at the start of the pass once. A
 * callback may stop itself or others: walk with a marker. */
static int run_idles(mw__loop *loop)
{
    int n = 0;
    mw__idle marker = {0};
    mw__idle_start(loop, &marker);
    while (loop->idle_head.next != &marker) {
        mw__idle *i = loop->idle_head.next;
        /* rotate it behind the marker, then call */
        mw__idle_stop(loop, i);
        mw__idle_start(loop, i);
        i->cb(i);
        n++;
    }
    mw__idle_stop(loop, &marker);
    return n;
}

/* ------------------------------------------------------------- posting */

static void drain_fd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0)
        ;
}

mw_code mw__loop_post(mw__loop *loop, mw__post_fn fn, void *ud)
{
    post_msg *m = malloc(sizeof *m);
    if (!m)
        return MW_ENOMEM;
    m->fn = fn;
    m->ud = ud;
    m->next = NULL;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->post_tail)
        loop->post_tail->next = m;
    else
        loop->post_head = m;
    loop->post_tail = m;
    pthread_mutex_unlock(&loop->post_lock);
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof one);
    MW_UNUSED(w);
    return MW_OK;
}

static int run_posted(mw__loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    post_msg *m = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    int n = 0;
    while (m) {
        post_msg *next = m->next;
        m->fn(m->ud);
        free(m);
        m = next;
        n++;
    }
    return n;
}

static void wake_cb(mw__io *io, uint32_t events)
{
    MW_UNUSED(events);
    drain_fd(io->fd);
}

/* ------------------------------------------------------------- loop */

mw_code mw__loop_new(mw__loop **out)
{
    mw_code rc = MW_ENOMEM;
    mw__loop *loop = calloc(1, sizeof *loop);
    *out = NULL;
    if (!loop)
        goto out;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    loop->timerfd = -1;
    loop->idle_head.next = loop->idle_head.prev = &loop->idle_head;
    pthread_mutex_init(&loop->post_lock, NULL);
    rc = MW_ESYS;
    if (loop->epfd < 0 || loop->wakefd < 0)
        goto out;
    if ((rc = mw__io_start(loop, &loop->wake_io, loop->wakefd, EPOLLIN, wake_cb, loop)) != MW_OK)
        goto out;
    mw__loop_update_time(loop);
    *out = loop;
    loop = NULL;
out:
    if (loop) {
        int e = errno;
        mw__loop_free(loop);
        errno = e;
    }
    return rc;
}

void mw__loop_free(mw__loop *loop)
{
    if (!loop)
        return;
    post_msg *m = loop->post_head;
    while (m) {
        post_msg *next = m->next;
        free(m);
        m = next;
    }
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    if (loop->timerfd >= 0)
        close(loop->timerfd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->heap);
    free(loop);
}

uint64_t mw__loop_now(const mw__loop *loop)
{
    return loop->now;
}

uint64_t mw__loop_update_time(mw__loop *loop)
{
    return loop->now = mw__mono_ns();
}

static int posted_pending(mw__loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    int p = loop->post_head != NULL;
    pthread_mutex_unlock(&loop->post_lock);
    return p;
}

static int wait_timeout(mw__loop *loop, int timeout_ms)
{
    if (timeout_ms == 0 || idle_pending(loop) || atomic_load(&loop->stopping))
        return 0;
    if (loop->nheap == 0)
        return timeout_ms;
    uint64_t due = loop->heap[0].due, now = mw__loop_update_time(loop);
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + 999999) / 1000000;
    if (timeout_ms < 0 || ms < (uint64_t)timeout_ms)
        return ms > INT32_MAX ? INT32_MAX : (int)ms;
    return timeout_ms;
}

static int run_timers(mw__loop *loop)
{
    int n = 0;
    mw__loop_update_time(loop);
    while (loop->nheap > 0 && loop->heap[0].due <= loop->now) {
        mw__timer *t = loop->heap[0].t;
        heap_remove(loop, t);
        t->cb(t);
        n++;
    }
    return n;
}

static int dispatch_io(mw__loop *loop, int nev)
{
    int n = 0;
    loop->nbatch = nev;
    for (loop->ibatch = 0; loop->ibatch < loop->nbatch;) {
        struct epoll_event *ev = &loop->batch[loop->ibatch++];
        mw__io *io = ev->data.ptr;
        if (!io)
            continue;
        io->cb(io, ev->events);
        n++;
    }
    loop->nbatch = loop->ibatch = 0;
    return n;
}

/* In hosted mode, make the epoll fd readable when the next timer is due
 * (or at once when work is pending). */
static void arm_external(mw__loop *loop)
{
    struct itimerspec its = {0};
    if (idle_pending(loop) || posted_pending(loop)) {
        its.it_value.tv_nsec = 1;
    } else if (loop->nheap > 0) {
        uint64_t due = loop->heap[0].due;
        its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
        its.it_value.tv_nsec = (long)(due % 1000000000ULL);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1;
    }
    timerfd_settime(loop->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int mw__loop_run_once(mw__loop *loop, int timeout_ms)
{
    int n = 0,
        nev = epoll_wait(loop->epfd, loop->batch, MAX_EVENTS, wait_timeout(loop, timeout_ms));
    if (nev > 0)
        n += dispatch_io(loop, nev);
    n += run_timers(loop);
    if (idle_pending(loop))
        n += run_idles(loop);
    n += run_posted(loop);
    if (loop->external)
        arm_external(loop);
    return n;
}

void mw__loop_run(mw__loop *loop)
{
    while (!atomic_load(&loop->stopping))
        mw__loop_run_once(loop, -1);
    atomic_store(&loop->stopping, 0);
}

void mw__loop_stop(mw__loop *loop)
{
    atomic_store(&loop->stopping, 1);
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof one);
    MW_UNUSED(w);
}

static void timerfd_cb(mw__io *io, uint32_t events)
{
    MW_UNUSED(events);
    drain_fd(io->fd);
}

int mw__loop_fd(mw__loop *loop)
{
    if (!loop->external) {
        loop->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (loop->timerfd < 0 ||
            mw__io_start(loop, &loop->timer_io, loop->timerfd, EPOLLIN, timerfd_cb, loop) != 0)
            return -1;
        loop->external = 1;
        arm_external(loop);
    }
    return loop->epfd;
}

/*
 * test_loop.c - the event loop: timer order and tie-breaks, stopping
 * timers from callbacks, descriptors, idle callbacks, cross-thread posts
 * and the hosted-mode descriptor.
 */
#include "core/base/loop.h"
#include "core/base/util.h"
#include "test.h"
#include "tests/support/make.h"

#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MS 1000000ULL

static int order[16], norder;

static void record_cb(mw__timer *t)
{
    order[norder++] = (int)(intptr_t)t->ud;
}

static void test_timer_order(void)
{
    mw__loop *loop = t_loop();
    mw__timer t[5];
    uint64_t base = mw__mono_ns();
    int dues[5] = {30, 10, 20, 10, 0}; /* ms; two at 10: armed order wins */
    for (int i = 0; i < 5; i++) {
        mw__timer_init(&t[i], record_cb, (void *)(intptr_t)i);
        mw__timer_start(loop, &t[i], base + (uint64_t)dues[i] * MS);
    }
    norder = 0;
    while (norder < 5)
        mw__loop_run_once(loop, 100);
    int want[5] = {4, 1, 3, 2, 0};
    for (int i = 0; i < 5; i++)
        CHECK(order[i] == want[i]);
    CHECK(mw__loop_timers(loop) == 0);
    mw__loop_free(loop);
}

static mw__timer *victim;
static mw__loop *victim_loop;

static void stopper_cb(mw__timer *t)
{
    MW_UNUSED(t);
    mw__timer_stop(victim_loop, victim);
    norder++;
}

static void test_stop_from_callback(void)
{
    mw__loop *loop = t_loop();
    mw__timer a, b, self_rearm;
    uint64_t now = mw__mono_ns();
    mw__timer_init(&a, stopper_cb, NULL);
    mw__timer_init(&b, record_cb, (void *)(intptr_t)7);
    mw__timer_init(&self_rearm, record_cb, (void *)(intptr_t)9);
    victim = &b;
    victim_loop = loop;
    mw__timer_start(loop, &a, now);
    mw__timer_start(loop, &b, now); /* same due, armed after a: a stops it */
    norder = 0;
    mw__loop_run_once(loop, 0);
    CHECK(norder == 1); /* only the stopper ran */
    CHECK(!mw__timer_active(&b));
    /* re-arming an armed timer moves it instead of duplicating it */
    mw__timer_start(loop, &self_rearm, now + 1000 * MS);
    mw__timer_start(loop, &self_rearm, now);
    CHECK(mw__loop_timers(loop) == 1);
    mw__loop_run_once(loop, 0);
    CHECK(norder == 2 && order[1] == 9);
    mw__loop_free(loop);
}

static int io_hits;

static void io_cb(mw__io *io, uint32_t ev)
{
    char buf[16];
    CHECK(ev & EPOLLIN);
    CHECK(read(io->fd, buf, sizeof buf) == 3);
    io_hits++;
}

static void test_io(void)
{
    mw__loop *loop = t_loop();
    int p[2];
    CHECK(pipe(p) == 0);
    mw__io io;
    CHECK(mw__io_start(loop, &io, p[0], EPOLLIN, io_cb, NULL) == 0);
    CHECK(write(p[1], "abc", 3) == 3);
    io_hits = 0;
    mw__loop_run_once(loop, 1000);
    CHECK(io_hits == 1);
    mw__io_stop(loop, &io);
    CHECK(write(p[1], "abc", 3) == 3);
    mw__loop_run_once(loop, 10);
    CHECK(io_hits == 1); /* stopped: no callback */
    close(p[0]);
    close(p[1]);
    mw__loop_free(loop);
}

static int idle_runs;

static void idle_cb(mw__idle *idle)
{
    if (++idle_runs == 3)
        mw__idle_stop(idle->ud, idle);
}

static void test_idle(void)
{
    mw__loop *loop = t_loop();
    mw__idle idle;
    mw__idle_init(&idle, idle_cb, loop);
    mw__idle_start(loop, &idle);
    idle_runs = 0;
    uint64_t t0 = mw__mono_ns();
    for (int i = 0; i < 5; i++)
        mw__loop_run_once(loop, 1000); /* must not block while idle work waits */
    CHECK(idle_runs == 3);
    /* after the idle stopped, iterations 4 and 5 waited up to 1 s each */
    CHECK(mw__mono_ns() - t0 >= 1500 * MS);
    mw__loop_free(loop);
}

static int posted;

static void post_fn(void *ud)
{
    posted += (int)(intptr_t)ud;
}

static void *poster(void *ud)
{
    for (int i = 0; i < 1000; i++)
        mw__loop_post(ud, post_fn, (void *)(intptr_t)1);
    return NULL;
}

static void test_post_from_threads(void)
{
    mw__loop *loop = t_loop();
    pthread_t th[4];
    posted = 0;
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, poster, loop);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 10 && posted < 4000; i++)
        mw__loop_run_once(loop, 100);
    CHECK(posted == 4000);
    mw__loop_free(loop);
}

static void *stopper_thread(void *ud)
{
    usleep(20000);
    mw__loop_stop(ud);
    return NULL;
}

static void test_stop_from_thread(void)
{
    mw__loop *loop = t_loop();
    pthread_t th;
    pthread_create(&th, NULL, stopper_thread, loop);
    uint64_t t0 = mw__mono_ns();
    mw__loop_run(loop); /* returns only because of the stop */
    CHECK(mw__mono_ns() - t0 < 5000 * MS);
    pthread_join(th, NULL);
    mw__loop_free(loop);
}

static void test_hosted_fd(void)
{
    mw__loop *loop = t_loop();
    mw__timer t;
    mw__timer_init(&t, record_cb, (void *)(intptr_t)3);
    int fd = mw__loop_fd(loop);
    CHECK(fd >= 0);
    mw__timer_start(loop, &t, mw__mono_ns() + 30 * MS);
    mw__loop_run_once(loop, 0); /* arms the timerfd for the next due */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 0);    /* nothing due yet */
    CHECK(poll(&pfd, 1, 2000) == 1); /* readable when the timer is due */
    norder = 0;
    mw__loop_run_once(loop, 0);
    CHECK(norder == 1 && order[0] == 3);
    mw__loop_free(loop);
}

int main(void)
{
    test_timer_order();
    test_stop_from_callback();
    test_io();
    test_idle();
    test_post_from_threads();
    test_stop_from_thread();
    test_hosted_fd();
    return TEST_RESULT();
}

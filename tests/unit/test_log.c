/*
 * test_log.c - the log's repeat limiter (log.h) on an injected clock: a
 * repeat within the window is counted, not written; the count comes out
 * in one "repeated N times" line when the window ends (at the next line
 * or the tick) or when the limiter is freed; other lines go through
 * meanwhile; and a crash loop costs a few lines, not thousands.
 */
#include "core/base/log.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct capture {
    double now;
    int n;
    char lines[64][600];
} capture;

static double fake_now(void *ud)
{
    return ((capture *)ud)->now;
}

static void keep(mw_log_level level, const char *where, const char *msg, void *ud)
{
    capture *c = ud;
    if (c->n < 64)
        snprintf(c->lines[c->n], sizeof c->lines[0], "%d %s: %s", (int)level, where ? where : "-",
                 msg);
    c->n++;
}

static mw__log make_log(capture *c)
{
    mw__log log = {.level = MW_LOG_DEBUG, .fd = 2, .fn = keep, .ud = c};
    log.repeats = mw__log_repeats_new(60, fake_now, c);
    return log;
}

static void test_repeats_counted(void)
{
    capture *c = calloc(1, sizeof *c);
    mw__log log = make_log(c);
    CHECK(log.repeats != NULL);
    for (int i = 0; i < 5; i++) {
        c->now = 10 + i;
        mw__error(&log, "redis:abc", "connection refused (%d)", 111);
    }
    CHECK(c->n == 1);
    CHECK_STR(c->lines[0], "3 redis:abc: connection refused (111)");
    /* other lines, from the same source or another, go through */
    mw__warn(&log, "redis:abc", "slow");
    mw__error(&log, "nginx:def", "connection refused (111)");
    mw__info(&log, "redis:abc", "connection refused (111)"); /* another level */
    CHECK(c->n == 4);
    /* the window ends: the count first, then the line starts a new window */
    c->now = 70;
    mw__error(&log, "redis:abc", "connection refused (%d)", 111);
    CHECK(c->n == 6);
    CHECK_STR(c->lines[4], "3 redis:abc: last message repeated 4 times in 60s: connection "
                           "refused (111)");
    CHECK_STR(c->lines[5], "3 redis:abc: connection refused (111)");
    mw__log_repeats_free(&log);
    CHECK(log.repeats == NULL);
    CHECK(c->n == 6); /* nothing held back */
    free(c);
}

static void test_tick_and_free(void)
{
    capture *c = calloc(1, sizeof *c);
    mw__log log = make_log(c);
    mw__error(&log, NULL, "boom");
    mw__error(&log, NULL, "boom");
    c->now = 30;
    mw__log_repeats_tick(&log); /* the window has not ended */
    CHECK(c->n == 1);
    c->now = 61;
    mw__log_repeats_tick(&log);
    CHECK(c->n == 2);
    CHECK_STR(c->lines[1], "3 -: last message repeated 1 time in 61s: boom");
    mw__log_repeats_tick(&log); /* said once */
    CHECK(c->n == 2);
    mw__error(&log, NULL, "boom"); /* a new window */
    mw__error(&log, NULL, "boom");
    mw__error(&log, NULL, "boom");
    CHECK(c->n == 3);
    c->now = 65;
    mw__log_repeats_free(&log); /* stopping: what was held back is said */
    CHECK(c->n == 4);
    CHECK_STR(c->lines[3], "3 -: last message repeated 2 times in 4s: boom");
    free(c);
}

/* A container restarting every 100 ms for 10 minutes, three lines per
 * start, while another source logs now and then. */
static void test_crash_loop(void)
{
    capture *c = calloc(1, sizeof *c);
    mw__log log = make_log(c);
    int written = 0;
    for (int i = 0; i < 6000; i++) {
        c->now = i * 0.1;
        mw__info(&log, "docker", "container web (abc123) started");
        mw__error(&log, "check:web", "connection refused");
        mw__info(&log, "docker", "container web (abc123) died");
        if (i % 600 == 0)
            mw__info(&log, "aggregator", "flushed");
    }
    mw__log_repeats_free(&log);
    written = c->n;
    /* three lines and three counts per minute and source, and the flushes */
    CHECK(written <= 10 * 6 + 10 + 6);
    CHECK(written >= 10 * 3);
    free(c);
}

static void test_off(void)
{
    capture *c = calloc(1, sizeof *c);
    mw__log log = {.level = MW_LOG_DEBUG, .fd = 2, .fn = keep, .ud = c};
    for (int i = 0; i < 3; i++)
        mw__error(&log, NULL, "boom");
    CHECK(c->n == 3); /* no limiter: every line */
    mw__log_repeats_tick(&log);
    mw__log_repeats_free(&log);
    free(c);
}

int main(void)
{
    test_repeats_counted();
    test_tick_and_free();
    test_crash_loop();
    test_off();
    return TEST_RESULT();
}

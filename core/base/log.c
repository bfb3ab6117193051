/*
 * log.c - text and JSON log lines, one write(2) each so that lines from
 * several threads never interleave; the repeat limiter (log.h): a small
 * table of the lines written lately, under a mutex.
 */
#include "core/base/log.h"
#include "core/base/util.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int mw__log_level_parse(const char *s)
{
    for (int i = 0; i <= MW_LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return MW_LOG_WARN;
    return -1;
}

static void stamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void write_json(const mw__log *log, mw_log_level level, const char *ts, const char *where,
                       const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "level", level_names[level]);
    if (where)
        cJSON_AddStringToObject(o, "source", where);
    cJSON_AddStringToObject(o, "msg", msg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return;
    size_t n = strlen(s);
    s[n] = '\n'; /* cJSON's buffer has room: replace the NUL */
    (void)mw__write_all(log->fd, s, n + 1);
    cJSON_free(s);
}

/* One line, as it is: to the callback, else text or JSON on log->fd. */
static void emit(const mw__log *log, mw_log_level level, const char *where, const char *msg)
{
    char ts[40];
    if (log->fn) {
        log->fn(level, where, msg, log->ud);
        return;
    }
    stamp(ts, sizeof ts);
    if (log->json) {
        write_json(log, level, ts, where, msg);
        return;
    }
    char line[2400];
    int n = snprintf(line, sizeof line, "%s %-5s %s%s%s\n", ts, level_names[level],
                     where ? where : "", where ? ": " : "", msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    (void)mw__write_all(log->fd, line, (size_t)n);
}

/* ------------------------------------------------------------- repeats */

#define REPEAT_SLOTS 64
#define REPEAT_TEXT  512 /* what a slot keeps of the line: compared and repeated */

typedef struct repeat_slot {
    int used;
    mw_log_level level;
    uint64_t hash;
    double first;   /* when the window began: the line was written */
    unsigned count; /* repeats since, not written */
    char where[96];
    char msg[REPEAT_TEXT];
} repeat_slot;

struct mw__log_repeats {
    pthread_mutex_t mu;
    double window;
    double (*now)(void *ud);
    void *ud;
    repeat_slot slots[REPEAT_SLOTS];
};

static double mono_now(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

mw__log_repeats *mw__log_repeats_new(double window, double (*now)(void *ud), void *ud)
{
    mw__log_repeats *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->window = window;
    r->now = now ? now : mono_now;
    r->ud = now ? ud : NULL;
    return r;
}

static uint64_t line_hash(mw_log_level level, const char *where, const char *msg)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)level;
    for (const char *p = where ? where : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* where and msg apart */
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* The slot's "repeated" line when it held back any, then the slot freed. */
static void release(const mw__log *log, repeat_slot *s, double now)
{
    if (s->used && s->count > 0) {
        char line[REPEAT_TEXT + 96];
        snprintf(line, sizeof line, "last message repeated %u time%s in %.0fs: %s", s->count,
                 s->count == 1 ? "" : "s", now - s->first, s->msg);
        emit(log, s->level, s->where[0] ? s->where : NULL, line);
    }
    s->used = 0;
}

static void sweep(const mw__log *log, mw__log_repeats *r, double now)
{
    for (size_t i = 0; i < REPEAT_SLOTS; i++)
        if (r->slots[i].used && now - r->slots[i].first >= r->window)
            release(log, &r->slots[i], now);
}

static int same(const repeat_slot *s, mw_log_level level, uint64_t h, const char *where,
                const char *msg)
{
    return s->used && s->hash == h && s->level == level &&
           !strncmp(s->where, where ? where : "", sizeof s->where - 1) &&
           !strncmp(s->msg, msg, sizeof s->msg - 1);
}

/* As much of `src` as fits, NUL-terminated. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A free slot, else the oldest one, released. */
static repeat_slot *take_slot(const mw__log *log, mw__log_repeats *r, double now)
{
    repeat_slot *oldest = &r->slots[0];
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        if (!r->slots[i].used)
            return &r->slots[i];
        if (r->slots[i].first < oldest->first)
            oldest = &r->slots[i];
    }
    release(log, oldest, now);
    return oldest;
}

/* 1 when the line is a repeat within its window (counted, not to be
 * written); else 0, the line remembered. Under r->mu. */
static int held_back(const mw__log *log, mw__log_repeats *r, mw_log_level level, const char *where,
                     const char *msg)
{
    double now = r->now(r->ud);
    uint64_t h = line_hash(level, where, msg);
    sweep(log, r, now);
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        if (same(&r->slots[i], level, h, where, msg)) {
            r->slots[i].count++;
            return 1;
        }
    }
    repeat_slot *s = take_slot(log, r, now);
    *s = (repeat_slot){.used = 1, .level = level, .hash = h, .first = now};
    copy_text(s->where, sizeof s->where, where ? where : "");
    copy_text(s->msg, sizeof s->msg, msg);
    return 0;
}

void mw__log_repeats_tick(const mw__log *log)
{
    mw__log_repeats *r = log ? log->repeats : NULL;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    sweep(log, r, r->now(r->ud));
    pthread_mutex_unlock(&r->mu);
}

void mw__log_repeats_free(mw__log *log)
{
    mw__log_repeats *r = log ? log->repeats : NULL;
    if (!r)
        return;
    double now = r->now(r->ud);
    for (size_t i = 0; i < REPEAT_SLOTS; i++)
        release(log, &r->slots[i], now);
    log->repeats = NULL;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ------------------------------------------------------------- writing */

mw_log_level mw__log_level(const mw__log *log)
{
    return (mw_log_level)__atomic_load_n((const int *)&log->level, __ATOMIC_RELAXED);
}

void mw__log_set_level(mw__log *log, mw_log_level level)
{
    __atomic_store_n((int *)&log->level, (int)level, __ATOMIC_RELAXED);
}

void mw__log_write(const mw__log *log, mw_log_level level, const char *where, const char *fmt, ...)
{
    if (!log || level < mw__log_level(log) || level >= MW_LOG_OFF)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mw__log_repeats *r = log->repeats;
    if (r && level >= MW_LOG_WARN) {
        /* "repeated" lines and this one in order: written under the lock */
        pthread_mutex_lock(&r->mu);
        if (!held_back(log, r, level, where, msg))
            emit(log, level, where, msg);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    emit(log, level, where, msg);
}

/*
 * log.c - text and JSON log lines, one write(2) each so that lines from
 * several threads never interleave.
 */
#include "core/base/log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
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

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
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
    write_all(log->fd, s, n + 1);
    cJSON_free(s);
}

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
    char msg[2048], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
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
    write_all(log->fd, line, (size_t)n);
}

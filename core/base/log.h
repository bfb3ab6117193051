/*
 * log.h - the engine's logger: one per engine, text or JSON lines on a
 * stream (stderr by default), filtered by level.
 *
 * A mw__log is owned by its engine and outlives every module that borrows
 * it. Writing is thread-safe: one write(2) per line, or one call of the
 * embedder's callback (mw_log_fn, which must be thread-safe itself).
 * Levels are the public mw_log_level.
 */
#ifndef MW_LOG_H
#define MW_LOG_H

#include "moonwatch.h"

typedef struct mw__log {
    mw_log_level level;
    int json;     /* 1: one JSON object per line */
    int fd;       /* where lines go; 2 by default */
    mw_log_fn fn; /* when set, lines go to it instead (text only) */
    void *ud;
} mw__log;

/* The level, and a change of it while other threads log (a config
 * reload): both atomic, so any thread may read it while one sets it. */
mw_log_level mw__log_level(const mw__log *log);
void mw__log_set_level(mw__log *log, mw_log_level level);

/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int mw__log_level_parse(const char *s);

/* Writes one line: `where` names the subject (a check id, a file, a
 * module) and may be NULL. A NULL `log` writes nothing. */
void mw__log_write(const mw__log *log, mw_log_level level, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define mw__debug(log, where, ...) mw__log_write(log, MW_LOG_DEBUG, where, __VA_ARGS__)
#define mw__info(log, where, ...)  mw__log_write(log, MW_LOG_INFO, where, __VA_ARGS__)
#define mw__warn(log, where, ...)  mw__log_write(log, MW_LOG_WARN, where, __VA_ARGS__)
#define mw__error(log, where, ...) mw__log_write(log, MW_LOG_ERROR, where, __VA_ARGS__)

#endif

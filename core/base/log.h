/*
 * log.h - the engine's logger: one per engine, text or JSON lines on a
 * stream (stderr by default), filtered by level.
 *
 * A mw__log is owned by its engine and outlives every module that borrows
 * it. Writing is thread-safe: one write(2) per line, or one call of the
 * embedder's callback (mw_log_fn, which must be thread-safe itself).
 * Levels are the public mw_log_level.
 *
 * Repeats: with a mw__log_repeats attached (the engine's log has one), a
 * warning or error whose (level, where, text) was written less than
 * `window` seconds ago is not written again but counted; when the window ends (seen at the
 * next line written, or at mw__log_repeats_tick()), or the limiter is
 * freed, one line says "repeated N times" instead. A crash-looping
 * container thus costs a few lines a minute, whatever else is logged in
 * between. Info and debug lines are state changes (scheduled, unscheduled,
 * a source connected) and are never held back: a log that hid a
 * re-schedule for a minute would tell the operator a wrong state, and
 * Docker's restart backoff already bounds how often they come. The limiter belongs to whoever made
 * it and outlives the log. Lines are written under its lock then, so the mw_log_fn callback must
 * not write to the same log.
 */
#ifndef MW_LOG_H
#define MW_LOG_H

#include "moonwatch.h"

typedef struct mw__log_repeats mw__log_repeats;

typedef struct mw__log {
    mw_log_level level;
    int json;     /* 1: one JSON object per line */
    int fd;       /* where lines go; 2 by default */
    mw_log_fn fn; /* when set, lines go to it instead (text only) */
    void *ud;
    mw__log_repeats *repeats; /* NULL: every line is written */
} mw__log;

/* The default window: 60 s. */
#define MW_LOG_REPEAT_WINDOW 60.0

/* A repeat limiter: `window` seconds; `now` (seconds, any epoch; NULL:
 * CLOCK_MONOTONIC) with `ud` is the clock, injectable for tests. NULL on
 * OOM (then nothing is limited). */
mw__log_repeats *mw__log_repeats_new(double window, double (*now)(void *ud), void *ud);

/* Writes the "repeated" lines of the windows that have ended. */
void mw__log_repeats_tick(const mw__log *log);

/* Writes the "repeated" lines still pending, then frees log->repeats and
 * clears it. */
void mw__log_repeats_free(mw__log *log);

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

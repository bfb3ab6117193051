/*
 * watch.h - inotify on directories (the engine's checks and templates
 * directories, and each directory inside them, as `<check>.d`), plugged
 * into a loop as an mw__io: any change arms a debounce timer, and when no
 * change came for that long `fn(ud)` runs once (the engine's reload). A
 * directory made inside a watched one is watched from then on.
 *
 * Ownership: a mw__watch owns its inotify descriptor, its timer and its
 * copies of the paths; it borrows the loop and the log, which outlive
 * it. Loop thread only.
 */
#ifndef MW_WATCH_H
#define MW_WATCH_H

#include "moonwatch.h"
#include "core/base/log.h"
#include "core/base/loop.h"

#include <stddef.h>

typedef struct mw__watch mw__watch;

/* Watches `dirs` (and their subdirectories; a directory that does not
 * exist is skipped) on `loop`, calling `fn(ud)` `debounce_ms` after the
 * last change. MW_OK; MW_ESYS when inotify cannot be had (errno);
 * MW_ENOMEM. */
mw_code mw__watch_new(mw__loop *loop, const mw__log *log, const char *const *dirs, size_t ndirs,
                      unsigned debounce_ms, void (*fn)(void *ud), void *ud, mw__watch **out);
/* Stops watching and frees; NULL is a no-op. */
void mw__watch_free(mw__watch *w);

/* Directories watched now. */
size_t mw__watch_count(const mw__watch *w);

#endif

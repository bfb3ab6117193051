/*
 * diag.h - a list of problems found while loading files, each rendered as
 * "file:line:col: message" (line and col omitted when 0).
 *
 * A mw__diag owns its strings; mw__diag_free() releases them. Loaders add
 * to it and go on with the next file: one bad file never stops the others.
 */
#ifndef MW_DIAG_H
#define MW_DIAG_H

#include "moonwatch.h"

#include <stddef.h>

typedef struct mw__diag {
    char **items;
    size_t n, cap;
} mw__diag;

/* Appends a problem; MW_OK, or MW_ENOMEM (the problem is dropped). */
mw_code mw__diag_add(mw__diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void mw__diag_free(mw__diag *d);

#endif

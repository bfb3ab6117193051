/*
 * diag.c - collecting "file:line:col: message" problems.
 */
#include "core/base/diag.h"

#include "core/base/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int mw__diag_add(mw__diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mw__vsprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return -1;
    char *item;
    if (line > 0 && col > 0)
        item = mw__sprintf("%s:%d:%d: %s", file, line, col, msg);
    else if (line > 0)
        item = mw__sprintf("%s:%d: %s", file, line, msg);
    else
        item = mw__sprintf("%s: %s", file, msg);
    free(msg);
    if (!item)
        return -1;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        char **ni = realloc(d->items, nc * sizeof *ni);
        if (!ni) {
            free(item);
            return -1;
        }
        d->items = ni;
        d->cap = nc;
    }
    d->items[d->n++] = item;
    return 0;
}

void mw__diag_free(mw__diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}

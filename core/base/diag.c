/*
 * diag.c - collecting "file:line:col: message" problems.
 */
#include "core/base/diag.h"

#include "core/base/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

mw_code mw__diag_add(mw__diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    char *msg, *item = NULL;
    mw_code rc = MW_ENOMEM;
    va_start(ap, fmt);
    msg = mw__vsprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        goto out;
    if (line > 0 && col > 0)
        item = mw__sprintf("%s:%d:%d: %s", file, line, col, msg);
    else if (line > 0)
        item = mw__sprintf("%s:%d: %s", file, line, msg);
    else
        item = mw__sprintf("%s: %s", file, msg);
    if (!item || mw__grow(&d->items, &d->cap, d->n + 1, sizeof *d->items) != MW_OK)
        goto out;
    d->items[d->n++] = item;
    item = NULL;
    rc = MW_OK;
out:
    free(msg);
    free(item);
    return rc;
}

void mw__diag_free(mw__diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}

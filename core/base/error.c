/*
 * error.c - the engine's one error type, mw_code (moonwatch.h), as text,
 * and mw_free() for the memory the library hands to its caller.
 */
#include "moonwatch.h"

#include "core/base/util.h"

#include <stdlib.h>

const char *mw_strerror(mw_code code)
{
    static const char *const msgs[] = {
        "ok",        "out of memory", "invalid argument",   "i/o error", "parse error",
        "not found", "wrong state",   "system call failed", "timed out", "check failed",
    };
    if ((size_t)code < MW_ARRAY_LEN(msgs))
        return msgs[code];
    return "unknown error";
}

void mw_free(void *p)
{
    free(p);
}

/*
 * make.h - the engine's constructors as expressions, for tests and
 * benchmarks: each returns the new object, or prints why it could not be
 * made and exits (nothing after it could run). The caller frees the
 * object as usual.
 */
#ifndef MW_TEST_MAKE_H
#define MW_TEST_MAKE_H

#include "moonwatch.h"
#include "core/base/http.h"
#include "core/base/loop.h"
#include "lua/sandbox.h"

#include <stdio.h>
#include <stdlib.h>

/* `obj` as made by a call that returned `rc` (evaluated before: the
 * order of a call's arguments is unspecified). */
static inline void *t_made(mw_code rc, void *obj, const char *what)
{
    if (rc != MW_OK || !obj) {
        fprintf(stderr, "cannot make %s: %s\n", what, mw_strerror(rc));
        exit(2);
    }
    return obj;
}

static inline mw__loop *t_loop(void)
{
    mw__loop *l = NULL;
    mw_code rc = mw__loop_new(&l);
    return t_made(rc, l, "a loop");
}

static inline mw__http *t_http(mw__loop *loop)
{
    mw__http *h = NULL;
    mw_code rc = mw__http_new(loop, &h);
    return t_made(rc, h, "an HTTP client");
}

/* A watchdog that signals its workers (where the process allows it). */
static inline mw__budget *t_budget(unsigned nslots, double slice)
{
    mw__budget *b = NULL;
    mw_code rc = mw__budget_new(nslots, slice, 1, &b);
    return t_made(rc, b, "a budget");
}

/* An engine from `cfg` (NULL: the defaults). */
static inline mw_engine *t_engine(const mw_config *cfg)
{
    mw_engine *eng = NULL;
    char *err = NULL;
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    if (rc != MW_OK) {
        fprintf(stderr, "cannot make an engine: %s\n", err ? err : mw_strerror(rc));
        exit(2);
    }
    return eng;
}

#endif

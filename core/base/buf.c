/*
 * buf.c - the capped byte buffer. Growth doubles (bounded by the cap + 1
 * for the NUL) so appends are amortized O(1); a secret buffer's growth
 * copies and zeroes instead of realloc, which could leave a copy.
 */
#include "core/base/buf.h"

#include "core/base/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mw__buf_init(mw__buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = 0;
}

void mw__buf_init_secret(mw__buf *b, size_t max)
{
    mw__buf_init(b, max);
    b->secret = 1;
}

void mw__buf_free(mw__buf *b)
{
    if (b->secret && b->p)
        mw__wipe(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void mw__buf_reset(mw__buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

mw_code mw__buf_reserve(mw__buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return MW_ENOMEM;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return MW_OK;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    /* Never allocate much past what the cap can ever use. */
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    char *np = b->secret ? malloc(ncap) : realloc(b->p, ncap);
    if (!np)
        return MW_ENOMEM;
    if (b->secret && b->p) {
        memcpy(np, b->p, b->len + 1);
        mw__wipe(b->p, b->cap);
        free(b->p);
    }
    if (!b->p)
        np[0] = '\0';
    b->p = np;
    b->cap = ncap;
    return MW_OK;
}

void mw__buf_setlen(mw__buf *b, size_t len)
{
    b->len = len;
    if (b->p)
        b->p[len] = '\0';
}

mw_code mw__buf_add(mw__buf *b, const void *p, size_t n)
{
    mw_code rc = mw__buf_reserve(b, n);
    if (rc != MW_OK)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    mw__buf_setlen(b, b->len + n);
    return MW_OK;
}

mw_code mw__buf_adds(mw__buf *b, const char *s)
{
    return mw__buf_add(b, s, strlen(s));
}

mw_code mw__buf_addc(mw__buf *b, char c)
{
    return mw__buf_add(b, &c, 1);
}

mw_code mw__buf_addf(mw__buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap, cp;
    va_start(ap, fmt);
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    mw_code rc = MW_EINVAL;
    if (n < 0)
        goto out;
    if ((size_t)n < sizeof(small)) {
        rc = mw__buf_add(b, small, (size_t)n);
        goto out;
    }
    /* Too long for the stack: format straight into the buffer. */
    rc = mw__buf_reserve(b, (size_t)n);
    if (rc != MW_OK)
        goto out;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, cp);
    b->len += (size_t)n;
out:
    va_end(cp);
    va_end(ap);
    return rc;
}

const char *mw__buf_str(const mw__buf *b)
{
    return b->p ? b->p : "";
}

char *mw__buf_tail(mw__buf *b)
{
    return b->p + b->len;
}

char *mw__buf_take(mw__buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

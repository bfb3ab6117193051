/*
 * context.c - context keys: validation, canonical form and hashing.
 *
 * A context is identified by its metric name, host and sorted unique tags,
 * written once as one NUL-separated byte string (see mw__agg_sample in
 * aggregator.h). Building that key where a sample is submitted, hash
 * included, keeps the aggregator's locked section down to a table lookup
 * and a memcmp. Nothing here holds state.
 */
#include "core/aggregator.h"

#include <stdlib.h>
#include <string.h>

#define K1 0x9E3779B97F4A7C15ULL
#define K2 0xC2B2AE3D27D4EB4FULL
#define K3 0x165667B19E3779F9ULL

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t round64(uint64_t acc, uint64_t w)
{
    return rotl(acc ^ (w * K2), 31) * K1;
}

/* Murmur3's finalizer: every input bit reaches every output bit. */
static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/*
 * Two independent 64-bit lanes over 16-byte blocks so the multiplies
 * overlap; a collision only costs a key compare, never a wrong context.
 */
uint64_t mw__agg_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t a = K3 ^ n, b = K1;
    size_t left = n;
    for (; left >= 16; left -= 16, p += 16) {
        a = round64(a, rd64(p));
        b = round64(b, rd64(p + 8));
    }
    unsigned char tail[16] = {0};
    if (left)
        memcpy(tail, p, left);
    a = round64(a, rd64(tail));
    b = round64(b, rd64(tail + 8));
    return fmix(a ^ rotl(b, 27));
}

mw_code mw__agg_check_name(mw__str s, size_t max)
{
    if (!s.p || s.n == 0 || s.n > max || memchr(s.p, '\0', s.n))
        return MW_EINVAL;
    return MW_OK;
}

static int str_cmp(const mw__str *a, const mw__str *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c)
        return c;
    return (a->n > b->n) - (a->n < b->n);
}

static int str_qcmp(const void *a, const void *b)
{
    return str_cmp(a, b);
}

/* Insertion sort for the usual handful of tags; qsort past that. */
static void tags_sort(mw__str *t, size_t n)
{
    if (n > 16) {
        qsort(t, n, sizeof(*t), str_qcmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        mw__str x = t[i];
        size_t j = i;
        for (; j > 0 && str_cmp(&t[j - 1], &x) > 0; j--)
            t[j] = t[j - 1];
        t[j] = x;
    }
}

size_t mw__agg_tags_canon(mw__str *tags, size_t n)
{
    size_t k = 0;
    tags_sort(tags, n);
    for (size_t i = 0; i < n; i++) {
        if (tags[i].n == 0 || (k > 0 && str_cmp(&tags[k - 1], &tags[i]) == 0))
            continue;
        tags[k++] = tags[i];
    }
    return k;
}

size_t mw__agg_key_bound(mw__str name, mw__str host, const mw__str *inst, size_t ninst,
                         const mw__str *tags, size_t ntags)
{
    size_t n = name.n + host.n + 2 + ninst + ntags;
    for (size_t i = 0; i < ninst; i++)
        n += inst[i].n;
    for (size_t i = 0; i < ntags; i++)
        n += tags[i].n;
    return n;
}

static char *put(char *d, mw__str s)
{
    if (s.n)
        memcpy(d, s.p, s.n);
    d[s.n] = '\0';
    return d + s.n + 1;
}

/* Appends the next tag of the merge unless it repeats the previous one. */
static char *put_tag(char *d, const mw__str **last, const mw__str *t, size_t *nkept)
{
    if (t->n == 0 || (*last && str_cmp(*last, t) == 0))
        return d;
    *last = t;
    (*nkept)++;
    return put(d, *t);
}

size_t mw__agg_key_write(char *dst, mw__str name, mw__str host, const mw__str *inst, size_t ninst,
                         mw__str *tags, size_t ntags, size_t *nkept)
{
    char *d = put(put(dst, name), host);
    const mw__str *last = NULL;
    size_t i = 0, j = 0;
    *nkept = 0;
    tags_sort(tags, ntags);
    /* Merge two sorted lists; put_tag() drops the duplicates. */
    while (i < ninst || j < ntags) {
        if (j == ntags || (i < ninst && str_cmp(&inst[i], &tags[j]) <= 0))
            d = put_tag(d, &last, &inst[i++], nkept);
        else
            d = put_tag(d, &last, &tags[j++], nkept);
    }
    return (size_t)(d - dst);
}

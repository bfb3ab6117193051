/*
 * agg_key.c - the aggregator's context keys: validation, canonical form and hashing.
 *
 * A context is identified by its metric name, host and sorted unique tags,
 * written once as one NUL-separated byte string (see mw__agg_sample in
 * aggregator.h). Building that key where a sample is submitted, hash
 * included, keeps the aggregator's locked section down to a table lookup
 * and a memcmp. Nothing here holds state.
 */
#include "core/pipeline/aggregator.h"

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

/* One multiply per word (latency, not throughput, is the limit); the
 * rotate brings high product bits back down for the next word. */
static uint64_t round64(uint64_t acc, uint64_t w)
{
    return rotl((acc ^ w) * K1, 29);
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
 * Four independent 64-bit lanes over 32-byte blocks so the multiplies
 * overlap (keys are 100-200 bytes: name, host, half a dozen tags). A
 * collision only costs a key compare, never a wrong context.
 */
uint64_t mw__agg_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t a = K3 ^ n, b = K1, c = K2, d = K3 + K1;
    size_t left = n;
    for (; left >= 32; left -= 32, p += 32) {
        a = round64(a, rd64(p));
        b = round64(b, rd64(p + 8));
        c = round64(c, rd64(p + 16));
        d = round64(d, rd64(p + 24));
    }
    unsigned char tail[32] = {0};
    const unsigned char *t = tail;
    if (n >= 32)
        t = (const unsigned char *)data + n - 32; /* overlap, no copy */
    else if (left)
        memcpy(tail, p, left);
    a = round64(a, rd64(t));
    b = round64(b, rd64(t + 8));
    c = round64(c, rd64(t + 16));
    d = round64(d, rd64(t + 24));
    return fmix(a ^ rotl(b, 17) ^ rotl(c, 31) ^ rotl(d, 47));
}

mw_code mw__agg_check_name(mw__str s, size_t max)
{
    if (!s.p || s.n == 0 || s.n > max || memchr(s.p, '\0', s.n))
        return MW_EINVAL;
    return MW_OK;
}

/* Big-endian load: unsigned order of words is bytewise order. */
static uint64_t rd64be(const unsigned char *p)
{
    return __builtin_bswap64(rd64(p));
}

/* Bytewise order, a word at a time: tags are short and compared often. */
static int str_cmp(const mw__str *a, const mw__str *b)
{
    const unsigned char *x = (const unsigned char *)a->p, *y = (const unsigned char *)b->p;
    size_t n = a->n < b->n ? a->n : b->n, i = 0;
    /* Most tags differ in their first byte ("env:" vs "service:"). */
    if (n && x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    for (; i + 8 <= n; i += 8) {
        uint64_t u = rd64be(x + i), v = rd64be(y + i);
        if (u != v)
            return u < v ? -1 : 1;
    }
    for (; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return (a->n > b->n) - (a->n < b->n);
}

static int str_eq(const mw__str *a, const mw__str *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
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
        if (tags[i].n == 0 || (k > 0 && str_eq(&tags[k - 1], &tags[i])))
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

static void wr64(char *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

/* Tags are mostly 8-32 bytes: two or four overlapping word moves beat a
 * call to memcpy, and never read outside the source. */
static char *put(char *d, mw__str s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    if (s.n >= 8 && s.n <= 16) {
        uint64_t a = rd64(p), b = rd64(p + s.n - 8);
        wr64(d, a);
        wr64(d + s.n - 8, b);
    } else if (s.n > 16 && s.n <= 32) {
        uint64_t a = rd64(p), b = rd64(p + 8), c = rd64(p + s.n - 16), e = rd64(p + s.n - 8);
        wr64(d, a);
        wr64(d + 8, b);
        wr64(d + s.n - 16, c);
        wr64(d + s.n - 8, e);
    } else if (s.n) {
        memcpy(d, p, s.n);
    }
    d[s.n] = '\0';
    return d + s.n + 1;
}

/* Appends the next tag of the merge unless it repeats the previous one. */
static char *put_tag(char *d, const mw__str **last, const mw__str *t, size_t *nkept)
{
    if (t->n == 0 || (*last && str_eq(*last, t)))
        return d;
    *last = t;
    (*nkept)++;
    return put(d, *t);
}

/* The first 7 bytes of `t`, big-endian and zero-padded: their unsigned
 * order is the strings' bytewise order unless two prefixes are equal. */
static uint64_t prefix7(const mw__str *t)
{
    const unsigned char *p = (const unsigned char *)t->p;
    uint64_t v = 0;
    if (t->n >= 8)
        return rd64be(p) >> 8;
    /* Built in a register: bytes stored to a buffer then read back as a
     * word would stall store forwarding. */
    for (size_t i = 0; i < 7; i++)
        v = v << 8 | (i < t->n ? p[i] : 0);
    return v;
}

/* Compare-exchange of two locals: min/max compile to cmov, so the
 * network runs in registers with no branches to mispredict. */
#define CSWAP(a, b)                                                                                \
    do {                                                                                           \
        uint64_t lo_ = (a) < (b) ? (a) : (b), hi_ = (a) < (b) ? (b) : (a);                         \
        (a) = lo_;                                                                                 \
        (b) = hi_;                                                                                 \
    } while (0)

/* Knuth's 19-comparator network for 8 keys. */
static void sort8(uint64_t *k)
{
    uint64_t a = k[0], b = k[1], c = k[2], d = k[3], e = k[4], f = k[5], g = k[6], h = k[7];
    CSWAP(a, c);
    CSWAP(b, d);
    CSWAP(e, g);
    CSWAP(f, h);
    CSWAP(a, e);
    CSWAP(b, f);
    CSWAP(c, g);
    CSWAP(d, h);
    CSWAP(a, b);
    CSWAP(c, d);
    CSWAP(e, f);
    CSWAP(g, h);
    CSWAP(c, e);
    CSWAP(d, f);
    CSWAP(b, e);
    CSWAP(d, g);
    CSWAP(b, c);
    CSWAP(d, e);
    CSWAP(f, g);
    k[0] = a, k[1] = b, k[2] = c, k[3] = d, k[4] = e, k[5] = f, k[6] = g, k[7] = h;
}

/* Insertion-sorts a run of tags whose 7-byte prefixes tie, dropping
 * duplicates (only a tie can be one); returns the run's new length. */
static size_t sort_run(const mw__str **v, size_t n)
{
    size_t k = 1;
    for (size_t i = 1; i < n; i++) {
        const mw__str *x = v[i];
        size_t j = k;
        for (; j > 0 && str_cmp(v[j - 1], x) > 0; j--)
            v[j] = v[j - 1];
        v[j] = x;
        k++;
    }
    size_t out = 1;
    for (size_t i = 1; i < k; i++)
        if (!str_eq(v[out - 1], v[i]))
            v[out++] = v[i];
    return out;
}

/*
 * Orders instance + sample tags (at most 8 together) into `v`, without
 * duplicates; returns how many. Sorting four to eight short strings with
 * compares is dominated by mispredicted branches; sorting
 * (prefix << 8 | index) words through a network is not. Only runs of equal
 * prefixes ("container_id:", "container_name:") are compared as strings.
 */
static size_t order_small(const mw__str *inst, size_t ninst, const mw__str *tags, size_t ntags,
                          const mw__str **v)
{
    uint64_t k[8];
    size_t n = ninst + ntags, out = 0;
    /* Only the n real slots form a pointer: `tags` (or `inst`) may be
     * NULL when it has none, and NULL plus an offset is undefined. */
    for (size_t i = 0; i < 8; i++)
        k[i] = i < n ? prefix7(i < ninst ? &inst[i] : &tags[i - ninst]) << 8 | i : UINT64_MAX;
    sort8(k);
    int tie = 0;
    for (size_t i = 0; i < n; i++) {
        size_t idx = k[i] & 0xff;
        v[i] = idx < ninst ? &inst[idx] : &tags[idx - ninst];
        tie |= i > 0 && (k[i] >> 8) == (k[i - 1] >> 8);
    }
    if (!tie)
        return n;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && (k[j] >> 8) == (k[i] >> 8); j++)
            ;
        for (size_t m = i; m < j; m++) {
            size_t idx = k[m] & 0xff;
            v[out + m - i] = idx < ninst ? &inst[idx] : &tags[idx - ninst];
        }
        out += j - i > 1 ? sort_run(v + out, j - i) : 1;
    }
    return out;
}

size_t mw__agg_key_write(char *dst, mw__str name, mw__str host, const mw__str *inst, size_t ninst,
                         mw__str *tags, size_t ntags, size_t *nkept)
{
    char *d = put(put(dst, name), host);
    const mw__str *last = NULL;
    size_t i = 0, j = 0;
    *nkept = 0;
    if (ninst + ntags <= 8) {
        const mw__str *v[8];
        size_t n = order_small(inst, ninst, tags, ntags, v);
        for (size_t k = 0; k < n; k++) {
            if (v[k]->n) {
                d = put(d, *v[k]);
                (*nkept)++;
            }
        }
        return (size_t)(d - dst);
    }
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

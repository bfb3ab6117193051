/*
 * util.c - clocks, string copies, hashing and whole-file reads.
 */
#include "core/base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

uint64_t mw__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double mw__mono(void)
{
    return (double)mw__mono_ns() / 1e9;
}

double mw__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *mw__strdup(const char *s)
{
    return s ? mw__strndup(s, strlen(s)) : NULL;
}

char *mw__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mw__vsprintf(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *mw__sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = mw__vsprintf(fmt, ap);
    va_end(ap);
    return p;
}

uint64_t mw__hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

char *mw__read_file(const char *path, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    size_t size = 0, alloc = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (alloc > cap + 1)
        alloc = cap + 1;
    buf = malloc(alloc);
    if (!buf)
        goto fail;
    for (;;) {
        size_t n = fread(buf + size, 1, alloc - size - 1, f);
        size += n;
        if (n == 0)
            break;
        if (size + 1 == alloc) {
            if (size >= cap) {
                int c = fgetc(f);
                if (c != EOF) {
                    errno = EFBIG;
                    goto fail;
                }
                break;
            }
            size_t na = alloc * 2 > cap + 1 ? cap + 1 : alloc * 2;
            char *nb = realloc(buf, na);
            if (!nb)
                goto fail;
            buf = nb;
            alloc = na;
        }
    }
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    fclose(f);
    buf[size] = '\0';
    if (len)
        *len = size;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

int mw__grow(void *arrayp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return -1;
        ncap *= 2;
    }
    void *old, *np;
    memcpy(&old, arrayp, sizeof old);
    if (!(np = realloc(old, ncap * elem)))
        return -1;
    memcpy(arrayp, &np, sizeof np);
    *cap = ncap;
    return 0;
}

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
#include <unistd.h>

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

/* Formats once on the stack; only a text longer than that is formatted
 * a second time, into its own block. */
char *mw__vsprintf(const char *fmt, va_list ap)
{
    char stage[256];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(stage, sizeof stage, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    if ((size_t)n < sizeof stage)
        memcpy(p, stage, (size_t)n + 1);
    else
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

/* Reads `f` to its end into a buffer of at most `cap` bytes. */
static mw_code read_all(FILE *f, size_t cap, size_t hint, char **out, size_t *len)
{
    size_t size = 0, alloc = hint > 0 ? hint + 1 : 4096;
    if (alloc > cap + 1)
        alloc = cap + 1;
    char *buf = malloc(alloc);
    mw_code rc = MW_ENOMEM;
    if (!buf)
        goto out;
    for (;;) {
        size_t n = fread(buf + size, 1, alloc - size - 1, f);
        size += n;
        if (n == 0)
            break;
        if (size + 1 < alloc)
            continue;
        rc = MW_EIO;
        if (size >= cap) {
            if (fgetc(f) == EOF)
                break;
            errno = EFBIG;
            goto out;
        }
        size_t na = alloc * 2 > cap + 1 ? cap + 1 : alloc * 2;
        char *nb = realloc(buf, na);
        rc = MW_ENOMEM;
        if (!nb)
            goto out;
        buf = nb;
        alloc = na;
    }
    rc = MW_EIO;
    if (ferror(f)) {
        errno = EIO;
        goto out;
    }
    buf[size] = '\0';
    *out = buf;
    *len = size;
    buf = NULL;
    rc = MW_OK;
out:
    free(buf);
    return rc;
}

mw_code mw__read_file(const char *path, size_t cap, char **out, size_t *len)
{
    struct stat st;
    size_t n = 0;
    mw_code rc = MW_EIO;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f)
        return MW_EIO;
    if (fstat(fileno(f), &st) != 0)
        goto out;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto out;
    }
    rc = read_all(f, cap, st.st_size > 0 ? (size_t)st.st_size : 0, out, &n);
    if (rc == MW_OK && len)
        *len = n;
out:
    if (rc != MW_OK) {
        int e = errno;
        fclose(f);
        errno = e;
    } else {
        fclose(f);
    }
    return rc;
}

mw_code mw__grow(void *arrayp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return MW_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return MW_ENOMEM;
        ncap *= 2;
    }
    void *old, *np;
    memcpy(&old, arrayp, sizeof old);
    if (!(np = realloc(old, ncap * elem)))
        return MW_ENOMEM;
    memcpy(arrayp, &np, sizeof np);
    *cap = ncap;
    return MW_OK;
}

void mw__wipe(void *p, size_t n)
{
    if (p) /* a buffer never grown is NULL: explicit_bzero's argument must not be */
        explicit_bzero(p, n); /* memset's speed, never optimized away */
}

void mw__wipe_free(char *s)
{
    if (!s)
        return;
    mw__wipe(s, strlen(s));
    free(s);
}

int mw__write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * failalloc.h - allocation failures for unit tests, after curl's torture
 * mode: malloc, calloc, realloc, aligned_alloc, posix_memalign and free
 * are defined here and forward to glibc's __libc_* entry points, so the
 * shared libraries (cJSON, libyaml, Lua) allocate through them too. They
 * count the blocks alive, and once failalloc_arm(n) is called the n-th
 * allocation from then on fails (a failed realloc leaves its block as
 * glibc's does).
 *
 * Include it from exactly one file of a test executable. AddressSanitizer
 * and ThreadSanitizer own malloc: under them this defines FAILALLOC_SKIP
 * and nothing else, and the test reports its torture part skipped.
 */
#ifndef MW_TEST_FAILALLOC_H
#define MW_TEST_FAILALLOC_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAILALLOC_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAILALLOC_SKIP 1
#endif
#endif

#ifndef FAILALLOC_SKIP

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t align, size_t n);

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void *aligned_alloc(size_t align, size_t n);
int posix_memalign(void **out, size_t align, size_t n);

/* Atomics: libraries may allocate on threads of their own. */
static atomic_long failalloc_live_; /* allocations not freed yet */
static atomic_long failalloc_seen_; /* allocations since arming */
static atomic_long failalloc_at_;   /* the allocation to fail, 0: none */
static atomic_long failalloc_refused_;

/* Called on each refused allocation: a place for a debugger's breakpoint. */
__attribute__((noinline)) static void failalloc_injected(void)
{
    __asm__ volatile("");
}

/* Counts one allocation point; 1 when it is the one to refuse. */
static inline int failalloc_point(void)
{
    long n = atomic_fetch_add(&failalloc_seen_, 1) + 1;
    long at = atomic_load(&failalloc_at_);
    if (at == 0 || n != at)
        return 0;
    atomic_fetch_add(&failalloc_refused_, 1);
    failalloc_injected();
    return 1;
}

void *malloc(size_t n)
{
    void *p = failalloc_point() ? NULL : __libc_malloc(n);
    if (p)
        atomic_fetch_add(&failalloc_live_, 1);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = failalloc_point() ? NULL : __libc_calloc(n, size);
    if (p)
        atomic_fetch_add(&failalloc_live_, 1);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    return failalloc_point() ? NULL : __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    void *p = failalloc_point() ? NULL : __libc_memalign(align, n);
    if (p)
        atomic_fetch_add(&failalloc_live_, 1);
    return p;
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = aligned_alloc(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&failalloc_live_, 1);
    __libc_free(p);
}

/* Fails the `at`-th allocation from now on (0: none). */
static inline void failalloc_arm(long at)
{
    atomic_store(&failalloc_seen_, 0);
    atomic_store(&failalloc_refused_, 0);
    atomic_store(&failalloc_at_, at);
}

static inline void failalloc_disarm(void)
{
    atomic_store(&failalloc_at_, 0);
}

/* Blocks alive now; allocations refused since the last arming. */
static inline long failalloc_live(void)
{
    return atomic_load(&failalloc_live_);
}

static inline long failalloc_refused(void)
{
    return atomic_load(&failalloc_refused_);
}

/* Stops counting and refusing (for a call that must be one point as a
 * whole, see test_filter.c's regcomp); failalloc_resume() undoes it. */
typedef struct failalloc_state {
    long at, seen;
} failalloc_state;

static inline failalloc_state failalloc_pause(void)
{
    failalloc_state s = {atomic_exchange(&failalloc_at_, 0), atomic_load(&failalloc_seen_)};
    return s;
}

static inline void failalloc_resume(failalloc_state s)
{
    atomic_store(&failalloc_seen_, s.seen);
    atomic_store(&failalloc_at_, s.at);
}

#endif /* FAILALLOC_SKIP */
#endif

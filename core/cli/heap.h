/*
 * heap.h - the program's allocator: jemalloc when the build links it
 * (MW_JEMALLOC; MW_MALLOC in CMakeLists.txt says why), else libc's.
 *
 * What is done with the process's heap (handing free pages back, naming
 * the allocator) is the program's choice, not the library's: an embedder
 * keeps its own. The benchmarks use these too, so that their memory
 * figures are the program's. Nothing here allocates or owns anything.
 */
#ifndef MW_CLI_HEAP_H
#define MW_CLI_HEAP_H

#include <stdint.h>
#include <stdio.h>

#ifdef MW_JEMALLOC
#include <jemalloc/jemalloc.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

/* Hands the heap's whole free pages back to the system. */
static inline void mw_heap_trim(void)
{
#ifdef MW_JEMALLOC
    char name[32];
    snprintf(name, sizeof name, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(name, NULL, NULL, NULL, 0);
#elif defined(__GLIBC__)
    malloc_trim(0);
#endif
}

/* The allocator, as `moonwatch version` names it: "jemalloc 5.3.0-..."
 * or "libc". */
static inline const char *mw_heap_allocator(void)
{
#ifdef MW_JEMALLOC
    const char *v = NULL;
    size_t n = sizeof v;
    static char name[96];
    if (mallctl("version", (void *)&v, &n, NULL, 0) != 0 || !v)
        return "jemalloc";
    snprintf(name, sizeof name, "jemalloc %s", v);
    return name;
#else
    return "libc";
#endif
}

/* Bytes allocated and not freed, or -1 when the allocator does not say
 * (jemalloc: as of its last statistics refresh, done here). */
static inline double mw_heap_bytes(void)
{
#ifdef MW_JEMALLOC
    uint64_t epoch = 1;
    size_t n = sizeof epoch, allocated = 0;
    if (mallctl("epoch", &epoch, &n, &epoch, n) != 0)
        return -1;
    n = sizeof allocated;
    return mallctl("stats.allocated", &allocated, &n, NULL, 0) == 0 ? (double)allocated : -1;
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

#endif

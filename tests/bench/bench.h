/*
 * bench.h - what the benchmarks all need: a file written into a temporary
 * tree, the process's RSS and CPU time, and doubles sorted for medians
 * and percentiles. Header-only (static functions); nothing is kept.
 * Including it also keeps a benchmark on loopback (below).
 */
#ifndef MW_BENCH_H
#define MW_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* Benchmarks send traffic to loopback only: an engine made on a host
 * whose firmware says EC2 would ask the instance metadata service
 * (169.254.169.254) for its host name. Set before main(). */
__attribute__((constructor)) static void bench_loopback_only(void)
{
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* Writes `text` to `dir`/`rel`; exits on failure (a benchmark cannot go
 * on without its files). */
static inline void bench_put(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Resident set size of this process, KiB. */
static inline double bench_rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1024.0;
}

/* CPU time of the whole process (user + system), seconds. */
static inline double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* qsort comparator for doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif

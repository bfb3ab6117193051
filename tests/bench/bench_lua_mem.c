/*
 * bench_lua_mem.c - memory held by idle sandboxes: creates 1,000 then
 * 10,000 sandboxes running a trivial check (each run once) and prints the
 * RSS growth per instance (from /proc/self/statm) and the average
 * mw__sandbox_mem(). Prints figures; asserts nothing.
 */
#include "core/base/util.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const script = "local n = 0\n"
                                  "return { run = function(self)\n"
                                  "  n = n + 1\n"
                                  "  mw.gauge('bench.runs', n, {'check:' .. self.name})\n"
                                  "end }\n";

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static void measure(mw__budget *b, size_t n)
{
    mw__sandbox **sb = calloc(n, sizeof(*sb));
    cJSON *inst = cJSON_Parse("{\"host\":\"10.0.0.5\",\"port\":6379}");
    if (!sb || !inst)
        return;
    malloc_trim(0);
    size_t before = rss_bytes(), lua = 0;
    double t0 = mw__mono();
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bench:%zu", i);
        mw__sandbox_opts o = {.check = "bench",
                              .check_id = id,
                              .chunkname = "@bench.lua",
                              .script = script,
                              .script_len = strlen(script),
                              .instance = inst};
        char *err = NULL;
        sb[i] = mw__sandbox_new(&o, &err);
        if (!sb[i]) {
            fprintf(stderr, "sandbox %zu: %s\n", i, err);
            free(err);
            break;
        }
        mw__sandbox_begin(sb[i], mw__mono() + 1);
        while (mw__sandbox_resume(sb[i], mw__budget_slot_get(b, 0)) == MW_RUN_PREEMPTED)
            ;
    }
    double made = mw__mono() - t0;
    for (size_t i = 0; i < n && sb[i]; i++)
        lua += mw__sandbox_mem(sb[i]);
    size_t after = rss_bytes();
    printf("%6zu sandboxes: RSS +%.1f KiB/instance, mw__sandbox_mem avg %.1f KiB, "
           "created+run in %.1f us/instance\n",
           n, (double)(after - before) / 1024.0 / (double)n, (double)lua / 1024.0 / (double)n,
           made * 1e6 / (double)n);
    for (size_t i = 0; i < n; i++)
        mw__sandbox_free(sb[i]);
    free(sb);
    cJSON_Delete(inst);
}

int main(void)
{
    mw__budget *b = t_budget(1, 0.002);
    measure(b, 1000);
    measure(b, 10000);
    mw__budget_free(b);
    return 0;
}

/*
 * bench_lua_mem.c - memory held by idle sandboxes: creates 1,000 then
 * 10,000 sandboxes running a trivial check (each run once) and prints the
 * RSS growth per instance (from /proc/self/statm) and the average
 * mw__sandbox_mem(): each in a state of its own, then all in one shared
 * state (as the scheduler does per check and worker). Then the same
 * with the bundled http_check (made, not run: it would need a server).
 * Prints figures; asserts nothing.
 *
 *   bench_lua_mem [CHECKS_DIR]   (default: $MOONWATCH_DATADIR/checks, or checks)
 */
#include "core/base/util.h"
#include "core/cli/heap.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

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

typedef struct subject {
    const char *name;
    const char *script;
    size_t len;
    int run; /* run each instance once */
} subject;

static void measure(mw__budget *b, const subject *sj, size_t n, int shared)
{
    mw__sandbox **sb = calloc(n, sizeof(*sb));
    cJSON *inst = cJSON_Parse("{\"host\":\"10.0.0.5\",\"port\":6379}");
    if (!sb || !inst)
        return;
    mw_heap_trim(); /* what earlier measures freed is not counted */
    size_t before = rss_bytes(), lua = 0;
    double t0 = mw__mono();
    mw__lshare *sh = NULL;
    if (shared) {
        char *err = NULL;
        sh = mw__lshare_new("@bench.lua", sj->script, sj->len, &err);
        if (!sh) {
            fprintf(stderr, "share: %s\n", err);
            free(err);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bench:%zu", i);
        mw__sandbox_opts o = {.check = "bench",
                              .check_id = id,
                              .chunkname = "@bench.lua",
                              .script = sj->script,
                              .script_len = sj->len,
                              .share = sh,
                              .instance = inst};
        char *err = NULL;
        sb[i] = mw__sandbox_new(&o, &err);
        if (!sb[i]) {
            fprintf(stderr, "sandbox %zu: %s\n", i, err);
            free(err);
            break;
        }
        if (!sj->run)
            continue;
        mw__sandbox_begin(sb[i], mw__mono() + 1);
        while (mw__sandbox_resume(sb[i], mw__budget_slot_get(b, 0)) == MW_RUN_PREEMPTED)
            ;
    }
    double made = mw__mono() - t0;
    for (size_t i = 0; i < n && sb[i]; i++)
        lua += mw__sandbox_mem(sb[i]);
    size_t after = rss_bytes();
    printf("%-10s %-7s %6zu sandboxes: RSS +%.1f KiB/instance, mw__sandbox_mem avg %.1f KiB, "
           "created%s in %.1f us/instance\n",
           sj->name, shared ? "shared" : "own", n, (double)(after - before) / 1024.0 / (double)n,
           (double)lua / 1024.0 / (double)n, sj->run ? "+run" : "", made * 1e6 / (double)n);
    for (size_t i = 0; i < n; i++)
        mw__sandbox_free(sb[i]);
    mw__lshare_unref(sh);
    free(sb);
    cJSON_Delete(inst);
}

/* The bundled http_check's source, or NULL. */
static char *read_check(int argc, char **argv, size_t *len)
{
    char path[4096];
    const char *dir = getenv("MOONWATCH_DATADIR");
    if (argc > 1)
        snprintf(path, sizeof path, "%s/http_check.lua", argv[1]);
    else
        snprintf(path, sizeof path, "%s/checks/http_check.lua", dir ? dir : ".");
    char *text = NULL;
    if (mw__read_file(path, (size_t)1 << 20, &text, len) != MW_OK)
        fprintf(stderr, "%s: cannot read (http_check figures skipped)\n", path);
    return text;
}

int main(int argc, char **argv)
{
    mw__budget *b = t_budget(1, 0.002);
    subject trivial = {"trivial", script, strlen(script), 1};
    for (int shared = 0; shared <= 1; shared++) {
        measure(b, &trivial, 1000, shared);
        measure(b, &trivial, 10000, shared);
    }
    size_t len = 0;
    char *http = read_check(argc, argv, &len);
    if (http) {
        subject hc = {"http_check", http, len, 0};
        for (int shared = 0; shared <= 1; shared++)
            measure(b, &hc, 10000, shared);
    }
    free(http);
    mw__budget_free(b);
    return 0;
}

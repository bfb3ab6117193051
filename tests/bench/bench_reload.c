/*
 * bench_reload.c - hot reload figures (printed, never asserted): 1,000
 * template files holding 5,000 static instances loaded; one file is
 * changed and mw_engine_reload() timed, over several rounds. Prints the
 * median and worst time to apply and how many instances each reload
 * added and removed (the goal: <= 50 ms, only that template's 5).
 *
 * The engine is hosted and never stepped: no check runs, the figure is
 * the reload alone (read every file, diff, replace).
 *
 * Usage: bench_reload [rounds (default 11)]
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEMPLATES 1000
#define PER_FILE  5

static char tmp[64];

/* Template file `i` with its instances' `v` set to `gen`. */
static void put_template(int i, int gen)
{
    char rel[64], text[1024];
    size_t n = (size_t)snprintf(text, sizeof text, "init_config:\ninstances:\n");
    for (int k = 0; k < PER_FILE; k++)
        n += (size_t)snprintf(
            text + n, sizeof text - n,
            "  - t: %d\n    k: %d\n    v: %d\n    min_collection_interval: 3600\n", i, k, gen);
    snprintf(rel, sizeof rel, "templates/bench.d/t%04d.yaml", i);
    bench_put(tmp, rel, text);
}

static mw_engine *engine(void)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "log_level", "error", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "ecs", "off", NULL);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    mw_config_set(cfg, "checks_dir", dir, NULL);
    snprintf(dir, sizeof dir, "%s/templates", tmp);
    mw_config_set(cfg, "templates_dir", dir, NULL);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    return eng;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The running instances' ids, sorted, into `*out` (free with ids_free). */
static size_t ids(mw_engine *eng, char ***out)
{
    char *s = mw_engine_instances_json(eng);
    cJSON *a = cJSON_Parse(s), *o;
    size_t n = 0;
    *out = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof **out);
    cJSON_ArrayForEach(o, a)(*out)[n++] =
        mw__strdup(cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")));
    qsort(*out, n, sizeof **out, by_str);
    cJSON_Delete(a);
    mw_free(s);
    return n;
}

static void ids_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* How many of `a` are not in `b` (both sorted). */
static size_t missing(char **a, size_t na, char **b, size_t nb)
{
    size_t m = 0, j = 0;
    for (size_t i = 0; i < na; i++) {
        while (j < nb && strcmp(b[j], a[i]) < 0)
            j++;
        m += j == nb || strcmp(b[j], a[i]) != 0;
    }
    return m;
}

static size_t instances(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof st};
    mw_engine_stats_get(eng, &st);
    return (size_t)st.instances;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 11;
    char path[128];
    if (rounds < 1 || rounds > 1000)
        rounds = 11;
    snprintf(tmp, sizeof tmp, "/tmp/mw-bench-reload-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    snprintf(path, sizeof path, "%s/checks", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/templates", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/templates/bench.d", tmp);
    mkdir(path, 0755);
    bench_put(tmp, "checks/bench.lua", "return { run = function(self) end }\n");
    for (int i = 0; i < TEMPLATES; i++)
        put_template(i, 0);
    mw_engine *eng = engine();
    if (mw_engine_load(eng) != MW_OK)
        return 1;
    size_t before = instances(eng);
    double *ms = calloc((size_t)rounds, sizeof *ms), worst = 0;
    size_t gone_max = 0, new_max = 0;
    for (int r = 0; r < rounds; r++) {
        char **pre, **post;
        size_t npre = ids(eng, &pre);
        put_template(TEMPLATES / 2, r + 1);
        double t0 = mw__mono();
        mw_code rc = mw_engine_reload(eng, NULL);
        ms[r] = (mw__mono() - t0) * 1e3;
        worst = ms[r] > worst ? ms[r] : worst;
        if (rc != MW_OK)
            fprintf(stderr, "reload: %s\n", mw_strerror(rc));
        size_t npost = ids(eng, &post), gone = missing(pre, npre, post, npost),
               fresh = missing(post, npost, pre, npre);
        gone_max = gone > gone_max ? gone : gone_max;
        new_max = fresh > new_max ? fresh : new_max;
        ids_free(pre, npre);
        ids_free(post, npost);
    }
    size_t after = instances(eng);
    qsort(ms, (size_t)rounds, sizeof *ms, bench_cmp_double);
    printf("reload of 1 template among %d (%zu instances running): median %.2f ms, "
           "worst %.2f ms over %d rounds\n",
           TEMPLATES, before, ms[rounds / 2], worst, rounds);
    printf("instances replaced per reload: at most %zu unscheduled, %zu scheduled (the changed "
           "template has %d); %zu running after\n",
           gone_max, new_max, PER_FILE, after);
    free(ms);
    mw_engine_free(eng);
    snprintf(path, sizeof path, "rm -rf '%s'", tmp);
    return system(path) == 0 ? 0 : 1;
}

/*
 * test_torture.c - allocation torture, after curl's `runtests.pl -t`: each
 * scenario runs once to count its allocations, then again with the 1st,
 * 2nd, ... allocation failing, until a run makes no allocation that the
 * test failed. Every run must end without a crash, with the work either
 * done in full or an error reported, and with as many live allocations
 * as before it (no leak on any error path).
 *
 * malloc and friends come from failalloc.h and forward to glibc's
 * __libc_* entry points, so the shared libraries (cJSON, libyaml, Lua)
 * allocate through them too. AddressSanitizer and ThreadSanitizer own
 * malloc, so under them the test reports itself skipped.
 */
#include "test.h"

#include "failalloc.h"

#ifdef FAILALLOC_SKIP

int main(void)
{
    printf("%d passed, %d failed, 1 skipped\n", test_passed_, test_failed_);
    return 0;
}

#else

#include "core/base/json.h"
#include "core/base/util.h"
#include "core/base/yaml.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/instance.h"
#include "core/pipeline/sender.h"
#include "discovery/template.h"
#include "lua/sandbox.h"

#include <errno.h>
#include <stdlib.h>

/* ------------------------------------------------------------ driver */

/* One scenario run: returns 0 when it did the whole work, 1 when it
 * reported an error, -1 when it neither reported one nor did the work
 * (a silently dropped failure). */
typedef int (*scenario_fn)(void);

typedef struct scenario {
    const char *name;
    scenario_fn fn;
} scenario;

/* Runs `sc` with each allocation failing in turn; returns the number of
 * allocation points tried. */
static long torture(const scenario *sc)
{
    long n;
    for (n = 1;; n++) {
        long before = failalloc_live();
        failalloc_arm(n);
        int rc = sc->fn();
        failalloc_disarm();
        int injected = failalloc_refused() > 0;
        long after = failalloc_live();
        if (rc < 0 || after != before) {
            fprintf(stderr, "%s: failing allocation %ld: %s (live %+ld)\n", sc->name, n,
                    rc < 0 ? "failure not reported" : "leak", after - before);
            CHECK(0);
        }
        if (!injected) {
            CHECK(rc == 0);
            return n - 1;
        }
    }
}

/* ------------------------------------------------------------ templates */

static size_t good_templates = (size_t)-1;

static int sc_templates(void)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    size_t problems = mw__templates_load_dir(&set, MW_TEST_FIXTURES "/templates/good", &diag);
    mw__template_set_finish(&set);
    size_t n = set.n;
    mw__template_set_free(&set);
    mw__diag_free(&diag);
    if (good_templates == (size_t)-1)
        good_templates = n; /* the reference run, nothing failing */
    if (problems > 0)
        return 1;
    return n == good_templates ? 0 : -1;
}

/* ------------------------------------------------------------ yaml */

static const char yaml_text[] = "init_config:\n"
                                "  base: &b {timeout: 5, tags: [a, b]}\n"
                                "instances:\n"
                                "  - <<: *b\n"
                                "    url: \"http://x\"\n"
                                "    n: 0x10\n"
                                "    f: .5\n"
                                "    ok: yes\n"
                                "    none: ~\n"
                                "    text: |\n"
                                "      two\n"
                                "      lines\n";

static int sc_yaml(void)
{
    mw__yaml_doc doc = {0};
    mw__diag diag = {0};
    int rc = mw__yaml_parse(yaml_text, sizeof(yaml_text) - 1, "t.yaml", &doc, &diag);
    int reported = diag.n > 0;
    int whole = rc == 0 && cJSON_IsObject(doc.root) &&
                cJSON_GetArraySize(cJSON_GetObjectItem(doc.root, "instances")) == 1;
    mw__yaml_doc_free(&doc);
    mw__diag_free(&diag);
    if (rc != 0)
        return reported ? 1 : -1;
    return whole ? 0 : -1;
}

/* ------------------------------------------------------------ instance */

static const char inst_json[] = "{\"url\":\"http://x\",\"tags\":[\"b:2\",\"a:1\",\"b:2\"],"
                                "\"service\":\"web\",\"min_collection_interval\":30,"
                                "\"nested\":{\"z\":[1,{\"y\":2,\"x\":null}],\"a\":true}}";
static const char init_json[] = "{\"timeout\":5,\"memory_limit_mb\":8}";

static int sc_instance(void)
{
    mw__instance_defaults d = {15, 10, 16u << 20};
    mw__instance_params p;
    char *err = NULL, *id = NULL, *canon = NULL;
    int rc = 1;
    cJSON *inst = cJSON_Parse(inst_json);
    cJSON *init = cJSON_Parse(init_json);
    if (!inst || !init)
        goto out; /* cJSON_Parse reports OOM as NULL */
    if (mw__instance_params_parse(inst, init, &d, &p, &err) != 0) {
        rc = err ? 1 : -1;
        goto out;
    }
    id = mw__instance_id("http_check", init, inst);
    canon = mw__json_canonical(inst);
    if (id && canon)
        rc = p.ntags == 3 && p.interval == 30 ? 0 : -1;
    mw__instance_params_free(&p);
out:
    free(err);
    free(id);
    free(canon);
    cJSON_Delete(inst);
    cJSON_Delete(init);
    return rc;
}

/* ------------------------------------------------------------ aggregator */

#define S(lit) ((mw__str){(lit), sizeof(lit) - 1})

static size_t good_records;

static void count_record(const mw_record *rec, void *ud)
{
    (void)rec;
    (*(size_t *)ud)++;
}

/* Every metric type, a service check and an event. Returns how many
 * submissions failed. */
static int submit_all(mw__sender *s)
{
    static const mw__str tags[] = {{"role:db", 7}, {"az:1", 4}};
    static const mw_metric_type types[] = {MW_GAUGE, MW_COUNT, MW_RATE, MW_MONOTONIC_COUNT,
                                           MW_HISTOGRAM};
    static const char *const names[] = {"t.gauge", "t.count", "t.rate", "t.mono", "t.hist"};
    int bad = 0;
    for (size_t i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++)
            bad += mw__sender_metric(s, types[i], (mw__str){names[i], strlen(names[i])}, k + 1.0,
                                     tags, 2, (mw__str){NULL, 0}) != MW_OK;
    bad += mw__sender_service_check(s, S("t.up"), 1, tags, 2, S("slow")) != MW_OK;
    mw__event_in ev = {.title = S("deploy"), .text = S("v2"), .tags = tags, .ntags = 2};
    bad += mw__sender_event(s, &ev) != MW_OK;
    return bad;
}

/* Two runs (rate and monotonic_count need two samples) and a flush. */
static int sc_aggregator(void)
{
    static const char *const itags[] = {"env:prod"};
    mw__agg_opts ao = {.flush_interval = 15, .host = "h"};
    mw__sender_opts so = {.check = "c", .check_id = "c:1", .tags = itags, .ntags = 1};
    size_t records = 0;
    int bad = 0;
    mw__aggregator *agg = mw__agg_new(&ao);
    mw__sender *s = agg ? mw__sender_new(agg, &so) : NULL;
    if (!s) {
        mw__agg_free(agg);
        return 1;
    }
    for (int run = 0; run < 2; run++) {
        bad += submit_all(s);
        /* Enough contexts to grow the shards' tables. */
        for (int i = 0; i < 300; i++) {
            char name[32];
            snprintf(name, sizeof(name), "t.many.%d", i);
            bad +=
                mw__sender_metric(s, i % 2 ? MW_HISTOGRAM : MW_GAUGE, (mw__str){name, strlen(name)},
                                  i, NULL, 0, (mw__str){NULL, 0}) != MW_OK;
        }
        size_t pending = mw__sender_pending(s);
        bad += mw__sender_commit(s, 1000.0 + run) != pending;
    }
    /* A context whose record could not be queued keeps it for the next
     * flush: over two flushes nothing may be missing. */
    mw__agg_flush(agg, 1015.0, count_record, &records);
    mw__agg_flush(agg, 1030.0, count_record, &records);
    mw__sender_free(s);
    mw__agg_free(agg);
    if (good_records == 0)
        good_records = records; /* the reference run */
    if (bad)
        return 1;
    return records == good_records ? 0 : -1;
}

/* ------------------------------------------------------------ sandbox */

static const char lua_text[] = "local t = {}\n"
                               "for i = 1, 20 do t[i] = ('x'):rep(i) end\n"
                               "return { run = function(self) mw.gauge('g', #t) end }\n";

static int sc_sandbox(void)
{
    char *err = NULL;
    mw__sandbox_opts o = {.check = "c",
                          .check_id = "c:1",
                          .chunkname = "=torture",
                          .script = lua_text,
                          .script_len = sizeof(lua_text) - 1};
    mw__aggregator *agg = mw__agg_new(&(mw__agg_opts){.flush_interval = 15});
    mw__sender *s = agg ? mw__sender_new(agg, &(mw__sender_opts){.check = "c"}) : NULL;
    if (!s) {
        mw__agg_free(agg);
        return 1;
    }
    o.out = mw__sender_out(s);
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    int rc = sb ? 0 : err ? 1 : -1;
    if (sb) {
        /* One run, timed by itself (no watchdog thread). */
        mw__sandbox_begin(sb, mw__mono() + 10);
        mw__run_status st = mw__sandbox_resume(sb, NULL);
        if (st != MW_RUN_OK)
            rc = mw__sandbox_error(sb)[0] ? 1 : -1; /* NOMEM, or a raised error */
        else if (mw__sender_pending(s) != 1)
            rc = -1;
    }
    mw__sandbox_free(sb);
    mw__sender_free(s);
    mw__agg_free(agg);
    free(err);
    return rc;
}

/* Runs one scenario with one allocation failing, for debugging. */
static int run_one(const scenario *v, size_t n, const char *spec)
{
    const char *colon = strchr(spec, ':');
    for (size_t i = 0; colon && i < n; i++) {
        if (strncmp(v[i].name, spec, (size_t)(colon - spec)) != 0)
            continue;
        v[i].fn(); /* the reference run */
        long before = failalloc_live();
        failalloc_arm(atol(colon + 1));
        int rc = v[i].fn();
        failalloc_disarm();
        printf("%s: rc %d, live %+ld\n", spec, rc, failalloc_live() - before);
        return 0;
    }
    fprintf(stderr, "TORTURE=<scenario>:<n>\n");
    return 2;
}

int main(void)
{
    static const scenario scenarios[] = {
        {"templates", sc_templates},   {"yaml", sc_yaml},       {"instance", sc_instance},
        {"aggregator", sc_aggregator}, {"sandbox", sc_sandbox},
    };
    /* stdout's buffer is allocated once, on first use, and kept. */
    printf("allocation torture\n");
    fflush(stdout);
    const char *only = getenv("TORTURE");
    if (only)
        return run_one(scenarios, sizeof(scenarios) / sizeof(scenarios[0]), only);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        /* The reference run, nothing failing: counts the allocations. */
        CHECK(scenarios[i].fn() == 0);
        long points = torture(&scenarios[i]);
        printf("%s: %ld allocation points\n", scenarios[i].name, points);
        fflush(stdout);
    }
    return TEST_RESULT();
}

#endif

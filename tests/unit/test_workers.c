/*
 * test_workers.c - checks spread over worker threads, each with its own
 * loop: instances are pinned to one worker by their id (and always run on
 * that worker's thread), both workers run checks, a worker held by a
 * spinning check does not hold up the other, unscheduling from another
 * thread while runs are in progress (preempted, or waiting on I/O from
 * tests/support/mini_httpd) tears them down on their workers, totals add
 * up over the workers, an engine goes from hosted stepping to its own
 * threads and back, and sockets a run leaves to the collector of its
 * shared state are closed on its worker even when instances made on
 * another thread trigger the collection.
 *
 * Waits are bounded (count and time) so a regression fails a CHECK
 * instead of hanging; no assertion depends on how fast anything runs.
 */
#include "moonwatch.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "tests/support/mini_httpd.h"
#include "test.h"
#include "tmptree.h"
#include "tests/support/make.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NIDS 40

static char tmp[64];

static void put(const char *rel, const char *text)
{
    tmptree_put(tmp, rel, text);
}

static void write_checks(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-workers");
    put("checks/rec.lua",
        "return { run = function(self) mw.gauge('w.value', self.instance.n) end }\n");
    put("checks/spin.lua", "return { run = function(self) while true do end end }\n");
    put("checks/wait.lua", "return { run = function(self) mw.http.get(self.instance.url) end }\n");
    /* drops open sockets while instances of it are made on another thread */
    put("checks/drop.lua",
        "for i = 1, 3000 do local t = {i, tostring(i)} end\n"
        "return { run = function(self)\n"
        "  if not self.instance.port then return end\n"
        "  for i = 1, 20 do local s = mw.tcp.connect('127.0.0.1', self.instance.port) end\n"
        "  mw.sleep(0.2)\n"
        "end }\n");
    put("checks/stats.lua", "return { run = function(self)\n"
                            "  mw.gauge('w.instances', mw.engine_stats().instances)\n"
                            "end }\n");
}

static double instances_gauge = -1;

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    if (r->type == MW_RECORD_METRIC && strcmp(r->name, "w.instances") == 0)
        instances_gauge = r->value;
}

static mw_engine *new_engine(const char *slice)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "2", NULL) == MW_OK);
    if (slice)
        CHECK(mw_config_set(cfg, "time_slice", slice, NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "checks_dir", dir, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    CHECK(eng != NULL);
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    return eng;
}

/* Schedules `check` with the JSON instance `json`; its id copied into
 * `id` (64 bytes). */
static mw_code add(mw_engine *eng, const char *check, const char *json, char *id)
{
    cJSON *inst = cJSON_Parse(json);
    CHECK(inst != NULL);
    const char *got = NULL;
    char *err = NULL;
    mw_code rc = mw__engine_schedule(eng, check, "test", inst, NULL, &got, &err);
    if (rc != MW_OK && rc != MW_ESTATE)
        fprintf(stderr, "schedule %s %s: %s\n", check, json, err ? err : "?");
    if (rc == MW_OK && id)
        snprintf(id, 64, "%s", got);
    free(err);
    cJSON_Delete(inst);
    return rc;
}

static uint64_t runs_of(mw_engine *eng, const char *id)
{
    mw_instance_stats st = {.size = sizeof(mw_instance_stats)};
    return mw_engine_instance_stats(eng, id, &st) == MW_OK ? st.runs : 0;
}

static unsigned worker_of(mw_engine *eng, const char *id, uint64_t *ran_on)
{
    unsigned w = 99;
    uint64_t mask = 0;
    CHECK(mw__sched_instance_worker(mw__engine_sched(eng), id, &w, &mask) == MW_OK);
    if (ran_on)
        *ran_on = mask;
    return w;
}

/* Waits (at most `secs`) until each of `ids` has run at least `min[i]`
 * times; returns 1 when they all did. */
static int wait_runs(mw_engine *eng, char (*ids)[64], size_t n, const uint64_t *min, double secs)
{
    double end = mw__mono() + secs;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += runs_of(eng, ids[i]) >= min[i];
        if (done == n)
            return 1;
        if (mw__mono() > end)
            return 0;
        usleep(10000);
    }
}

/* ------------------------------------------------------------- pinning */

static void test_pinned_and_spread(void)
{
    mw_engine *eng = new_engine(NULL);
    char ids[NIDS][64], json[128];
    uint64_t want[NIDS];
    /* half handed over before the workers have threads (done at once),
     * half after (queued to the worker threads) */
    for (int i = 0; i < NIDS; i++) {
        if (i == NIDS / 2)
            CHECK(mw_engine_start(eng) == MW_OK);
        snprintf(json, sizeof json, "{\"n\": %d, \"min_collection_interval\": 1}", i);
        CHECK(add(eng, "rec", json, ids[i]) == MW_OK);
        want[i] = 3;
    }
    char stats_id[64];
    CHECK(add(eng, "stats", "{\"min_collection_interval\": 1}", stats_id) == MW_OK);
    CHECK(add(eng, "rec", "{\"n\": 0, \"min_collection_interval\": 1}", NULL) == MW_ESTATE);
    CHECK(wait_runs(eng, ids, NIDS, want, 20));

    unsigned per[2] = {0, 0};
    for (int i = 0; i < NIDS; i++) {
        uint64_t mask = 0;
        unsigned w = worker_of(eng, ids[i], &mask);
        CHECK(w < 2);
        if (w < 2)
            per[w]++;
        CHECK(mask == 1ULL << w); /* every run on its own worker's thread */
    }
    CHECK(per[0] > 0 && per[1] > 0);
    CHECK(per[0] + per[1] == NIDS);

    /* the same config lands on the same worker when added again */
    unsigned before = worker_of(eng, ids[7], NULL);
    CHECK(mw__sched_remove(mw__engine_sched(eng), ids[7]) == MW_OK);
    CHECK(mw_engine_instance_stats(eng, ids[7],
                                   &(mw_instance_stats){.size = sizeof(mw_instance_stats)}) ==
          MW_ENOTFOUND);
    char again[64];
    CHECK(add(eng, "rec", "{\"n\": 7, \"min_collection_interval\": 1}", again) == MW_OK);
    CHECK_STR(again, ids[7]);
    CHECK(worker_of(eng, again, NULL) == before);
    /* two more runs of the stats check: one started after the re-add */
    uint64_t stats_want = runs_of(eng, stats_id) + 2;
    CHECK(wait_runs(eng, &stats_id, 1, &stats_want, 10));

    CHECK(mw_engine_stop(eng) == MW_OK);
    /* quiescent now: the totals are the sums over workers and instances */
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)}, w0 = {.size = sizeof(mw_engine_stats)},
                    w1 = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    mw__sched_worker_stats(mw__engine_sched(eng), 0, &w0);
    mw__sched_worker_stats(mw__engine_sched(eng), 1, &w1);
    CHECK(st.instances == NIDS + 1);
    CHECK(w0.instances + w1.instances == st.instances);
    CHECK(w0.runs > 0 && w1.runs > 0);
    CHECK(w0.runs + w1.runs == st.runs);
    CHECK(w0.lua_bytes + w1.lua_bytes == st.lua_bytes && st.lua_bytes > 0);
    CHECK(st.errors == 0);
    char *js = mw_engine_instances_json(eng);
    cJSON *arr = js ? cJSON_Parse(js) : NULL;
    CHECK(cJSON_GetArraySize(arr) == NIDS + 1);
    double sum = 0, on1 = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        sum += cJSON_GetObjectItem(it, "runs")->valuedouble;
        on1 += cJSON_GetObjectItem(it, "worker")->valuedouble == 1;
    }
    /* the removed instance's runs stay in the engine's totals */
    CHECK(sum <= (double)st.runs && sum > 0);
    CHECK(on1 == (double)w1.instances);
    cJSON_Delete(arr);
    mw_free(js);
    /* a check sees the engine's instances over every worker */
    mw_engine_flush(eng);
    CHECK(instances_gauge == NIDS + 1);

    /* another engine: the same configs on the same workers */
    mw_engine *other = new_engine(NULL);
    size_t same = 0;
    for (int i = 0; i < NIDS; i++) {
        char id[64];
        snprintf(json, sizeof json, "{\"n\": %d, \"min_collection_interval\": 1}", i);
        CHECK(add(other, "rec", json, id) == MW_OK);
        same += worker_of(other, id, NULL) == worker_of(eng, ids[i], NULL);
    }
    CHECK(same == NIDS);
    mw_engine_free(other);
    mw_engine_free(eng);
}

/* ------------------------------------------------------------- busy */

/* A spin config pinned to worker `w`, added; its id into `id`. */
static void add_on_worker(mw_engine *eng, unsigned w, char *id)
{
    char json[128];
    for (int v = 0; v < 64; v++) {
        snprintf(json, sizeof json, "{\"v\": %d, \"timeout\": 4, \"min_collection_interval\": 60}",
                 v);
        CHECK(add(eng, "spin", json, id) == MW_OK);
        if (worker_of(eng, id, NULL) == w)
            return;
        CHECK(mw__sched_remove(mw__engine_sched(eng), id) == MW_OK);
    }
    CHECK(!"no config pinned to the worker");
}

/* The time slice outlasts the spinner's timeout: it holds its worker for
 * its whole run. The other worker's checks keep running meanwhile; the
 * held worker's do not, then resume. */
static void test_busy_worker(void)
{
    mw_engine *eng = new_engine("10");
    char ids[20][64], json[128];
    uint64_t want[20];
    for (int i = 0; i < 20; i++) {
        snprintf(json, sizeof json, "{\"n\": %d, \"min_collection_interval\": 1}", i);
        CHECK(add(eng, "rec", json, ids[i]) == MW_OK);
        want[i] = 1;
    }
    CHECK(mw_engine_start(eng) == MW_OK);
    CHECK(wait_runs(eng, ids, 20, want, 10));
    char spin[64];
    mw__sched_set_manual(mw__engine_sched(eng), 1); /* runs only when asked */
    add_on_worker(eng, 0, spin);
    CHECK(mw__sched_run_now(mw__engine_sched(eng), spin) == MW_OK);
    mw_instance_stats ss = {.size = sizeof(mw_instance_stats)};
    double end = mw__mono() + 5;
    while (mw__mono() < end && mw_engine_instance_stats(eng, spin, &ss) == MW_OK &&
           ss.last_run == 0)
        usleep(1000);
    CHECK(ss.last_run != 0); /* its run started: worker 0 is inside it */

    char b_ids[20][64], a_ids[20][64];
    uint64_t b_want[20], a_runs[20];
    size_t nb = 0, na = 0;
    for (int i = 0; i < 20; i++) {
        if (worker_of(eng, ids[i], NULL) == 1) {
            memcpy(b_ids[nb], ids[i], sizeof b_ids[nb]);
            b_want[nb++] = runs_of(eng, ids[i]) + 1;
        } else {
            memcpy(a_ids[na], ids[i], sizeof a_ids[na]);
            a_runs[na++] = runs_of(eng, ids[i]);
        }
    }
    CHECK(nb > 0 && na > 0);
    CHECK(wait_runs(eng, b_ids, nb, b_want, 3)); /* worker 1 went on */
    size_t a_moved = 0;
    for (size_t i = 0; i < na; i++)
        a_moved += runs_of(eng, a_ids[i]) != a_runs[i];
    CHECK(mw_engine_instance_stats(eng, spin, &ss) == MW_OK);
    if (ss.runs == 0) /* the spinner still held worker 0 all along */
        CHECK(a_moved == 0);
    else
        printf("spinner ended before worker 1 ran its checks: hold not checked\n");

    /* the spinner is stopped at its deadline; worker 0 resumes */
    end = mw__mono() + 10;
    while (mw__mono() < end && mw_engine_instance_stats(eng, spin, &ss) == MW_OK && ss.runs == 0)
        usleep(10000);
    CHECK(ss.runs == 1 && ss.errors == 1);
    CHECK(strstr(ss.last_error, "time budget") != NULL);
    for (size_t i = 0; i < na; i++)
        a_runs[i]++;
    CHECK(wait_runs(eng, a_ids, na, a_runs, 5));
    mw_engine_free(eng); /* stops it */
}

/* ------------------------------------------------------------- unschedule */

static void mhd_stats(mw__mhd *srv, mw__mhd_stats *st)
{
    mw__mhd_stats_get(srv, st);
}

/* Runs waiting on /hang and /delay and preempted spinners on both
 * workers, unscheduled from this thread (not a worker) while they are in
 * progress: every run is stopped and freed on its worker, every hung
 * connection closed. */
static void test_unschedule_in_flight(mw__mhd *srv)
{
    mw_engine *eng = new_engine(NULL);
    mw__sched *s = mw__engine_sched(eng);
    mw__sched_set_manual(s, 1); /* runs only when asked */
    CHECK(mw_engine_start(eng) == MW_OK);
    mw__mhd_stats before, after;
    mhd_stats(srv, &before);
    enum { NHANG = 10, NDELAY = 10, NSPIN = 4, N = NHANG + NDELAY + NSPIN };
    char ids[N][64], json[256];
    for (int i = 0; i < N; i++) {
        if (i < NHANG)
            snprintf(json, sizeof json,
                     "{\"url\": \"http://127.0.0.1:%d/hang\", \"n\": %d, \"timeout\": 30, "
                     "\"min_collection_interval\": 60}",
                     mw__mhd_port(srv), i);
        else if (i < NHANG + NDELAY)
            snprintf(json, sizeof json,
                     "{\"url\": \"http://127.0.0.1:%d/delay/20000\", \"n\": %d, \"timeout\": 30, "
                     "\"min_collection_interval\": 60}",
                     mw__mhd_port(srv), i);
        else
            snprintf(json, sizeof json,
                     "{\"n\": %d, \"timeout\": 30, \"min_collection_interval\": 60}", i);
        CHECK(add(eng, i < NHANG + NDELAY ? "wait" : "spin", json, ids[i]) == MW_OK);
        CHECK(mw__sched_run_now(s, ids[i]) == MW_OK);
    }
    unsigned per[2] = {0, 0};
    for (int i = 0; i < N; i++)
        per[worker_of(eng, ids[i], NULL) & 1]++;
    CHECK(per[0] > 0 && per[1] > 0);
    double end = mw__mono() + 10;
    do {
        usleep(10000);
        mhd_stats(srv, &after);
    } while (mw__mono() < end &&
             (after.requests < before.requests + NHANG + NDELAY || mw__sched_running(s) != N));
    CHECK(after.requests == before.requests + NHANG + NDELAY);
    CHECK(mw__sched_running(s) == N); /* all waiting or preempted */

    for (int i = 0; i < N; i++)
        CHECK(mw__sched_remove(s, ids[i]) == MW_OK);
    CHECK(mw__sched_count(s) == 0); /* gone at once */
    CHECK(mw__sched_remove(s, ids[0]) == MW_ENOTFOUND);
    /* the id is free again at once: remove and add stay in order */
    CHECK(add(eng, "wait", "{\"url\": \"http://127.0.0.1:1/\", \"min_collection_interval\": 60}",
              NULL) == MW_OK);
    end = mw__mono() + 10;
    while (mw__mono() < end && mw__sched_running(s) > 0)
        usleep(10000);
    CHECK(mw__sched_running(s) == 0);
    end = mw__mono() + 10;
    do {
        mhd_stats(srv, &after);
        usleep(10000);
    } while (mw__mono() < end && after.hung_gone < before.hung_gone + NHANG);
    CHECK(after.hung_gone == before.hung_gone + NHANG);
    end = mw__mono() + 10;
    do {
        mhd_stats(srv, &after);
        usleep(10000);
    } while (mw__mono() < end && after.open > before.open);
    CHECK(after.open == before.open); /* the delayed ones were closed too */
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    CHECK(st.instances == 1);
    CHECK(st.runs == 0); /* removed runs are not counted as runs */

    /* an engine freed with runs waiting: torn down on its workers */
    char hang[64];
    snprintf(json, sizeof json,
             "{\"url\": \"http://127.0.0.1:%d/hang\", \"n\": 99, \"timeout\": 30, "
             "\"min_collection_interval\": 60}",
             mw__mhd_port(srv));
    mhd_stats(srv, &before);
    CHECK(add(eng, "wait", json, hang) == MW_OK);
    CHECK(mw__sched_run_now(s, hang) == MW_OK);
    end = mw__mono() + 10;
    do {
        usleep(10000);
        mhd_stats(srv, &after);
    } while (mw__mono() < end && after.requests < before.requests + 1);
    mw_engine_free(eng);
    end = mw__mono() + 10;
    do {
        mhd_stats(srv, &after);
        usleep(10000);
    } while (mw__mono() < end && after.hung_gone < before.hung_gone + 1);
    CHECK(after.hung_gone == before.hung_gone + 1);
}

/* ------------------------------------------------------------- hosted */

static uint64_t total_runs(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    return st.runs;
}

/* Stepped by the host (its descriptor wakes for either worker's work),
 * then on its own threads, then stepped again. */
static void test_hosted_and_started(void)
{
    mw_engine *eng = new_engine(NULL);
    char ids[10][64], json[128];
    for (int i = 0; i < 10; i++) {
        snprintf(json, sizeof json, "{\"n\": %d, \"min_collection_interval\": 1}", i);
        CHECK(add(eng, "rec", json, ids[i]) == MW_OK);
    }
    struct pollfd pfd = {.fd = mw_engine_fd(eng), .events = POLLIN};
    CHECK(pfd.fd >= 0);
    int wakeups = 0;
    double end = mw__mono() + 10;
    while (mw__mono() < end && total_runs(eng) < 20) {
        if (poll(&pfd, 1, 1000) > 0)
            wakeups++;
        CHECK(mw_engine_step(eng, 0) == MW_OK);
    }
    CHECK(total_runs(eng) >= 20);
    CHECK(wakeups > 0);
    unsigned per[2] = {0, 0};
    for (int i = 0; i < 10; i++) {
        uint64_t mask = 1;
        unsigned w = worker_of(eng, ids[i], &mask);
        per[w & 1] += runs_of(eng, ids[i]) > 0;
        CHECK(mask == 0); /* ran on the host's thread */
    }
    CHECK(per[0] > 0 && per[1] > 0);

    CHECK(mw_engine_start(eng) == MW_OK);
    CHECK(mw_engine_step(eng, 0) == MW_ESTATE);
    uint64_t want[10];
    for (int i = 0; i < 10; i++)
        want[i] = runs_of(eng, ids[i]) + 1;
    CHECK(wait_runs(eng, ids, 10, want, 5));
    CHECK(mw_engine_stop(eng) == MW_OK);
    for (int i = 0; i < 10; i++) {
        uint64_t mask = 0;
        unsigned w = worker_of(eng, ids[i], &mask);
        CHECK(mask == 1ULL << w);
    }

    for (int i = 0; i < 10; i++)
        want[i] = runs_of(eng, ids[i]) + 1;
    end = mw__mono() + 5;
    uint64_t goal = total_runs(eng) + 10;
    while (mw__mono() < end && total_runs(eng) < goal)
        mw_engine_step(eng, 50);
    CHECK(total_runs(eng) >= goal);
    mw_engine_free(eng);
}

/* Instances made on this thread share the worker's state with a run
 * that left open sockets to the collector: a collection here closes
 * none of them off the worker (ThreadSanitizer watches the loop), and
 * the run and the new instances all go on. */
static void test_sockets_collected_off_worker(mw__mhd *srv)
{
    mw_engine *eng = new_engine(NULL);
    char id[64], json[96];
    snprintf(json, sizeof json, "{\"port\":%d,\"min_collection_interval\":1}", mw__mhd_port(srv));
    CHECK(add(eng, "drop", json, id) == MW_OK);
    CHECK(mw_engine_start(eng) == MW_OK);
    double end = mw__mono() + 2.5;
    for (int i = 0; mw__mono() < end; i++) {
        char other[64];
        snprintf(json, sizeof json, "{\"n\":%d,\"min_collection_interval\":1}", i);
        CHECK(add(eng, "drop", json, other) == MW_OK);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    mw_instance_stats st = {.size = sizeof(mw_instance_stats)};
    CHECK(mw_engine_instance_stats(eng, id, &st) == MW_OK);
    CHECK(st.runs >= 1 && st.errors == 0);
    CHECK(mw_engine_stop(eng) == MW_OK);
    mw_engine_free(eng);
}

int main(void)
{
    write_checks();
    mw__mhd *srv = mw__mhd_start();
    CHECK(srv != NULL);
    if (!srv)
        return TEST_RESULT();
    test_pinned_and_spread();
    test_busy_worker();
    test_unschedule_in_flight(srv);
    test_hosted_and_started();
    test_sockets_collected_off_worker(srv);
    mw__mhd_stop(srv);
    tmptree_remove(tmp);
    return TEST_RESULT();
}

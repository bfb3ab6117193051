/*
 * test_engine.c - the engine end to end through the public API: static
 * templates scheduled at load, checks run on their intervals, samples and
 * moonwatch.check_status reaching a sink callback, failures and runaways
 * contained, first runs spread, immediate unschedule, the engine's own
 * thread, two engines in one process sharing nothing, and the stdout
 * sink's lines written whole in chunks.
 */
#include "moonwatch.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "test.h"
#include "tmptree.h"
#include "tests/support/make.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct seen {
    int metrics, ok, critical;
    double value;
    char last_critical[256];
    char metric_tags[512];
    char check_id[128];
} seen;

static void collect(const mw_record *r, void *ud)
{
    seen *s = ud;
    if (r->type == MW_RECORD_METRIC && strcmp(r->name, "test.value") == 0) {
        s->metrics++;
        s->value = r->value;
        s->metric_tags[0] = '\0';
        for (size_t i = 0; i < r->ntags; i++) {
            strncat(s->metric_tags, r->tags[i], sizeof s->metric_tags - strlen(s->metric_tags) - 2);
            strcat(s->metric_tags, ",");
        }
        snprintf(s->check_id, sizeof s->check_id, "%s", r->check_id ? r->check_id : "");
    }
    if (r->type == MW_RECORD_SERVICE_CHECK && !strcmp(r->name, "moonwatch.check_status")) {
        if (r->status == MW_STATUS_OK)
            s->ok++;
        if (r->status == MW_STATUS_CRITICAL) {
            s->critical++;
            snprintf(s->last_critical, sizeof s->last_critical, "%s", r->message);
        }
    }
}

static char tmp[64];

static void put(const char *rel, const char *text)
{
    tmptree_put(tmp, rel, text);
}

static void make_tree(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-engine");
    put("checks/good.lua", "local c = {}\n"
                           "function c.run(self)\n"
                           "  mw.gauge('test.value', self.instance.value, {'sample:yes'})\n"
                           "end\nreturn c\n");
    put("checks/bad.lua", "local c = {}\nfunction c.run(self) error('boom at run') end\n"
                          "return c\n");
    put("checks/spin.lua", "local c = {}\nfunction c.run(self) while true do end end\n"
                           "return c\n");
    put("checks/hostload.lua", "local c = {}\n"
                               "function c.run(self)\n"
                               "  local l = mw.proc.read('loadavg')\n"
                               "  mw.gauge('test.value', tonumber(l:match('^(%S+)')))\n"
                               "end\nreturn c\n");
    put("hostproc/loadavg", "31.5 1.00 1.00 1/100 4242\n");
    /* role "a" asks for more than the state shared with "b" may hold,
     * within its own limit (memory_limit_mb 2048): nothing is allocated */
    put("checks/share.lua",
        "local runs = 0\n"
        "return { run = function(self)\n"
        "  runs = runs + 1\n"
        "  if self.instance.role == 'a' then local s = string.rep('x', 1.5e9) end\n"
        "  mw.gauge('test.value', runs)\n"
        "end }\n");
    put("templates/good.d/conf.yaml", "init_config:\ninstances:\n"
                                      "  - value: 42\n    min_collection_interval: 1\n"
                                      "    tags: [env:test, team:core]\n"
                                      "    service: web\n");
    put("templates/bad.yaml", "instances:\n  - min_collection_interval: 1\n");
    put("templates/missing.d/conf.yaml", "instances:\n  - {}\n");
    put("templates/broken.d/conf.yaml", "instances: [\n");
}

static mw_engine *new_engine(seen *s, const char *extra_key, const char *extra_val)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    if (extra_key)
        CHECK(mw_config_set(cfg, extra_key, extra_val, NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "checks_dir", dir, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    CHECK(eng != NULL);
    snprintf(dir, sizeof dir, "%s/templates", tmp);
    CHECK(mw_engine_add_templates_dir(eng, dir) == MW_OK);
    CHECK(mw_engine_add_sink(eng, collect, s) == MW_OK);
    return eng;
}

static void step_for(mw_engine *eng, double secs)
{
    double end = mw__mono() + secs;
    while (mw__mono() < end)
        mw_engine_step(eng, 5);
}

static void test_static_templates_run(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    CHECK(mw_engine_load(eng) == MW_OK);
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    CHECK(st.instances == 2); /* good + bad; missing and broken are skipped */
    step_for(eng, 2.3);       /* first run within 1 s, then every second */
    mw_engine_flush(eng);
    CHECK(s.metrics == 1); /* one context, last value */
    CHECK_STR(s.metric_tags, "env:test,sample:yes,service:web,team:core,");
    CHECK(strncmp(s.check_id, "good:", 5) == 0 && strlen(s.check_id) == 21);
    CHECK(s.ok >= 1);
    CHECK(s.critical >= 1);
    CHECK(strstr(s.last_critical, "boom at run") != NULL);
    mw_instance_stats is = {.size = sizeof(mw_instance_stats)};
    CHECK(mw_engine_instance_stats(eng, s.check_id, &is) == MW_OK);
    CHECK(is.runs >= 2 && is.errors == 0 && is.samples >= 2);
    CHECK(is.last_error[0] == '\0');
    char *ids = mw_engine_instances_json(eng);
    CHECK(ids && strstr(ids, "\"check\":\"bad\"") && strstr(ids, "boom at run"));
    mw_free(ids);
    mw_engine_stats_get(eng, &st);
    CHECK(st.runs >= 4 && st.errors >= 2 && st.lua_bytes > 0);
    mw_engine_free(eng);
}

static void test_runaway_contained(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    cJSON *spin = cJSON_Parse("{\"timeout\": 0.3, \"min_collection_interval\": 1}");
    cJSON *good = cJSON_Parse("{\"value\": 1, \"min_collection_interval\": 1}");
    char *err = NULL;
    const char *spin_id = NULL, *good_id = NULL;
    CHECK(mw__engine_schedule(eng, "spin", "test", spin, NULL, &spin_id, &err) == MW_OK);
    CHECK(mw__engine_schedule(eng, "good", "test", good, NULL, &good_id, &err) == MW_OK);
    step_for(eng, 3.2);
    mw_instance_stats a = {.size = sizeof(mw_instance_stats)},
                      b = {.size = sizeof(mw_instance_stats)};
    CHECK(mw_engine_instance_stats(eng, spin_id, &a) == MW_OK);
    CHECK(mw_engine_instance_stats(eng, good_id, &b) == MW_OK);
    CHECK(a.runs >= 2 && a.errors == a.runs);
    CHECK(strstr(a.last_error, "time") != NULL);
    CHECK(a.last_duration < 0.3 + 0.25);
    CHECK(b.runs >= 3 && b.errors == 0); /* kept its schedule */
    /* unschedule while a run may be in progress: frees everything now */
    char spin_copy[64];
    snprintf(spin_copy, sizeof spin_copy, "%s", spin_id); /* borrowed until removed */
    CHECK(mw__sched_remove(mw__engine_sched(eng), spin_copy) == MW_OK);
    CHECK(mw_engine_instance_stats(eng, spin_copy, &a) == MW_ENOTFOUND);
    cJSON_Delete(spin);
    cJSON_Delete(good);
    mw_engine_free(eng);
}

static void test_remove_preempted_run(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    mw__sched_set_manual(mw__engine_sched(eng), 1);
    cJSON *spin = cJSON_Parse("{\"timeout\": 5}");
    char *err = NULL;
    const char *id = NULL;
    CHECK(mw__engine_schedule(eng, "spin", "test", spin, NULL, &id, &err) == MW_OK);
    CHECK(mw__sched_run_now(mw__engine_sched(eng), id) == MW_OK);
    CHECK(mw__sched_running(mw__engine_sched(eng)) == 1); /* preempted, queued */
    step_for(eng, 0.05);
    CHECK(mw__sched_running(mw__engine_sched(eng)) == 1);
    CHECK(mw__sched_remove(mw__engine_sched(eng), id) == MW_OK);
    CHECK(mw__sched_running(mw__engine_sched(eng)) == 0);
    step_for(eng, 0.02);
    cJSON_Delete(spin);
    mw_engine_free(eng);
}

static void test_first_runs_spread(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    char *err = NULL;
    for (int i = 0; i < 20; i++) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"value\": %d, \"min_collection_interval\": 10}", i);
        cJSON *c = cJSON_Parse(buf);
        CHECK(mw__engine_schedule(eng, "good", "test", c, NULL, NULL, &err) == MW_OK);
        cJSON_Delete(c);
    }
    step_for(eng, 0.3);
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    CHECK(st.instances == 20);
    CHECK(st.runs < 10); /* spread over 10 s, not all at once */
    mw_engine_free(eng);
}

/* A container that starts after the first sync gets its first run at
 * once (run_now), however long its interval: never spread. */
static void test_run_now(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    mw__instance_defaults d = {.interval = 15, .timeout = 10, .mem_cap = 16u << 20};
    char path[128], *err = NULL;
    snprintf(path, sizeof path, "%s/checks/good.lua", tmp);
    mw__script *script = NULL;
    CHECK(mw__script_load("good", path, &script, &err) == MW_OK && script != NULL);
    for (int i = 0; script && i < 20; i++) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"value\": %d, \"min_collection_interval\": 3600}", i);
        cJSON *c = cJSON_Parse(buf);
        mw__instance_params p;
        CHECK(mw__instance_params_parse(c, NULL, &d, &p, &err) == MW_OK);
        mw__sched_spec sp = {
            .script = script, .source = "test", .instance = c, .params = &p, .run_now = 1};
        CHECK(mw__sched_add(mw__engine_sched(eng), &sp, NULL, &err) == MW_OK);
        mw__instance_params_free(&p);
        cJSON_Delete(c);
    }
    mw__script_unref(script);
    step_for(eng, 0.3);
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    CHECK(st.instances == 20);
    CHECK(st.runs == 20); /* all at once, none spread over the hour */
    mw_engine_free(eng);
}

static void test_own_thread(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    CHECK(mw_engine_load(eng) == MW_OK);
    CHECK(mw_engine_start(eng) == MW_OK);
    CHECK(mw_engine_start(eng) == MW_ESTATE);
    CHECK(mw_engine_step(eng, 0) == MW_ESTATE);
    usleep(1300 * 1000);
    CHECK(mw_engine_stop(eng) == MW_OK);
    mw_engine_flush(eng);
    CHECK(s.metrics == 1 && s.ok >= 1);
    mw_engine_free(eng);
}

static void test_two_engines_share_nothing(void)
{
    seen s1 = {0}, s2 = {0};
    mw_engine *a = new_engine(&s1, NULL, NULL), *b = new_engine(&s2, NULL, NULL);
    const char *tags[] = {"x:1"};
    CHECK(mw_engine_submit(a, MW_GAUGE, "test.value", 5, tags, 1, NULL) == MW_OK);
    mw_engine_flush(b);
    CHECK(s2.metrics == 0);
    mw_engine_flush(a);
    CHECK(s1.metrics == 1);
    CHECK(mw_engine_load(a) == MW_OK);
    mw_engine_stats sa = {.size = sizeof(mw_engine_stats)}, sb = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(a, &sa);
    mw_engine_stats_get(b, &sb);
    CHECK(sa.instances == 2 && sb.instances == 0);
    mw_engine_free(a);
    mw_engine_free(b);
}

static void test_prepared_series(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, NULL, NULL);
    const char *tags[] = {"b:2", "a:1", "b:2"};
    mw_series *bad = mw_series_new(eng, MW_GAUGE, "", tags, 1, NULL);
    CHECK(bad == NULL); /* empty name refused */
    mw_series *se = mw_series_new(eng, MW_GAUGE, "test.value", tags, 3, NULL);
    CHECK(se != NULL);
    CHECK(mw_series_submit(se, 1) == MW_OK);
    CHECK(mw_series_submit(se, 9) == MW_OK);
    CHECK(mw_series_submit(se, NAN) == MW_EINVAL);
    /* the same context as an ad-hoc submission with the tags reordered */
    const char *same[] = {"a:1", "b:2"};
    CHECK(mw_engine_submit(eng, MW_GAUGE, "test.value", 9, same, 2, NULL) == MW_OK);
    mw_engine_flush(eng);
    CHECK(s.metrics == 1);
    CHECK_STR(s.metric_tags, "a:1,b:2,");
    mw_series_free(se);
    mw_series_free(NULL);
    mw_engine_free(eng);
}

/* procfs_path reaches the checks' sandboxes through the engine: mw.proc
 * reads the host's /proc where the operator says it is mounted. */
static void test_host_paths(void)
{
    seen s = {0};
    char proc[128], *err = NULL;
    snprintf(proc, sizeof proc, "%s/hostproc", tmp);
    mw_engine *eng = new_engine(&s, "procfs_path", proc);
    const char *id = NULL;
    cJSON *inst = cJSON_Parse("{\"min_collection_interval\": 1}");
    CHECK(mw__engine_schedule(eng, "hostload", "test", inst, NULL, &id, &err) == MW_OK);
    free(err);
    cJSON_Delete(inst);
    step_for(eng, 1.3);
    mw_engine_flush(eng);
    CHECK(s.metrics == 1 && s.ok >= 1 && s.critical == 0);
    CHECK_NEAR(s.value, 31.5, 1e-9); /* the file under procfs_path, not /proc/loadavg */
    mw_engine_free(eng);

    mw_config *cfg = mw_config_new();
    CHECK(strcmp(mw__config_procfs(cfg), access("/host/proc", F_OK) ? "/proc" : "/host/proc") == 0);
    CHECK(mw_config_set(cfg, "procfs_path", "host/proc", &err) == MW_EINVAL);
    CHECK(err && strstr(err, "procfs_path: expected an absolute path") != NULL);
    mw_free(err);
    err = NULL;
    CHECK(mw_config_set(cfg, "cgroup_root", "/rootfs/sys/fs/cgroup", NULL) == MW_OK);
    CHECK_STR(mw__config_cgroup_root(cfg), "/rootfs/sys/fs/cgroup");
    CHECK(mw_config_set(cfg, "cgroup_root", "", NULL) == MW_OK); /* back to the default */
    CHECK(strncmp(mw__config_cgroup_root(cfg), "/", 1) == 0 &&
          strstr(mw__config_cgroup_root(cfg), "/sys/fs/cgroup") != NULL);
    mw_config_free(cfg);
}

/* The stdout sink writes a big flush out as it goes, in whole lines: every
 * record once, none cut at a chunk's edge. */
static void test_stdout_in_chunks(void)
{
    enum { N = 4000 }; /* about 600 KB of lines: several chunks */
    seen s = {0};
    mw_engine *eng = new_engine(&s, "sink", "stdout");
    char path[128], tag[32], line[1024];
    snprintf(path, sizeof path, "%s/stdout.jsonl", tmp);
    for (int i = 0; i < N; i++) {
        const char *tags[] = {tag};
        snprintf(tag, sizeof tag, "i:%d", i);
        CHECK(mw_engine_submit(eng, MW_GAUGE, "test.chunk", i, tags, 1, NULL) == MW_OK);
    }
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *f = fopen(path, "w+");
    CHECK(saved >= 0 && f && dup2(fileno(f), STDOUT_FILENO) >= 0);
    mw_engine_flush(eng);
    CHECK(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    static unsigned char got[N];
    int lines = 0, whole = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        int i = -1;
        const char *t = strstr(line, "\"i:");
        lines++;
        whole += line[0] == '{' && strcmp(line + strlen(line) - 2, "}\n") == 0;
        if (t && sscanf(t, "\"i:%d\"", &i) == 1 && i >= 0 && i < N)
            got[i]++;
    }
    fclose(f);
    CHECK(lines == N && whole == N);
    int once = 0;
    for (int i = 0; i < N; i++)
        once += got[i] == 1;
    CHECK(once == N);
    mw_engine_free(eng);
}

/* A check's shared state that fails (its own cap, not an instance's) is
 * replaced: the other instance in it is made again in a fresh state and
 * keeps running; the failing one keeps failing alone. */
static void test_broken_state_replaced(void)
{
    seen s = {0};
    mw_engine *eng = new_engine(&s, "workers", "1");
    const char *id = NULL;
    char *err = NULL;
    cJSON *a = cJSON_Parse("{\"role\":\"a\",\"memory_limit_mb\":2048,"
                           "\"min_collection_interval\":1}");
    cJSON *b = cJSON_Parse("{\"role\":\"b\",\"min_collection_interval\":1}");
    CHECK(mw__engine_schedule(eng, "share", "test", a, NULL, &id, &err) == MW_OK);
    free(err);
    err = NULL;
    CHECK(mw__engine_schedule(eng, "share", "test", b, NULL, &id, &err) == MW_OK);
    free(err);
    char bid[128];
    snprintf(bid, sizeof bid, "%s", id ? id : "");
    step_for(eng, 3.5);
    mw_engine_flush(eng);
    mw_instance_stats is = {.size = sizeof(mw_instance_stats)};
    CHECK(mw_engine_instance_stats(eng, bid, &is) == MW_OK);
    CHECK(is.runs >= 3 && is.errors == 0); /* made again before its runs */
    /* b's module-level count started over in a fresh state */
    CHECK(s.metrics == 1 && s.value >= 1 && s.value < (double)is.runs);
    CHECK(s.critical >= 1 && strstr(s.last_critical, "memory") != NULL); /* a */
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    CHECK(st.instances == 2);
    cJSON_Delete(a);
    cJSON_Delete(b);
    mw_engine_free(eng);
}

static void test_config_errors(void)
{
    mw_config *cfg = mw_config_new();
    char *err = NULL;
    CHECK(mw_config_set(cfg, "flush_interval", "soon", &err) == MW_EINVAL);
    CHECK(err && strstr(err, "flush_interval") != NULL);
    mw_free(err);
    err = NULL;
    CHECK(mw_config_set(cfg, "no_such_option", "1", &err) == MW_EINVAL);
    CHECK(err && strstr(err, "unknown option") != NULL);
    mw_free(err);
    err = NULL;
    put("bad-config.yaml", "flush_interval: 5\nlog_level: loud\n");
    char path[128];
    snprintf(path, sizeof path, "%s/bad-config.yaml", tmp);
    CHECK(mw_config_load_file(cfg, path, &err) == MW_EINVAL);
    CHECK(err && strstr(err, "bad-config.yaml:2:") && strstr(err, "log_level"));
    mw_free(err);
    mw_config_free(cfg);
}

int main(void)
{
    make_tree();
    test_static_templates_run();
    test_runaway_contained();
    test_remove_preempted_run();
    test_first_runs_spread();
    test_run_now();
    test_own_thread();
    test_two_engines_share_nothing();
    test_prepared_series();
    test_stdout_in_chunks();
    test_config_errors();
    test_broken_state_replaced();
    test_host_paths();
    tmptree_remove(tmp);
    return TEST_RESULT();
}

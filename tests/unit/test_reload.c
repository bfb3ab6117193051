/*
 * test_reload.c - hot reload through the engine (mw_engine_reload()) with
 * temporary checks and templates directories: a template added, changed
 * and broken then fixed, a check script changed and broken; only the
 * instances of what changed are replaced, the others keep their id and
 * their Lua state (a counter in self), and a broken file keeps its
 * previous version running; with watch_config_dirs a new file is picked
 * up without a call; discovered instances (a fake Docker engine) go
 * through the reconciler and only those of the changed template change.
 */
#include "moonwatch.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "test.h"
#include "tmptree.h"
#include "tests/support/fake_dockerd.h"
#include "tests/support/make.h"

#include <stdlib.h>

#define WAIT_S 20.0 /* bound on any wait for runs */

static char tmp[64];

/* The counter each instance keeps in self, by its `name` tag. */
typedef struct counters {
    double v[8];
} counters;

static const char *const names[] = {"a", "a2", "b", "c"};

static void collect(const mw_record *r, void *ud)
{
    counters *c = ud;
    if (r->type != MW_RECORD_METRIC || strcmp(r->name, "rl.count") != 0 || r->ntags < 1)
        return;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strncmp(r->tags[0], "name:", 5) == 0 && strcmp(r->tags[0] + 5, names[i]) == 0)
            c->v[i] = r->value;
}

static const char *counter_lua = "local c = {}\n"
                                 "function c.run(self)\n"
                                 "  self.n = (self.n or 0) + 1\n"
                                 "  mw.gauge('rl.count', self.n, {'name:' .. self.instance.name})\n"
                                 "end\nreturn c\n";

static void put(const char *rel, const char *text)
{
    tmptree_put(tmp, rel, text);
}

static void put_template(const char *rel, const char *check, const char *name)
{
    char text[256];
    snprintf(text, sizeof text,
             "init_config:\ninstances:\n  - name: %s\n    check: %s\n"
             "    min_collection_interval: 1\n",
             name, check);
    put(rel, text);
}

static mw_engine *new_engine(counters *c, int watch, const char *docker_host)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    if (docker_host)
        CHECK(mw_config_set(cfg, "docker_host", docker_host, NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", docker_host ? "on" : "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "ecs", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "watch_config_dirs", watch ? "true" : "false", NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "checks_dir", dir, NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/templates", tmp);
    CHECK(mw_config_set(cfg, "templates_dir", dir, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    CHECK(mw_engine_add_sink(eng, collect, c) == MW_OK);
    return eng;
}

/* The id of the instance named `name` into `out` ("" when none), from
 * the scheduler's instances of every loaded script. */
static void id_of(mw_engine *eng, const char *name, char *out, size_t size)
{
    size_t n = 0;
    mw__script **v = mw__engine_scripts(eng, &n);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        cJSON *users = NULL, *o;
        CHECK(mw__sched_script_users(mw__engine_sched(eng), v[i], &users) == MW_OK);
        cJSON_ArrayForEach(o, users)
        {
            cJSON *inst = cJSON_GetObjectItem(o, "instance");
            const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(inst, "name"));
            if (nm && strcmp(nm, name) == 0)
                snprintf(out, size, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")));
        }
        cJSON_Delete(users);
    }
}

static uint64_t runs_of(mw_engine *eng, const char *id)
{
    mw_instance_stats st = {.size = sizeof st};
    return mw_engine_instance_stats(eng, id, &st) == MW_OK ? st.runs : 0;
}

/* Steps the engine until `id` has run more than `than` times (bounded). */
static int run_past(mw_engine *eng, const char *id, uint64_t than)
{
    double end = mw__mono() + WAIT_S;
    while (runs_of(eng, id) <= than && mw__mono() < end)
        mw_engine_step(eng, 20);
    return runs_of(eng, id) > than;
}

static void make_tree(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-reload");
    put("checks/counter.lua", counter_lua);
    put("checks/other.lua", counter_lua);
    put_template("templates/counter.d/a.yaml", "counter", "a");
    put_template("templates/other.d/b.yaml", "other", "b");
}

static void test_reload(void)
{
    counters c = {{0}};
    char a[128], b[128], cc[128], a2[128], b2[128];
    char *err = NULL;
    mw_engine *eng = new_engine(&c, 0, NULL);
    CHECK(mw_engine_reload(eng, &err) == MW_ESTATE); /* not loaded */
    CHECK(mw_engine_load(eng) == MW_OK);
    id_of(eng, "a", a, sizeof a);
    id_of(eng, "b", b, sizeof b);
    CHECK(a[0] && b[0]);
    CHECK(run_past(eng, a, 0) && run_past(eng, b, 0));

    /* a template added: its instance appears, the others are untouched */
    put_template("templates/counter.d/c.yaml", "counter", "c");
    uint64_t ra = runs_of(eng, a), rb = runs_of(eng, b);
    CHECK(mw_engine_reload(eng, &err) == MW_OK && err == NULL);
    id_of(eng, "c", cc, sizeof cc);
    CHECK(cc[0] != '\0');
    CHECK(runs_of(eng, a) >= ra && runs_of(eng, b) >= rb && ra > 0);
    CHECK(run_past(eng, cc, 0));

    /* a template changed: only its instance is replaced */
    put_template("templates/counter.d/a.yaml", "counter", "a2");
    rb = runs_of(eng, b);
    uint64_t rc_ = runs_of(eng, cc);
    CHECK(mw_engine_reload(eng, &err) == MW_OK);
    id_of(eng, "a2", a2, sizeof a2);
    CHECK(a2[0] != '\0' && strcmp(a2, a) != 0);
    CHECK(runs_of(eng, a) == 0); /* gone */
    CHECK(runs_of(eng, b) >= rb && runs_of(eng, cc) >= rc_);

    /* a broken template: reported with file:line:col, its previous
     * version keeps running */
    put("templates/other.d/b.yaml", "init_config:\ninstances: [\n  - name: b\n");
    rb = runs_of(eng, b);
    CHECK(mw_engine_reload(eng, &err) == MW_EPARSE);
    CHECK(err && strstr(err, "other.d/b.yaml:") != NULL);
    if (err) {
        const char *p = strstr(err, "b.yaml:") + 7;
        int line = 0, col = 0;
        CHECK(sscanf(p, "%d:%d:", &line, &col) == 2 && line > 0 && col > 0);
    }
    mw_free(err);
    err = NULL;
    cJSON *st = mw__engine_reload_json(eng);
    cJSON *errs = cJSON_GetObjectItem(st, "errors");
    CHECK(cJSON_GetArraySize(errs) >= 1);
    cJSON_Delete(st);
    CHECK(runs_of(eng, b) >= rb && rb > 0);
    CHECK(run_past(eng, b, rb));

    /* fixed: applied (a new config, a new instance) */
    put_template("templates/other.d/b.yaml", "other", "b");
    CHECK(mw_engine_reload(eng, &err) == MW_OK);
    st = mw__engine_reload_json(eng);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(st, "errors")) == 0);
    cJSON_Delete(st);
    id_of(eng, "b", b2, sizeof b2);
    CHECK_STR(b2, b); /* the same config as before it broke: kept */

    /* a check script changed: its instances are replaced (same id, a new
     * Lua state compiled from the new text: the new code runs), the other
     * check's are untouched (their shared state and counters go on) */
    CHECK(run_past(eng, b, 1));
    put("checks/other.lua", "-- changed: counts from 100\n"
                            "local c = {}\n"
                            "function c.run(self)\n"
                            "  self.n = (self.n or 99) + 1\n"
                            "  mw.gauge('rl.count', self.n, {'name:' .. self.instance.name})\n"
                            "end\nreturn c\n");
    ra = runs_of(eng, a2);
    rc_ = runs_of(eng, cc);
    CHECK(mw_engine_reload(eng, &err) == MW_OK);
    CHECK(runs_of(eng, b) == 0); /* same id, a fresh instance */
    CHECK(runs_of(eng, a2) >= ra && runs_of(eng, cc) >= rc_);
    CHECK(run_past(eng, b, 0));
    mw_engine_flush(eng);
    CHECK(c.v[2] >= 100); /* the new script's code, not the old state's */

    /* a broken script: reported, the previous version keeps running */
    put("checks/other.lua", "local c = {}\nfunction c.run(self\nreturn c\n");
    rb = runs_of(eng, b);
    CHECK(mw_engine_reload(eng, &err) == MW_EPARSE);
    CHECK(err && strstr(err, "checks/other.lua:") != NULL);
    mw_free(err);
    err = NULL;
    CHECK(runs_of(eng, b) >= rb && rb > 0);
    CHECK(run_past(eng, b, rb));

    /* the counter in self of an untouched instance went on all along */
    uint64_t n = runs_of(eng, cc);
    mw_engine_flush(eng);
    CHECK(n >= 2 && c.v[3] == (double)n);
    mw_engine_free(eng);
}

/* With watch_config_dirs, a template written into a new `<check>.d`
 * directory is applied without a call: inotify, then the debounce. */
static void test_watch(void)
{
    counters c = {{0}};
    char id[128] = "";
    mw_engine *eng = new_engine(&c, 1, NULL);
    CHECK(mw_engine_load(eng) == MW_OK);
    mw_engine_step(eng, 0);
    put_template("templates/watched.d/w.yaml", "watched", "wt");
    put("checks/watched.lua", counter_lua);
    double end = mw__mono() + WAIT_S;
    while (!id[0] && mw__mono() < end) {
        mw_engine_step(eng, 20);
        id_of(eng, "wt", id, sizeof id);
    }
    CHECK(id[0] != '\0');
    CHECK(run_past(eng, id, 0));
    mw_engine_free(eng);
}

/* Waits (bounded) until an instance named `name` runs; its id in `id`. */
static void wait_instance(mw_engine *eng, const char *name, char *id, size_t size)
{
    double end = mw__mono() + WAIT_S;
    id[0] = '\0';
    while (!id[0] && mw__mono() < end) {
        mw_engine_step(eng, 20);
        id_of(eng, name, id, size);
    }
    CHECK(id[0] != '\0');
}

/* Discovered instances go through discovery's reconciler: a changed
 * template with ad_identifiers replaces only the instances it resolved
 * to, those of the other containers keep their id and state. */
static void test_discovered(void)
{
    char sock[128], host[160], w[128], w2[128], d[128], d2[128];
    char *err = NULL;
    counters c = {{0}};
    snprintf(sock, sizeof sock, "%s/docker.sock", tmp);
    snprintf(host, sizeof host, "unix://%s", sock);
    mw__fdd_opts fo = {.socket_path = sock};
    mw__fdd *fdd = mw__fdd_new(&fo, &err);
    CHECK(fdd != NULL);
    if (!fdd) {
        free(err);
        return;
    }
    put("templates/web.d/auto.yaml", "ad_identifiers: [webimg]\ninit_config:\ninstances:\n"
                                     "  - name: w\n    min_collection_interval: 1\n");
    put("templates/db.d/auto.yaml", "ad_identifiers: [dbimg]\ninit_config:\ninstances:\n"
                                    "  - name: d\n    min_collection_interval: 1\n");
    put("checks/web.lua", counter_lua);
    put("checks/db.lua", counter_lua);
    mw__fdd_spec ws = {.name = "web1", .image = "webimg:1"},
                 ds = {.name = "db1", .image = "dbimg:1"};
    CHECK(mw__fdd_run(fdd, &ws, NULL) == 0 && mw__fdd_run(fdd, &ds, NULL) == 0);
    mw_engine *eng = new_engine(&c, 0, host);
    CHECK(mw_engine_load(eng) == MW_OK);
    wait_instance(eng, "w", w, sizeof w);
    wait_instance(eng, "d", d, sizeof d);
    CHECK(run_past(eng, d, 0));
    uint64_t rd = runs_of(eng, d);
    put("templates/web.d/auto.yaml", "ad_identifiers: [webimg]\ninit_config:\ninstances:\n"
                                     "  - name: w2\n    min_collection_interval: 1\n");
    CHECK(mw_engine_reload(eng, &err) == MW_OK);
    mw_free(err);
    err = NULL;
    id_of(eng, "w2", w2, sizeof w2);
    id_of(eng, "d", d2, sizeof d2);
    CHECK(w2[0] != '\0' && strcmp(w2, w) != 0);
    CHECK(runs_of(eng, w) == 0);
    CHECK_STR(d2, d);
    CHECK(runs_of(eng, d) >= rd && rd > 0);
    mw_engine_free(eng);
    mw__fdd_free(fdd);
}

int main(void)
{
    make_tree();
    test_reload();
    test_watch();
    test_discovered();
    tmptree_remove(tmp);
    return TEST_RESULT();
}

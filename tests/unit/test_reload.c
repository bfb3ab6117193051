/*
 * test_reload.c - hot reload through the engine (mw_engine_reload()) with
 * temporary checks and templates directories: a template added, changed
 * and broken then fixed, a check script changed and broken; only the
 * instances of what changed are replaced, the others keep their id and
 * their Lua state (a counter in self), and a broken file keeps its
 * previous version running.
 */
#include "moonwatch.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "test.h"
#include "tmptree.h"
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

static mw_engine *new_engine(counters *c, int watch)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
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
    mw_engine *eng = new_engine(&c, 0);
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

    /* a check script changed: its instances are replaced (same id, new
     * Lua state), the other check's are untouched */
    CHECK(run_past(eng, b, 1));
    put("checks/other.lua", "-- changed\n" /* same behaviour, new text */
                            "local c = {}\n"
                            "function c.run(self)\n"
                            "  self.n = (self.n or 0) + 1\n"
                            "  mw.gauge('rl.count', self.n, {'name:' .. self.instance.name})\n"
                            "end\nreturn c\n");
    ra = runs_of(eng, a2);
    rc_ = runs_of(eng, cc);
    CHECK(mw_engine_reload(eng, &err) == MW_OK);
    CHECK(runs_of(eng, b) == 0); /* same id, a fresh instance */
    CHECK(runs_of(eng, a2) >= ra && runs_of(eng, cc) >= rc_);
    CHECK(run_past(eng, b, 0));

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
    mw_engine *eng = new_engine(&c, 1);
    CHECK(mw_engine_load(eng) == MW_OK);
    mw_engine_step(eng, 0);
    put_template("templates/watched.d/w.yaml", "watched", "w");
    put("checks/watched.lua", counter_lua);
    double end = mw__mono() + WAIT_S;
    while (!id[0] && mw__mono() < end) {
        mw_engine_step(eng, 20);
        id_of(eng, "w", id, sizeof id);
    }
    CHECK(id[0] != '\0');
    CHECK(run_past(eng, id, 0));
    mw_engine_free(eng);
}

int main(void)
{
    make_tree();
    test_reload();
    test_watch();
    tmptree_remove(tmp);
    return TEST_RESULT();
}

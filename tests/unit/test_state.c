/*
 * test_state.c - checks' persistent state: the store (core/base/store.h)
 * on its own, and mw.state through the engine from a real Lua check.
 *
 * The store: get, set, replace, delete, keys under a prefix in order,
 * any bytes in keys and values, the key, value and scope caps (a refused
 * set leaves the store as it was), scopes that cannot name a file, a
 * save that replaces the file whole (no temporary left behind), a load
 * of what was saved, a damaged file (warned, started empty), a
 * directory that cannot be made (warned once for every store of it,
 * the state kept in memory), a store with no directory.
 *
 * mw.state: a check that counts its runs in its state keeps counting
 * across runs and across a restart of the engine (a new engine on the
 * same state_dir), each instance in its own file; keys(prefix); set
 * returns nil, err past the cap; wrong arguments raise; an unwritable
 * state_dir is warned about once and the count goes on in memory.
 */
#include "moonwatch.h"
#include "core/base/store.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "test.h"
#include "tests/support/make.h"
#include "tests/support/run_now.h"
#include "tmptree.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static char tmp[64];
static int warnings;
static char last_warning[1024];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_line(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)where;
    (void)ud;
    if (level != MW_LOG_WARN)
        return;
    pthread_mutex_lock(&log_mu);
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
    pthread_mutex_unlock(&log_mu);
}

static mw__log test_log = {.level = MW_LOG_DEBUG, .fn = log_line};

static int get_is(mw__store *s, const char *k, const char *want)
{
    const char *v;
    size_t vn;
    if (!mw__store_get(s, k, strlen(k), &v, &vn))
        return want == NULL;
    return want && vn == strlen(want) && memcmp(v, want, vn) == 0;
}

static mw_code set(mw__store *s, const char *k, const char *v)
{
    return mw__store_set(s, k, strlen(k), v, v ? strlen(v) : 0, NULL);
}

/* Files in `dir` (-1 when it cannot be read). */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ------------------------------------------------------------- the store */

static void test_store_memory(void)
{
    mw__store *s = NULL;
    const char *why = NULL, *k;
    size_t kn;
    CHECK(mw__store_open(NULL, "amazon_ecs:00000000000000aa", &s) == MW_OK);
    CHECK(get_is(s, "a", NULL));
    CHECK(set(s, "svc:prod/web", "1700000000.5 e1") == MW_OK);
    CHECK(set(s, "svc:prod/api", "1") == MW_OK);
    CHECK(set(s, "ci:prod/arn1", "ACTIVE") == MW_OK);
    CHECK(set(s, "svc:prodx/web", "2") == MW_OK);
    CHECK(get_is(s, "svc:prod/web", "1700000000.5 e1"));
    CHECK(set(s, "svc:prod/web", "1700000001 e2") == MW_OK); /* replaced */
    CHECK(get_is(s, "svc:prod/web", "1700000001 e2"));
    CHECK(mw__store_count(s) == 4);
    size_t i = mw__store_lower_bound(s, "svc:prod/", 9);
    mw__store_key(s, i, &k, &kn);
    CHECK(kn == 12 && memcmp(k, "svc:prod/api", 12) == 0);
    mw__store_key(s, i + 1, &k, &kn);
    CHECK(kn == 12 && memcmp(k, "svc:prod/web", 12) == 0);
    CHECK(set(s, "svc:prod/api", NULL) == MW_OK); /* deleted */
    CHECK(set(s, "never", NULL) == MW_OK);
    CHECK(get_is(s, "svc:prod/api", NULL));
    CHECK(mw__store_count(s) == 3);

    /* any bytes */
    CHECK(mw__store_set(s, "bin\0key", 7, "v\0\n1", 4, NULL) == MW_OK);
    const char *v;
    size_t vn;
    CHECK(mw__store_get(s, "bin\0key", 7, &v, &vn) && vn == 4 && memcmp(v, "v\0\n1", 4) == 0);
    CHECK(!mw__store_get(s, "bin", 3, &v, &vn));

    /* caps: refused sets change nothing */
    char *big = malloc(MW_STORE_MAX_VALUE + 2);
    memset(big, 'x', MW_STORE_MAX_VALUE + 1);
    big[MW_STORE_MAX_VALUE + 1] = '\0';
    size_t used = mw__store_used(s);
    CHECK(mw__store_set(s, "", 0, "v", 1, &why) == MW_EINVAL);
    CHECK(mw__store_set(s, big, MW_STORE_MAX_KEY + 1, "v", 1, &why) == MW_EINVAL);
    CHECK_STR(why, "a key is 1 to 1024 bytes");
    CHECK(mw__store_set(s, "k", 1, big, MW_STORE_MAX_VALUE + 1, &why) == MW_EINVAL);
    CHECK_STR(why, "a value is at most 64 KiB");
    CHECK(mw__store_used(s) == used);
    int n = 0;
    mw_code rc;
    do { /* 64 KiB values until the scope is full */
        char key[32];
        snprintf(key, sizeof key, "big%03d", n++);
        rc = mw__store_set(s, key, strlen(key), big, MW_STORE_MAX_VALUE, &why);
    } while (rc == MW_OK && n < 100);
    CHECK(rc == MW_ENOMEM && n == 16);
    CHECK_STR(why, "the check's state would pass its cap of 1 MiB");
    CHECK(mw__store_used(s) <= MW_STORE_MAX_BYTES);
    CHECK(set(s, "big000", NULL) == MW_OK); /* room again */
    CHECK(mw__store_set(s, "big999", 6, big, MW_STORE_MAX_VALUE, &why) == MW_OK);
    free(big);
    CHECK(mw__store_save(s) == MW_OK); /* memory only: nothing to do */
    mw__store_close(s);

    CHECK(!mw__store_scope_valid(""));
    CHECK(!mw__store_scope_valid("../x"));
    CHECK(!mw__store_scope_valid(".hidden"));
    CHECK(!mw__store_scope_valid("a/b"));
    CHECK(!mw__store_scope_valid("a b"));
    CHECK(mw__store_scope_valid("redis-db.v2:0123456789abcdef"));
    CHECK(mw__store_open(NULL, "a/b", &s) == MW_EINVAL && s == NULL);
}

static void test_store_files(void)
{
    char dir[128], path[256];
    mw__store_dir *d = NULL;
    mw__store *s = NULL, *t = NULL;
    snprintf(dir, sizeof dir, "%s/state/checks", tmp); /* neither exists yet */
    CHECK(mw__store_dir_new(dir, &test_log, &d) == MW_OK);
    CHECK(mw__store_open(d, "amazon_ecs:0123456789abcdef", &s) == MW_OK);
    CHECK(files_in(dir) == -1); /* nothing made before a save */
    CHECK(mw__store_save(s) == MW_OK);
    CHECK(files_in(dir) == -1); /* nothing changed, nothing saved */
    CHECK(set(s, "b", "2") == MW_OK);
    CHECK(set(s, "a", "line\nbreak") == MW_OK);
    CHECK(mw__store_set(s, "z\n1", 3, "", 0, NULL) == MW_OK);
    CHECK(mw__store_save(s) == MW_OK);
    CHECK(files_in(dir) == 1); /* the file alone: no temporary left */
    snprintf(path, sizeof path, "%s/amazon_ecs@0123456789abcdef.state", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK(mw__read_file(path, 4096, &text, &len) == MW_OK);
    CHECK(text && len == strlen(text) &&
          !strcmp(text, "moonwatch-state 1\n"
                        "1 10\naline\nbreak\n"
                        "1 1\nb2\n"
                        "3 0\nz\n1\n"));
    free(text);

    /* another store of the same scope reads it back */
    CHECK(mw__store_open(d, "amazon_ecs:0123456789abcdef", &t) == MW_OK);
    CHECK(get_is(t, "a", "line\nbreak") && get_is(t, "b", "2") && mw__store_count(t) == 3);
    mw__store_close(t);
    CHECK(set(s, "b", NULL) == MW_OK);
    mw__store_close(s); /* saves */
    CHECK(mw__store_open(d, "amazon_ecs:0123456789abcdef", &t) == MW_OK);
    CHECK(get_is(t, "b", NULL) && mw__store_count(t) == 2);
    mw__store_close(t);

    /* damaged files: warned, started empty, replaced at the next save */
    static const char *const bad[] = {
        "",
        "moonwatch-state 2\n",
        "moonwatch-state 1\n1 1\nab",            /* no final newline */
        "moonwatch-state 1\n1 5\nab\n",          /* cut */
        "moonwatch-state 1\n1 1\nb1\n1 1\na1\n", /* out of order */
        "moonwatch-state 1\n1 1\na1\n1 1\na1\n", /* twice */
        "moonwatch-state 1\n0 1\n1\n",           /* empty key */
        "moonwatch-state 1\n1 99999999999\na",   /* huge */
        "moonwatch-state 1\nx 1\na1\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        int w = warnings;
        CHECK(mw__store_open(d, "amazon_ecs:0123456789abcdef", &t) == MW_OK);
        CHECK(mw__store_count(t) == 0);
        CHECK(warnings == w + 1);
        CHECK(strstr(last_warning, "is not a state file moonwatch wrote") != NULL);
        CHECK(set(t, "k", "v") == MW_OK);
        mw__store_close(t);
        CHECK(mw__store_open(d, "amazon_ecs:0123456789abcdef", &t) == MW_OK);
        CHECK(get_is(t, "k", "v") && warnings == w + 1);
        mw__store_close(t);
    }
    mw__store_dir_free(d);

    /* a directory that cannot be made: one warning for all its stores */
    snprintf(path, sizeof path, "%s/a-file", tmp);
    tmptree_put(tmp, "a-file", "not a directory\n");
    snprintf(dir, sizeof dir, "%s/a-file/checks", tmp);
    CHECK(mw__store_dir_new(dir, &test_log, &d) == MW_OK);
    int w = warnings;
    CHECK(mw__store_open(d, "x:1", &s) == MW_OK);
    CHECK(mw__store_open(d, "y:2", &t) == MW_OK);
    CHECK(set(s, "k", "v") == MW_OK && set(t, "k", "w") == MW_OK);
    CHECK(mw__store_save(s) == MW_EIO);
    CHECK(mw__store_save(t) == MW_EIO);
    CHECK(mw__store_save(s) == MW_EIO); /* still changed: tried again */
    CHECK(warnings == w + 1);
    CHECK(strstr(last_warning, "cannot save the check's state in") != NULL);
    CHECK(strstr(last_warning, "Not a directory") != NULL);
    CHECK(get_is(s, "k", "v") && get_is(t, "k", "w")); /* in memory */
    mw__store_close(s);
    mw__store_close(t);
    CHECK(warnings == w + 1);
    mw__store_dir_free(d);
}

/* ------------------------------------------------------------- mw.state */

static char results[4][512];

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    if (r->type != MW_RECORD_SERVICE_CHECK || strncmp(r->name, "st.", 3) != 0)
        return;
    int i = atoi(r->name + 3);
    if (i >= 0 && i < 4)
        snprintf(results[i], sizeof results[i], "%d %s", r->status, r->message ? r->message : "");
}

static mw_engine *new_engine(const char *state_dir)
{
    mw_config *cfg = mw_config_new();
    char checks[128];
    snprintf(checks, sizeof checks, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "checks_dir", checks, NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "ecs", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "2", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "state_dir", state_dir, NULL) == MW_OK);
    CHECK(mw_config_set_log(cfg, log_line, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    t_asked_only(eng);
    return eng;
}

static const char *schedule(mw_engine *eng, int slot)
{
    char j[64];
    snprintf(j, sizeof j, "{\"slot\":%d}", slot);
    return t_schedule(eng, "counter", j, 0);
}

/* Runs `id` once; returns its result (status and message). */
static const char *run(mw_engine *eng, const char *id, int slot)
{
    results[slot][0] = '\0';
    CHECK(t_run_now(eng, id) == MW_OK); /* see run_now.h */
    for (int i = 0; i < 2000 && !results[slot][0]; i++) {
        mw_engine_step(eng, 5);
        if (i % 10 == 9)
            mw_engine_flush(eng);
    }
    return results[slot];
}

static void write_check(void)
{
    tmptree_put(
        tmp, "checks/counter.lua",
        "local check = {}\n"
        "function check.run(self)\n"
        "  local s = mw.state\n"
        "  local n = tonumber(s.get('runs') or 0) + 1\n"
        "  assert(s.set('runs', tostring(n)) == true)\n"
        "  s.set('ci:prod/' .. n, 'ACTIVE')\n"
        "  s.set('ci:prodx/' .. n, 'x')\n"
        "  if n == 2 then s.set('ci:prod/1', nil) end\n"
        "  local keys = table.concat(s.keys('ci:prod/'), ',')\n"
        "  local big = string.rep('x', 65536)\n"
        "  local ok, err\n"
        "  for i = 1, 20 do ok, err = s.set('big' .. i, big) if not ok then break end end\n"
        "  for i = 1, 20 do s.set('big' .. i, nil) end\n"
        "  local raised = {}\n"
        "  for _, f in ipairs({function() s.set('', 'v') end,\n"
        "                      function() s.set('k', {}) end,\n"
        "                      function() s.get(1 < 2) end,\n"
        "                      function() s.set('k', big .. 'x') end}) do\n"
        "    raised[#raised + 1] = select(2, pcall(f)):match('bad argument #%d')\n"
        "  end\n"
        "  mw.service_check('st.' .. self.instance.slot, mw.OK, nil,\n"
        "    n .. ' ' .. keys .. ' ' .. tostring(err) .. ' ' .. table.concat(raised, '/'))\n"
        "end\n"
        "return check\n");
}

static void test_engine(void)
{
    char state[128], path[256];
    const char *capped = "mw.state.set: the check's state would pass its cap of 1 MiB";
    char want[512];
    snprintf(state, sizeof state, "%s/engine-state", tmp);
    write_check();

    mw_engine *eng = new_engine(state);
    const char *a = schedule(eng, 0), *b = schedule(eng, 1);
    snprintf(want, sizeof want,
             "0 1 ci:prod/1 %s bad argument #1/bad argument #2/bad argument #1/bad argument #2",
             capped);
    CHECK_STR(run(eng, a, 0), want);
    CHECK(!strncmp(run(eng, a, 0), "0 2 ci:prod/2 ", 14));
    CHECK(!strncmp(run(eng, b, 1), "0 1 ci:prod/1 ", 14)); /* a state of its own */
    snprintf(path, sizeof path, "%s/checks", state);
    CHECK(files_in(path) == 2);
    mw_engine_free(eng);

    /* a restart: the same instances find their state */
    eng = new_engine(state);
    a = schedule(eng, 0);
    b = schedule(eng, 1);
    CHECK(!strncmp(run(eng, a, 0), "0 3 ci:prod/2,ci:prod/3 ", 24));
    CHECK(!strncmp(run(eng, b, 1), "0 2 ci:prod/2 ", 14));
    mw_engine_free(eng);

    /* a state_dir that cannot be made: warned once, kept in memory */
    snprintf(state, sizeof state, "%s/a-file/state", tmp);
    int w = warnings;
    eng = new_engine(state);
    a = schedule(eng, 0);
    b = schedule(eng, 1);
    CHECK(!strncmp(run(eng, a, 0), "0 1 ", 4));
    CHECK(!strncmp(run(eng, b, 1), "0 1 ", 4));
    CHECK(!strncmp(run(eng, a, 0), "0 2 ", 4));
    CHECK(!strncmp(run(eng, a, 0), "0 3 ", 4));
    mw_engine_free(eng);
    CHECK(warnings == w + 1);
    CHECK(strstr(last_warning, "in memory only") != NULL);
}

int main(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-state");
    test_store_memory();
    test_store_files();
    test_engine();
    tmptree_remove(tmp);
    return TEST_RESULT();
}

/*
 * openmetrics_lua.c - the `mw.openmetrics` table: submit() runs the
 * scraper of openmetrics_scrape.c over a text into the sandbox's sample
 * destination, parse() turns a text into Lua tables.
 *
 * Ownership: the scraper lives in a userdata whose __gc frees it, so an
 * error raised mid-scrape (the time budget, the memory cap) leaks
 * nothing; option arrays are userdata too.
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"
#include "lua/openmetrics_scrape.h"

#include <string.h>

#define SCRAPER_MT "mw.openmetrics.scraper"

/* ------------------------------------------------------------- Lua: options */

#define FN_SUBMIT "mw.openmetrics.submit"

static int opt_error(lua_State *L, const char *key, const char *what)
{
    return luaL_error(L, FN_SUBMIT ": option '%s' %s", key, what);
}

/* An array of `n` items of `size` bytes, owned by a userdata left on the
 * stack (a raise frees it). */
static void *scratch(lua_State *L, size_t n, size_t size)
{
    void *p = lua_newuserdatauv(L, (n ? n : 1) * size, 0);
    memset(p, 0, (n ? n : 1) * size);
    return p;
}

/* Entries of the sequence at `idx`; raises when it is not a table whose
 * keys are exactly 1..n. */
static size_t list_len(lua_State *L, int idx, const char *key)
{
    size_t n = 0, len;
    if (lua_type(L, idx) != LUA_TTABLE)
        opt_error(L, key, "must be a list");
    len = (size_t)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    if (n != len)
        opt_error(L, key, "must be a list, not a map");
    return n;
}

static mw__str str_at(lua_State *L, int idx)
{
    mw__str s;
    s.p = lua_tolstring(L, idx, &s.n);
    return s;
}

/* A list of strings; the strings stay alive in the options table. */
static mw__str *read_strings(lua_State *L, int idx, const char *key, size_t *n)
{
    *n = list_len(L, idx, key);
    mw__str *v = scratch(L, *n, sizeof(*v));
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option '%s': entry %d is a %s, not a string", key,
                       (int)i + 1, luaL_typename(L, -1));
        v[i] = str_at(L, -1);
        lua_pop(L, 1);
    }
    return v;
}

/* A map of strings to strings into `from` / `to`. */
static size_t read_string_map(lua_State *L, int idx, const char *key, mw__str **from, mw__str **to)
{
    size_t n = 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        opt_error(L, key, "must be a map of strings");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    *from = scratch(L, n, sizeof(mw__str));
    *to = scratch(L, n, sizeof(mw__str));
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option '%s' must map strings to strings (found %s = %s)",
                       key, luaL_typename(L, -2), luaL_typename(L, -1));
        (*from)[n] = str_at(L, -2);
        (*to)[n++] = str_at(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* Reads the optional string field `k` of the table on top into `out`. */
static void spec_field(lua_State *L, const char *name, const char *k, mw__str *out)
{
    int t = lua_getfield(L, -1, k);
    if (t == LUA_TSTRING)
        *out = str_at(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, FN_SUBMIT ": option 'metrics': field '%s' of '%s' must be a string", k, name);
    /* the string stays referenced by the table */
    lua_pop(L, 1);
}

/* One {name = rename | {name=, type=}} pair (key at -2, value at -1). */
static void read_spec(lua_State *L, mw__om_metric_spec *m)
{
    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, FN_SUBMIT ": option 'metrics': a map entry's key must be a metric name");
    m->match = str_at(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) {
        m->rename = str_at(L, -1);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        spec_field(L, m->match.p, "name", &m->rename);
        spec_field(L, m->match.p, "type", &m->type);
    } else {
        luaL_error(L, FN_SUBMIT ": option 'metrics': the value of '%s' must be a string or a map",
                   m->match.p);
    }
}

static size_t spec_count(lua_State *L, int list, size_t n)
{
    size_t total = 0;
    for (size_t i = 1; i <= n; i++, lua_pop(L, 1)) {
        int t = lua_rawgeti(L, list, (lua_Integer)i);
        if (t == LUA_TSTRING) {
            total++;
            continue;
        }
        if (t != LUA_TTABLE)
            luaL_error(L, FN_SUBMIT ": option 'metrics': entry %d is a %s, not a name or a map",
                       (int)i, luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            total++;
        }
    }
    return total;
}

static void read_metrics(lua_State *L, int idx, mw__om_config *c)
{
    size_t n = list_len(L, idx, "metrics"), k = 0;
    size_t total = spec_count(L, idx, n);
    mw__om_metric_spec *v = scratch(L, total, sizeof(*v));
    for (size_t i = 1; i <= n; i++, lua_pop(L, 1)) {
        if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TSTRING) {
            v[k++].match = str_at(L, -1);
            continue;
        }
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            read_spec(L, &v[k++]);
            lua_pop(L, 1);
        }
    }
    c->metrics = v;
    c->nmetrics = k;
    c->all_metrics = 0;
}

static int read_bool(lua_State *L, int idx, const char *key)
{
    if (lua_type(L, idx) != LUA_TBOOLEAN)
        opt_error(L, key, "must be true or false");
    return lua_toboolean(L, idx);
}

static mw__str read_string(lua_State *L, int idx, const char *key)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        opt_error(L, key, "must be a string");
    return str_at(L, idx);
}

/* Each reader takes the option's value at `idx` (an absolute index). */
typedef void (*opt_reader)(lua_State *L, int idx, const char *key, mw__om_config *c);

static void o_namespace(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->ns = read_string(L, idx, key);
}
static void o_prefix(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->raw_metric_prefix = read_string(L, idx, key);
}
static void o_metrics(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    (void)key;
    read_metrics(L, idx, c);
}
static void o_exclude_metrics(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->exclude_metrics = read_strings(L, idx, key, &c->nexclude_metrics);
}
static void o_exclude_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->exclude_labels = read_strings(L, idx, key, &c->nexclude_labels);
}
static void o_include_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->include_labels = read_strings(L, idx, key, &c->ninclude_labels);
}
static void o_rename_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    mw__str *from, *to;
    c->nrename_labels = read_string_map(L, idx, key, &from, &to);
    c->rename_from = from;
    c->rename_to = to;
}
static void o_tags(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->tags = read_strings(L, idx, key, &c->ntags);
}
static void o_buckets(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->collect_histogram_buckets = read_bool(L, idx, key);
}
static void o_type_overrides(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    mw__str *names, *types;
    c->noverrides = read_string_map(L, idx, key, &names, &types);
    c->override_names = names;
    c->override_types = types;
}
static void o_globs(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->globs = read_bool(L, idx, key);
}

static const struct {
    const char *key;
    opt_reader read;
} opt_readers[] = {
    {"namespace", o_namespace},
    {"raw_metric_prefix", o_prefix},
    {"metrics", o_metrics},
    {"exclude_metrics", o_exclude_metrics},
    {"exclude_labels", o_exclude_labels},
    {"include_labels", o_include_labels},
    {"rename_labels", o_rename_labels},
    {"tags", o_tags},
    {"collect_histogram_buckets", o_buckets},
    {"send_histograms_buckets", o_buckets},
    {"type_overrides", o_type_overrides},
    {"globs", o_globs},
};

/* Fills `c` from the options table at `idx`; arrays it needs are pushed
 * as userdata and must stay on the stack while `c` is used. */
static void read_opts(lua_State *L, int idx, mw__om_config *c)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t i = 0;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option names must be strings (found a %s)",
                       luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        while (i < MW_ARRAY_LEN(opt_readers) && strcmp(key, opt_readers[i].key) != 0)
            i++;
        if (i == MW_ARRAY_LEN(opt_readers))
            luaL_error(L, FN_SUBMIT ": unknown option '%s'", key);
        int value = lua_gettop(L);
        opt_readers[i].read(L, value, key, c);
        /* keep what the reader pushed below the key for lua_next */
        lua_pushvalue(L, value - 1);
        lua_remove(L, value);
        lua_remove(L, value - 1);
    }
}

/* ------------------------------------------------------------- Lua: submit */

typedef struct scraper_box {
    mw__om_scraper *sc;
} scraper_box;

static int box_gc(lua_State *L)
{
    scraper_box *b = lua_touserdata(L, 1);
    mw__om_scraper_free(b->sc);
    b->sc = NULL;
    return 0;
}

static scraper_box *push_box(lua_State *L)
{
    scraper_box *b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->sc = NULL;
    if (luaL_newmetatable(L, SCRAPER_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

static void lua_tick(void *ud)
{
    mw__budget_poll(ud);
}

/* mw.warning's effect: counted for the run, logged with the check id. */
static void warn_skipped(lua_State *L, const char *fn, size_t skipped, size_t line, const char *why)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb)
        return;
    sb->warnings++;
    mw__log_write(sb->log, MW_LOG_WARN, sb->check_id,
                  "%s: skipped %zu malformed line(s) or sample(s); the first at line %zu: %s", fn,
                  skipped, line, why ? why : "?");
}

static int om_submit(lua_State *L)
{
    mw__om_config c;
    mw__om_result r;
    char err[256];
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    scraper_box *b = push_box(L);
    memset(&c, 0, sizeof(c));
    c.all_metrics = 1;
    c.collect_histogram_buckets = 1;
    if (!lua_isnil(L, 2))
        read_opts(L, 2, &c);
    b->sc = mw__om_scraper_new(&c, err, sizeof(err));
    if (!b->sc)
        return luaL_error(L, FN_SUBMIT ": %s", err);
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__om_submit(b->sc, sb ? &sb->out : NULL, text, len, lua_tick, L, &r);
    mw__om_scraper_free(b->sc);
    b->sc = NULL;
    if (r.rc == MW_ENOMEM)
        return luaL_error(L,
                          FN_SUBMIT ": cannot buffer the samples (the run's samples reached its "
                                    "memory limit, or memory ran out) after %zu",
                          r.submitted);
    size_t skipped = r.malformed + r.rejected;
    if (skipped)
        warn_skipped(L, FN_SUBMIT, skipped, r.first_bad_line, r.first_bad_reason);
    lua_pushinteger(L, (lua_Integer)r.submitted);
    lua_pushinteger(L, (lua_Integer)skipped);
    return 2;
}

/* ------------------------------------------------------------- Lua: parse */

/* Stack slots of a parse: the result list, the current family's samples. */
typedef struct lparse {
    lua_State *L;
    int result, samples;
    lua_Integer nfam, nsamples;
} lparse;

static void push_unescaped(lua_State *L, mw__str s, int escaped)
{
    luaL_Buffer b;
    if (!escaped) {
        lua_pushlstring(L, s.p, s.n);
        return;
    }
    char *d = luaL_buffinitsize(L, &b, s.n);
    luaL_pushresultsize(&b, mw__om_unescape(s, d));
}

static const char *type_word(const mw__om_family *f)
{
    switch (f->type) {
    case MW_OM_COUNTER:
        return "counter";
    case MW_OM_GAUGE:
        return "gauge";
    case MW_OM_HISTOGRAM:
        return "histogram";
    case MW_OM_SUMMARY:
        return "summary";
    default:
        return f->type == MW_OM_OTHER ? NULL : "unknown";
    }
}

static void set_str(lua_State *L, const char *k, mw__str s, int escaped)
{
    if (!s.p)
        return;
    push_unescaped(L, s, escaped);
    lua_setfield(L, -2, k);
}

static int lp_family(void *ud, const mw__om_family *f)
{
    lparse *lp = ud;
    lua_State *L = lp->L;
    const char *t = type_word(f);
    lua_createtable(L, 0, 5);
    set_str(L, "name", f->name, 0);
    if (t)
        lua_pushstring(L, t);
    else
        lua_pushlstring(L, f->type_name.p, f->type_name.n);
    lua_setfield(L, -2, "type");
    set_str(L, "help", f->help, f->help.p && memchr(f->help.p, '\\', f->help.n));
    set_str(L, "unit", f->unit, 0);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "samples");
    lua_replace(L, lp->samples);
    lua_rawseti(L, lp->result, ++lp->nfam);
    lp->nsamples = 0;
    return 1;
}

static int lp_sample(void *ud, const mw__om_family *f, const mw__om_sample *s)
{
    lparse *lp = ud;
    lua_State *L = lp->L;
    (void)f;
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, s->name.p, s->name.n);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, s->value);
    lua_setfield(L, -2, "value");
    lua_createtable(L, 0, (int)s->nlabels);
    for (size_t i = 0; i < s->nlabels; i++) {
        lua_pushlstring(L, s->labels[i].name.p, s->labels[i].name.n);
        push_unescaped(L, s->labels[i].value, s->labels[i].escaped);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "labels");
    lua_rawseti(L, lp->samples, ++lp->nsamples);
    return 0;
}

static void lp_tick(void *ud)
{
    mw__budget_poll(((lparse *)ud)->L);
}

static int om_parse(lua_State *L)
{
    size_t len;
    mw__om_stats st;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    lparse lp = {.L = L, .result = 2, .samples = 3};
    mw__om_handler h = {.family = lp_family, .sample = lp_sample, .tick = lp_tick};
    mw__om_parse(text, len, &h, &lp, &st);
    if (st.malformed)
        warn_skipped(L, "mw.openmetrics.parse", st.malformed, st.first_bad_line,
                     st.first_bad_reason);
    lua_pushvalue(L, 2);
    lua_pushinteger(L, (lua_Integer)st.malformed);
    return 2;
}

/* ------------------------------------------------------------- Lua: table */

static const luaL_Reg om_funcs[] = {
    {"submit", om_submit},
    {"parse", om_parse},
    {NULL, NULL},
};

int mw__open_openmetrics(lua_State *L)
{
    lua_createtable(L, 0, 3);
    luaL_setfuncs(L, om_funcs, 0);
    lua_pushliteral(L, "mw.openmetrics");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_remove(L, -2);
    return 1;
}

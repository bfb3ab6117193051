/*
 * test_sandbox_share.c - instances of one check sharing a Lua state: one
 * instance tries every way to leave something for the other and the
 * other finds nothing; a memory bomb or a runaway stops that run only,
 * and the state stays usable; memory is charged to the instance that
 * holds it; instances come and go without touching the others.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/sandbox.h"
#include "lua/sandbox_int.h" /* to shrink a state's cap */
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mw__budget *budget;

static mw__lshare *share(const char *src)
{
    char *err = NULL;
    mw__lshare *sh = mw__lshare_new("@checks/chk.lua", src, strlen(src), &err);
    if (!sh)
        fprintf(stderr, "lshare_new: %s\n", err);
    free(err);
    return sh;
}

/* An instance in `sh` whose self.instance is {role = role}. */
static mw__sandbox *member(mw__lshare *sh, const char *role, size_t cap)
{
    char json[64], id[64], *err = NULL;
    snprintf(json, sizeof json, "{\"role\":\"%s\"}", role);
    snprintf(id, sizeof id, "chk:%s", role);
    cJSON *inst = cJSON_Parse(json);
    mw__sandbox_opts o = {
        .check = "chk", .check_id = id, .share = sh, .instance = inst, .mem_cap = cap};
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb)
        fprintf(stderr, "sandbox_new(%s): %s\n", role, err);
    free(err);
    cJSON_Delete(inst);
    return sb;
}

static mw__run_status run(mw__sandbox *sb, double seconds)
{
    mw__run_status st;
    mw__sandbox_begin(sb, mw__mono() + seconds);
    while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
        ;
    if (st != MW_RUN_OK)
        fprintf(stderr, "run: %d %s\n", st, mw__sandbox_error(sb));
    return st;
}

/* Role "a" leaves what it can, at its top level and in its runs; role
 * "b" looks for it everywhere. */
static const char leaky[] =
    "local role = nil\n"
    "local marks = {}\n"
    "assert(top_seen == nil, 'top level saw another instance') top_seen = true\n"
    "local check = {}\n"
    "local function leave(self)\n"
    "  leak_global = 'a' _G.leak_g = 'a' _ENV.leak_env = 'a' rawset(_G, 'leak_raw', 'a')\n"
    "  pcall(function() getmetatable('').__index.leak = 'a' end)\n"
    "  pcall(function() getmetatable('').leak = 'a' end)\n"
    "  pcall(function() (''):rep(1).leak = 'a' end)\n"
    "  string.leak = 'a' rawset(string, 'leak2', 'a')\n"
    "  string.format = function() return 'hijacked' end\n"
    "  string.rep = nil table.insert = nil math.pi = 4 utf8.char = nil\n"
    "  os.time = function() return 0 end coroutine.leak = 'a'\n"
    "  rawset(table, 'concat', 'x') rawset(math, 'floor', 'x')\n"
    "  pcall(setmetatable, string, {}) pcall(setmetatable, _G, {})\n"
    "  pcall(rawset, mw, 'leak', 'a') pcall(function() mw.leak = 'a' end)\n"
    "  pcall(function() mw.log.leak = 'a' end) pcall(rawset, mw.json, 'leak', 'a')\n"
    "  pcall(function() mw.gauge = print end) pcall(rawset, mw.log, 'info', print)\n"
    "  load(\"leak_load = 'a'\")()\n"
    "  local env = {} load(\"leak_env_load = 'a' string = 'x'\", 'c', 't', env)()\n"
    "  load('local _ENV = ... leak_via_env = 1', 'c', 't')(_G)\n"
    "  shared_co = coroutine.create(function() coroutine.yield(leak_global) end)\n"
    "  coroutine.resume(shared_co)\n"
    "  role = 'a' marks.a = true check.leak = 'a' self.leak = 'a'\n"
    "  self.instance.leak = 'a' self.init_config.leak = 'a'\n"
    "  return shared_co, _G, string\n"
    "end\n"
    "local function look(self)\n"
    "  assert(leak_global == nil and leak_g == nil and leak_env == nil and leak_raw == nil)\n"
    "  assert(leak_load == nil and leak_env_load == nil and leak_via_env == nil)\n"
    "  assert(rawget(_G, 'leak_global') == nil and _G.shared_co == nil)\n"
    "  assert(string.leak == nil and string.leak2 == nil and (''):rep(1).leak == nil)\n"
    "  assert(string.format('%d', 1) == '1' and ('%d'):format(2) == '2')\n"
    "  assert(string.rep('x', 2) == 'xx' and type(table.insert) == 'function')\n"
    "  assert(type(table.concat) == 'function' and type(math.floor) == 'function')\n"
    "  assert(math.pi < 4 and utf8.char(72) == 'H' and os.time() > 0)\n"
    "  assert(coroutine.leak == nil and type(string) == 'table')\n"
    "  assert(mw.leak == nil and mw.log.leak == nil and mw.json.leak == nil)\n"
    "  assert(type(mw.gauge) == 'function' and mw.gauge ~= print and mw.log.info ~= print)\n"
    "  assert(getmetatable(string) == false and getmetatable('') == false)\n"
    "  assert(role == nil and next(marks) == nil and check.leak == nil and self.leak == nil)\n"
    "  assert(self.instance.leak == nil and self.init_config.leak == nil)\n"
    "  assert(self.instance.role == 'b')\n"
    "  for k in pairs(_G) do assert(k == '_G' or k == 'top_seen', k) end\n"
    "  local n = 0 for k, v in pairs(string) do n = n + 1\n"
    "    assert(type(v) == 'function', k) end assert(n > 10)\n"
    "end\n"
    "function check.run(self)\n"
    "  if self.instance.role == 'a' then return leave(self) end\n"
    "  look(self)\n"
    "end\n"
    "return check\n";

static void test_isolation(void)
{
    mw__lshare *sh = share(leaky);
    CHECK(sh != NULL);
    if (!sh)
        return;
    mw__sandbox *a = member(sh, "a", 0), *b = member(sh, "b", 0);
    CHECK(a && b);
    if (a && b) {
        CHECK(run(a, 5) == MW_RUN_OK);
        CHECK(run(b, 5) == MW_RUN_OK);
        CHECK(run(a, 5) == MW_RUN_OK); /* a's own changes stay a's */
        CHECK(run(b, 5) == MW_RUN_OK);
        /* b made again (a config change): still nothing of a's */
        mw__sandbox_free(b);
        b = member(sh, "b", 0);
        CHECK(b && run(b, 5) == MW_RUN_OK);
    }
    mw__sandbox_free(a);
    mw__sandbox_free(b);
    CHECK(!mw__lshare_broken(sh));
    mw__lshare_unref(sh);
}

/* A memory bomb stops that run only; its garbage is collected; what one
 * instance holds is not charged to the other. */
static void test_memory(void)
{
    static const char src[] = "local keep = {}\n"
                              "return { run = function(self)\n"
                              "  if self.instance.role == 'a' then\n"
                              "    local t = {} for i = 1, 1e8 do t[i] = tostring(i) end\n"
                              "  elseif self.instance.role == 'h' then\n"
                              "    for i = 1, 2000 do keep[i] = tostring(i) .. 'abcdefgh' end\n"
                              "  end\n"
                              "end }";
    mw__lshare *sh = share(src);
    CHECK(sh != NULL);
    if (!sh)
        return;
    mw__sandbox *a = member(sh, "a", (size_t)1 << 20);
    mw__sandbox *b = member(sh, "b", (size_t)1 << 20);
    mw__sandbox *h = member(sh, "h", (size_t)1 << 20);
    CHECK(a && b && h);
    if (a && b && h) {
        CHECK(run(b, 5) == MW_RUN_OK);
        CHECK(run(h, 5) == MW_RUN_OK);
        size_t b0 = mw__sandbox_mem(b), h0 = mw__sandbox_mem(h);
        CHECK(h0 > b0 + 2000 * 24); /* h holds its strings */
        CHECK(run(a, 5) == MW_RUN_NOMEM);
        CHECK_STR(mw__sandbox_error(a), "memory limit of 1 MiB exceeded");
        CHECK(mw__sandbox_mem(a) < (size_t)64 << 10); /* its garbage went */
        CHECK(mw__sandbox_mem(b) == b0);              /* charged nothing of a's */
        CHECK(mw__sandbox_mem(h) <= h0);              /* only its own garbage went */
        CHECK(run(a, 5) == MW_RUN_NOMEM);             /* and again: nothing left over */
        CHECK(run(b, 5) == MW_RUN_OK);
        CHECK(run(h, 5) == MW_RUN_OK);
        CHECK(!mw__sandbox_broken(a) && !mw__lshare_broken(sh));
        /* h's garbage (the strings its second run replaced), collected
         * during another's run, is credited to h */
        for (int i = 0; i < 20; i++)
            CHECK(run(b, 5) == MW_RUN_OK);
        mw__sandbox_free(a);
        a = member(sh, "a", (size_t)1 << 20);
        CHECK(mw__sandbox_mem(h) <= h0 * 2);
    }
    mw__sandbox_free(a);
    mw__sandbox_free(b);
    mw__sandbox_free(h);
    mw__lshare_unref(sh);
}

/* A runaway is stopped at its deadline; the state goes on serving the
 * others and the runaway's next run. */
static void test_time(void)
{
    static const char src[] = "return { run = function(self)\n"
                              "  if self.instance.role == 'a' then\n"
                              "    while true do pcall(function() while true do end end) end\n"
                              "  end\n"
                              "  n = (n or 0) + 1\n"
                              "end }";
    mw__lshare *sh = share(src);
    CHECK(sh != NULL);
    if (!sh)
        return;
    mw__sandbox *a = member(sh, "a", 0), *b = member(sh, "b", 0);
    CHECK(a && b);
    if (a && b) {
        CHECK(run(b, 5) == MW_RUN_OK);
        double t0 = mw__mono();
        mw__sandbox_begin(a, t0 + 0.05);
        mw__run_status st;
        int slices = 0;
        while ((st = mw__sandbox_resume(a, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED) {
            slices++;
            CHECK(run(b, 5) == MW_RUN_OK); /* between a's slices */
        }
        CHECK(st == MW_RUN_TIMEOUT);
        CHECK(slices > 0);
        CHECK(mw__mono() - t0 < 0.5);
        CHECK(run(b, 5) == MW_RUN_OK);
        mw__sandbox_begin(a, mw__mono() + 0.02);
        CHECK(mw__sandbox_resume(a, NULL) == MW_RUN_TIMEOUT); /* self-timed too */
        CHECK(run(b, 5) == MW_RUN_OK);
    }
    mw__sandbox_free(a);
    mw__sandbox_free(b);
    mw__lshare_unref(sh);
}

/* A script that does not compile on its own is refused, even when it
 * would close the wrapper it is compiled in. */
static void test_compile(void)
{
    char *err = NULL;
    static const char escape[] = "end local x = 1 return function(_ENV, ...) return {}";
    mw__lshare *sh = mw__lshare_new("@checks/chk.lua", escape, strlen(escape), &err);
    CHECK(sh == NULL);
    CHECK(err && strstr(err, "cannot load script: checks/chk.lua:1:") != NULL);
    free(err);
    static const char lines[] = "local x = 1\n\nreturn { run = function() error('here') end }";
    sh = share(lines);
    mw__sandbox *a = sh ? member(sh, "a", 0) : NULL;
    CHECK(a != NULL);
    if (a) {
        mw__sandbox_begin(a, mw__mono() + 5);
        CHECK(mw__sandbox_resume(a, NULL) == MW_RUN_ERROR);
        CHECK(strstr(mw__sandbox_error(a), "chk.lua:3: here") != NULL); /* lines unchanged */
    }
    mw__sandbox_free(a);
    mw__lshare_unref(sh);
}

/* Many instances come and go; the state keeps working, and one that
 * fails at its top level leaves nothing behind. */
static void test_churn(void)
{
    static const char src[] = "if self_fail then error('no') end\n"
                              "local t = {} for i = 1, 50 do t[i] = i end\n"
                              "return { run = function(self) t[#t + 1] = 1 end }";
    mw__lshare *sh = share(src);
    CHECK(sh != NULL);
    if (!sh)
        return;
    mw__sandbox *keep = member(sh, "k", 0);
    size_t base = mw__lshare_mem(sh);
    for (int round = 0; round < 5; round++) {
        mw__sandbox *sb[200];
        for (int i = 0; i < 200; i++) {
            char role[16];
            snprintf(role, sizeof role, "r%d", i);
            sb[i] = member(sh, role, 0);
            CHECK(sb[i] && run(sb[i], 5) == MW_RUN_OK);
        }
        for (int i = 0; i < 200; i++)
            mw__sandbox_free(sb[i]);
        CHECK(keep && run(keep, 5) == MW_RUN_OK);
    }
    /* the garbage of the 1,000 that left was collected as the state ran */
    CHECK(mw__lshare_mem(sh) < base + ((size_t)1 << 20));
    mw__sandbox_free(keep);
    mw__lshare_unref(sh);
}

/* A state whose own cap is reached (its structures may lack room) is
 * unusable: that run fails, the others' runs fail and say so, nobody
 * joins it; a fresh state for the same script serves them again. */
static void test_broken(void)
{
    static const char src[] = "return { run = function(self)\n"
                              "  if self.instance.role == 'a' then big = string.rep('x', 1e6) end\n"
                              "end }";
    mw__lshare *sh = share(src);
    CHECK(sh != NULL);
    if (!sh)
        return;
    mw__sandbox *a = member(sh, "a", 0), *b = member(sh, "b", 0);
    CHECK(a && b);
    if (a && b) {
        CHECK(run(b, 5) == MW_RUN_OK);
        sh->mem.cap = sh->mem.used + ((size_t)256 << 10); /* far below a's own cap */
        CHECK(run(a, 5) == MW_RUN_NOMEM);
        CHECK(mw__sandbox_broken(a) && mw__sandbox_broken(b) && mw__lshare_broken(sh));
        CHECK(run(b, 5) == MW_RUN_ERROR);
        CHECK(strstr(mw__sandbox_error(b), "unusable") != NULL);
        CHECK(member(sh, "c", 0) == NULL);
        /* what the scheduler does: the instance made again elsewhere */
        mw__lshare *fresh = share(src);
        mw__sandbox *b2 = fresh ? member(fresh, "b", 0) : NULL;
        CHECK(b2 && run(b2, 5) == MW_RUN_OK && !mw__sandbox_broken(b2));
        mw__sandbox_free(b2);
        mw__lshare_unref(fresh);
    }
    mw__sandbox_free(a);
    mw__sandbox_free(b);
    mw__lshare_unref(sh);
}

int main(void)
{
    budget = t_budget(1, 0.002);
    test_isolation();
    test_memory();
    test_time();
    test_compile();
    test_churn();
    test_broken();
    mw__budget_free(budget);
    return TEST_RESULT();
}

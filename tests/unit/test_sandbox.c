/*
 * test_sandbox.c - the Lua sandbox: loading, runs, init, errors, the
 * restricted globals (every escape attempt must stay contained), the
 * memory cap, and the time budget (runaways stopped near their deadline,
 * busy runs preempted and resumed to completion).
 *
 * Stop latencies are asserted under 100 ms: the 10 ms goal is measured by
 * tests/bench/bench_lua_runaway.c, tests run on shared machines and under
 * sanitizers.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How late past its deadline a runaway may stop: a bound that says it
 * was stopped by its budget, not a latency goal (bench_lua_runaway
 * measures that); loaded machines and ThreadSanitizer slow runs down. */
#define MAX_LATE 0.5

static mw__budget *budget;

static mw__sandbox *make_opts(const char *src, size_t cap, const cJSON *inst, char **err)
{
    mw__sandbox_opts o = {
        .check = "chk",
        .check_id = "chk:1234",
        .chunkname = "@checks/chk.lua",
        .script = src,
        .script_len = strlen(src),
        .instance = inst,
        .mem_cap = cap,
    };
    return mw__sandbox_new(&o, err);
}

static mw__sandbox *make(const char *src)
{
    char *err = NULL;
    mw__sandbox *sb = make_opts(src, 0, NULL, &err);
    if (!sb)
        fprintf(stderr, "sandbox_new: %s\n", err);
    free(err);
    return sb;
}

typedef struct outcome {
    mw__run_status st;
    int preempted;
    double late; /* end of the run minus its deadline */
} outcome;

/* One run to its end, resuming after each preemption as a scheduler
 * would. */
static outcome run(mw__sandbox *sb, double seconds)
{
    outcome r = {0, 0, 0};
    double deadline = mw__mono() + seconds;
    mw__sandbox_begin(sb, deadline);
    while ((r.st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
        r.preempted++;
    r.late = mw__mono() - deadline;
    return r;
}

/* Wraps `body` as run()'s body and expects the run to succeed. */
static void expect_ok(const char *body)
{
    char src[4096];
    snprintf(src, sizeof(src), "return { run = function(self)\n%s\nend }", body);
    mw__sandbox *sb = make(src);
    CHECK(sb != NULL);
    if (!sb)
        return;
    outcome r = run(sb, 5.0);
    if (r.st != MW_RUN_OK)
        fprintf(stderr, "run failed (%d): %s\n  in: %s\n", r.st, mw__sandbox_error(sb), body);
    CHECK(r.st == MW_RUN_OK);
    mw__sandbox_free(sb);
}

/* Expects `body` to be stopped by the time budget close to its deadline. */
static void expect_timeout(const char *body, double seconds)
{
    char src[4096];
    snprintf(src, sizeof(src), "return { run = function(self)\n%s\nend }", body);
    mw__sandbox *sb = make(src);
    CHECK(sb != NULL);
    if (!sb)
        return;
    outcome r = run(sb, seconds);
    if (r.st != MW_RUN_TIMEOUT || r.late > MAX_LATE)
        fprintf(stderr, "expected timeout: st=%d late=%.1f ms err=%s\n  in: %s\n", r.st,
                r.late * 1e3, mw__sandbox_error(sb), body);
    CHECK(r.st == MW_RUN_TIMEOUT);
    CHECK(r.late >= 0 && r.late < MAX_LATE);
    char want[64];
    snprintf(want, sizeof(want), "timeout: run exceeded its time budget of %g s", seconds);
    CHECK_STR(mw__sandbox_error(sb), want);
    /* The state stays usable. */
    mw__sandbox_begin(sb, mw__mono() + 5);
    mw__sandbox_abort(sb);
    mw__sandbox_free(sb);
}

/* ------------------------------------------------------------- loading */

static void test_basic_run(void)
{
    mw__sandbox *sb = make("return { run = function(self) local x = 1 end }");
    CHECK(sb != NULL);
    outcome r = run(sb, 1.0);
    CHECK(r.st == MW_RUN_OK);
    CHECK(r.preempted == 0);
    CHECK_STR(mw__sandbox_error(sb), "");
    CHECK(mw__sandbox_warnings(sb) == 0);
    mw__sandbox_free(sb);
    mw__sandbox_free(NULL);
}

static void test_init_once_and_self(void)
{
    cJSON *inst = cJSON_Parse("{\"host\":\"10.0.0.5\",\"port\":6379,\"tags\":[\"a:b\"],"
                              "\"gone\":null,\"ratio\":0.5}");
    char *err = NULL;
    mw__sandbox *sb = make_opts("local inits, runs = 0, 0\n"
                                "return {\n"
                                " init = function(self) inits = inits + 1 end,\n"
                                " run = function(self)\n"
                                "  runs = runs + 1\n"
                                "  assert(inits == 1, 'inits=' .. inits)\n"
                                "  assert(self.name == 'chk' and self.check_id == 'chk:1234')\n"
                                "  assert(self.instance.host == '10.0.0.5')\n"
                                "  assert(math.type(self.instance.port) == 'integer')\n"
                                "  assert(self.instance.ratio == 0.5)\n"
                                "  assert(self.instance.tags[1] == 'a:b')\n"
                                "  assert(self.instance.gone == nil)\n"
                                "  assert(type(self.init_config) == 'table')\n"
                                " end }",
                                0, inst, &err);
    CHECK(sb != NULL);
    for (int i = 0; i < 3 && sb; i++) {
        outcome r = run(sb, 1.0);
        if (r.st != MW_RUN_OK)
            fprintf(stderr, "%s\n", mw__sandbox_error(sb));
        CHECK(r.st == MW_RUN_OK);
    }
    mw__sandbox_free(sb);
    cJSON_Delete(inst);
    free(err);
}

static void test_init_failure_retried(void)
{
    mw__sandbox *sb = make("local n = 0\n"
                           "return { init = function() n = n + 1; if n == 1 then error('boom') end "
                           "end, run = function() end }");
    CHECK(sb != NULL);
    outcome r = run(sb, 1.0);
    CHECK(r.st == MW_RUN_ERROR);
    CHECK(strstr(mw__sandbox_error(sb), "checks/chk.lua:2: boom") != NULL);
    r = run(sb, 1.0);
    CHECK(r.st == MW_RUN_OK);
    mw__sandbox_free(sb);
}

static void expect_new_error(const char *src, const char *want)
{
    char *err = NULL;
    mw__sandbox *sb = make_opts(src, 0, NULL, &err);
    CHECK(sb == NULL);
    CHECK(err != NULL && strstr(err, want) != NULL);
    if (err && !strstr(err, want))
        fprintf(stderr, "got \"%s\", want \"%s\"\n", err, want);
    free(err);
    mw__sandbox_free(sb);
}

static void test_bad_scripts(void)
{
    expect_new_error("return 1", "must return a table with a run function");
    expect_new_error("", "must return a table with a run function");
    expect_new_error("return {}", "no run function");
    expect_new_error("return { run = 1 }", "no run function");
    expect_new_error("return { run = print, min_collection_interval = 0.5 }",
                     "min_collection_interval must be a number of seconds from 1 (got number)");
    expect_new_error("return { run = print, min_collection_interval = 'often' }",
                     "min_collection_interval must be a number of seconds from 1 (got string)");
    char *err = NULL;
    mw__sandbox *sb =
        make_opts("return { run = print, min_collection_interval = '60' }", 0, NULL, &err);
    CHECK(sb && mw__sandbox_default_interval(sb) == 60);
    mw__sandbox_free(sb);
    free(err);
    sb = make_opts("return { run = print }", 0, NULL, &err);
    CHECK(sb && mw__sandbox_default_interval(sb) == 0);
    mw__sandbox_free(sb);
    free(err);
    expect_new_error("\nreturn { run = function( end }", "checks/chk.lua:2:");
    expect_new_error("error('at load')", "checks/chk.lua:1: at load");
    expect_new_error("\x1bLua\x54\x00", "binary chunk");
    expect_new_error("error(setmetatable({}, {__tostring = function() return 'x' end}))",
                     "(error object is a table value)");
}

static void test_load_timeout(void)
{
    double t0 = mw__mono();
    expect_new_error("while true do end", "timeout");
    CHECK(mw__mono() - t0 < 1.5);
    t0 = mw__mono();
    expect_new_error("string.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')", "timeout");
    CHECK(mw__mono() - t0 < 1.5);
}

static void test_check_syntax(void)
{
    char path[] = "/tmp/mw_syntaxXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *bad = "local x = 1\nlocal y = = 2\nreturn {run=function() end}\n";
    CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
    close(fd);
    mw__diag d = {0};
    CHECK(mw__sandbox_check_syntax(path, &d) == MW_EPARSE);
    CHECK(d.n == 1);
    if (d.n == 1) {
        char want[64];
        snprintf(want, sizeof(want), "%s:2:", path);
        CHECK(strncmp(d.items[0], want, strlen(want)) == 0);
        CHECK(strstr(d.items[0], "unexpected symbol") != NULL);
    }
    mw__diag_free(&d);

    FILE *f = fopen(path, "w");
    fputs("return { run = function(self) mw.gauge('x', 1) end }\n", f);
    fclose(f);
    mw__diag d2 = {0};
    CHECK(mw__sandbox_check_syntax(path, &d2) == MW_OK);
    CHECK(d2.n == 0);
    mw__diag_free(&d2);
    unlink(path);

    mw__diag d3 = {0};
    CHECK(mw__sandbox_check_syntax("/nonexistent/x.lua", &d3) == MW_EIO);
    CHECK(d3.n == 1);
    mw__diag_free(&d3);
}

/* ------------------------------------------------------------- errors */

static void expect_run_error(const char *body, const char *want)
{
    char src[2048];
    snprintf(src, sizeof(src), "return { run = function(self)\n%s\nend }", body);
    mw__sandbox *sb = make(src);
    CHECK(sb != NULL);
    if (!sb)
        return;
    outcome r = run(sb, 2.0);
    CHECK(r.st == MW_RUN_ERROR);
    CHECK(strstr(mw__sandbox_error(sb), want) != NULL);
    if (!strstr(mw__sandbox_error(sb), want))
        fprintf(stderr, "got \"%s\", want \"%s\"\n", mw__sandbox_error(sb), want);
    mw__sandbox_free(sb);
}

static void test_run_errors(void)
{
    expect_run_error("error('plain')", "checks/chk.lua:2: plain");
    expect_run_error("error(setmetatable({}, {__tostring = function() while true do end end}))",
                     "(error object is a table value)");
    expect_run_error("error(nil)", "(error object is a nil value)");
    expect_run_error("error(42)", "42");
    expect_run_error("coroutine.yield()", "yield from run() outside a coroutine");
    expect_run_error("local x = nil; x.y = 1", "attempt to index a nil value");
    /* Lua recursion: stack overflow or the memory cap, never a crash. */
    expect_run_error("local t = setmetatable({}, {__index = function(t, k) return t[k] end}) "
                     "return t.x",
                     "stack overflow");
    expect_run_error("local function f(s) return (s:gsub('.', f)) end f('ab')", "overflow");
}

static void test_deep_recursion(void)
{
    mw__sandbox *sb = make("return { run = function() local function f(n) return 1 + f(n + 1) "
                           "end return f(1) end }");
    outcome r = run(sb, 5.0);
    if (r.st != MW_RUN_ERROR && r.st != MW_RUN_NOMEM)
        fprintf(stderr, "deep recursion: st=%d after %d preemptions, late %.1f ms: %s\n", r.st,
                r.preempted, r.late * 1e3, mw__sandbox_error(sb));
    CHECK(r.st == MW_RUN_ERROR || r.st == MW_RUN_NOMEM);
    CHECK(strstr(mw__sandbox_error(sb), "stack overflow") != NULL ||
          strstr(mw__sandbox_error(sb), "memory limit") != NULL);
    mw__sandbox_free(sb);
}

/* Killing a run 100,000s of frames deep: each signal's lua_sethook walks
 * every frame, so signals re-sent every tick once starved the worker and
 * the run never ended. */
static void test_deep_stack_deadline(void)
{
    char *err = NULL;
    mw__sandbox *sb = make_opts("return { run = function() local function f(n) return 1 + "
                                "f(n + 1) end return f(1) end }",
                                256u << 20, NULL, &err);
    CHECK(sb != NULL);
    free(err);
    if (!sb)
        return;
    for (int i = 0; i < 5; i++) {
        outcome r = run(sb, 0.03);
        CHECK(r.st == MW_RUN_TIMEOUT || r.st == MW_RUN_ERROR);
        CHECK(r.late < MAX_LATE);
    }
    mw__sandbox_free(sb);
}

/* ------------------------------------------------------------- containment */

/* A run that first reads `exprs` (a Lua expression list) grows the state
 * by at least `min_bytes`: what they name is built on first use, not when
 * the state is made. */
static void check_built_on_first_use(const char *exprs, size_t min_bytes)
{
    char script[512];
    snprintf(script, sizeof script,
             "local n = 0\n"
             "return { run = function(self) n = n + 1\n"
             "  if n == 2 then local _ = %s end\n"
             "end }",
             exprs);
    mw__sandbox *sb = make(script);
    CHECK(sb != NULL);
    if (!sb)
        return;
    CHECK(run(sb, 5.0).st == MW_RUN_OK);
    size_t before = mw__sandbox_mem(sb);
    CHECK(run(sb, 5.0).st == MW_RUN_OK);
    size_t after = mw__sandbox_mem(sb);
    if (after < before + min_bytes)
        fprintf(stderr, "%s: %zu -> %zu bytes\n", exprs, before, after);
    CHECK(after >= before + min_bytes);
    mw__sandbox_free(sb);
}

static void test_restricted_globals(void)
{
    expect_ok("assert(io == nil and debug == nil and package == nil and require == nil)\n"
              "assert(dofile == nil and loadfile == nil and warn == nil)\n"
              "assert(rawget(_G, 'io') == nil and _ENV.io == nil and _G.debug == nil)\n"
              "assert(string.dump == nil)\n"
              "assert(os.execute == nil and os.getenv == nil and os.exit == nil)\n"
              "assert(os.remove == nil and os.rename == nil and os.tmpname == nil)\n"
              "assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
              "assert(type(os.date('%Y')) == 'string')\n"
              "assert(getmetatable('') == false)\n"
              "assert(getmetatable(_G) == false and getmetatable(mw) == false)\n"
              "assert(_G == _ENV)");
    /* The libraries opened on first use behave as if always there. */
    expect_ok("assert(math == math and math.floor(2.5) == 2 and math.pi > 3)\n"
              "assert(utf8.char(72, 105) == 'Hi' and utf8.len('h\\u{e9}') == 2)\n"
              "local co = coroutine.wrap(function(a) coroutine.yield(a + 1) end)\n"
              "assert(co(1) == 2 and type(coroutine.isyieldable()) == 'boolean')\n"
              "assert(os.time() > 0 and _G.os == os and _ENV.math == math)\n"
              "assert(rawget(_ENV, 'math') == nil and nosuchlib == nil and _G[1] == nil)\n"
              "math = 5 assert(math == 5) math = nil assert(type(math) == 'table')");
    /* ... and are not built before: the state grows when a run first
     * reaches them (math alone has some 30 entries). */
    check_built_on_first_use("math.pi, utf8.char, os.time", 1500);
    /* mw's lazily made sub-tables behave as if always there, stay
     * read-only, and are not built before a run reaches them. */
    expect_ok(
        "assert(type(mw.http.get) == 'function' and mw.http == mw.http)\n"
        "assert(type(mw.tcp.connect) == 'function' and mw.json.null ~= nil)\n"
        "assert(type(mw.proc.read) == 'function' and type(mw.openmetrics.parse) == 'function')\n"
        "assert(mw.nosuch == nil and mw[1] == nil)\n"
        "assert(not pcall(function() mw.http = 1 end))\n"
        "assert(not pcall(function() mw.http.get = 1 end))\n"
        "local seen = {} for k in pairs(mw) do seen[k] = true end\n"
        "assert(seen.http and seen.log and seen.gauge)");
    check_built_on_first_use("mw.http, mw.openmetrics", 300);
    /* A binary chunk through load, with any mode. */
    expect_ok("local f, e = load('\\27LuaT\\0') assert(f == nil and e:find('binary'))\n"
              "f, e = load('\\27LuaT\\0', 'x', 'b') assert(f == nil and e:find('binary'))\n"
              "f, e = load(function() return nil end) assert(f == nil)\n"
              "f, e = load(string.rep(' ', 300 * 1024)) assert(f == nil and e:find('KiB'))");
    /* load with an env sees only that env; without, the sandbox globals. */
    expect_ok("local f = load('return io, os, string', 'x', 't', {})\n"
              "local a, b, c = f() assert(a == nil and b == nil and c == nil)\n"
              "f = load('return io, debug, mw') local x, y, z = f()\n"
              "assert(x == nil and y == nil and z == mw)\n"
              "leak = 1 assert(load('return leak')() == 1)");
    /* Coroutines see the same globals. */
    expect_ok(
        "local co = coroutine.create(function() return io, debug, package end)\n"
        "local ok, a, b, c = coroutine.resume(co)\n"
        "assert(ok and a == nil and b == nil and c == nil)\n"
        "local w = coroutine.wrap(function(x) local y = coroutine.yield(x + 1) return y end)\n"
        "assert(w(1) == 2 and w(5) == 5)\n"
        "assert(not pcall(w))\n"
        "assert(coroutine.isyieldable() == true)\n"
        "local c2 = coroutine.create(function() coroutine.yield() end)\n"
        "coroutine.resume(c2) assert(coroutine.close(c2))\n"
        "assert(coroutine.status(c2) == 'dead')");
    /* __gc refused; the string metatable and mw cannot be changed. */
    expect_ok("local ok, e = pcall(setmetatable, {}, {__gc = function() end})\n"
              "assert(not ok and e:find('__gc'))\n"
              "assert(not pcall(setmetatable, {}, {__gc = false}))\n"
              "assert(setmetatable({}, {__index = {a = 1}}).a == 1)\n"
              "local p = setmetatable({}, {__metatable = 'locked'})\n"
              "assert(not pcall(setmetatable, p, {}))\n"
              "assert(not pcall(function() getmetatable('').__index = {} end))\n"
              "assert(not pcall(function() mw.gauge = nil end))\n"
              "assert(not pcall(function() mw.x = 1 end))\n"
              "assert(not pcall(function() mw.log.info = print end))\n"
              "assert(not pcall(function() mw.json.decode = nil end))\n"
              "assert(not pcall(rawset, mw, 'gauge', 1))\n"
              "assert(not pcall(rawset, mw.log, 'info', 1))\n"
              "assert(not pcall(setmetatable, mw, {}))\n"
              "assert(getmetatable(mw) == false and getmetatable(mw.log) == false)\n"
              "assert(getmetatable(mw.opt) == false and not pcall(rawget, mw, 'gauge'))\n"
              "local ok2, e3 = pcall(function() mw.log.x = 1 end)\n"
              "assert(e3:find('mw.log is read-only', 1, true))\n"
              "local n = 0 for k, v in pairs(mw) do n = n + 1 end assert(n > 10)\n"
              "assert(mw.OK == 0 and mw.WARNING == 1 and mw.CRITICAL == 2 and mw.UNKNOWN == 3)");
    /* collectgarbage: only "count". */
    expect_ok("for _, o in ipairs{'collect', 'stop', 'restart', 'step', 'incremental',\n"
              "  'generational', 'isrunning', 'setpause'} do\n"
              "  local ok, e = pcall(collectgarbage, o)\n"
              "  assert(not ok and e:find('not allowed'), o)\n"
              "end\n"
              "assert(not pcall(collectgarbage))\n"
              "assert(type(collectgarbage('count')) == 'number')");
    /* Patterns keep Lua's semantics. */
    expect_ok(
        "assert(string.find('hello world', 'o w') == 5)\n"
        "assert(('hello'):find('l+') == 3)\n"
        "assert(select(2, ('hello'):find('l+')) == 4)\n"
        "assert(string.match('key=val', '(%w+)=(%w+)') == 'key')\n"
        "assert(select(2, string.match('key=val', '(%w+)=(%w+)')) == 'val')\n"
        "assert(string.match('  x', '()x') == 3)\n"
        "assert(string.gsub('hello', 'l', 'L') == 'heLLo')\n"
        "assert(select(2, string.gsub('hello', 'l', 'L')) == 2)\n"
        "assert(string.gsub('abc', '%w', '%0%0') == 'aabbcc')\n"
        "assert(string.gsub('abc', '(b)', {b = 'X'}) == 'aXc')\n"
        "assert(string.gsub('abc', '.', function(c) return c:upper() end) == 'ABC')\n"
        "assert(string.gsub('hello world', '%w+', '%0 %0', 1) == 'hello hello world')\n"
        "assert(string.find('a.b', '.', 1, true) == 2)\n"
        "assert(string.find('THE (quick) fox', '%((%a+)%)') == 5)\n"
        "assert(string.match('f(a(b)c)', '%b()') == '(a(b)c)')\n"
        "assert(string.match('THE (quick) fox', '%f[%a]%a+', 5) == 'quick')\n"
        "local t = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do t[k] = v end\n"
        "assert(t.a == '1' and t.b == '2')\n"
        "local n = 0 for w in ('one two three'):gmatch('%a+') do n = n + 1 end assert(n == 3)\n"
        "assert(string.gsub('abc', '', '-') == '-a-b-c-')\n"
        "assert(string.match('hello', '^(h)(e)') == 'h')\n"
        "assert(string.match('x = 10', '^(%w+)%s*=%s*(%d+)$') == 'x')\n"
        "assert(string.find('abc', 'b', -1) == nil)\n"
        "assert(string.match('aaa', 'a-b') == nil and string.match('aaab', 'a-b') == 'aaab')\n"
        "assert(string.match('abba', '(a)(b)%2%1') == 'a')\n"
        "assert(not pcall(string.find, 'a', '%'))\n"
        "assert(not pcall(string.find, 'a', '[a'))\n"
        "assert(not pcall(string.gsub, 'a', 'a', '%2'))\n"
        "assert(not pcall(string.rep))\n"
        "local m = table.move({1, 2, 3}, 1, 3, 2) assert(m[1] == 1 and m[4] == 3)\n"
        "local d = table.move({1, 2, 3}, 1, 3, 1, {}) assert(#d == 3)");
    /* table.sort keeps Lua's semantics. */
    expect_ok("local t = {} for i = 1, 1000 do t[i] = (i * 7919) % 1009 end\n"
              "table.sort(t) for i = 2, #t do assert(t[i - 1] <= t[i]) end\n"
              "table.sort(t, function(a, b) return a > b end)\n"
              "for i = 2, #t do assert(t[i - 1] >= t[i]) end\n"
              "local s = {'b', 'c', 'a'} table.sort(s) assert(table.concat(s) == 'abc')\n"
              "assert(not pcall(table.sort, {1, 'x', 2}))\n"
              "assert(not pcall(table.sort, {3, 2, 1}, 1))\n"
              "local ok, e = pcall(table.sort, {5, 4, 3, 2, 1, 0, 9, 8, 7, 6},\n"
              "  function(a, b) return true end)\n"
              "assert(not ok and e:find('invalid order function'))\n"
              "table.sort({}) table.sort({1})");
}

/* ------------------------------------------------------------- memory */

static void test_memory_cap(void)
{
    static const char *const bombs[] = {
        "local t = {} for i = 1, 1e8 do t[i] = i end",
        "local s = 'x' while true do s = s .. s end",
        "local s = string.rep('x', 1e9)",
        "local t = {} for i = 1, 1e8 do t[#t + 1] = tostring(i) .. 'abcdefgh' end",
        "local t = {} while true do t = {t} end",
        "local s = mw.json.encode(string.rep('x', 3e6))",
    };
    char *err;
    mw__sandbox *sb;
    for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
        char src[512];
        snprintf(src, sizeof(src),
                 "local n = 0 return { run = function(self) n = n + 1\n"
                 "if n == 1 then %s end end }",
                 bombs[i]);
        err = NULL;
        sb = make_opts(src, (size_t)4 << 20, NULL, &err);
        CHECK(sb != NULL);
        if (!sb) {
            free(err);
            continue;
        }
        outcome r = run(sb, 5.0);
        if (r.st != MW_RUN_NOMEM)
            fprintf(stderr, "bomb %zu: st=%d %s\n", i, r.st, mw__sandbox_error(sb));
        CHECK(r.st == MW_RUN_NOMEM);
        CHECK_STR(mw__sandbox_error(sb), "memory limit of 4 MiB exceeded");
        /* Usable afterwards, and the garbage is reclaimable. */
        r = run(sb, 5.0);
        CHECK(r.st == MW_RUN_OK);
        CHECK(mw__sandbox_mem(sb) <= ((size_t)4 << 20));
        mw__sandbox_free(sb);
    }
    /* A caught memory error is the check's business: the run goes on. */
    expect_ok("local ok, e = pcall(string.rep, 'x', 1e9) assert(not ok)");
}

/* ------------------------------------------------------------- budget */

static void test_runaways(void)
{
    static const char *const loops[] = {
        "while true do end",
        "local n = 0 while true do n = n + 1 end",
        "while true do pcall(function() while true do end end) end",
        "while true do pcall(error, 'x') end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "local co = coroutine.create(function() while true do end end) coroutine.resume(co)",
        "local co = coroutine.wrap(function()\n"
        "  local c2 = coroutine.wrap(function() while true do end end) c2() end) co()",
        "local g = coroutine.wrap(function() while true do coroutine.yield(1) end end)\n"
        "while true do g() end",
        "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end",
        "local ok = pcall(function() local x <close> = setmetatable({}, {__close = function()\n"
        "  while true do end end}) error('x') end) while true do end",
        "tostring(setmetatable({}, {__tostring = function() while true do end end}))",
        "xpcall(function() error('x') end, function() while true do end end) while true do end",
        "xpcall(function() while true do end end, function() while true do end end)",
        "string.gsub('abc', '.', function() while true do end end)",
        "table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end)",
        "local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
        "local co = coroutine.create(function()\n"
        "  local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
        "  coroutine.yield() end)\n"
        "coroutine.resume(co) coroutine.close(co)",
        "local function f() return f() end f()",
        "load('while true do end')()",
        "string.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')",
        "string.find(string.rep('(', 200000), '%b()')",
        "string.match(string.rep('a', 5000), '.-.-.-.-b')",
        "for w in string.gmatch(string.rep('a', 40), string.rep('a*', 40) .. 'b') do end",
        "string.gsub(string.rep('a', 40), string.rep('a*', 40) .. 'b', 'x')",
        "table.move({}, 1, math.maxinteger - 10, 2)",
        "local t = {} for i = 1, 500000 do t[i] = (i * 7919) % 500009 end\n"
        "while true do table.sort(t) table.sort(t, function(a, b) return a > b end) end",
    };
    for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++)
        expect_timeout(loops[i], 0.1);
}

static void test_preemption(void)
{
    mw__sandbox *sb = make("return { run = function(self)\n"
                           "  local n = 0 for i = 1, 1e7 do n = n + i end\n"
                           "  assert(n == 50000005000000)\n"
                           "end }");
    outcome r = run(sb, 30.0);
    if (r.st != MW_RUN_OK)
        fprintf(stderr, "%s\n", mw__sandbox_error(sb));
    CHECK(r.st == MW_RUN_OK);
    CHECK(r.preempted >= 1);
    printf("busy loop of 1e7: %d preemptions\n", r.preempted);
    mw__sandbox_free(sb);

    /* Preempted inside nested coroutines: results must come out right. */
    sb = make("return { run = function(self)\n"
              "  local outer = coroutine.wrap(function()\n"
              "    local inner = coroutine.create(function(a)\n"
              "      local n = 0 for i = 1, 3e6 do n = n + i end\n"
              "      local b = coroutine.yield(n + a)\n"
              "      for i = 1, 3e6 do n = n + 1 end\n"
              "      return b * 2\n"
              "    end)\n"
              "    local ok, v = coroutine.resume(inner, 1) assert(ok and v == 4500001500001, v)\n"
              "    local ok2, w = coroutine.resume(inner, 21) assert(ok2 and w == 42, w)\n"
              "    assert(coroutine.status(inner) == 'dead')\n"
              "    return 'done'\n"
              "  end)\n"
              "  assert(outer() == 'done')\n"
              "end }");
    r = run(sb, 30.0);
    if (r.st != MW_RUN_OK)
        fprintf(stderr, "%s\n", mw__sandbox_error(sb));
    CHECK(r.st == MW_RUN_OK);
    CHECK(r.preempted >= 1);
    mw__sandbox_free(sb);

    /* Not yieldable (inside a sort comparator): the slice is overrun, the
     * run still finishes. */
    sb = make("return { run = function(self)\n"
              "  local t = {3, 1, 2}\n"
              "  table.sort(t, function(a, b) local n = 0 for i = 1, 2e5 do n = n + 1 end "
              "return a < b end)\n"
              "  assert(t[1] == 1 and t[3] == 3)\n"
              "end }");
    r = run(sb, 30.0);
    CHECK(r.st == MW_RUN_OK);
    mw__sandbox_free(sb);

    /* A short run is never preempted. */
    sb = make("return { run = function() local n = 0 for i = 1, 100 do n = n + i end end }");
    for (int i = 0; i < 20; i++) {
        r = run(sb, 1.0);
        CHECK(r.st == MW_RUN_OK && r.preempted == 0);
    }
    mw__sandbox_free(sb);
}

static void test_resume_past_deadline(void)
{
    mw__sandbox *sb =
        make("return { run = function() local n = 0 for i = 1, 1e8 do n = n + i end end }");
    mw__sandbox_begin(sb, mw__mono() + 0.5);
    mw__run_status st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0));
    CHECK(st == MW_RUN_PREEMPTED);
    usleep(600000);
    double t0 = mw__mono();
    st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0));
    CHECK(st == MW_RUN_TIMEOUT);
    CHECK(mw__mono() - t0 < MAX_LATE); /* at once: the rest of the loop would take ~1 s */
    /* Aborting a preempted run, then running again. */
    mw__sandbox_begin(sb, mw__mono() + 10);
    st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0));
    CHECK(st == MW_RUN_PREEMPTED);
    mw__sandbox_abort(sb);
    CHECK(mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0)) == MW_RUN_ERROR);
    mw__sandbox_free(sb);
}

/* Without a watchdog slot the hooks read the clock themselves. */
static void test_self_timed(void)
{
    mw__sandbox *sb = make("return { run = function() while true do end end }");
    double deadline = mw__mono() + 0.1;
    mw__sandbox_begin(sb, deadline);
    mw__run_status st = mw__sandbox_resume(sb, NULL);
    CHECK(st == MW_RUN_TIMEOUT);
    CHECK(mw__mono() - deadline < MAX_LATE);
    mw__sandbox_free(sb);
}

static void test_fresh_memory(void)
{
    mw__sandbox *sb = make("return { run = function(self) end }");
    size_t bytes = mw__sandbox_mem(sb);
    printf("fresh sandbox: %zu bytes\n", bytes);
    CHECK(bytes > 0 && bytes < 48 * 1024);
    outcome r = run(sb, 1.0);
    CHECK(r.st == MW_RUN_OK);
    mw__sandbox_free(sb);
}

#define RUN(t) (fprintf(stderr, "-- %s\n", #t), t())

int main(void)
{
    budget = t_budget(1, 0.002);
    CHECK(budget != NULL);
    mw__budget *none = NULL;
    CHECK(mw__budget_new(0, 0.002, 1, &none) == MW_EINVAL && !none);
    RUN(test_basic_run);
    RUN(test_init_once_and_self);
    RUN(test_init_failure_retried);
    RUN(test_bad_scripts);
    RUN(test_load_timeout);
    RUN(test_check_syntax);
    RUN(test_run_errors);
    RUN(test_deep_recursion);
    RUN(test_deep_stack_deadline);
    RUN(test_restricted_globals);
    RUN(test_memory_cap);
    RUN(test_runaways);
    RUN(test_preemption);
    RUN(test_resume_past_deadline);
    RUN(test_self_timed);
    RUN(test_fresh_memory);
    mw__budget_free(budget);
    return TEST_RESULT();
}

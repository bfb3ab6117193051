/*
 * test_lua_api.c - the `mw` table as a check sees it: samples reach the
 * instance's sender and, once committed, the aggregator's flush; JSON,
 * warnings, logging, /proc reads (host-wide and per pid, under the
 * operator's procfs_path), engine stats,
 * and argument checking (mw.ecs's too).
 */
#include "test.h"

#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"
#include "tmptree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mw__budget *budget;

typedef struct env {
    mw__aggregator *agg;
    mw__sender *sender;
    mw__log log;
} env;

static void env_init(env *e)
{
    mw__agg_opts ao = {.flush_interval = 10, .context_expiry = 300, .host = "host-a"};
    e->agg = mw__agg_new(&ao);
    mw__sender_opts so = {.check = "chk", .check_id = "chk:1"};
    e->sender = mw__sender_new(e->agg, &so);
    e->log = (mw__log){.level = MW_LOG_OFF, .json = 0, .fd = 2};
    CHECK(e->agg && e->sender);
}

static void env_free(env *e)
{
    mw__sender_free(e->sender);
    mw__agg_free(e->agg);
}

static void fake_stats(void *ud, mw_engine_stats *out)
{
    (void)ud;
    out->instances = 7;
    out->runs = 99;
}

static mw__sandbox *make(env *e, const char *body, mw__stats_fn fn)
{
    char src[8192];
    snprintf(src, sizeof(src), "return { run = function(self)\n%s\nend }", body);
    mw__sandbox_opts o = {
        .check = "chk",
        .check_id = "chk:1",
        .chunkname = "=chk",
        .script = src,
        .script_len = strlen(src),
        .out = mw__sender_out(e->sender),
        .log = &e->log,
        .stats_fn = fn,
    };
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb)
        fprintf(stderr, "sandbox_new: %s\n", err);
    free(err);
    return sb;
}

static mw__run_status run(mw__sandbox *sb)
{
    mw__run_status st;
    mw__sandbox_begin(sb, mw__mono() + 5);
    while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
        ;
    if (st != MW_RUN_OK)
        fprintf(stderr, "run: %s\n", mw__sandbox_error(sb));
    return st;
}

/* Runs `body` in a fresh sandbox; returns its status. */
static mw__run_status run_body(env *e, const char *body)
{
    mw__sandbox *sb = make(e, body, NULL);
    CHECK(sb != NULL);
    if (!sb)
        return MW_RUN_ERROR;
    mw__run_status st = run(sb);
    mw__sandbox_free(sb);
    return st;
}

typedef struct seen {
    int gauge, count, sc, event;
    double gauge_value;
    int gauge_tags_ok;
    int sc_status;
    char sc_message[64];
    char event_title[64];
    char host[64];
} seen;

static void record(const mw_record *r, void *ud)
{
    seen *s = ud;
    if (r->type == MW_RECORD_METRIC && strcmp(r->name, "t.gauge") == 0) {
        s->gauge++;
        s->gauge_value = r->value;
        s->gauge_tags_ok = r->ntags == 2 && strcmp(r->tags[0], "env:prod") == 0 &&
                           strcmp(r->tags[1], "role:db") == 0;
        snprintf(s->host, sizeof(s->host), "%s", r->host ? r->host : "");
    } else if (r->type == MW_RECORD_METRIC && strcmp(r->name, "t.count") == 0) {
        s->count++;
    } else if (r->type == MW_RECORD_SERVICE_CHECK) {
        s->sc++;
        s->sc_status = r->status;
        snprintf(s->sc_message, sizeof(s->sc_message), "%s", r->message ? r->message : "");
    } else if (r->type == MW_RECORD_EVENT) {
        s->event++;
        snprintf(s->event_title, sizeof(s->event_title), "%s", r->title ? r->title : "");
    }
}

static void test_samples_reach_aggregator(void)
{
    env e;
    env_init(&e);
    mw__sandbox *sb = make(&e,
                           "mw.gauge('t.gauge', 42, {'role:db', 'env:prod'})\n"
                           "mw.count('t.count', 1)\n"
                           "mw.count('t.count', 2, nil, 'other-host')\n"
                           "mw.rate('t.rate', 1) mw.monotonic_count('t.mc', 5)\n"
                           "mw.histogram('t.hist', 3.5, {})\n"
                           "mw.service_check('t.can_connect', mw.WARNING, {'a:b'}, 'slow')\n"
                           "mw.event{title = 'restarted', text = 'x', alert_type = 'info',\n"
                           "  priority = 'low', tags = {'a:b'}, aggregation_key = 'k',\n"
                           "  source_type_name = 'docker'}",
                           NULL);
    CHECK(sb != NULL);
    CHECK(run(sb) == MW_RUN_OK);
    CHECK(mw__sender_pending(e.sender) == 8);
    double now = mw__wall();
    CHECK(mw__sender_commit(e.sender, now) == 8);
    seen s;
    memset(&s, 0, sizeof(s));
    mw__agg_flush(e.agg, now + 100, record, &s);
    CHECK(s.gauge == 1);
    CHECK(s.gauge_value == 42);
    CHECK(s.gauge_tags_ok);
    CHECK_STR(s.host, "host-a");
    CHECK(s.count == 2); /* two hosts, two contexts */
    CHECK(s.sc == 1);
    CHECK(s.sc_status == 1);
    CHECK_STR(s.sc_message, "slow");
    CHECK(s.event == 1);
    CHECK_STR(s.event_title, "restarted");
    mw__sandbox_free(sb);
    env_free(&e);
}

static void test_bad_arguments(void)
{
    env e;
    env_init(&e);
    CHECK(run_body(&e, "assert(not pcall(mw.gauge))\n"
                       "assert(not pcall(mw.gauge, 'x'))\n"
                       "assert(not pcall(mw.gauge, 'x', 'notanumber'))\n"
                       "assert(not pcall(mw.gauge, 'x', 1, 'notatable'))\n"
                       "assert(not pcall(mw.gauge, 'x', 1, {1, 2}))\n"
                       "assert(not pcall(mw.gauge, '', 1))\n"
                       "assert(not pcall(mw.gauge, 'x', 0/0))\n"
                       "local many = {} for i = 1, 101 do many[i] = 't:' .. i end\n"
                       "local ok, e = pcall(mw.gauge, 'x', 1, many) assert(not ok and "
                       "e:find('at most 100 tags'))\n"
                       "many[101] = nil assert(pcall(mw.gauge, 'x', 1, many))\n"
                       "assert(not pcall(mw.service_check, 'x', 4))\n"
                       "assert(not pcall(mw.service_check, 'x', -1))\n"
                       "assert(not pcall(mw.event, {}))\n"
                       "assert(not pcall(mw.event, {title = 1}))\n"
                       "assert(not pcall(mw.event, 'x'))") == MW_RUN_OK);
    mw__sender_discard(e.sender);
    env_free(&e);
}

static void test_json(void)
{
    env e;
    env_init(&e);
    CHECK(run_body(
              &e, "local v = mw.json.decode('{\"a\":[1,2.5,\"x\",true,false,null],\"b\":null,"
                  "\"c\":{\"d\":\"\\\\u00e9\\\\ud83d\\\\ude00\\\\n\"}}')\n"
                  "assert(v.a[1] == 1 and math.type(v.a[1]) == 'integer')\n"
                  "assert(v.a[2] == 2.5 and v.a[3] == 'x' and v.a[4] == true and v.a[5] == false)\n"
                  "assert(v.a[6] == mw.json.null and #v.a == 6)\n"
                  "assert(v.b == nil)\n"
                  "assert(v.c.d == '\\u{e9}\\u{1F600}\\n')\n"
                  "local r, err = mw.json.decode('{\"a\":') assert(r == nil and err:find('invalid "
                  "JSON'))\n"
                  "assert(mw.json.decode('[1,]') == nil)\n"
                  "assert(mw.json.decode('01') == nil)\n"
                  "assert(mw.json.decode('\"\\\\ud800\"') == nil)\n"
                  "assert(mw.json.decode('[1] x') == nil)\n"
                  "assert(mw.json.decode(string.rep('[', 200) .. string.rep(']', 200)) == nil)\n"
                  "assert(mw.json.decode('  42 ') == 42)\n"
                  "assert(mw.json.decode('\"abc') == nil and mw.json.decode('\"ab\\\\') == nil)\n"
                  "assert(mw.json.decode('\"a\\1b\"') == nil)\n"
                  "assert(mw.json.decode('[\"\", \"ab\\\\\"c\", \"d\"]')[2] == 'ab\"c')\n"
                  "assert(mw.json.encode({1, 2, 'x'}) == '[1,2,\"x\"]')\n"
                  "assert(mw.json.encode({a = 1}) == '{\"a\":1}')\n"
                  "assert(mw.json.encode({}) == '{}')\n"
                  "assert(mw.json.encode('a\"b\\n\\1') == '\"a\\\\\"b\\\\n\\\\u0001\"')\n"
                  "assert(mw.json.encode(1.5) == '1.5' and mw.json.encode(nil) == 'null')\n"
                  "assert(mw.json.encode({mw.json.null}) == '[null]')\n"
                  "assert(mw.json.encode({[1] = 'a', [3] = 'c'}):find('\"3\":\"c\"'))\n"
                  "local t = {} t.self = t\n"
                  "local ok, err2 = pcall(mw.json.encode, t) assert(not ok and "
                  "err2:find('contains itself'))\n"
                  "assert(not pcall(mw.json.encode, {f = print}))\n"
                  "assert(not pcall(mw.json.encode, 1/0))\n"
                  "assert(not pcall(mw.json.encode, {[true] = 1}))\n"
                  "local shared = {1} assert(mw.json.encode({shared, shared}) == '[[1],[1]]')\n"
                  "local rt = mw.json.decode(mw.json.encode({x = {y = {1, 2, {z = 'w'}}}}))\n"
                  "assert(rt.x.y[3].z == 'w')") == MW_RUN_OK);
    env_free(&e);
}

static void test_helpers(void)
{
    env e;
    env_init(&e);
    CHECK(run_body(&e, "local t0 = mw.time() assert(type(t0) == 'number')\n"
                       "assert(mw.time() >= t0)\n"
                       "local s = mw.proc.read('loadavg') assert(type(s) == 'string' and #s > 0)\n"
                       "assert(type(mw.proc.read('meminfo')) == 'string')\n"
                       "assert(type(mw.proc.read('net/dev')) == 'string')\n"
                       "assert(not pcall(mw.proc.read, '../etc/passwd'))\n"
                       "assert(not pcall(mw.proc.read, 'self/environ'))\n"
                       "assert(not pcall(mw.proc.read, '/etc/passwd'))\n"
                       "assert(not pcall(mw.proc.read))\n"
                       "assert(mw.engine_stats() == nil)\n"
                       "mw.log.debug('d') mw.log.info('i') mw.log.warn('w') mw.log.error('e')\n"
                       "print('to the log', 1, nil, {})\n"
                       "assert(not pcall(mw.log.info))") == MW_RUN_OK);

    mw__sandbox *sb = make(&e,
                           "local st = mw.engine_stats()\n"
                           "assert(st.instances == 7 and st.runs == 99 and st.errors == 0)\n"
                           "mw.warning('first') mw.warning('second')",
                           fake_stats);
    CHECK(sb != NULL);
    CHECK(run(sb) == MW_RUN_OK);
    CHECK(mw__sandbox_warnings(sb) == 2);
    /* Counted per run. */
    CHECK(run(sb) == MW_RUN_OK);
    CHECK(mw__sandbox_warnings(sb) == 2);
    mw__sandbox_free(sb);
    env_free(&e);
}

/* mw.proc.pid: three secret-free files of one process, by name only; a
 * bad pid or name raises, a missing process is nil, err. */
static void test_proc_pid(void)
{
    env e;
    env_init(&e);
    char body[4096];
    snprintf(body, sizeof(body),
             "local me = %ld\n"
             "local statm = mw.proc.pid(me, 'statm')\n"
             "local size, rss = statm:match('^(%%d+) (%%d+) ')\n"
             "assert(tonumber(size) > 0 and tonumber(rss) > 0, statm)\n"
             "local stat = mw.proc.pid(me, 'stat')\n"
             "assert(stat:match('^(%%d+) ') == tostring(me), stat)\n"
             "local status = mw.proc.pid(me, 'status')\n"
             "assert(tonumber(status:match('\\nPid:%%s+(%%d+)')) == me)\n"
             "assert(tonumber(status:match('\\nThreads:%%s+(%%d+)')) >= 1)\n"
             "assert(mw.proc.pid(1, 'stat') ~= nil)\n"
             "assert(mw.proc.pid(me + 0.0, 'statm') ~= nil)\n"
             "for _, name in ipairs({'environ', 'cmdline', 'maps', 'fd', 'io', 'mem',\n"
             "    'root', 'cwd', 'exe', '../1/stat', 'stat/../environ', '/stat', 'stat ',\n"
             "    'Stat', '', 'net/dev'}) do\n"
             "  local ok, err = pcall(mw.proc.pid, me, name)\n"
             "  assert(not ok and err:find('is not one of stat, statm, status', 1, true), name)\n"
             "end\n"
             "for _, pid in ipairs({0, -1, 1.5, 'x', '1', tostring(me), 4194305, 1/0,\n"
             "    math.mininteger, math.maxinteger, true, {}}) do\n"
             "  local ok, err = pcall(mw.proc.pid, pid, 'stat')\n"
             "  assert(not ok and err:find('a process id', 1, true), tostring(pid))\n"
             "end\n"
             "assert(not pcall(mw.proc.pid, 0/0, 'stat'))\n"
             "assert(not pcall(mw.proc.pid, me))\n"
             "assert(not pcall(mw.proc.pid))\n"
             "local t, err = mw.proc.pid(4194304, 'stat')\n"
             "assert(t == nil and err == '/proc/4194304/stat: No such file or directory', err)\n"
             "assert(not pcall(function() mw.proc.pid = nil end))",
             (long)getpid());
    CHECK(run_body(&e, body) == MW_RUN_OK);
    env_free(&e);
}

/* mw.proc reads below the sandbox's procfs path (the host's /proc
 * mounted into the agent's container), never the agent's own /proc. */
static void test_proc_paths(void)
{
    env e;
    env_init(&e);
    char dir[128], body[2048];
    tmptree_new(dir, sizeof dir, "mw-procpaths");
    tmptree_put(dir, "loadavg", "7.25 3.50 1.75 2/345 6789\n");
    tmptree_put(dir, "4242/stat", "4242 (host app) S 1 4242\n");
    mw__host_paths paths = {.procfs = dir};
    snprintf(body, sizeof body,
             "return { run = function(self)\n"
             "assert(mw.proc.read('loadavg'):match('^7.25 '))\n"
             "assert(mw.proc.pid(4242, 'stat'):match('%%(host app%%)'))\n"
             "local t, err = mw.proc.read('meminfo')\n"
             "assert(t == nil and err == '%s/meminfo: No such file or directory', err)\n"
             "t, err = mw.proc.pid(%ld, 'stat')\n"
             "assert(t == nil and err:find('%s/', 1, true) == 1, err)\n"
             "end }",
             dir, (long)getpid(), dir);
    mw__sandbox_opts o = {
        .check = "chk",
        .check_id = "chk:1",
        .script = body,
        .script_len = strlen(body),
        .out = mw__sender_out(e.sender),
        .log = &e.log,
        .paths = &paths,
    };
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    CHECK(sb != NULL);
    free(err);
    CHECK(sb && run(sb) == MW_RUN_OK);
    mw__sandbox_free(sb);
    tmptree_remove(dir);
    env_free(&e);
}

/* Without a sender (validation, benchmarks) samples are dropped. */
static void test_no_sender(void)
{
    const char *src = "return { run = function() mw.gauge('x', 1) mw.warning('w') end }";
    mw__sandbox_opts o = {.script = src, .script_len = strlen(src)};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    CHECK(sb != NULL);
    CHECK(err == NULL);
    CHECK(run(sb) == MW_RUN_OK);
    CHECK(mw__sandbox_warnings(sb) == 1);
    mw__sandbox_free(sb);
}

/* mw.ecs: arguments checked before anything else; without an endpoint,
 * nil and why; with one but no I/O (not run by the engine), an error. */
static void test_ecs_arguments(void)
{
    env e;
    env_init(&e);
    CHECK(run_body(&e, "local id = '0a1b2c3d4e5f60718293a4b5c6d7e8f9-2222222222'\n"
                       "local ok, err = pcall(mw.ecs.task_stats, '../task')\n"
                       "assert(not ok and err:find('a container id'))\n"
                       "assert(not pcall(mw.ecs.task_stats, 42))\n"
                       "assert(not pcall(mw.ecs.task_stats, string.rep('a', 129)))\n"
                       "ok, err = pcall(mw.ecs.task_limits, id, {tiemout = 1})\n"
                       "assert(not ok and err:find(\"unknown option 'tiemout'\"))\n"
                       "ok, err = pcall(mw.ecs.task_stats, id, {timeout = -1})\n"
                       "assert(not ok and err:find(\"'timeout' must be a number >= 0\"))\n"
                       "local s, why = mw.ecs.task_stats(id, {timeout = 1})\n"
                       "assert(s == nil and why == 'mw.ecs.task_stats: no ECS task metadata "
                       "endpoint')\n"
                       "assert(not pcall(function() mw.ecs.task_stats = print end))") == MW_RUN_OK);
    const char *src = "return { run = function()\n"
                      "  local ok, err = pcall(mw.ecs.task_stats, 'abc')\n"
                      "  assert(not ok and err:find('no I/O here'))\n"
                      "  local l, why = mw.ecs.task_limits('abc')\n"
                      "end }";
    mw__ecs_endpoint ep = {.url = "http://127.0.0.1:1/v4/x"};
    mw__sandbox_opts o = {.script = src, .script_len = strlen(src), .ecs = &ep};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    CHECK(sb != NULL);
    free(err);
    CHECK(sb && run(sb) == MW_RUN_ERROR);
    CHECK(sb && strstr(mw__sandbox_error(sb), "mw.ecs.task_limits: no I/O here") != NULL);
    mw__sandbox_free(sb);
    mw__sender_discard(e.sender);
    env_free(&e);
}

/* Two sandboxes share nothing: globals written by one are not seen by
 * the other. */
static void test_isolation(void)
{
    env e;
    env_init(&e);
    mw__sandbox *a = make(&e, "shared = 'a' string.mine = 1", NULL);
    mw__sandbox *b = make(&e, "assert(shared == nil and string.mine == nil)", NULL);
    CHECK(a && b);
    CHECK(run(a) == MW_RUN_OK);
    CHECK(run(b) == MW_RUN_OK);
    mw__sandbox_free(a);
    mw__sandbox_free(b);
    mw__sender_discard(e.sender);
    env_free(&e);
}

int main(void)
{
    budget = t_budget(1, 0.002);
    test_samples_reach_aggregator();
    test_bad_arguments();
    test_json();
    test_helpers();
    test_proc_pid();
    test_proc_paths();
    test_no_sender();
    test_ecs_arguments();
    test_isolation();
    mw__budget_free(budget);
    return TEST_RESULT();
}

/*
 * test_check_io.c - checks' non-blocking I/O through the engine, against
 * the in-process mini_httpd (tests/support): mw.http requests and their
 * results, runs suspended side by side, the deadline covering waits (the
 * transfer aborted, the socket closed), unscheduling a waiting instance,
 * every refusal (schemes, redirects, unix sockets, link-local), mw.tcp
 * sockets, mw.sleep, I/O from nested coroutines and from places that
 * cannot wait. Then the link-local rule with a proxy in the environment
 * (tests/support/mini_proxy, which never forwards off loopback and
 * answers any other target itself): refused targets, in every spelling
 * of the address and after a redirect, never reach the proxy; NO_PROXY
 * still works; check_allow_link_local lets them through to it.
 *
 * When it may (root), the test first moves itself into a network
 * namespace of its own with only loopback up, so that even a broken
 * link-local refusal could not send a packet off this machine; without
 * that, the link-local cases are skipped.
 *
 * The engine is driven in bounded steps (count and time), so a regression
 * fails a CHECK instead of hanging.
 */
#include "moonwatch.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "tests/support/mini_httpd.h"
#include "tests/support/mini_proxy.h"
#include "tests/support/netns.h"
#include "tests/support/run_now.h"
#include "test.h"
#include "tmptree.h"
#include "tests/support/make.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CASES 256

typedef struct result {
    char name[64];
    int status; /* io.result status, -1: none yet */
    char message[1024];
    int check_status; /* moonwatch.check_status, -1: none yet */
    char check_message[1024];
    double gauge; /* io.value */
} result;

static result results[MAX_CASES];
static size_t nresults;
static char tmp[64];
static mw__mhd *srv;

static result *result_for(const mw_record *r)
{
    for (size_t i = 0; i < r->ntags; i++) {
        if (strncmp(r->tags[i], "case:", 5) != 0)
            continue;
        for (size_t k = 0; k < nresults; k++)
            if (strcmp(results[k].name, r->tags[i] + 5) == 0)
                return &results[k];
    }
    return NULL;
}

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    result *res = result_for(r);
    if (!res)
        return;
    if (r->type == MW_RECORD_SERVICE_CHECK && strcmp(r->name, "io.result") == 0) {
        res->status = r->status;
        snprintf(res->message, sizeof res->message, "%s", r->message ? r->message : "");
    } else if (r->type == MW_RECORD_SERVICE_CHECK &&
               strcmp(r->name, "moonwatch.check_status") == 0) {
        res->check_status = r->status;
        snprintf(res->check_message, sizeof res->check_message, "%s", r->message ? r->message : "");
    } else if (r->type == MW_RECORD_METRIC && strcmp(r->name, "io.value") == 0) {
        res->gauge = r->value;
    }
}

static void put(const char *rel, const char *text)
{
    tmptree_put(tmp, rel, text);
}

/* Each check reports what its I/O returned as the service check
 * io.result: OK with a message, or CRITICAL with the error. */
static void write_checks(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-checkio");
    put("checks/req.lua",
        "return { run = function(self)\n"
        "  local r, err = mw.http.request(self.instance.req)\n"
        "  if not r then return mw.service_check('io.result', mw.CRITICAL, nil, err) end\n"
        "  mw.gauge('io.value', r.status)\n"
        "  local extra = r.headers['x-multi'] or ''\n"
        "  mw.service_check('io.result', mw.OK, nil, r.body .. '|' .. extra)\n"
        "end }\n");
    put("checks/nested.lua",
        "return { run = function(self)\n"
        "  local url = self.instance.url\n"
        "  local a = coroutine.wrap(function() return mw.http.get(url).status end)()\n"
        "  local ok, co_res = coroutine.resume(coroutine.create(function()\n"
        "    local r = mw.http.get(url); coroutine.yield(r.body); return 'done' end))\n"
        "  mw.gauge('io.value', a)\n"
        "  mw.service_check('io.result', mw.OK, nil, tostring(ok) .. ':' .. co_res)\n"
        "end }\n");
    put("checks/nowait.lua",
        "return { run = function(self)\n"
        "  local url = self.instance.url\n"
        "  local ok, err = pcall(table.sort, {2, 1}, function(a, b)\n"
        "    mw.http.get(url); return a < b end)\n"
        "  local r, err2\n"
        "  table.sort({2, 1}, function(a, b)\n"
        "    if r == nil and err2 == nil then\n"
        "      r, err2 = coroutine.wrap(function() return mw.http.get(url) end)()\n"
        "    end\n"
        "    return a < b end)\n"
        "  local t = setmetatable({}, {__index = function(_, k)\n"
        "    return mw.http.get(url).status end})\n"
        "  mw.service_check('io.result', mw.OK, nil, tostring(ok) .. '|' .. tostring(err)\n"
        "    .. '|' .. tostring(r) .. '|' .. tostring(err2) .. '|' .. t.x)\n"
        "end }\n");
    put("checks/toplevel.lua", "mw.http.get('http://127.0.0.1:1/')\n"
                               "return { run = function() end }\n");
    put("checks/tcp.lua",
        "local function line(s, msg) assert(s:send(msg)); return s:receive('*l') end\n"
        "return { run = function(self)\n"
        "  local i = self.instance\n"
        "  local s, err = mw.tcp.connect('127.0.0.1', i.port)\n"
        "  if not s then return mw.service_check('io.result', mw.CRITICAL, nil, err) end\n"
        "  local out = {}\n"
        "  out[#out + 1] = line(s, 'hello\\n')\n"
        "  assert(s:send('a\\r\\nb\\n'))\n"
        "  out[#out + 1] = s:receive('*l') .. s:receive()\n"
        "  assert(s:send('xyz\\n'))\n"
        "  out[#out + 1] = s:receive(3) .. '[' .. s:receive('*l') .. ']'\n"
        "  local big = string.rep('q', 100000)\n"
        "  assert(s:send(big .. '\\n'))\n"
        "  out[#out + 1] = tostring(#s:receive('*l'))\n"
        "  s:settimeout(0.2)\n"
        "  assert(s:send('SILENT\\n'))\n"
        "  local r, e, partial = s:receive('*l')\n"
        "  out[#out + 1] = tostring(r) .. ',' .. e .. ',' .. partial\n"
        "  s:close()\n"
        "  local s2 = assert(mw.tcp.connect('127.0.0.1', i.port))\n"
        "  out[#out + 1] = line(s2, 'BYE\\n')\n"
        "  out[#out + 1] = '[' .. s2:receive('*a') .. ']'\n"
        "  local r2, e2 = s2:receive('*l')\n"
        "  out[#out + 1] = tostring(r2) .. ',' .. e2\n"
        "  mw.service_check('io.result', mw.OK, nil, table.concat(out, ' '))\n"
        "end }\n");
    put("checks/tcpwait.lua",
        "return { run = function(self)\n"
        "  local s = assert(mw.tcp.connect('127.0.0.1', self.instance.port))\n"
        "  self.sock = s\n"
        "  assert(s:send('SILENT\\n'))\n"
        "  local r, err = s:receive('*l')\n"
        "  mw.gauge('io.value', mw.time_left())\n"
        "  mw.service_check('io.result', mw.OK, nil, tostring(r) .. ',' .. err)\n"
        "  mw.sleep(10)\n"
        "end }\n");
    put("checks/sleep.lua", "return { run = function(self)\n"
                            "  local t0 = mw.time()\n"
                            "  mw.sleep(self.instance.seconds)\n"
                            "  mw.gauge('io.value', mw.time() - t0)\n"
                            "  mw.service_check('io.result', mw.OK, nil, 'slept')\n"
                            "end }\n");
}

static mw_engine *new_engine_with(const char *unix_sockets, int allow_link_local)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "1", NULL) == MW_OK);
    if (unix_sockets)
        CHECK(mw_config_set(cfg, "check_unix_sockets", unix_sockets, NULL) == MW_OK);
    if (allow_link_local)
        CHECK(mw_config_set(cfg, "check_allow_link_local", "true", NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "checks_dir", dir, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    CHECK(eng != NULL);
    t_asked_only(eng); /* each case runs once: when start_case() asks */
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    return eng;
}

static mw_engine *new_engine(const char *unix_sockets)
{
    return new_engine_with(unix_sockets, 0);
}

/* Schedules `check` with `instance_json` (a case tag and a 60 s interval
 * are added) and runs it at once. Returns its result slot. */
static result *start_case(mw_engine *eng, const char *name, const char *check,
                          const char *instance_json, double timeout, const char **id_out)
{
    if (nresults == MAX_CASES) {
        fprintf(stderr, "more than %d cases\n", MAX_CASES);
        exit(1);
    }
    result *res = &results[nresults++];
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "%s", name);
    res->status = res->check_status = -1;
    cJSON *inst = cJSON_Parse(instance_json);
    CHECK(inst != NULL);
    char tag[80];
    snprintf(tag, sizeof tag, "case:%s", name);
    cJSON *tags = cJSON_AddArrayToObject(inst, "tags");
    cJSON_AddItemToArray(tags, cJSON_CreateString(tag));
    cJSON_AddNumberToObject(inst, "min_collection_interval", 60);
    cJSON_AddNumberToObject(inst, "timeout", timeout);
    const char *id = NULL;
    char *err = NULL;
    mw_code rc = mw__engine_schedule(eng, check, "test", inst, NULL, &id, &err);
    if (rc != MW_OK)
        fprintf(stderr, "schedule %s: %s\n", name, err ? err : "?");
    CHECK(rc == MW_OK);
    free(err);
    cJSON_Delete(inst);
    if (id) {
        CHECK(mw__sched_run_now(mw__engine_sched(eng), id) == MW_OK);
        if (id_out)
            *id_out = id;
    }
    return res;
}

/* Steps the engine (flushing) until every result in [from, nresults)
 * has its check status, at most `max_s` seconds. */
static void wait_results(mw_engine *eng, size_t from, double max_s)
{
    double end = mw__mono() + max_s;
    for (;;) {
        for (int i = 0; i < 20; i++)
            mw_engine_step(eng, 5);
        mw_engine_flush(eng);
        size_t done = 0;
        for (size_t k = from; k < nresults; k++)
            done += results[k].check_status >= 0;
        if (done == nresults - from || mw__mono() > end)
            return;
    }
}

static void stats(mw__mhd_stats *st)
{
    mw__mhd_stats_get(srv, st);
}

/* Prints the requests the server got from `from` to `to`, for a failing
 * CHECK. */
static void server_dump(unsigned long from, unsigned long to)
{
    char line[256];
    for (unsigned long n = from; n < to; n++)
        if (mw__mhd_request(srv, n, line, sizeof line) == 0)
            fprintf(stderr, "  server got: %s\n", line);
}

/* ------------------------------------------------------------- http */

static void test_http_results(void)
{
    mw_engine *eng = new_engine(NULL);
    int port = mw__mhd_port(srv);
    char j[1024];
    size_t from = nresults;
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/ok\"}}", port);
    result *ok = start_case(eng, "ok", "req", j, 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/headers\",\"headers\":{\"X-Test\":\"yes\"}}}",
             port);
    result *hdr = start_case(eng, "headers", "req", j, 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/body\","
             "\"body\":\"hello body\"}}",
             port);
    result *post = start_case(eng, "post", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/status/503\"}}", port);
    result *s503 = start_case(eng, "503", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=/ok\"}}", port);
    result *redir = start_case(eng, "redirect", "req", j, 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/bytes/100000\",\"max_body\":1000}}", port);
    result *big = start_case(eng, "maxbody", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/ok\",\"tiemout\":1}}", port);
    result *typo = start_case(eng, "typo", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"url\":\"http://127.0.0.1:%d/ok\"}", port);
    result *nested = start_case(eng, "nested", "nested", j, 5, NULL);
    result *nowait = start_case(eng, "nowait", "nowait", j, 5, NULL);
    wait_results(eng, from, 20);

    CHECK(ok->status == MW_STATUS_OK);
    CHECK_STR(ok->message, "ok\n|");
    CHECK(ok->gauge == 200);
    CHECK(hdr->status == MW_STATUS_OK);
    CHECK(strstr(hdr->message, "X-Test: yes") != NULL);
    CHECK(strstr(hdr->message, "|a, b") != NULL); /* repeated header joined */
    CHECK_STR(post->message, "hello body|");
    CHECK(s503->status == MW_STATUS_OK); /* a status is a result, not an error */
    CHECK(s503->gauge == 503);
    CHECK_STR(redir->message, "ok\n|"); /* followed by default */
    CHECK(big->status == MW_STATUS_CRITICAL);
    CHECK(strstr(big->message, "over 1000 bytes") != NULL);
    CHECK(typo->check_status == MW_STATUS_CRITICAL);
    CHECK(strstr(typo->check_message, "unknown option 'tiemout'") != NULL);
    CHECK(nested->gauge == 200);
    CHECK_STR(nested->message, "true:ok\n");
    /* a sort comparator cannot wait: the call raises; a coroutine inside
     * it gets its I/O failed instead; a metamethod can wait */
    CHECK(strstr(nowait->message, "false|") == nowait->message);
    CHECK(strstr(nowait->message, "only possible during init() or run()") != NULL);
    CHECK(strstr(nowait->message, "|nil|") != NULL);
    CHECK(strstr(nowait->message, "cannot wait for I/O here") != NULL);
    CHECK(strstr(nowait->message, "|200") != NULL);

    /* I/O at the script's top level: the instance is refused */
    cJSON *inst = cJSON_Parse("{}");
    const char *id = NULL;
    char *err = NULL;
    CHECK(mw__engine_schedule(eng, "toplevel", "test", inst, NULL, &id, &err) != MW_OK);
    CHECK(err && strstr(err, "only possible during init() or run()") != NULL);
    free(err);
    cJSON_Delete(inst);
    mw_engine_free(eng);
}

/* 50 runs waiting on a slow server at the same time, on one worker. */
static void test_concurrent_waits(void)
{
    mw_engine *eng = new_engine(NULL);
    mw__mhd_stats after;
    size_t from = nresults;
    char j[256], name[32];
    /* 1.5 s: enough for all 50 to be asked before the first is answered,
     * also under sanitizers on a loaded machine */
    for (int i = 0; i < 50; i++) {
        snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/delay/1500\"},\"n\":%d}",
                 mw__mhd_port(srv), i);
        snprintf(name, sizeof name, "slow%d", i);
        start_case(eng, name, "req", j, 10, NULL);
    }
    wait_results(eng, from, 30);
    stats(&after);
    size_t good = 0;
    for (size_t k = from; k < nresults; k++)
        good += results[k].status == MW_STATUS_OK && strcmp(results[k].message, "slow\n|") == 0;
    CHECK(good == 50);
    /* all 50 were waiting on the server at once (no earlier test delays) */
    CHECK(after.max_delayed >= 50);
    mw_engine_free(eng);
}

/* I/O gives up before the run's deadline (a tenth of the budget early),
 * so a check reports its own timeout; a run still waiting at its deadline
 * is stopped, and the sockets it opened are closed; an instance
 * unscheduled while it waits is torn down cleanly. */
static void test_deadline_and_unschedule(void)
{
    mw_engine *eng = new_engine(NULL);
    mw__mhd_stats before, after;
    stats(&before);
    char j[256];
    size_t from = nresults;
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/hang\"}}", mw__mhd_port(srv));
    result *hang = start_case(eng, "hang", "req", j, 0.5, NULL);
    snprintf(j, sizeof j, "{\"port\":%d}", mw__mhd_echo_port(srv));
    result *tcp = start_case(eng, "tcpwait", "tcpwait", j, 0.5, NULL);
    wait_results(eng, from, 10);
    CHECK(hang->status == MW_STATUS_CRITICAL);
    CHECK(strstr(hang->message, "timed out") != NULL);
    CHECK(hang->check_status == MW_STATUS_OK);
    CHECK_STR(tcp->message, "nil,timeout");
    /* the margin was left (0.05 s; less when the wakeup was late on a
     * loaded machine, but some) */
    CHECK(tcp->gauge > 0 && tcp->gauge < 0.1);
    CHECK(tcp->check_status == MW_STATUS_CRITICAL);
    CHECK(strstr(tcp->check_message, "time budget") != NULL);
    CHECK(strstr(tcp->check_message, "(waiting for mw.sleep(10))") != NULL);
    /* both connections were closed by moonwatch: the request's when it
     * timed out, the socket (kept in self) when its run was stopped */
    for (int i = 0; i < 100; i++) {
        stats(&after);
        if (after.hung_gone >= before.hung_gone + 2)
            break;
        mw_engine_step(eng, 10);
    }
    CHECK(after.hung_gone >= before.hung_gone + 2);

    /* unscheduled while waiting */
    stats(&before);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/hang\"}}", mw__mhd_port(srv));
    const char *id = NULL;
    start_case(eng, "unsched", "req", j, 30, &id);
    for (int i = 0; i < 200; i++) {
        stats(&after);
        if (after.requests > before.requests)
            break;
        mw_engine_step(eng, 10);
    }
    CHECK(after.requests == before.requests + 1);
    CHECK(mw__sched_remove(mw__engine_sched(eng), id) == MW_OK);
    for (int i = 0; i < 100; i++) {
        mw_engine_step(eng, 10);
        stats(&after);
        if (after.hung_gone > before.hung_gone)
            break;
    }
    CHECK(after.hung_gone == before.hung_gone + 1);
    mw_engine_free(eng);
}

/* ------------------------------------------------------------- refusals */

static void test_refusals(int isolated)
{
    char allowed[256], link[300], j[1024];
    snprintf(allowed, sizeof allowed, "%s", mw__mhd_unix_path(srv));
    snprintf(link, sizeof link, "%s/link.sock", tmp);
    CHECK(symlink(allowed, link) == 0);
    mw_engine *eng = new_engine(allowed);
    size_t from = nresults;
    result *file =
        start_case(eng, "file", "req", "{\"req\":{\"url\":\"file:///etc/passwd\"}}", 5, NULL);
    result *gopher =
        start_case(eng, "gopher", "req", "{\"req\":{\"url\":\"gopher://127.0.0.1:1/\"}}", 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=file:///etc/passwd\"}}",
             mw__mhd_port(srv));
    result *redir = start_case(eng, "redirfile", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://localhost/ok\",\"unix_socket\":\"%s\"}}",
             allowed);
    result *unix_ok = start_case(eng, "unixok", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://localhost/ok\",\"unix_socket\":\"%s\"}}",
             link);
    result *unix_link = start_case(eng, "unixlink", "req", j, 5, NULL);
    result *unix_no = start_case(
        eng, "unixno", "req",
        "{\"req\":{\"url\":\"http://localhost/ok\",\"unix_socket\":\"/var/run/docker.sock\"}}", 5,
        NULL);
    result *ll4 = NULL, *ll6 = NULL, *llredir = NULL;
    if (isolated) {
        ll4 =
            start_case(eng, "ll4", "req",
                       "{\"req\":{\"url\":\"http://169.254.169.254/latest/meta-data/\"}}", 5, NULL);
        ll6 = start_case(eng, "ll6", "req", "{\"req\":{\"url\":\"http://[fe80::1]/\"}}", 5, NULL);
        snprintf(j, sizeof j,
                 "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=http://169.254.169.254/\"}}",
                 mw__mhd_port(srv));
        llredir = start_case(eng, "llredir", "req", j, 5, NULL);
    }
    wait_results(eng, from, 20);
    CHECK(file->status == MW_STATUS_CRITICAL);
    CHECK(strstr(file->message, "root:") == NULL);
    CHECK(gopher->status == MW_STATUS_CRITICAL);
    CHECK(redir->status == MW_STATUS_CRITICAL);
    CHECK(strstr(redir->message, "root:") == NULL);
    CHECK(unix_ok->status == MW_STATUS_OK);
    CHECK_STR(unix_ok->message, "ok\n|");
    CHECK(unix_link->status == MW_STATUS_OK); /* the same socket by its real path */
    CHECK(unix_no->status == MW_STATUS_CRITICAL);
    CHECK(strstr(unix_no->message, "refused: unix socket /var/run/docker.sock is not in "
                                   "check_unix_sockets") != NULL);
    if (isolated) {
        CHECK(ll4->status == MW_STATUS_CRITICAL);
        CHECK(strstr(ll4->message, "link-local") != NULL);
        CHECK(ll6->status == MW_STATUS_CRITICAL);
        CHECK(strstr(ll6->message, "link-local") != NULL);
        CHECK(llredir->status == MW_STATUS_CRITICAL);
        CHECK(strstr(llredir->message, "link-local") != NULL);
    }
    mw_engine_free(eng);
    unlink(link);
}

/* ------------------------------------------------------------- tcp, sleep */

static void test_tcp_and_sleep(void)
{
    mw_engine *eng = new_engine(NULL);
    char j[256];
    size_t from = nresults;
    snprintf(j, sizeof j, "{\"port\":%d}", mw__mhd_echo_port(srv));
    result *tcp = start_case(eng, "tcp", "tcp", j, 10, NULL);
    /* a port nothing listens on: the echo port of a stopped server */
    mw__mhd *gone = mw__mhd_start();
    int closed_port = mw__mhd_echo_port(gone);
    mw__mhd_stop(gone);
    snprintf(j, sizeof j, "{\"port\":%d}", closed_port);
    result *refused = start_case(eng, "tcprefused", "tcp", j, 10, NULL);
    result *sl = start_case(eng, "sleep", "sleep", "{\"seconds\":0.2}", 5, NULL);
    wait_results(eng, from, 20);
    CHECK(tcp->status == MW_STATUS_OK);
    CHECK_STR(tcp->message, "hello ab xyz[] 100000 nil,timeout, bye [] nil,closed");
    CHECK(refused->status == MW_STATUS_CRITICAL);
    char want[64];
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d: ", closed_port);
    CHECK(strstr(refused->message, want) == refused->message);
    CHECK(sl->status == MW_STATUS_OK);
    CHECK(sl->gauge >= 0.19);
    mw_engine_free(eng);
}

/* Runs whose I/O completes together resume together: a worker drains
 * its run queue in batches, not one run per loop turn. 60 runs sleep
 * past the same moment; the engine is not stepped while they sleep, so
 * every wake-up is queued at once; then fewer than 30 steps must finish
 * them all (one run per turn needs 60). */
static void test_woken_runs_batch(void)
{
    mw_engine *eng = new_engine(NULL);
    mw__sched *s = mw__engine_sched(eng);
    enum { N = 60 };
    char j[64], name[32];
    for (int i = 0; i < N; i++) {
        snprintf(j, sizeof j, "{\"seconds\":0.2,\"n\":%d}", i);
        snprintf(name, sizeof name, "batch%d", i);
        start_case(eng, name, "sleep", j, 5, NULL);
    }
    for (int i = 0; i < 100 && mw__sched_running(s) < N; i++)
        mw_engine_step(eng, 0);
    CHECK(mw__sched_running(s) == N); /* all suspended in mw.sleep */
    usleep(400000);
    int steps = 0;
    while (mw__sched_running(s) > 0 && steps < 200) {
        mw_engine_step(eng, 0);
        steps++;
    }
    CHECK(mw__sched_running(s) == 0);
    if (steps >= 30)
        fprintf(stderr, "%d woken runs took %d steps\n", N, steps);
    CHECK(steps < 30);
    mw_engine_free(eng);
}

/* ------------------------------------------------------------- proxy */

static const char *const proxy_vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                         "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};

/* Points every proxy variable at `px` (NULL: unsets them), and no_proxy
 * at `no_proxy`. Only while no engine runs: curl reads them on its
 * threads. */
static void proxy_env(mw__mproxy *px, const char *no_proxy)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", px ? mw__mproxy_port(px) : 0);
    for (size_t i = 0; i < MW_ARRAY_LEN(proxy_vars); i++) {
        if (px)
            setenv(proxy_vars[i], url, 1);
        else
            unsetenv(proxy_vars[i]);
    }
    if (no_proxy) {
        setenv("no_proxy", no_proxy, 1);
        setenv("NO_PROXY", no_proxy, 1);
    } else {
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
    }
}

/* Prints what the proxy received, for a failing CHECK. */
static void proxy_dump(mw__mproxy *px)
{
    char line[512];
    for (size_t i = 0; mw__mproxy_request(px, i, line, sizeof line) == 0; i++)
        fprintf(stderr, "  proxy got: %s\n", line);
}

/* Every spelling of the metadata address, and the other link-local
 * targets, through the proxy: refused before anything is sent to it. */
static void test_proxy_refusals(mw__mproxy *px)
{
    static const char *const urls[] = {
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://0xA9FEA9FE/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://169.16689662/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]:8080/",
        "http://169.254.170.2/v2/credentials/",
    };
    result *res[MW_ARRAY_LEN(urls)];
    char j[512], name[32];
    mw__mproxy_clear(px);
    proxy_env(px, NULL);
    mw_engine *eng = new_engine(NULL);
    size_t from = nresults;
    for (size_t i = 0; i < MW_ARRAY_LEN(urls); i++) {
        snprintf(j, sizeof j, "{\"req\":{\"url\":\"%s\"}}", urls[i]);
        snprintf(name, sizeof name, "pxll%zu", i);
        res[i] = start_case(eng, name, "req", j, 5, NULL);
    }
    wait_results(eng, from, 20);
    for (size_t i = 0; i < MW_ARRAY_LEN(urls); i++) {
        if (res[i]->status != MW_STATUS_CRITICAL || !strstr(res[i]->message, "link-local"))
            fprintf(stderr, "%s: %s\n", urls[i], res[i]->message);
        CHECK(res[i]->status == MW_STATUS_CRITICAL);
        CHECK(strstr(res[i]->message, "is a link-local address") != NULL);
    }
    CHECK(strstr(res[0]->message, "refused: 169.254.169.254 is a link-local address") != NULL);
    CHECK(strstr(res[2]->message, "refused: 169.254.169.254 is a link-local address") != NULL);
    if (mw__mproxy_count(px) != 0)
        proxy_dump(px);
    CHECK(mw__mproxy_count(px) == 0);
    mw_engine_free(eng);
    proxy_env(NULL, NULL);
}

/* A name that does not resolve here is refused, not left to the proxy
 * to resolve: isolated only (resolving it asks DNS). */
static void test_proxy_unresolved(mw__mproxy *px)
{
    mw__mproxy_clear(px);
    proxy_env(px, NULL);
    mw_engine *eng = new_engine(NULL);
    size_t from = nresults;
    result *r = start_case(eng, "pxnoname", "req",
                           "{\"req\":{\"url\":\"http://nothing-here.invalid/\"}}", 5, NULL);
    wait_results(eng, from, 20);
    CHECK(r->status == MW_STATUS_CRITICAL);
    CHECK(strstr(r->message, "refused: nothing-here.invalid does not resolve here") != NULL);
    CHECK(mw__mproxy_count(px) == 0);
    mw_engine_free(eng);
    proxy_env(NULL, NULL);
}

/* Allowed targets go through the proxy, a redirect to the metadata
 * address is refused after the first request, NO_PROXY still sends a
 * loopback target direct. */
static void test_proxy_allowed(mw__mproxy *px)
{
    int port = mw__mhd_port(srv);
    char j[512], want[128];
    mw__mhd_stats before, after;
    mw__mproxy_clear(px);
    proxy_env(px, NULL);
    mw_engine *eng = new_engine(NULL);
    size_t from = nresults;
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/ok\"}}", port);
    result *ok = start_case(eng, "pxok", "req", j, 5, NULL);
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://localhost:%d/ok\"}}", port);
    result *name = start_case(eng, "pxname", "req", j, 5, NULL);
    wait_results(eng, from, 20);
    CHECK(ok->status == MW_STATUS_OK);
    CHECK_STR(ok->message, "ok\n|");
    CHECK(name->status == MW_STATUS_OK); /* resolved here: loopback */
    CHECK_STR(name->message, "ok\n|");
    snprintf(want, sizeof want, "GET http://127.0.0.1:%d/ok", port);
    CHECK(mw__mproxy_saw(px, want));
    snprintf(want, sizeof want, "GET http://localhost:%d/ok", port);
    CHECK(mw__mproxy_saw(px, want));

    /* the redirect's target is refused: the proxy got the first request only */
    mw__mproxy_clear(px);
    from = nresults;
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=http://169.254.169.254/"
             "latest/meta-data/\"}}",
             port);
    result *redir = start_case(eng, "pxredir", "req", j, 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=http://2852039166/\"}}", port);
    result *redir_int = start_case(eng, "pxredirint", "req", j, 5, NULL);
    wait_results(eng, from, 20);
    CHECK(redir->status == MW_STATUS_CRITICAL);
    CHECK(strstr(redir->message, "refused: 169.254.169.254 is a link-local address") != NULL);
    CHECK(redir_int->status == MW_STATUS_CRITICAL);
    CHECK(strstr(redir_int->message, "refused: 169.254.169.254 is a link-local address") != NULL);
    if (mw__mproxy_count(px) != 2 || mw__mproxy_saw(px, "GET http://169.254") ||
        mw__mproxy_saw(px, "GET http://2852039166"))
        proxy_dump(px);
    CHECK(mw__mproxy_count(px) == 2); /* the two redirects, nothing after them */
    CHECK(!mw__mproxy_saw(px, "GET http://169.254") &&
          !mw__mproxy_saw(px, "GET http://2852039166"));
    mw_engine_free(eng);

    /* NO_PROXY: straight to the server, still allowed; the metadata
     * address, proxied, still refused after a redirect */
    mw__mproxy_clear(px);
    proxy_env(px, "127.0.0.1");
    eng = new_engine(NULL);
    stats(&before);
    from = nresults;
    snprintf(j, sizeof j, "{\"req\":{\"url\":\"http://127.0.0.1:%d/ok\"}}", port);
    result *direct = start_case(eng, "pxdirect", "req", j, 5, NULL);
    snprintf(j, sizeof j,
             "{\"req\":{\"url\":\"http://127.0.0.1:%d/redirect?to=http://169.254.169.254/\"}}",
             port);
    result *direct_redir = start_case(eng, "pxdirectredir", "req", j, 5, NULL);
    wait_results(eng, from, 20);
    stats(&after);
    CHECK(direct->status == MW_STATUS_OK);
    CHECK_STR(direct->message, "ok\n|");
    CHECK(direct_redir->status == MW_STATUS_CRITICAL);
    CHECK(strstr(direct_redir->message, "link-local") != NULL);
    if (after.requests != before.requests + 2)
        server_dump(before.requests, after.requests);
    CHECK(after.requests == before.requests + 2);
    CHECK(mw__mproxy_count(px) == 0);
    mw_engine_free(eng);
    proxy_env(NULL, NULL);
}

/* check_allow_link_local: the request does go to the proxy (which
 * answers it itself). */
static void test_proxy_allow(mw__mproxy *px)
{
    mw__mproxy_clear(px);
    proxy_env(px, NULL);
    mw_engine *eng = new_engine_with(NULL, 1);
    size_t from = nresults;
    result *r =
        start_case(eng, "pxallow", "req",
                   "{\"req\":{\"url\":\"http://169.254.169.254/latest/meta-data/\"}}", 5, NULL);
    wait_results(eng, from, 20);
    CHECK(r->status == MW_STATUS_OK);
    CHECK_STR(r->message, "canned by mini_proxy\n|");
    CHECK(mw__mproxy_saw(px, "GET http://169.254.169.254/latest/meta-data/"));
    mw_engine_free(eng);
    proxy_env(NULL, NULL);
}

static void test_proxy(int isolated)
{
    mw__mproxy *px = mw__mproxy_start();
    CHECK(px != NULL);
    if (!px)
        return;
    test_proxy_refusals(px);
    if (isolated)
        test_proxy_unresolved(px);
    test_proxy_allowed(px);
    test_proxy_allow(px);
    mw__mproxy_stop(px);
}

/* ------------------------------------------------------------- main */

int main(void)
{
    int isolated = t_isolate_network();
    proxy_env(NULL, NULL); /* none but the test's own */
    if (!isolated)
        printf("not isolated (not root?): link-local cases skipped\n");
    srv = mw__mhd_start();
    CHECK(srv != NULL);
    if (!srv)
        return TEST_RESULT();
    write_checks();
    test_http_results();
    test_concurrent_waits();
    test_deadline_and_unschedule();
    test_refusals(isolated);
    test_tcp_and_sleep();
    test_woken_runs_batch();
    test_proxy(isolated);
    mw__mhd_stop(srv);
    tmptree_remove(tmp);
    return TEST_RESULT();
}

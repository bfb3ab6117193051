/*
 * test_lua_helpers.c - the helpers checks share through mw: mw.opt (every
 * rule and every message, in tests/fixtures/lua/helpers.lua, run here as
 * a check), mw.tag and mw.base64; that a bad option read in init() fails
 * each run with the message and the check's line; and that none of them
 * is built before a run first reads it.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mw__budget *budget;

static mw__sandbox *make(const char *src, const char *instance_json)
{
    cJSON *inst = instance_json ? cJSON_Parse(instance_json) : NULL;
    mw__sandbox_opts o = {
        .check = "chk",
        .check_id = "chk:1",
        .chunkname = "=chk",
        .script = src,
        .script_len = strlen(src),
        .instance = inst,
    };
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb)
        fprintf(stderr, "sandbox_new: %s\n", err);
    free(err);
    cJSON_Delete(inst);
    return sb;
}

static mw__run_status run(mw__sandbox *sb)
{
    mw__run_status st;
    mw__sandbox_begin(sb, mw__mono() + 10);
    while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
        ;
    return st;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        text = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (text && (fseek(f, 0, SEEK_SET) != 0 || fread(text, 1, (size_t)n, f) != (size_t)n)) {
            free(text);
            text = NULL;
        } else if (text) {
            text[n] = '\0';
        }
    }
    fclose(f);
    return text;
}

/* Every case of the fixture holds; a failed one is printed. */
static void test_rules(void)
{
    char *src = read_file(MW_TEST_FIXTURES "/lua/helpers.lua");
    CHECK(src != NULL);
    if (!src)
        return;
    mw__sandbox *sb = make(src, NULL);
    CHECK(sb != NULL);
    if (sb) {
        mw__run_status st = run(sb);
        if (st != MW_RUN_OK)
            fprintf(stderr, "helpers.lua: %s\n", mw__sandbox_error(sb));
        CHECK(st == MW_RUN_OK);
        mw__sandbox_free(sb);
    }
    free(src);
}

/* A bad option read in init() fails the run with the message and the
 * line that read it, and again on the next run (init is tried again);
 * a good one lets run() go on. */
static void test_error_from_init(void)
{
    static const char src[] = "local check = {}\n"
                              "function check.init(self)\n"
                              "  self.port = mw.opt.integer(self.instance, 'port', nil, 1, 65535)\n"
                              "  self.tls = mw.opt.bool(self.instance, 'tls', false)\n"
                              "end\n"
                              "function check.run(self)\n"
                              "  assert(math.type(self.port) == 'integer' and self.tls == true)\n"
                              "  if self.port == 1 then mw.opt.error('port', 'not 1') end\n"
                              "end\n"
                              "return check\n";
    mw__sandbox *sb = make(src, "{\"port\": \"http\"}");
    CHECK(sb != NULL);
    if (sb) {
        for (int i = 0; i < 2; i++) {
            CHECK(run(sb) == MW_RUN_ERROR);
            CHECK_STR(mw__sandbox_error(sb),
                      "chk:3: bad option 'port': integer from 1 to 65535 expected, "
                      "got string \"http\"");
        }
        mw__sandbox_free(sb);
    }
    sb = make(src, "{\"port\": 80, \"tls\": \"maybe\"}");
    CHECK(sb != NULL);
    if (sb) {
        CHECK(run(sb) == MW_RUN_ERROR);
        CHECK_STR(mw__sandbox_error(sb),
                  "chk:4: bad option 'tls': boolean expected, got string \"maybe\"");
        mw__sandbox_free(sb);
    }
    sb = make(src, "{\"port\": \"8080\", \"tls\": \"ON\"}");
    CHECK(sb != NULL);
    if (sb) {
        CHECK(run(sb) == MW_RUN_OK);
        CHECK(run(sb) == MW_RUN_OK);
        mw__sandbox_free(sb);
    }
    sb = make(src, "{\"port\": 1, \"tls\": 1}");
    CHECK(sb != NULL);
    if (sb) {
        CHECK(run(sb) == MW_RUN_ERROR);
        CHECK_STR(mw__sandbox_error(sb), "chk:8: bad option 'port': not 1");
        mw__sandbox_free(sb);
    }
}

/* The state grows when a run first reads mw.opt, mw.tag and mw.base64:
 * they are not built with the state, so a check that never reads them
 * costs what it did before they existed. */
static void test_built_on_first_use(void)
{
    static const char src[] = "local n = 0\n"
                              "return { run = function(self) n = n + 1\n"
                              "  if n >= 2 then local _ = mw.opt, mw.tag, mw.base64 end\n"
                              "end }\n";
    mw__sandbox *sb = make(src, NULL);
    CHECK(sb != NULL);
    if (!sb)
        return;
    CHECK(run(sb) == MW_RUN_OK);
    size_t before = mw__sandbox_mem(sb);
    CHECK(run(sb) == MW_RUN_OK);
    size_t after = mw__sandbox_mem(sb);
    if (after < before + 600)
        fprintf(stderr, "mw.opt, mw.tag, mw.base64: %zu -> %zu bytes\n", before, after);
    CHECK(after >= before + 600);
    /* read again: nothing more is built */
    CHECK(run(sb) == MW_RUN_OK);
    CHECK(mw__sandbox_mem(sb) <= after + 256);
    mw__sandbox_free(sb);
}

int main(void)
{
    budget = t_budget(1, 0.002);
    test_rules();
    test_error_from_init();
    test_built_on_first_use();
    mw__budget_free(budget);
    return TEST_RESULT();
}

/*
 * fuzz_lua.c - libFuzzer target: untrusted check scripts in the sandbox.
 *
 * The input is a script under a tiny budget: 1 MiB of memory, 50 ms per
 * run. Byte 0 picks the shape: even, the rest is the whole chunk (it must
 * return a table with `run`); odd, the rest is the body of run() inside a
 * fixed wrapper, so that most inputs reach the run path. A run may only
 * end OK, ERROR, TIMEOUT or NOMEM (preemptions are resumed as the
 * scheduler does), with an error message for every failure, and the
 * state must stay within its cap. Loading time is bounded by the
 * sandbox's own load timeout. Runs under those budgets are slow, so its
 * ctest makes fewer of them: fuzz-runs: 5000
 */
#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_CAP  ((size_t)1 << 20)
#define DEADLINE 0.050

static const char head[] = "return { run = function(self)\n";
static const char tail[] = "\nend }\n";

/* One engine's worth of shared objects, made once per process. */
static mw__budget *budget;
static mw__aggregator *agg;
static mw__sender *sender;

static void setup(void)
{
    static const char *const tags[] = {"fuzz:1"};
    mw__agg_opts ao = {.flush_interval = 15};
    mw__sender_opts so = {.check = "fuzz", .check_id = "fuzz:0", .tags = tags, .ntags = 1};
    budget = t_budget(1, 0.005);
    agg = mw__agg_new(&ao);
    sender = agg ? mw__sender_new(agg, &so) : NULL;
    if (!budget || !sender)
        abort();
}

/* The script text for this input (caller frees). */
static char *script_of(const uint8_t *data, size_t size, size_t *len)
{
    int wrap = size > 0 && (data[0] & 1);
    const uint8_t *body = size > 0 ? data + 1 : data;
    size_t n = size > 0 ? size - 1 : 0;
    size_t total = n + (wrap ? sizeof(head) - 1 + sizeof(tail) - 1 : 0);
    char *s = malloc(total + 1);
    if (!s)
        abort();
    char *p = s;
    if (wrap)
        p = memcpy(p, head, sizeof(head) - 1), p += sizeof(head) - 1;
    memcpy(p, body, n);
    p += n;
    if (wrap)
        memcpy(p, tail, sizeof(tail) - 1), p += sizeof(tail) - 1;
    *p = '\0';
    *len = total;
    return s;
}

/* Two runs (init on the first), each resumed until it ends. */
static void run_twice(mw__sandbox *sb)
{
    for (int i = 0; i < 2; i++) {
        mw__sandbox_begin(sb, mw__mono() + DEADLINE);
        mw__run_status st;
        int preempts = 0;
        while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
            if (++preempts > 100000)
                abort(); /* preempted forever, never timed out */
        if (st != MW_RUN_OK && st != MW_RUN_ERROR && st != MW_RUN_TIMEOUT && st != MW_RUN_NOMEM)
            abort();
        if (st != MW_RUN_OK && mw__sandbox_error(sb)[0] == '\0')
            abort(); /* a failed run says why */
        if (mw__sandbox_mem(sb) > MEM_CAP)
            abort();
        mw__sender_discard(sender);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!budget)
        setup();
    size_t len;
    char *text = script_of(data, size, &len);
    mw__sandbox_opts o = {.check = "fuzz",
                          .check_id = "fuzz:0",
                          .chunkname = "=fuzz",
                          .script = text,
                          .script_len = len,
                          .mem_cap = MEM_CAP,
                          .out = mw__sender_out(sender)};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb && !err)
        abort();
    if (sb)
        run_twice(sb);
    mw__sandbox_free(sb);
    free(err);
    free(text);
    return 0;
}

/*
 * test_json.c - the canonical form of a document (keys sorted at every
 * level, whether or not they already are) and the instance id hashed over
 * it: the same config in any key order gives the same id, and the id is
 * the FNV-1a hash of the documented bytes.
 */
#include "core/base/json.h"
#include "core/base/util.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_canonical(const char *text, const char *want)
{
    cJSON *j = cJSON_Parse(text);
    char *got = j ? mw__json_canonical(j) : NULL;

    CHECK_STR(got, want);
    free(got);
    cJSON_Delete(j);
}

static void test_canonical(void)
{
    /* Already in order at every level: printed as it is. */
    check_canonical("{\"a\":1,\"b\":[{\"x\":true,\"y\":null}],\"c\":\"s\"}",
                    "{\"a\":1,\"b\":[{\"x\":true,\"y\":null}],\"c\":\"s\"}");
    /* Out of order at the top, inside an array, or only deep down. */
    check_canonical("{\"c\":\"s\",\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2,\"c\":\"s\"}");
    check_canonical("[{\"y\":1,\"x\":2},3]", "[{\"x\":2,\"y\":1},3]");
    check_canonical("{\"a\":{\"b\":{\"d\":1,\"c\":[2.5,\"\\u00e9\"]}}}",
                    "{\"a\":{\"b\":{\"c\":[2.5,\"\xc3\xa9\"],\"d\":1}}}");
    /* A repeated key is not "in order": the sorted copy decides. */
    check_canonical("{\"b\":1,\"a\":2,\"a\":3}", "{\"a\":2,\"a\":3,\"b\":1}");
    check_canonical("{\"a\":2,\"a\":3}", "{\"a\":2,\"a\":3}");
    check_canonical("7", "7");
    check_canonical("{}", "{}");
}

/* The id of a config is "<check>:" and the FNV-1a hash of the check name,
 * the canonical init_config and the canonical instance, NUL-separated. */
static void check_id(const char *instance, const char *init, const char *canon_inst,
                     const char *canon_init)
{
    cJSON *in = cJSON_Parse(instance), *ic = init ? cJSON_Parse(init) : NULL;
    char *id = mw__instance_id("http_check", ic, in), want[64];
    uint64_t h = mw__hash(MW_HASH_INIT, "http_check", strlen("http_check") + 1);

    h = mw__hash(h, canon_init, strlen(canon_init) + 1);
    h = mw__hash(h, canon_inst, strlen(canon_inst));
    snprintf(want, sizeof want, "http_check:%016llx", (unsigned long long)h);
    CHECK_STR(id, want);
    free(id);
    cJSON_Delete(in);
    cJSON_Delete(ic);
}

static void test_instance_id(void)
{
    check_id("{\"url\":\"http://127.0.0.1/\",\"tags\":[\"a:b\"]}", "{}",
             "{\"tags\":[\"a:b\"],\"url\":\"http://127.0.0.1/\"}", "{}");
    check_id("{\"tags\":[\"a:b\"],\"url\":\"http://127.0.0.1/\"}", NULL,
             "{\"tags\":[\"a:b\"],\"url\":\"http://127.0.0.1/\"}", "null");
    check_id("{\"b\":{\"z\":1,\"y\":2}}", "{\"t\":1,\"s\":2}", "{\"b\":{\"y\":2,\"z\":1}}",
             "{\"s\":2,\"t\":1}");
}

int main(void)
{
    test_canonical();
    test_instance_id();
    return TEST_RESULT();
}

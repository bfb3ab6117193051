/*
 * test_json_pick.c - mw__json_pick_parse(): what is kept, what is stepped
 * over, what is refused; the same tree as cJSON where everything is
 * picked; allocation failures (failalloc.h) at every point.
 */
#include "core/base/json_pick.h"

#include "failalloc.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const mw__json_pick inner[] = {{"d", NULL}, {NULL, NULL}};
static const mw__json_pick items[] = {{"f", NULL}, {NULL, NULL}};
static const mw__json_pick top[] = {
    {"a", NULL},
    {"b", inner},
    {"e", items},
    {NULL, NULL},
};
static const mw__json_pick f_only[] = {{"f", NULL}, {NULL, NULL}};
static const mw__json_pick any_f[] = {{"*", f_only}, {NULL, NULL}};
static const mw__json_pick all[] = {{"*", NULL}, {NULL, NULL}};

/* The picked tree of `text`, printed (NULL when refused). */
static char *picked(const char *text, const mw__json_pick *pick)
{
    cJSON *j = mw__json_pick_parse(text, strlen(text), pick);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;

    cJSON_Delete(j);
    return s;
}

static void check_picked(const char *text, const mw__json_pick *pick, const char *want)
{
    char *got = picked(text, pick);

    CHECK_STR(got, want);
    if (!got || strcmp(got, want) != 0)
        fprintf(stderr, "  for %s\n", text);
    free(got);
}

static void check_refused(const char *text, const mw__json_pick *pick)
{
    char *got = picked(text, pick);

    CHECK(got == NULL);
    if (got)
        fprintf(stderr, "  %s was read as %s\n", text, got);
    free(got);
}

static void test_keeps_what_is_named(void)
{
    check_picked("{\"a\":1,\"b\":{\"c\":[1,2,{\"x\":null}],\"d\":\"s\"},"
                 "\"e\":[{\"f\":1,\"g\":{\"h\":[]}},{\"f\":3},7],\"z\":false,\"a\":2}",
                 top, "{\"a\":1,\"b\":{\"d\":\"s\"},\"e\":[{\"f\":1},{\"f\":3},7],\"a\":2}");
    /* A picked member of another type is kept whole: its reader names it. */
    check_picked("{\"b\":[1,{\"d\":2}],\"e\":\"x\"}", top, "{\"b\":[1,{\"d\":2}],\"e\":\"x\"}");
    check_picked("{\"n1\":{\"f\":1,\"g\":2},\"n2\":null,\"n3\":{\"g\":3}}", any_f,
                 "{\"n1\":{\"f\":1},\"n2\":null,\"n3\":{}}");
    check_picked("[{\"a\":1,\"q\":2},{\"q\":3}]", top, "[{\"a\":1},{}]");
    check_picked(" \r\n\t{ \"a\" : -1.5e+3 , \"q\" : [ ] } ", top, "{\"a\":-1500}");
    check_picked("{}", top, "{}");
    check_picked("[]", top, "[]");
    check_picked("42", top, "42");
    check_picked("\xEF\xBB\xBF{\"a\":true}", top, "{\"a\":true}");
    /* Escaped keys are compared decoded; skipped strings may hold any
     * escape. */
    check_picked("{\"\\u0061\":1,\"q\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}", top, "{\"a\":1}");
    /* What follows the value is not read, as with cJSON_ParseWithLength. */
    check_picked("{\"a\":1} trailing", top, "{\"a\":1}");
}

static void test_refuses_what_cjson_refuses(void)
{
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":1",
        "{\"q\":[1,2,]}",
        "{\"q\":[1 2]}",
        "{\"q\":tru}",
        "{\"q\":nul}",
        "{\"q\":\"\\x\"}",
        "{\"q\":\"open}",
        "{\"q\":-}",
        "{\"q\":.5}",
        "{\"q\" 1}",
        "{q:1}",
        "{\"a\":1,\"q\":{\"x\":}}",
        "{\"q\":{\"x\":1]}",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        check_refused(bad[i], top);
        cJSON *whole = cJSON_Parse(bad[i]);
        CHECK(whole == NULL); /* the list holds no document cJSON reads */
        cJSON_Delete(whole);
    }
    /* Stricter than cJSON where it is lax (it reads "\u12g4" as ""). */
    check_refused("{\"q\":\"\\u12g4\"}", top);
    /* The length is the end: no NUL needed, nothing read past it. */
    const char text[] = "{\"a\":1}";
    cJSON *j = mw__json_pick_parse(text, 5, top);
    CHECK(j == NULL);
    cJSON_Delete(j);
    CHECK(mw__json_pick_parse(NULL, 0, top) == NULL);
}

/* "[[[...]]]" `depth` deep, under a skipped member. */
static char *nested(size_t depth)
{
    char *s = malloc(2 * depth + 16);

    if (!s)
        return NULL;
    size_t n = (size_t)sprintf(s, "{\"q\":");
    memset(s + n, '[', depth);
    memset(s + n + depth, ']', depth);
    strcpy(s + n + 2 * depth, "}");
    return s;
}

static void test_nesting_bound(void)
{
    char *ok = nested(CJSON_NESTING_LIMIT - 1), *deep = nested(CJSON_NESTING_LIMIT + 1);

    CHECK(ok && deep);
    if (ok && deep) {
        check_picked(ok, top, "{}");
        check_refused(deep, top);
    }
    free(ok);
    free(deep);
}

/* With every member picked, the tree is cJSON's own. */
static void test_same_as_cjson(void)
{
    static const char *const docs[] = {
        "{\"a\":{\"b\":[1,2.5,-3e2,\"x\",true,false,null,{}],\"c\":\"\\u00e9\"},\"z\":[]}",
        "[{\"k\":{\"l\":\"m\"}},[[]],\"s\"]",
        "{\"\":0,\"with space\":{\"\\\"\":1}}",
    };
    static const mw__json_pick deep_all[] = {{"*", deep_all}, {NULL, NULL}};

    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *want = cJSON_Parse(docs[i]);
        cJSON *a = mw__json_pick_parse(docs[i], strlen(docs[i]), all);
        cJSON *b = mw__json_pick_parse(docs[i], strlen(docs[i]), deep_all);
        CHECK(want && a && b);
        CHECK(cJSON_Compare(want, a, 1));
        CHECK(cJSON_Compare(want, b, 1));
        cJSON_Delete(want);
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
}

#ifndef FAILALLOC_SKIP
/* Each allocation failing in turn: NULL and nothing left, or the tree. */
static void test_allocation_failures(void)
{
    const char *text = "{\"a\":1,\"b\":{\"c\":[1],\"d\":\"s\"},\"e\":[{\"f\":1,\"g\":2},{\"f\":3}],"
                       "\"a_key_longer_than_the_stage_of_sixty_four_bytes_that_is_skipped_anyway\""
                       ":1,\"\\u0061\":2}";
    char *want = picked(text, top);
    long points = 0;

    CHECK(want != NULL);
    for (long n = 1; want; n++) {
        long before = failalloc_live();
        failalloc_arm(n);
        cJSON *j = mw__json_pick_parse(text, strlen(text), top);
        failalloc_disarm();
        char *got = j ? cJSON_PrintUnformatted(j) : NULL;
        CHECK(!j || (got && strcmp(got, want) == 0));
        free(got);
        cJSON_Delete(j);
        CHECK(failalloc_live() == before);
        if (failalloc_refused() == 0) {
            CHECK(j != NULL);
            break;
        }
        CHECK(j == NULL);
        points = n;
    }
    CHECK(points >= 10);
    free(want);
}
#endif

int main(void)
{
    test_keeps_what_is_named();
    test_refuses_what_cjson_refuses();
    test_nesting_bound();
    test_same_as_cjson();
#ifndef FAILALLOC_SKIP
    test_allocation_failures();
#else
    printf("allocation failures: skipped under a sanitizer\n");
#endif
    return TEST_RESULT();
}

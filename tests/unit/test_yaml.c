/*
 * test_yaml.c - YAML to cJSON: scalar typing, positions, anchors and
 * merges, the expansion and size caps, duplicate keys, error messages.
 */
#include "core/base/diag.h"
#include "core/base/util.h"
#include "core/base/yaml.h"
#include "test.h"

#include <stdlib.h>

/* Parses `text` and returns the tree printed compactly, or the first
 * problem when the parse fails. The caller frees. */
static char *parse_str(const char *text)
{
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    char *out;
    if (mw__yaml_parse(text, strlen(text), "t.yaml", &doc, &diag) != 0)
        out = mw__strdup(diag.n ? diag.items[0] : "(no problem reported)");
    else
        out = doc.root ? cJSON_PrintUnformatted(doc.root) : mw__strdup("(empty)");
    mw__yaml_doc_free(&doc);
    mw__diag_free(&diag);
    return out;
}

#define CHECK_YAML(text, want)                                                                     \
    do {                                                                                           \
        char *got_ = parse_str(text);                                                              \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

static void test_scalars(void)
{
    CHECK_YAML("a: 1\nb: -42\nc: +7\nd: 0x1f\ne: 0o17\nf: 007\n",
               "{\"a\":1,\"b\":-42,\"c\":7,\"d\":31,\"e\":15,\"f\":7}");
    CHECK_YAML("a: 1.5\nb: .5\nc: 1e3\nd: -2.5E-3\ne: 5.\nf: -.25\n",
               "{\"a\":1.5,\"b\":0.5,\"c\":1000,\"d\":-0.0025,\"e\":5,\"f\":-0.25}");
    CHECK_YAML("[true, True, TRUE, tRuE, false, FALSE, yes, No, ON, off]",
               "[true,true,true,true,false,false,true,false,true,false]");
    CHECK_YAML("[y, n, Yes!, truth, nope]", "[\"y\",\"n\",\"Yes!\",\"truth\",\"nope\"]");
    CHECK_YAML("a:\nb: ~\nc: null\nd: NULL\ne: Null\n",
               "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}");
    /* Quoting, block scalars and !!str keep text as text. */
    CHECK_YAML("a: \"1\"\nb: 'true'\nc: \"\"\nd: !!str 12\ne: |\n  7\nf: ! 8\n",
               "{\"a\":\"1\",\"b\":\"true\",\"c\":\"\",\"d\":\"12\",\"e\":\"7\\n\",\"f\":\"8\"}");
    /* Things that look numeric but are not, or would lose precision. */
    CHECK_YAML("[1.2.3, 0x, 1e, e3, ., -, 10.0.0.5, 12345678901234567890, .inf, .nan, 1_000]",
               "[\"1.2.3\",\"0x\",\"1e\",\"e3\",\".\",\"-\",\"10.0.0.5\","
               "\"12345678901234567890\",\".inf\",\".nan\",\"1_000\"]");
    CHECK_YAML("[9007199254740992, -9007199254740993]",
               "[9.00719925474099e+15,\"-9007199254740993\"]");
    CHECK_YAML("host: \"%%host%%\"\nurl: http://%%host%%:%%port%%/\n",
               "{\"host\":\"%%host%%\",\"url\":\"http://%%host%%:%%port%%/\"}");
    /* Keys are text whatever they look like. */
    CHECK_YAML("1: a\ntrue: b\n~: c\n", "{\"1\":\"a\",\"true\":\"b\",\"~\":\"c\"}");
}

static void test_documents(void)
{
    CHECK_YAML("", "(empty)");
    CHECK_YAML("# only a comment\n", "(empty)");
    CHECK_YAML("---\n", "null");
    CHECK_YAML("--- 5\n", "5");
    /* Only the first document counts; the rest is not even parsed. */
    CHECK_YAML("a: 1\n---\nb: 2\n", "{\"a\":1}");
    CHECK_YAML("a: 1\n---\n[unclosed\n", "{\"a\":1}");
}

static void test_positions(void)
{
    const char *text = "# comment\n"
                       "init_config:\n"
                       "instances:\n"
                       "  - host: localhost\n"
                       "    port: 6379\n"
                       "    tags: [a, \"b\"]\n";
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    CHECK(mw__yaml_parse(text, strlen(text), "p.yaml", &doc, &diag) == 0);
    CHECK(diag.n == 0);
    const cJSON *inst = cJSON_GetObjectItem(doc.root, "instances");
    const cJSON *first = cJSON_GetArrayItem(inst, 0);
    const cJSON *port = cJSON_GetObjectItem(first, "port");
    const cJSON *tags = cJSON_GetObjectItem(first, "tags");
    mw__yaml_pos p = mw__yaml_where(&doc, doc.root);
    CHECK(p.line == 2 && p.col == 1);
    p = mw__yaml_where(&doc, cJSON_GetObjectItem(doc.root, "init_config"));
    CHECK(p.line == 2 && p.col == 13); /* an empty value sits right after its key */
    p = mw__yaml_where(&doc, inst);
    CHECK(p.line == 4 && p.col == 3);
    p = mw__yaml_where(&doc, first);
    CHECK(p.line == 4 && p.col == 5);
    p = mw__yaml_where(&doc, port);
    CHECK(p.line == 5 && p.col == 11);
    p = mw__yaml_where(&doc, cJSON_GetArrayItem(tags, 1));
    CHECK(p.line == 6 && p.col == 15);
    p = mw__yaml_where(&doc, NULL);
    CHECK(p.line == 0 && p.col == 0);
    cJSON *other = cJSON_CreateNull();
    p = mw__yaml_where(&doc, other);
    CHECK(p.line == 0 && p.col == 0);
    cJSON_Delete(other);
    mw__yaml_doc_free(&doc);
    mw__yaml_doc_free(&doc); /* freeing twice is harmless */
    mw__diag_free(&diag);
}

static void test_anchors(void)
{
    CHECK_YAML("base: &b {port: 1, tags: [x]}\none: *b\ntwo: *b\n",
               "{\"base\":{\"port\":1,\"tags\":[\"x\"]},\"one\":{\"port\":1,\"tags\":[\"x\"]},"
               "\"two\":{\"port\":1,\"tags\":[\"x\"]}}");
    CHECK_YAML("a: &x 5\nb: *x\n&k key: 1\nc: *k\n*x : 6\n",
               "{\"a\":5,\"b\":5,\"key\":1,\"c\":\"key\",\"5\":6}");
    /* Redefining an anchor: later aliases see the new node. */
    CHECK_YAML("- &a 1\n- *a\n- &a 2\n- *a\n", "[1,1,2,2]");
    /* Merge keys: explicit keys win wherever they are written. */
    CHECK_YAML("d: &d {a: 1, b: 2}\ne: {<<: *d, b: 3, c: 4}\nf: {b: 5, <<: *d}\n",
               "{\"d\":{\"a\":1,\"b\":2},\"e\":{\"b\":3,\"c\":4,\"a\":1},\"f\":{\"b\":5,\"a\":1}}");
    CHECK_YAML("x: &x {a: 1}\ny: &y {a: 2, b: 2}\nz:\n  <<: [*x, *y]\n",
               "{\"x\":{\"a\":1},\"y\":{\"a\":2,\"b\":2},\"z\":{\"a\":1,\"b\":2}}");
    CHECK_YAML("a: {<<: &m {k: v}}\nb: *m\n", "{\"a\":{\"k\":\"v\"},\"b\":{\"k\":\"v\"}}");
    CHECK_YAML(
        "a: {<<: 1}\n",
        "t.yaml:1:9: the value of a \"<<\" merge key must be a mapping or a list of mappings");
    CHECK_YAML("a: *nope\n", "t.yaml:1:4: unknown anchor \"nope\"");
    /* An anchor is only defined once its node is complete: no cycles. */
    CHECK_YAML("a: &a [1, *a]\n", "t.yaml:1:11: unknown anchor \"a\"");
    CHECK_YAML("a: &a [1]\n*a : 2\n", "t.yaml:2:1: mapping keys must be scalars (alias *a is not)");

    /* Positions of alias copies point at the alias. */
    const char *text = "a: &a {p: 1}\nb: *a\n";
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    CHECK(mw__yaml_parse(text, strlen(text), "t.yaml", &doc, &diag) == 0);
    mw__yaml_pos p =
        mw__yaml_where(&doc, cJSON_GetObjectItem(cJSON_GetObjectItem(doc.root, "b"), "p"));
    CHECK(p.line == 2 && p.col == 4);
    p = mw__yaml_where(&doc, cJSON_GetObjectItem(cJSON_GetObjectItem(doc.root, "a"), "p"));
    CHECK(p.line == 1 && p.col == 11);
    mw__yaml_doc_free(&doc);
    mw__diag_free(&diag);
}

static void test_alias_bomb(void)
{
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    double t0 = mw__mono();
    CHECK_YAML(bomb, "t.yaml:5:36: alias *d expands past the limit of 100000 nodes");
    CHECK(mw__mono() - t0 < 2.0);
    /* Merged copies count too. */
    char merge_bomb[2048];
    snprintf(merge_bomb, sizeof merge_bomb, "%.*s%s", (int)(strstr(bomb, "e:") - bomb), bomb,
             "e: {<<: {k0: *d, k1: *d, k2: *d, k3: *d, k4: *d}}\n");
    CHECK_YAML(merge_bomb, "t.yaml:5:5: document too large: more than 100000 nodes");
}

static void test_caps(void)
{
    /* Nesting. */
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    memcpy(deep + 299, "1", 1);
    deep[599] = '\0';
    deep[300] = ']';
    char *got = parse_str(deep);
    CHECK(strstr(got, "nesting deeper than 128 levels") != NULL);
    free(got);

    /* Input size. */
    size_t big = (4u << 20) + 1;
    char *buf = malloc(big + 1);
    memset(buf, '#', big);
    buf[big] = '\0';
    got = parse_str(buf);
    CHECK_STR(got, "t.yaml: file too large (more than 4194304 bytes)");
    free(got);
    free(buf);

    /* A wide mapping parses quickly (duplicate detection is not n^2). */
    size_t n = 60000, off = 0;
    buf = malloc(n * 16 + 1);
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(buf + off, "k%zu: %zu\n", i, i);
    double t0 = mw__mono();
    got = parse_str(buf);
    CHECK(strncmp(got, "{\"k0\":0,", 8) == 0);
    CHECK(mw__mono() - t0 < 5.0);
    free(got);
    sprintf(buf + off, "k17: dup\n");
    got = parse_str(buf);
    CHECK_STR(got, "t.yaml:60001:1: duplicate key \"k17\" (first at line 18)");
    free(got);
    free(buf);
}

static void test_errors(void)
{
    CHECK_YAML("a: 1\na: 2\n", "t.yaml:2:1: duplicate key \"a\" (first at line 1)");
    CHECK_YAML("x:\n  - {b: 1, c: 2, b: 3}\n",
               "t.yaml:2:18: duplicate key \"b\" (first at line 2)");
    CHECK_YAML("? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars");
    CHECK_YAML("{a: 1}: 2\n", "t.yaml:1:1: mapping keys must be scalars");
    CHECK_YAML("a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context");
    CHECK_YAML("a:\n  - 1\n b: 2\n",
               "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1, "
               "column 1)");
    CHECK_YAML("a: [1, 2\n", "t.yaml:2:1: did not find expected ',' or ']' (while parsing a "
                             "flow sequence at line 1, column 4)");
    CHECK_YAML("a: \"unterminated\n", "t.yaml:2:1: found unexpected end of stream (while "
                                      "scanning a quoted scalar at line 1, column 4)");
    CHECK_YAML("a:\tb\n\tc: 1\n", "t.yaml:2:1: found a tab character that violates indentation "
                                  "(while scanning a plain scalar at line 1, column 4)");
    /* Template variables must be quoted: '%' cannot start a plain scalar. */
    CHECK_YAML("host: %%host%%\n", "t.yaml:1:7: found character that cannot start any token "
                                   "(while scanning for the next token at line 1, column 7)");
    CHECK_YAML("a: ok\nb: \xff\n", "t.yaml:2:4: invalid leading UTF-8 octet (byte 0xff)");
    CHECK_YAML("a: \"x\\0y\"\n", "t.yaml:1:4: NUL characters are not supported");
}

static void test_load(void)
{
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    CHECK(mw__yaml_parse(NULL, 0, "null", &doc, &diag) == 0 && doc.root == NULL);
    CHECK(mw__yaml_load(MW_TEST_FIXTURES "/templates/nope/missing.yaml", &doc, &diag) == MW_EIO);
    CHECK(diag.n == 1);
    CHECK(diag.n && strstr(diag.items[0], "missing.yaml: cannot read: No such file") != NULL);
    CHECK(doc.root == NULL && doc.pos == NULL);
    mw__yaml_doc_free(&doc);
    mw__diag_free(&diag);
}

int main(void)
{
    test_scalars();
    test_documents();
    test_positions();
    test_anchors();
    test_alias_bomb();
    test_caps();
    test_errors();
    test_load();
    return TEST_RESULT();
}

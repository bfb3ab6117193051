/*
 * test_docker_events.c - the Docker `/events` decoder on recorded streams
 * (tests/fixtures/docker/): the same events whatever the chunking, the raw
 * chunked HTTP capture, legacy and 1.52+ lines, malformed lines that never
 * disturb the next one, `since` formatting and the de-duplication of the
 * event replayed at exactly `since`.
 *
 * Each decoded line becomes one text record ("ok ..." with every field, or
 * "error: ..."), so whole streams compare with one strcmp per line.
 */
#include "core/base/util.h"
#include "discovery/docker/docker_events.h"
#include "test.h"

#include <inttypes.h>
#include <stdlib.h>

#define FIX MW_TEST_FIXTURES "/docker"

typedef struct records {
    char **v;
    size_t n, cap;
} records;

static void records_push(records *r, char *s)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = s;
}

static void records_free(records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

static char *describe(const mw__docker_event *ev)
{
    int labels = ev->attributes ? cJSON_GetArraySize(ev->attributes) : 0;

    return mw__sprintf("ok %s|%s|%s|%s|%s|%s|%s|%s|%s|%" PRId64 "|%" PRId64 "|%d", ev->type,
                       ev->action, ev->detail, ev->id, or_dash(ev->name), or_dash(ev->image),
                       or_dash(ev->exit_code), or_dash(ev->signal), ev->scope, ev->time,
                       ev->time_nano, labels);
}

/* The line callback: parse and record what came out. */
static mw_code on_line(void *ud, const char *line, size_t len, const char *err)
{
    records *r = ud;
    mw__docker_event ev;
    char *perr = NULL;

    if (err) {
        records_push(r, mw__sprintf("error: %s", err));
        return MW_OK;
    }
    if (mw__docker_event_parse(line, len, &ev, &perr) == MW_OK)
        records_push(r, describe(&ev));
    else
        records_push(r, mw__sprintf("error: %s", perr));
    free(perr);
    mw__docker_event_free(&ev);
    return MW_OK;
}

static void decode(const char *data, size_t len, size_t chunk, size_t max, records *out)
{
    mw__docker_lines s;

    mw__docker_lines_init(&s, max);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        CHECK(mw__docker_lines_feed(&s, data + off, n, on_line, out) == MW_OK);
    }
    CHECK(mw__docker_lines_finish(&s, on_line, out) == MW_OK);
    mw__docker_lines_free(&s);
}

static char *load(const char *path, size_t *len)
{
    char *p = NULL;
    if (mw__read_file(path, 1 << 20, &p, len) != MW_OK)
        fprintf(stderr, "cannot read %s\n", path);
    return p;
}

static size_t count_ok(const records *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += strncmp(r->v[i], "ok ", 3) == 0;
    return n;
}

static int same_records(const records *a, const records *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0) {
            fprintf(stderr, "record %zu differs:\n  %s\n  %s\n", i, a->v[i], b->v[i]);
            return 0;
        }
    return 1;
}

static void test_every_chunk_size(void)
{
    size_t len;
    char *data = load(FIX "/events.jsonl", &len);
    records whole = {0};

    if (!data)
        goto out;
    decode(data, len, len, MW_DOCKER_LINE_MAX, &whole);
    CHECK(whole.n == 137);
    CHECK(count_ok(&whole) == 137);
    if (whole.n != 137)
        goto out;
    CHECK_STR(whole.v[0],
              "ok image|tag||sha256:b1445f956df70c3b19034fe033fefb0936899fc01addcde7ac2151"
              "1f6e2e9535|demo/busybox:1.0|-|-|-|local|1795631294|1795631294436083210|1");
    /* line 11: the health action split, labels kept */
    CHECK(strstr(whole.v[10], "ok container|health_status|healthy|48e48074") == whole.v[10]);
    CHECK(strstr(whole.v[10], "|ecs-curltest-26-curl-a0e7dba5aca6d8cb2e00|demo/busybox:1.0|-|-|"
                              "local|1795631296|1795631296878112652|7"));
    /* line 25: die carries exitCode; line 79: kill carries signal */
    CHECK(
        strstr(whole.v[24], "|exiter|demo/busybox:1.0|3|-|local|1795631304|1795631304755680565|"));
    CHECK(strstr(whole.v[78], "ok container|kill||") && strstr(whole.v[78], "|-|15|local|"));
    for (size_t chunk = 1; chunk <= 64; chunk++) {
        records got = {0};
        decode(data, len, chunk, MW_DOCKER_LINE_MAX, &got);
        if (!same_records(&whole, &got))
            fprintf(stderr, "chunk size %zu\n", chunk);
        CHECK(same_records(&whole, &got));
        records_free(&got);
    }
out:
    records_free(&whole);
    free(data);
}

/* Undoes HTTP/1.1 chunked transfer coding (what libcurl does before its
 * write callback), feeding each chunk to the splitter as it comes. */
static void decode_http_chunked(const char *data, size_t len, records *out)
{
    const char *p = strstr(data, "\r\n\r\n"), *end = data + len;
    mw__docker_lines s;

    mw__docker_lines_init(&s, MW_DOCKER_LINE_MAX);
    for (p = p ? p + 4 : end; p < end;) {
        char *after;
        unsigned long n = strtoul(p, &after, 16);
        if (after == p || strncmp(after, "\r\n", 2) != 0 || n == 0 || n > (size_t)(end - after - 2))
            break;
        p = after + 2;
        CHECK(mw__docker_lines_feed(&s, p, n, on_line, out) == MW_OK);
        p += n + 2; /* the chunk's own CRLF */
    }
    CHECK(mw__docker_lines_finish(&s, on_line, out) == MW_OK);
    mw__docker_lines_free(&s);
}

static void test_chunked_capture(void)
{
    size_t len;
    char *data = load(FIX "/http/events_chunked_raw.http", &len);
    records got = {0};
    const char *a, *b;

    if (!data)
        goto out;
    decode_http_chunked(data, len, &got);
    CHECK(got.n == 115);
    CHECK(count_ok(&got) == got.n);
    if (got.n < 2)
        goto out;
    CHECK(strstr(got.v[0], "ok container|create||48e48074") == got.v[0]);
    /* The capture ends with die then destroy, stamped out of order. */
    a = strstr(got.v[got.n - 2], "|1795631331772403918|");
    b = strstr(got.v[got.n - 1], "ok container|destroy||fc18d3bc");
    CHECK(a && b && strstr(b, "|1795631331772230053|"));
out:
    records_free(&got);
    free(data);
}

static char *parse_one(const char *line)
{
    records r = {0};
    char *s;

    on_line(&r, line, strlen(line), NULL);
    s = r.v[0];
    r.v[0] = NULL;
    records_free(&r);
    return s;
}

static void expect(const char *line, const char *want)
{
    char *got = parse_one(line);
    CHECK_STR(got, want);
    free(got);
}

static void test_shapes(void)
{
    size_t len;
    char *swagger = load(FIX "/events_v1.52plus_swagger_example.jsonl", &len);
    mw__docker_event ev;

    CHECK(swagger && mw__docker_event_parse(swagger, len, &ev, NULL) == MW_OK);
    if (swagger) {
        CHECK_STR(ev.type, "container");
        CHECK_STR(ev.action, "create");
        CHECK_STR(ev.id, "ede54ee1afda366ab42f824e8a5ffd195155d853ceaec74a927f249ea270c743");
        CHECK_STR(ev.name, "my-container");
        CHECK_STR(ev.image, "alpine:latest");
        CHECK_STR(mw__docker_event_attr(&ev, "com.example.some-label"), "some-label-value");
        CHECK(mw__docker_event_attr(&ev, "absent") == NULL);
        CHECK(ev.time_nano == INT64_C(1629574695515050031));
    }
    mw__docker_event_free(&ev);
    free(swagger);

    /* The legacy fields change nothing. */
    expect("{\"status\":\"start\",\"id\":\"abc\",\"from\":\"redis:7\",\"Type\":\"container\","
           "\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"image\":\"redis:7\","
           "\"name\":\"r\"}},\"scope\":\"local\",\"time\":1700000000,\"timeNano\":"
           "1700000000000000001}",
           "ok container|start||abc|r|redis:7|-|-|local|1700000000|1700000000000000001|2");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":"
           "{\"image\":\"redis:7\",\"name\":\"r\"}},\"scope\":\"local\",\"time\":1700000000,"
           "\"timeNano\":1700000000000000001}",
           "ok container|start||abc|r|redis:7|-|-|local|1700000000|1700000000000000001|2");
    /* timeNano derived from time; a label named timeNano is not it;
     * a network event without attributes; exec actions split at ": " */
    expect("{\"Type\":\"network\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"n1\"},\"time\":5}",
           "ok network|destroy||n1|-|-|-|-||5|5000000000|0");
    expect("{\"Type\":\"container\",\"Action\":\"exec_create: sh -c a: b\",\"Actor\":{\"ID\":\"c\","
           "\"Attributes\":{\"timeNano\":\"1\",\"x\":\"\\\"timeNano\\\":7\"}},\"time\":1,"
           "\"timeNano\":1000000000000000009}",
           "ok container|exec_create|sh -c a: b|c|-|-|-|-||1|1000000000000000009|2");
}

/* timeNano is read from the text only where that text is the number
 * cJSON read: a first key spelled with an escape, or followed by a
 * control byte cJSON skips as blank, must not let a later repeat of the
 * key set the watermark. */
static void test_time_text_is_the_value(void)
{
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\"},"
           "\"time\\u004eano\":5,\"timeNano\":1700000000000000001}",
           "ok container|start||c|-|-|-|-||0|5|0");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\"},"
           "\"timeNano\"\x1d:5,\"timeNano\":1700000000000000001}",
           "ok container|start||c|-|-|-|-||0|5|0");
}

static void test_bad_fields(void)
{
    expect("{\"Action\":\"start\",\"Actor\":{\"ID\":\"a\"}}", "error: missing Type");
    expect("{\"Type\":1,\"Action\":\"start\",\"Actor\":{\"ID\":\"a\"}}",
           "error: Type is not a string");
    expect("{\"Type\":\"container\",\"Actor\":{\"ID\":\"a\"}}", "error: missing Action");
    expect("{\"Type\":\"container\",\"Action\":\"start\"}", "error: missing Actor");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":[]}",
           "error: Actor is not an object");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{}}", "error: missing Actor.ID");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\"}}",
           "error: Actor.ID is empty");
    expect(
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"a\",\"Attributes\":3}}",
        "error: Actor.Attributes is not an object");
    expect(
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"a\"},\"timeNano\":\"1\"}",
        "error: timeNano is not a non-negative number");
    expect("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"a\"},\"time\":-1}",
           "error: time is not a non-negative number");
    expect("[1]", "error: not a JSON object");
    expect("{} {}", "error: bytes after the JSON object");
    expect("{\"Type\":\"container\",\"Act", "error: invalid JSON near byte 21");
}

/* Every kind of bad line, each followed by a good one that must survive. */
static void test_malformed_stream(void)
{
    static const char good[] =
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"g\"},"
        "\"time\":2}";
    static const char *want[] = {
        "error: invalid JSON near byte 28",
        "ok container|start||g|-|-|-|-||2|2000000000|0",
        "error: missing Actor",
        "ok container|start||g|-|-|-|-||2|2000000000|0",
        "error: line longer than 4096 bytes, skipped",
        "ok container|start||g|-|-|-|-||2|2000000000|0",
        "error: empty line",
        "ok container|start||g|-|-|-|-||2|2000000000|0",
        "error: invalid UTF-8 at byte 52",
        "ok container|start||g|-|-|-|-||2|2000000000|0",
        "ok container|start||g|-|-|-|-||2|2000000000|0", /* "\r\n" */
        "ok container|start||g|-|-|-|-||2|2000000000|0", /* 0x1E first */
        "error: stream ended inside a line, cut event dropped",
    };
    mw__buf in;
    records got = {0};

    mw__buf_init(&in, 1 << 20);
    mw__buf_addf(&in, "{\"Type\":\"container\",\"Action\":\n%s\n", good);
    mw__buf_addf(&in, "{\"Type\":\"container\",\"Action\":\"start\"}\n%s\n", good);
    mw__buf_adds(&in, "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"");
    for (int i = 0; i < 10000; i++)
        mw__buf_addc(&in, 'x');
    mw__buf_addf(&in, "\"}}\n%s\n\n%s\n", good, good);
    mw__buf_adds(&in,
                 "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\xc3\x28\"}}\n");
    mw__buf_addf(&in, "%s\n%s\r\n\x1e%s\n{\"Type\":", good, good, good);
    for (size_t chunk = 1; chunk <= 64; chunk += 7) {
        decode(mw__buf_str(&in), in.len, chunk, 4096, &got);
        CHECK(got.n == MW_ARRAY_LEN(want));
        for (size_t i = 0; i < got.n && i < MW_ARRAY_LEN(want); i++)
            CHECK_STR(got.v[i], want[i]);
        records_free(&got);
    }
    mw__buf_free(&in);

    {
        static const char nul[] = "{\"Type\":\"a\0b\"}";
        mw__docker_event ev;
        char *err = NULL;
        CHECK(mw__docker_event_parse(nul, sizeof(nul) - 1, &ev, &err) == MW_EPARSE);
        CHECK_STR(err, "NUL byte at 10");
        free(err);
    }
}

static mw_code stop_at_first(void *ud, const char *line, size_t len, const char *err)
{
    int *calls = ud;
    MW_UNUSED(line);
    MW_UNUSED(len);
    MW_UNUSED(err);
    return ++*calls == 1 ? MW_EINVAL : MW_OK;
}

/* The cap is exact; a callback can stop the feed; a long line's memory
 * is not kept. */
static void test_splitter_edges(void)
{
    char line[66];
    records got = {0};
    mw__docker_lines s;
    int calls = 0;

    memset(line, 'x', sizeof(line));
    line[64] = '\n';
    line[65] = '\n';
    decode(line, sizeof(line), 5, 64, &got);
    CHECK(got.n == 2);
    CHECK(got.n == 2 && strstr(got.v[0], "error: invalid JSON") == got.v[0]);
    CHECK(got.n == 2 && strcmp(got.v[1], "error: empty line") == 0);
    records_free(&got);
    decode(line, sizeof(line), 5, 63, &got);
    CHECK(got.n == 2);
    CHECK(got.n == 2 && strcmp(got.v[0], "error: line longer than 63 bytes, skipped") == 0);
    records_free(&got);

    mw__docker_lines_init(&s, 64);
    CHECK(mw__docker_lines_feed(&s, "a\nb\n", 4, stop_at_first, &calls) == MW_EINVAL);
    CHECK(calls == 1);
    CHECK(mw__docker_lines_feed(&s, "c\n", 2, stop_at_first, &calls) == MW_OK);
    CHECK(calls == 2);
    mw__docker_lines_free(&s);

    mw__docker_lines_init(&s, MW_DOCKER_LINE_MAX);
    {
        char *big = malloc(200000);
        memset(big, ' ', 200000);
        big[199999] = '\n';
        CHECK(mw__docker_lines_feed(&s, big, 200000, on_line, &got) == MW_OK);
        CHECK(s.line.p == NULL);
        free(big);
    }
    mw__docker_lines_free(&s);
    records_free(&got);
}

static void test_since_format(void)
{
    char out[MW_DOCKER_SINCE_SIZE];

    CHECK_STR(mw__docker_since_format(INT64_C(1795631294436083210), out), "1795631294.436083210");
    CHECK_STR(mw__docker_since_format(INT64_C(1795631294000000042), out), "1795631294.000000042");
    CHECK_STR(mw__docker_since_format(INT64_C(1795631294000000000), out), "1795631294.000000000");
    CHECK_STR(mw__docker_since_format(INT64_C(5), out), "0.000000005");
    CHECK_STR(mw__docker_since_format(INT64_C(-5), out), "0.000000000");
    CHECK_STR(mw__docker_since_format(INT64_MAX, out), "9223372036.854775807");
}

static int parse_line(const char *line, size_t len, mw__docker_event *ev)
{
    return mw__docker_event_parse(line, len, ev, NULL) == MW_OK;
}

/*
 * Applies the lifecycle capture up to the die of the OOM-killed container,
 * reconnects from there, and feeds what the daemon replays for
 * since=<that die>: the replay capture's events at or after `since`.
 */
static void test_resume_dedup(void)
{
    size_t llen, rlen;
    char *life = load(FIX "/events_lifecycle.jsonl", &llen);
    char *replay = load(FIX "/events_replay_filtered_die_oom.jsonl", &rlen);
    const int64_t cut = INT64_C(1795631316475620176);
    mw__docker_resume r;
    char since[MW_DOCKER_SINCE_SIZE];
    int applied = 0, dropped = 0;

    mw__docker_resume_init(&r);
    CHECK(mw__docker_resume_since(&r, since) == 0 && since[0] == '\0');
    if (!life || !replay)
        goto out;
    for (char *p = life, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        mw__docker_event ev;
        if (parse_line(p, (size_t)(nl - p), &ev) && ev.time_nano <= cut)
            mw__docker_resume_applied(&r, &ev);
        mw__docker_event_free(&ev);
    }
    CHECK(mw__docker_resume_since(&r, since) == 1);
    CHECK_STR(since, "1795631316.475620176");
    for (char *p = replay, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        mw__docker_event ev;
        if (parse_line(p, (size_t)(nl - p), &ev) && ev.time_nano >= cut) {
            if (mw__docker_resume_seen(&r, &ev)) {
                dropped++;
                CHECK(ev.time_nano == cut);
            } else {
                applied++;
                mw__docker_resume_applied(&r, &ev);
            }
        }
        mw__docker_event_free(&ev);
    }
    CHECK(dropped == 1);
    CHECK(applied == 3);
    CHECK(mw__docker_resume_since(&r, since) == 1);
    CHECK_STR(since, "1795631331.700467550");
out:
    free(life);
    free(replay);
}

static void test_resume_same_nano(void)
{
    static const char oom[] = "{\"Type\":\"container\",\"Action\":\"oom\",\"Actor\":{\"ID\":\"c\"},"
                              "\"timeNano\":100}";
    static const char die[] = "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"c\"},"
                              "\"timeNano\":100}";
    static const char older[] = "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":"
                                "\"c\"},\"timeNano\":99}";
    static const char newer[] =
        "{\"Type\":\"container\",\"Action\":\"oom\",\"Actor\":{\"ID\":\"c\"},"
        "\"timeNano\":101}";
    mw__docker_event a, b, c, d;
    mw__docker_resume r;

    mw__docker_resume_init(&r);
    CHECK(parse_line(oom, strlen(oom), &a) && parse_line(die, strlen(die), &b));
    CHECK(parse_line(older, strlen(older), &c) && parse_line(newer, strlen(newer), &d));
    CHECK(!mw__docker_resume_seen(&r, &a));
    mw__docker_resume_applied(&r, &a);
    CHECK(mw__docker_resume_seen(&r, &a));
    CHECK(!mw__docker_resume_seen(&r, &b)); /* same nanosecond, other action */
    mw__docker_resume_applied(&r, &b);
    mw__docker_resume_applied(&r, &b);
    CHECK(r.n == 2);
    CHECK(mw__docker_resume_seen(&r, &b));
    /* Out of order on a live stream: kept, and the watermark stays. */
    CHECK(!mw__docker_resume_seen(&r, &c));
    mw__docker_resume_applied(&r, &c);
    CHECK(r.last_nano == 100 && r.n == 2);
    mw__docker_resume_applied(&r, &d);
    CHECK(r.last_nano == 101 && r.n == 1);
    CHECK(!mw__docker_resume_seen(&r, &a));
    CHECK(mw__docker_resume_seen(&r, &d));
    mw__docker_event_free(&a);
    mw__docker_event_free(&b);
    mw__docker_event_free(&c);
    mw__docker_event_free(&d);
    mw__docker_event_free(NULL);
}

int main(void)
{
    test_every_chunk_size();
    test_chunked_capture();
    test_shapes();
    test_time_text_is_the_value();
    test_bad_fields();
    test_malformed_stream();
    test_splitter_edges();
    test_since_format();
    test_resume_dedup();
    test_resume_same_nano();
    return TEST_RESULT();
}

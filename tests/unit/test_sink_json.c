/*
 * test_sink_json.c - the capped buffer and the JSON-lines format: exact
 * lines for each record type, escaping, number forms, rollback on error.
 */
#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/pipeline/sink_json.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static void test_buf(void)
{
    mw__buf b;
    mw__buf_init(&b, 10);
    CHECK_STR(mw__buf_str(&b), "");
    CHECK(mw__buf_adds(&b, "hello") == MW_OK);
    CHECK(mw__buf_addf(&b, "%d", 1234) == MW_OK);
    CHECK_STR(mw__buf_str(&b), "hello1234");
    CHECK(mw__buf_adds(&b, "xy") == MW_ENOMEM);
    CHECK_STR(mw__buf_str(&b), "hello1234"); /* untouched on failure */
    CHECK(mw__buf_addc(&b, '!') == MW_OK);
    CHECK(mw__buf_addc(&b, '!') == MW_ENOMEM);
    CHECK(b.len == 10);
    mw__buf_reset(&b);
    CHECK(b.len == 0);
    CHECK(mw__buf_addf(&b, "%s", "0123456789abc") == MW_ENOMEM);
    size_t len = 99;
    char *p = mw__buf_take(&b, &len);
    CHECK(len == 0);
    free(p);
    mw__buf_free(&b);

    /* A long formatted string goes straight into the buffer. */
    mw__buf_init(&b, 1000);
    CHECK(mw__buf_addf(&b, "%300s|", "x") == MW_OK);
    CHECK(b.len == 301 && b.p[299] == 'x' && b.p[300] == '|');
    mw__buf_free(&b);
}

static const char *const tags2[] = {"env:prod", "url:http://10.0.0.5:80/"};

static mw_record metric(void)
{
    mw_record r = {.type = MW_RECORD_METRIC};
    r.name = "http.response_time";
    r.kind = MW_KIND_GAUGE;
    r.value = 0.012;
    r.timestamp = 1764097200;
    r.interval = 15;
    r.tags = tags2;
    r.ntags = 2;
    r.host = "i-0abc";
    r.check = "http_check";
    r.check_id = "http_check:5f1d";
    return r;
}

/* Renders `r` into a fresh buffer; also checks that cJSON can parse it. */
static char *line(const mw_record *r)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    if (mw__record_json(r, &b) != MW_OK) {
        mw__buf_free(&b);
        return NULL;
    }
    cJSON *j = cJSON_Parse(mw__buf_str(&b));
    CHECK(j != NULL);
    cJSON_Delete(j);
    return mw__buf_take(&b, NULL);
}

static void check_line(const mw_record *r, const char *want)
{
    char *got = line(r);
    CHECK_STR(got, want);
    free(got);
}

static void test_metric(void)
{
    mw_record r = metric();
    check_line(&r, "{\"type\":\"metric\",\"metric\":\"http.response_time\",\"kind\":\"gauge\","
                   "\"value\":0.012,\"timestamp\":1764097200,\"interval\":15,"
                   "\"tags\":[\"env:prod\",\"url:http://10.0.0.5:80/\"],\"host\":\"i-0abc\","
                   "\"check\":\"http_check\",\"check_id\":\"http_check:5f1d\"}\n");
    r.kind = MW_KIND_RATE;
    r.value = 3;
    r.ntags = 0;
    r.check = r.check_id = NULL;
    check_line(&r, "{\"type\":\"metric\",\"metric\":\"http.response_time\",\"kind\":\"rate\","
                   "\"value\":3,\"timestamp\":1764097200,\"interval\":15,\"tags\":[],"
                   "\"host\":\"i-0abc\"}\n");
    r.kind = MW_KIND_COUNT;
    r.host = NULL;
    check_line(&r, "{\"type\":\"metric\",\"metric\":\"http.response_time\",\"kind\":\"count\","
                   "\"value\":3,\"timestamp\":1764097200,\"interval\":15,\"tags\":[],"
                   "\"host\":null}\n");
}

static void test_service_check_and_event(void)
{
    mw_record r = {.type = MW_RECORD_SERVICE_CHECK};
    r.name = "http.can_connect";
    r.status = 2;
    r.message = "";
    r.timestamp = 1764097200;
    r.tags = tags2;
    r.ntags = 1;
    r.host = "i-0abc";
    r.check = "http_check";
    r.check_id = "http_check:5f1d";
    check_line(&r, "{\"type\":\"service_check\",\"check\":\"http.can_connect\",\"status\":2,"
                   "\"message\":\"\",\"timestamp\":1764097200,\"tags\":[\"env:prod\"],"
                   "\"host\":\"i-0abc\",\"check_id\":\"http_check:5f1d\"}\n");

    mw_record e = {.type = MW_RECORD_EVENT};
    e.title = "Container died";
    e.text = "exit 137";
    e.alert_type = "error";
    e.priority = "normal";
    e.aggregation_key = NULL;
    e.source_type_name = "docker";
    e.timestamp = 1764097200;
    e.host = "i-0abc";
    e.check = "docker";
    check_line(&e, "{\"type\":\"event\",\"title\":\"Container died\",\"text\":\"exit 137\","
                   "\"alert_type\":\"error\",\"priority\":\"normal\",\"aggregation_key\":null,"
                   "\"source_type_name\":\"docker\",\"timestamp\":1764097200,\"tags\":[],"
                   "\"host\":\"i-0abc\"}\n");
}

static void check_str(const char *in, size_t n, const char *want)
{
    mw__buf b;
    mw__buf_init(&b, 4096);
    CHECK(mw__json_str(&b, in, n) == MW_OK);
    CHECK_STR(mw__buf_str(&b), want);
    mw__buf_free(&b);
}

static void test_escaping(void)
{
    check_str("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    check_str("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_str("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    check_str("a\0b", 3, "\"a\\u0000b\"");
    check_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Invalid UTF-8: a stray byte, an overlong '/', a surrogate, a
     * truncated sequence, a code point past U+10FFFF. */
    check_str("\xff", 1, "\"\xef\xbf\xbd\"");
    check_str("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    check_str("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_str("x\xe2\x82", 3, "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
    check_str("\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");

    /* Long strings mixing both paths stay intact and parse back. */
    char big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 7 == 0 ? '\n' : 'a' + i % 26);
    mw__buf b;
    mw__buf_init(&b, 1 << 16);
    CHECK(mw__json_str(&b, big, sizeof(big)) == MW_OK);
    cJSON *j = cJSON_Parse(mw__buf_str(&b));
    CHECK(j && cJSON_IsString(j) && strlen(j->valuestring) == sizeof(big) &&
          memcmp(j->valuestring, big, sizeof(big)) == 0);
    cJSON_Delete(j);
    mw__buf_free(&b);

    mw_record r = metric();
    const char *tags[] = {"k:\"v\"\n"};
    r.name = "m\xff";
    r.tags = tags;
    r.ntags = 1;
    r.check = r.check_id = NULL;
    check_line(&r, "{\"type\":\"metric\",\"metric\":\"m\xef\xbf\xbd\",\"kind\":\"gauge\","
                   "\"value\":0.012,\"timestamp\":1764097200,\"interval\":15,"
                   "\"tags\":[\"k:\\\"v\\\"\\n\"],\"host\":\"i-0abc\"}\n");
}

static void check_num(double v, const char *want)
{
    mw__buf b;
    mw__buf_init(&b, 64);
    CHECK(mw__json_num(&b, v) == MW_OK);
    CHECK_STR(mw__buf_str(&b), want);
    CHECK(strtod(mw__buf_str(&b), NULL) == v);
    mw__buf_free(&b);
}

static void test_numbers(void)
{
    check_num(0, "0");
    check_num(-0.0, "0");
    check_num(15, "15");
    check_num(-42, "-42");
    check_num(0.1, "0.1");
    check_num(-0.5, "-0.5");
    check_num(1.0 / 3, "0.3333333333333333");
    check_num(0.1 + 0.2, "0.30000000000000004");
    check_num(1e21, "1e+21");
    check_num(123456789012345678.0, "1.2345678901234568e+17");
    check_num(5e-324, "4.94065645841247e-324");
    check_num(999999999999999.0, "999999999999999");

    mw__buf b;
    mw__buf_init(&b, 64);
    CHECK(mw__json_num(&b, NAN) == MW_EINVAL);
    CHECK(mw__json_num(&b, INFINITY) == MW_EINVAL);
    CHECK(b.len == 0);
    mw__buf_free(&b);
}

static void test_rollback(void)
{
    mw__buf b;
    mw_record r = metric();
    mw__buf_init(&b, 100); /* too small for the line */
    CHECK(mw__buf_adds(&b, "keep") == MW_OK);
    CHECK(mw__record_json(&r, &b) == MW_ENOMEM);
    CHECK_STR(mw__buf_str(&b), "keep");
    mw__buf_free(&b);

    mw__buf_init(&b, 1000);
    r.value = NAN;
    CHECK(mw__record_json(&r, &b) == MW_EINVAL);
    CHECK(b.len == 0);
    r.value = 1;
    r.type = (mw_record_type)42;
    CHECK(mw__record_json(&r, &b) == MW_EINVAL);
    CHECK(b.len == 0);
    mw__buf_free(&b);
}

int main(void)
{
    test_buf();
    test_metric();
    test_service_check_and_event();
    test_escaping();
    test_numbers();
    test_rollback();
    return TEST_RESULT();
}

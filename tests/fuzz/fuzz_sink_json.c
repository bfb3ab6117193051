/*
 * fuzz_sink_json.c - libFuzzer target: the JSON-lines sink.
 *
 * The input is cut at NUL bytes into strings (arbitrary bytes otherwise)
 * that fill one record of the type the first byte picks: its name,
 * message, event fields, host, check ids and up to 16 tags. The line
 * must be exactly one line, parse back with cJSON_Parse, and give back
 * every string that was valid UTF-8 byte for byte (invalid bytes become
 * U+FFFD, so those are only checked to parse).
 */
#include "core/pipeline/sink_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSTR 24

/* Splits `text` at its NULs; missing strings are "". */
static void split(char *text, size_t n, const char *out[NSTR])
{
    size_t k = 0;
    char *p = text, *end = text + n;
    while (k < NSTR && p <= end) {
        out[k++] = p;
        p += strlen(p) + 1;
    }
    while (k < NSTR)
        out[k++] = "";
}

/* Whether `s` is valid UTF-8 (no overlongs, surrogates or > U+10FFFF),
 * written independently of the sink's own check. */
static int valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s, need, cp;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return 0;
        for (unsigned i = 1; i <= need; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += need + 1;
    }
    return 1;
}

/* A string field must come back as itself when it was valid UTF-8. */
static void check_str(const cJSON *obj, const char *key, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!want) {
        if (v && !cJSON_IsNull(v))
            abort();
        return;
    }
    if (!cJSON_IsString(v))
        abort();
    if (valid_utf8(want) && strcmp(v->valuestring, want) != 0)
        abort();
}

static void check_tags(const cJSON *obj, const mw_record *r)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(obj, "tags");
    if (!cJSON_IsArray(tags) || (size_t)cJSON_GetArraySize(tags) != r->ntags)
        abort();
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t))
            abort();
        if (valid_utf8(r->tags[i]) && strcmp(t->valuestring, r->tags[i]) != 0)
            abort();
        i++;
    }
}

static void check_record(const cJSON *o, const mw_record *r)
{
    check_tags(o, r);
    check_str(o, "host", r->host);
    if (r->type == MW_RECORD_METRIC) {
        check_str(o, "metric", r->name);
        check_str(o, "check", r->check);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        if (!cJSON_IsNumber(v) || v->valuedouble != r->value)
            abort(); /* numbers print in a form that reads back exactly */
    } else if (r->type == MW_RECORD_SERVICE_CHECK) {
        check_str(o, "check", r->name);
        check_str(o, "message", r->message);
    } else {
        check_str(o, "title", r->title);
        check_str(o, "text", r->text);
        check_str(o, "aggregation_key", r->aggregation_key);
        check_str(o, "source_type_name", r->source_type_name);
        return; /* events carry no check_id */
    }
    check_str(o, "check_id", r->check_id);
}

/* Fills `r` from the input: byte 0 picks the type, bytes 1..8 the value,
 * the rest are the strings. */
static void build(mw_record *r, const uint8_t *data, size_t size, const char *s[NSTR])
{
    double v = 0;
    if (size >= 9)
        memcpy(&v, data + 1, sizeof v);
    r->type = (mw_record_type)(data[0] % 3);
    r->kind = (mw_metric_kind)((data[0] >> 2) % 3);
    r->value = isfinite(v) ? v : 0;
    r->interval = 15;
    r->status = (data[0] >> 4) & 3;
    r->timestamp = (int64_t)(data[0] * 1000003LL) - 100000000;
    r->name = s[0];
    r->message = r->title = s[1];
    r->text = s[2];
    r->alert_type = s[3];
    r->priority = s[4];
    r->aggregation_key = s[5];
    r->source_type_name = (data[0] & 0x40) ? NULL : s[6];
    r->host = s[7];
    r->check = (data[0] & 0x80) ? NULL : s[8];
    r->check_id = (data[0] & 0x80) ? NULL : s[9];
    r->tags = &s[10];
    r->ntags = (size_t)(data[0] * 7u) % (NSTR - 10 + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t off = size >= 9 ? 9 : 1;
    char *text = malloc(size - off + 1);
    if (!text)
        return 0;
    memcpy(text, data + off, size - off);
    text[size - off] = '\0';
    const char *s[NSTR];
    split(text, size - off, s);
    mw_record r = {0};
    build(&r, data, size, s);

    mw__buf out;
    mw__buf_init(&out, (size_t)1 << 22);
    if (mw__record_json(&r, &out) != MW_OK)
        abort(); /* finite numbers and a known type: must render */
    const char *line = mw__buf_str(&out);
    char *nl = strchr(line, '\n');
    if (!nl || nl[1] != '\0' || nl != line + out.len - 1)
        abort(); /* exactly one line */
    cJSON *o = cJSON_ParseWithLength(line, out.len);
    if (!cJSON_IsObject(o))
        abort();
    check_record(o, &r);
    cJSON_Delete(o);
    mw__buf_free(&out);
    free(text);
    return 0;
}

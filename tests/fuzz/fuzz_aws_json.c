/*
 * fuzz_aws_json.c - libFuzzer target: what the engine reads of AWS's
 * answers (core/base/aws.h), over one input taken every way the AWS
 * module takes one: a credentials document of the container endpoint or
 * IMDS, an AWS JSON error body (with and without an x-amzn-ErrorType
 * header), a task metadata or instance identity document (the region),
 * an ISO 8601 time; then the scrubbing of secrets out of the input.
 *
 * Properties: credentials read have a key id and a secret (and a token
 * only when not empty), a refusal has none and says why without the
 * document's text; an error's type has no "namespace#" prefix; a region
 * read is a region name; a time is finite; the scrubbed text holds none
 * of the secrets it was given (taken from the input itself).
 *
 * fuzz-runs: 20000
 */
#include "core/base/aws.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void creds(const char *s, size_t n)
{
    mw__aws_creds c;
    char why[128];
    mw_code rc = mw__aws_parse_creds(s, n, &c, why, sizeof why);
    if (rc == MW_OK) {
        if (!c.key_id || !c.key_id[0] || !c.secret || !c.secret[0] || (c.token && !c.token[0]) ||
            why[0] || c.expires < 0)
            abort();
    } else if (c.key_id || c.secret || c.token || !why[0]) {
        abort();
    }
    mw__aws_creds_clear(&c);
}

static void error(const char *s, size_t n, const char *header)
{
    char *type = NULL, *msg = NULL;
    mw_code rc = mw__aws_parse_error(s, n, header, &type, &msg);
    if ((rc == MW_OK) != (type || msg) || (type && (strchr(type, '#') || !type[0])))
        abort();
    free(type);
    free(msg);
}

static void region(const char *s, size_t n)
{
    char *r = mw__aws_parse_region(s, n);
    if (r && !mw__aws_region_ok(r))
        abort();
    free(r);
}

static int found(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Secrets taken from the input: its first three lines. */
static void scrub(const char *s, size_t n)
{
    char buf[3][64] = {"", "", ""};
    const char *p = s, *end = s + n;
    for (int i = 0; i < 3 && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = (size_t)((nl ? nl : end) - p);
        if (k >= sizeof buf[i])
            k = sizeof buf[i] - 1;
        memcpy(buf[i], p, k);
        buf[i][k] = '\0';
        if (memchr(buf[i], '\0', k) || strlen(buf[i]) < 4)
            buf[i][0] = '\0';
        p = nl ? nl + 1 : end;
    }
    const char *secrets[] = {buf[0], buf[1], buf[2]};
    size_t len = 0;
    char *out = mw__aws_scrub(s, n, secrets, 3, &len);
    if (!out || strlen(out) > len)
        abort();
    /* a match across a replacement would hold one of its brackets */
    for (int i = 0; i < 3; i++)
        if (buf[i][0] && !strpbrk(buf[i], "[]") && !strstr("[redacted]", buf[i]) &&
            found(out, len, buf[i]))
            abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    creds(s, size);
    error(s, size, NULL);
    error(s, size, "ThrottlingException:http://internal.amazon.com/coral/");
    region(s, size);
    double t = mw__aws_parse_time(s);
    if (t != -1 && !isfinite(t))
        abort();
    scrub(s, size);
    free(s);
    return 0;
}

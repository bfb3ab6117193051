/*
 * aws_json.c - what the engine reads of AWS's answers: credentials
 * documents, JSON error bodies, the region of a task metadata or instance
 * identity document, ISO 8601 times; and the scrubbing of secrets out of
 * text a check will see. No state; fuzzed by tests/fuzz/fuzz_aws_json.c.
 *
 * Credentials documents hold secrets: cJSON's copies of their strings
 * are zeroed before the tree is freed.
 */
#include "core/base/aws.h"

#include "core/base/buf.h"
#include "core/base/util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DOC ((size_t)64 << 10)

void mw__aws_creds_clear(mw__aws_creds *c)
{
    mw__wipe_free(c->key_id);
    mw__wipe_free(c->secret);
    mw__wipe_free(c->token);
    c->key_id = c->secret = c->token = NULL;
    c->expires = 0;
}

/* Zeroes every string of the tree (keys included) before it is freed.
 * Recursion is bounded by cJSON's nesting limit. */
static void wipe_tree(cJSON *j)
{
    for (cJSON *c = j; c; c = c->next) {
        if (c->valuestring)
            mw__wipe(c->valuestring, strlen(c->valuestring));
        if (c->string)
            mw__wipe(c->string, strlen(c->string));
        wipe_tree(c->child);
    }
}

static cJSON *parse(const char *doc, size_t len)
{
    if (!doc || len == 0 || len > MAX_DOC)
        return NULL;
    return cJSON_ParseWithLength(doc, len);
}

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static int days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly `n` digits at `*p`; -1 when they are not there. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return 0;
    (*p)++;
    return 1;
}

double mw__aws_parse_time(const char *s)
{
    if (!s)
        return -1;
    const char *p = s;
    int y = digits(&p, 4), mo, d, h, mi, se;
    if (y < 0 || !expect(&p, '-') || (mo = digits(&p, 2)) < 1 || mo > 12 || !expect(&p, '-') ||
        (d = digits(&p, 2)) < 1 || d > 31 || !(expect(&p, 'T') || expect(&p, 't')) ||
        (h = digits(&p, 2)) < 0 || h > 23 || !expect(&p, ':') || (mi = digits(&p, 2)) < 0 ||
        mi > 59 || !expect(&p, ':') || (se = digits(&p, 2)) < 0 || se > 60)
        return -1;
    double frac = 0, scale = 0.1;
    if (expect(&p, '.')) {
        if (!isdigit((unsigned char)*p))
            return -1;
        for (; isdigit((unsigned char)*p); p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    if (!(expect(&p, 'Z') || expect(&p, 'z')) && strcmp(p, "+00:00") != 0)
        return -1;
    if (*p && strcmp(p, "+00:00") != 0)
        return -1;
    double days = days_from_civil(y, mo, d);
    return days * 86400.0 + h * 3600.0 + mi * 60.0 + se + frac;
}

static char *dup_secret(const char *s)
{
    return s ? mw__strdup(s) : NULL;
}

mw_code mw__aws_parse_creds(const char *doc, size_t len, mw__aws_creds *out, char *why,
                            size_t whylen)
{
    mw_code rc = MW_EPARSE;
    cJSON *j = parse(doc, len);
    memset(out, 0, sizeof *out);
    snprintf(why, whylen, "not a JSON object");
    if (!cJSON_IsObject(j))
        goto out;
    const char *code = str_field(j, "Code");
    const char *key = str_field(j, "AccessKeyId"), *secret = str_field(j, "SecretAccessKey");
    const char *token = str_field(j, "Token"), *exp = str_field(j, "Expiration");
    if (code && strcmp(code, "Success") != 0) {
        snprintf(why, whylen, "Code \"%.60s\"", code);
        goto out;
    }
    if (!key || !*key || !secret || !*secret) {
        snprintf(why, whylen, "no %s", !key || !*key ? "AccessKeyId" : "SecretAccessKey");
        goto out;
    }
    if (exp && (out->expires = mw__aws_parse_time(exp)) < 0) {
        snprintf(why, whylen, "Expiration \"%.40s\" is not a time", exp);
        out->expires = 0;
        goto out;
    }
    rc = MW_ENOMEM;
    snprintf(why, whylen, "out of memory");
    if (!(out->key_id = dup_secret(key)) || !(out->secret = dup_secret(secret)) ||
        (token && *token && !(out->token = dup_secret(token))))
        goto out;
    rc = MW_OK;
    why[0] = '\0';
out:
    if (rc != MW_OK)
        mw__aws_creds_clear(out);
    wipe_tree(j);
    cJSON_Delete(j);
    return rc;
}

/* "namespace#Type" -> "Type"; "Type:http://..." (the header's form) ->
 * "Type". */
static char *clean_type(const char *t, int header)
{
    const char *hash = strrchr(t, '#');
    if (hash)
        t = hash + 1;
    size_t n = header ? strcspn(t, ":") : strlen(t);
    while (n > 0 && isspace((unsigned char)t[n - 1]))
        n--;
    return n ? mw__strndup(t, n) : NULL;
}

static const char *first_str(const cJSON *j, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++) {
        const char *v = str_field(j, keys[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

mw_code mw__aws_parse_error(const char *body, size_t len, const char *header_type, char **type,
                            char **msg)
{
    static const char *const type_keys[] = {"__type", "code", "Code", NULL};
    static const char *const msg_keys[] = {"message", "Message", "errorMessage", NULL};
    mw_code rc = MW_ENOMEM;
    cJSON *j = parse(body, len);
    const char *t = cJSON_IsObject(j) ? first_str(j, type_keys) : NULL;
    const char *m = cJSON_IsObject(j) ? first_str(j, msg_keys) : NULL;
    *type = *msg = NULL;
    if (t)
        *type = clean_type(t, 0);
    else if (header_type && *header_type)
        *type = clean_type(header_type, 1);
    if (m && !(*msg = mw__strdup(m)))
        goto out;
    rc = *type || *msg ? MW_OK : MW_ENOTFOUND;
out:
    cJSON_Delete(j);
    return rc;
}

int mw__aws_region_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 32 || r[0] == '-' || r[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)r[i]) || isdigit((unsigned char)r[i]) || r[i] == '-'))
            return 0;
    return 1;
}

/* "us-east-1a" -> "us-east-1" (a zone is its region and a letter; local
 * zones such as "us-west-2-lax-1a" are taken up to the region's digit). */
static char *region_of_zone(const char *az)
{
    size_t n = strlen(az);
    while (n > 0 && islower((unsigned char)az[n - 1]))
        n--;
    if (n == 0 || !isdigit((unsigned char)az[n - 1]))
        return NULL;
    /* a local zone: the region ends at the first "-<digit>" */
    for (size_t i = 1; i + 1 < n; i++) {
        if (az[i] == '-' && isdigit((unsigned char)az[i + 1])) {
            size_t k = i + 1;
            while (k < n && isdigit((unsigned char)az[k]))
                k++;
            n = k;
            break;
        }
    }
    char *r = mw__strndup(az, n);
    if (r && !mw__aws_region_ok(r)) {
        free(r);
        r = NULL;
    }
    return r;
}

/* "arn:aws:ecs:us-east-1:123:task/..." -> "us-east-1". */
static char *region_of_arn(const char *arn)
{
    if (strncmp(arn, "arn:", 4) != 0)
        return NULL;
    const char *p = strchr(arn + 4, ':');          /* after the partition */
    p = p ? strchr(p + 1, ':') : NULL;             /* after the service */
    const char *e = p ? strchr(p + 1, ':') : NULL; /* after the region */
    char *r = e ? mw__strndup(p + 1, (size_t)(e - p - 1)) : NULL;
    if (r && !mw__aws_region_ok(r)) {
        free(r);
        r = NULL;
    }
    return r;
}

char *mw__aws_parse_region(const char *doc, size_t len)
{
    cJSON *j = parse(doc, len);
    char *r = NULL;
    const char *v;
    if (!cJSON_IsObject(j))
        goto out;
    if ((v = str_field(j, "region")) && mw__aws_region_ok(v))
        r = mw__strdup(v);
    if (!r && (v = str_field(j, "AvailabilityZone")))
        r = region_of_zone(v);
    if (!r && (v = str_field(j, "TaskARN")))
        r = region_of_arn(v);
out:
    cJSON_Delete(j);
    return r;
}

/* The length of a match at `p` (of `n` bytes left), 0 when none. */
static size_t secret_at(const char *p, size_t n, const char *const *secrets, size_t nsec)
{
    for (size_t i = 0; i < nsec; i++) {
        size_t k = secrets[i] ? strlen(secrets[i]) : 0;
        if (k && k <= n && memcmp(p, secrets[i], k) == 0)
            return k;
    }
    static const char sig[] = "Signature=";
    size_t k = sizeof sig - 1;
    if (n > k && memcmp(p, sig, k) == 0 && isxdigit((unsigned char)p[k])) {
        while (k < n && isxdigit((unsigned char)p[k]))
            k++;
        return k;
    }
    return 0;
}

char *mw__aws_scrub(const char *s, size_t n, const char *const *secrets, size_t nsec,
                    size_t *outlen)
{
    static const char red[] = "[redacted]";
    unsigned char first[256] = {['S'] = 1}; /* bytes a match can start with */
    for (size_t i = 0; i < nsec; i++)
        if (secrets[i] && secrets[i][0])
            first[(unsigned char)secrets[i][0]] = 1;
    mw__buf b;
    mw__buf_init(&b, (size_t)-1 / 2);
    mw_code rc = mw__buf_reserve(&b, n);
    size_t run = 0; /* start of the bytes kept as they are */
    for (size_t i = 0; i < n && rc == MW_OK;) {
        size_t k = first[(unsigned char)s[i]] ? secret_at(s + i, n - i, secrets, nsec) : 0;
        if (!k) {
            i++;
            continue;
        }
        rc = mw__buf_add(&b, s + run, i - run);
        if (rc == MW_OK)
            rc = mw__buf_add(&b, red, sizeof red - 1);
        i += k;
        run = i;
    }
    if (rc == MW_OK)
        rc = mw__buf_add(&b, s + run, n - run);
    if (rc != MW_OK) {
        mw__buf_free(&b);
        return NULL;
    }
    size_t len = 0;
    char *out = mw__buf_take(&b, &len);
    if (!out)
        out = mw__strdup("");
    if (outlen)
        *outlen = out ? len : 0;
    return out;
}

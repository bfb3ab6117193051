/*
 * fake_aws_sigv4.c - the fake AWS server's check of a request's AWS
 * Signature Version 4 (AWS4-HMAC-SHA256 in the Authorization header),
 * computed again from the key's secret with OpenSSL's libcrypto: the
 * canonical request, the string to sign, the signing key
 * HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request") and the signature. Also what AWS checks around it:
 * X-Amz-Date once and within 5 minutes, the scope, every signed header
 * sent, the security token of a temporary key, its expiry.
 *
 * Tests only (libcrypto is not a dependency of moonwatch).
 */
#include "tests/support/fake_aws.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CANON_MAX 65536
#define SKEW      300.0

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static void hmac(const void *key, size_t kn, const char *data, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)kn, (const unsigned char *)data, strlen(data), out, &len);
}

/* Every value of header `name`, joined by ',' (trimmed, inner runs of
 * spaces made one); the count of headers of that name. */
static int header_values(const mw__faws_sig_req *rq, const char *name, char *out, size_t n)
{
    int count = 0;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < rq->nhdrs; i++) {
        if (strcasecmp(rq->hdrs[i].name, name) != 0)
            continue;
        if (count++ && o + 1 < n)
            out[o++] = ',';
        const char *v = rq->hdrs[i].value;
        while (*v == ' ' || *v == '\t')
            v++;
        for (int sp = 0; *v && o + 1 < n; v++) {
            if (*v == ' ' || *v == '\t') {
                sp = 1;
                continue;
            }
            if (sp && o + 1 < n)
                out[o++] = ' ';
            sp = 0;
            out[o++] = *v;
        }
        out[o] = '\0';
    }
    return count;
}

static int fail(char *type, size_t tn, char *msg, size_t mn, int status, const char *t,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int fail(char *type, size_t tn, char *msg, size_t mn, int status, const char *t,
                const char *fmt, ...)
{
    va_list ap;
    snprintf(type, tn, "%s", t);
    va_start(ap, fmt);
    vsnprintf(msg, mn, fmt, ap);
    va_end(ap);
    return status;
}

#define FAIL(status, t, ...) fail(type, tn, msg, mn, status, t, __VA_ARGS__)

/* The parts of "AWS4-HMAC-SHA256 Credential=K/D/R/S/aws4_request,
 * SignedHeaders=a;b, Signature=hex". */
typedef struct auth {
    char key[128], date[16], region[64], service[64], term[32];
    char signed_headers[1024];
    char signature[128];
} auth;

static int field(const char *s, const char *name, char *out, size_t n)
{
    const char *p = strstr(s, name);
    if (!p)
        return -1;
    p += strlen(name);
    size_t k = strcspn(p, ", ");
    if (k >= n)
        return -1;
    memcpy(out, p, k);
    out[k] = '\0';
    return 0;
}

static int parse_auth(const char *h, auth *a)
{
    char cred[512];
    memset(a, 0, sizeof *a);
    if (strncmp(h, "AWS4-HMAC-SHA256 ", 17) != 0 || field(h, "Credential=", cred, sizeof cred) ||
        field(h, "SignedHeaders=", a->signed_headers, sizeof a->signed_headers) ||
        field(h, "Signature=", a->signature, sizeof a->signature))
        return -1;
    char *parts[5] = {a->key, a->date, a->region, a->service, a->term};
    size_t sizes[5] = {sizeof a->key, sizeof a->date, sizeof a->region, sizeof a->service,
                       sizeof a->term};
    char *p = cred;
    for (int i = 0; i < 5; i++) {
        size_t k = strcspn(p, "/");
        if (k >= sizes[i] || (i < 4 && p[k] != '/'))
            return -1;
        memcpy(parts[i], p, k);
        parts[i][k] = '\0';
        p += k + (p[k] == '/');
    }
    return *p ? -1 : 0;
}

static double amz_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' ||
        sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The canonical query string: pairs sorted (they arrive encoded). */
static void canon_query(const char *q, char *out, size_t n)
{
    char buf[4096], *pairs[128];
    size_t np = 0, o = 0;
    snprintf(buf, sizeof buf, "%s", q ? q : "");
    for (char *save = NULL, *t = strtok_r(buf, "&", &save); t && np < 128;
         t = strtok_r(NULL, "&", &save))
        pairs[np++] = t;
    qsort(pairs, np, sizeof *pairs, cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < np; i++)
        o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s%s", i ? "&" : "", pairs[i],
                              strchr(pairs[i], '=') ? "" : "=");
}

/* Builds the canonical request; 0, or the name of a signed header that
 * was not sent (copied to `missing`). */
static int canonical(const mw__faws_sig_req *rq, const auth *a, char *out, size_t n, char *missing,
                     size_t mn)
{
    char q[4096], hdrs[2048], val[4096], body[65];
    size_t o = 0;
    canon_query(rq->query, q, sizeof q);
    o += (size_t)snprintf(out + o, n - o, "%s\n%s\n%s\n", rq->method, rq->path, q);
    snprintf(hdrs, sizeof hdrs, "%s", a->signed_headers);
    for (char *save = NULL, *h = strtok_r(hdrs, ";", &save); h; h = strtok_r(NULL, ";", &save)) {
        if (header_values(rq, h, val, sizeof val) == 0) {
            snprintf(missing, mn, "%s", h);
            return -1;
        }
        o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s:%s\n", h, val);
    }
    sha256_hex(rq->body ? rq->body : "", rq->body_len, body);
    snprintf(out + o, o < n ? n - o : 0, "\n%s\n%s", a->signed_headers, body);
    return 0;
}

static void signature(const char *secret, const auth *a, const char *to_sign, char out[65])
{
    char k0[256];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    snprintf(k0, sizeof k0, "AWS4%s", secret);
    hmac(k0, strlen(k0), a->date, k1);
    hmac(k1, 32, a->region, k2);
    hmac(k2, 32, a->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, to_sign, sig);
    hex(sig, 32, out);
}

static int check_date(const mw__faws_sig_req *rq, double now, char *date, size_t dn, char *type,
                      size_t tn, char *msg, size_t mn)
{
    int n = header_values(rq, "x-amz-date", date, dn);
    if (n == 0)
        return FAIL(400, "IncompleteSignatureException",
                    "Authorization header requires existence of either a 'X-Amz-Date' or a "
                    "'Date' header.");
    if (n > 1)
        return FAIL(400, "IncompleteSignatureException", "X-Amz-Date was sent %d times: %s", n,
                    date);
    double t = amz_time(date);
    if (t < 0)
        return FAIL(400, "IncompleteSignatureException", "X-Amz-Date '%s' is not a date", date);
    if (t < now - SKEW || t > now + SKEW)
        return FAIL(400, "InvalidSignatureException",
                    "Signature expired: %s is now earlier or later than the server time "
                    "(5 min. either way)",
                    date);
    return 0;
}

static int check_key(const auth *a, const mw__faws_sig_req *rq, double now, mw__faws_key_fn keys,
                     void *ud, const char **secret, char *type, size_t tn, char *msg, size_t mn)
{
    const char *token = NULL;
    double expires = 0;
    char sent[4096];
    if (!keys(ud, a->key, secret, &token, &expires))
        return FAIL(400, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
    int n = header_values(rq, "x-amz-security-token", sent, sizeof sent);
    if (token && (n != 1 || strcmp(sent, token) != 0))
        return FAIL(400, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
    if (expires > 0 && now >= expires)
        return FAIL(400, "ExpiredTokenException",
                    "The security token included in the request is expired");
    return 0;
}

int mw__faws_sigv4_verify(const mw__faws_sig_req *rq, const char *region, const char *service,
                          double now, mw__faws_key_fn keys, void *ud, char *type, size_t tn,
                          char *msg, size_t mn)
{
    char authz[4096], date[64], missing[128], hash[65], want[65];
    const char *secret = NULL;
    auth a;
    int rc;
    if (header_values(rq, "authorization", authz, sizeof authz) != 1)
        return FAIL(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    if ((rc = check_date(rq, now, date, sizeof date, type, tn, msg, mn)) != 0)
        return rc;
    if (parse_auth(authz, &a) != 0 || strcmp(a.term, "aws4_request") != 0)
        return FAIL(400, "IncompleteSignatureException",
                    "Authorization header is not an AWS4-HMAC-SHA256 one: %.200s", authz);
    if (strncmp(a.date, date, 8) != 0 || strcmp(a.region, region) != 0 ||
        strcmp(a.service, service) != 0)
        return FAIL(400, "InvalidSignatureException",
                    "Credential should be scoped to a valid region and service: %s/%s/%s, not "
                    "%s/%s/%s",
                    date, region, service, a.date, a.region, a.service);
    if ((rc = check_key(&a, rq, now, keys, ud, &secret, type, tn, msg, mn)) != 0)
        return rc;
    char *canon = malloc(CANON_MAX), *to_sign = malloc(CANON_MAX);
    rc = 0;
    if (!canon || !to_sign) {
        rc = FAIL(500, "InternalFailure", "out of memory");
    } else if (canonical(rq, &a, canon, CANON_MAX, missing, sizeof missing) != 0) {
        rc = FAIL(400, "InvalidSignatureException",
                  "The request signature we calculated does not match the signature you "
                  "provided: signed header '%s' was not sent",
                  missing);
    } else {
        sha256_hex(canon, strlen(canon), hash);
        snprintf(to_sign, CANON_MAX, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", date,
                 a.date, a.region, a.service, hash);
        signature(secret, &a, to_sign, want);
        if (strcmp(want, a.signature) != 0)
            rc = FAIL(400, "InvalidSignatureException",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult the "
                      "service documentation for details.\n\nThe Canonical String for this "
                      "request should have been\n'%.3000s'\n\nThe String-to-Sign should have "
                      "been\n'%.600s'\n",
                      canon, to_sign);
    }
    free(canon);
    free(to_sign);
    return rc;
}

/*
 * fuzz_tmplvars.c - libFuzzer target: template variables (%%host%%,
 * %%port_<i>%%, %%env_X%%, ...) resolved over a fuzzed config against
 * fixed services (discovery/tmplvars.h).
 *
 * Byte 0 picks the service (its low 3 bits) and whether host-network
 * containers resolve %%host%% to "::1" instead of the default (bit 3).
 * The rest is the template: a JSON document when it parses as one, else
 * one string. The services, built from inspect documents as the Docker
 * source builds them, cover every fallback: one bridge address; two
 * networks and none "bridge"; IPv6 only (bracketed in URLs); host
 * network; no address but a hostname; no address, no hostname, no port,
 * no pid; named ports.
 *
 * Properties: the result is a config or a reason, never both, never
 * neither; an unknown variable anywhere (by mw__tmplvars_check, which
 * needs no service) fails the whole config, and a reason that says
 * "unknown template variable" has one; a resolved config has the shape of
 * the template (same keys in the same order, same lengths, a string only
 * turned into a number or boolean when it is exactly one variable, a
 * string without "%%" unchanged, none longer than 1 MiB); resolving again
 * gives the same config.
 */
#include "core/base/util.h"
#include "discovery/service.h"
#include "discovery/tmplvars.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DOC(name, networks, mode, hostname, ports, pid)                                            \
    "{\"Id\":\"" CID "\",\"Name\":\"/" name "\",\"Config\":{\"Hostname\":\"" hostname "\","        \
    "\"Image\":\"redis:7\",\"Env\":[\"DD_ENV=prod\",\"TOKEN=s3cr%%et\",\"EMPTY=\",\"N=42\","       \
    "\"B=true\"],\"ExposedPorts\":{" ports "}},\"NetworkSettings\":{\"Networks\":{" networks       \
    "}},\"HostConfig\":{\"NetworkMode\":\"" mode "\"},\"State\":{\"Pid\":" pid "}}"

static const char *const docs[] = {
    DOC("web", "\"bridge\":{\"IPAddress\":\"127.0.0.2\"}", "default", "web",
        "\"6379/tcp\":{},\"80/tcp\":{}", "42"),
    DOC("two", "\"front\":{\"IPAddress\":\"127.0.0.3\"},\"back\":{\"IPAddress\":\"127.0.0.4\"}",
        "front", "two", "\"8080/tcp\":{}", "43"),
    DOC("v6", "\"bridge\":{\"IPAddress\":\"\",\"GlobalIPv6Address\":\"::1\"}", "default", "v6",
        "\"443/tcp\":{},\"53/udp\":{}", "44"),
    DOC("hostnet", "\"host\":{}", "host", "box", "\"9100/tcp\":{}", "45"),
    DOC("named", "\"none\":{}", "none", "named.local", "", "0"),
    DOC("bare", "", "default", "", "", "0"),
    DOC("ports", "\"bridge\":{\"IPAddress\":\"127.0.0.5\"}", "default", "ports",
        "\"80/tcp\":{},\"443/tcp\":{},\"9090/tcp\":{}", "46"),
    DOC("mixed", "\"a\":{\"IPAddress\":\"127.0.0.6\"},\"b\":{\"GlobalIPv6Address\":\"::1\"}", "a",
        "mixed", "\"1/tcp\":{},\"65535/udp\":{}", "47"),
};

static mw__service *services[sizeof(docs) / sizeof(docs[0])];

static void setup(void)
{
    static const char *const names[] = {"http", "https", "metrics"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *doc = cJSON_Parse(docs[i]);
        char *err = NULL;
        if (!doc || mw__service_from_inspect(doc, NULL, &services[i], &err) != MW_OK)
            abort();
        cJSON_Delete(doc);
    }
    /* Docker names no port; other sources do. */
    mw__service *s = services[6];
    for (size_t i = 0; i < s->nports && i < 3; i++)
        if (!(s->ports[i].name = mw__strdup(names[i])))
            abort();
}

/* Whether every string in `j` has only known variables. */
static int all_known(const cJSON *j)
{
    char *why = NULL;
    if (cJSON_IsString(j)) {
        mw_code rc = mw__tmplvars_check(j->valuestring, &why);
        int ok = rc == MW_OK;
        if (!ok && rc != MW_EINVAL)
            abort(); /* nothing runs out of memory here */
        if (ok == (why != NULL))
            abort(); /* a reason exactly when refused */
        free(why);
        return ok;
    }
    for (const cJSON *c = j->child; c; c = c->next)
        if (!all_known(c))
            return 0;
    return 1;
}

/* A string that is exactly "%%name%%" (a name of at most 128 bytes of
 * [A-Za-z0-9_.-]): the only kind that may become a number or boolean. */
static int one_variable(const char *s)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_-.";
    size_t n = strlen(s);
    return n > 4 && n - 4 <= 128 && strncmp(s, "%%", 2) == 0 && strcmp(s + n - 2, "%%") == 0 &&
           strspn(s + 2, name_chars) == n - 4;
}

/* `out` has the shape of `in`. */
static void same_shape(const cJSON *in, const cJSON *out)
{
    if (cJSON_IsString(in)) {
        if (cJSON_IsString(out)) {
            if (strlen(out->valuestring) > 1024 * 1024)
                abort();
            if (!strstr(in->valuestring, "%%") && strcmp(in->valuestring, out->valuestring) != 0)
                abort();
        } else if (!(cJSON_IsNumber(out) || cJSON_IsBool(out)) || !one_variable(in->valuestring)) {
            abort();
        }
        return;
    }
    if ((in->type & 0xFF) != (out->type & 0xFF))
        abort();
    if (cJSON_IsNumber(in) && in->valuedouble != out->valuedouble)
        abort();
    const cJSON *a = in->child, *b = out->child;
    for (; a && b; a = a->next, b = b->next) {
        if (cJSON_IsObject(in) && strcmp(a->string ? a->string : "", b->string ? b->string : ""))
            abort();
        same_shape(a, b);
    }
    if (a || b)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allow[] = {"DD_ENV", "TOKEN", "EMPTY", "N", "B"};
    char *why = NULL, *why2 = NULL;

    if (size < 1)
        return 0;
    if (!services[0])
        setup();
    const mw__service *svc = services[data[0] & 7];
    mw__tmplvars_opts o = {.host_network_host = (data[0] & 8) ? "::1" : NULL,
                           .env_allow = allow,
                           .nenv_allow = sizeof(allow) / sizeof(allow[0])};
    char *text = mw__strndup((const char *)data + 1, size - 1);
    if (!text)
        abort();
    cJSON *tmpl = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (!tmpl)
        tmpl = cJSON_CreateString(text);
    if (!tmpl)
        abort();

    int known = all_known(tmpl);
    cJSON *out = NULL;
    mw_code rc = mw__tmplvars_resolve(tmpl, svc, &o, &out, &why);
    if (!out == !why || (rc == MW_OK) != (out != NULL) || (rc != MW_OK && rc != MW_EINVAL))
        abort(); /* a config or a reason */
    if (!known && out)
        abort(); /* an unknown variable resolved */
    if (why && strstr(why, "unknown template variable") && known)
        abort();
    if (out) {
        same_shape(tmpl, out);
        /* Compared as text: cJSON_Compare() pairs repeated keys wrongly. */
        cJSON *again = NULL;
        if (mw__tmplvars_resolve(tmpl, svc, &o, &again, &why2) != MW_OK)
            abort();
        char *t1 = cJSON_PrintUnformatted(out), *t2 = cJSON_PrintUnformatted(again);
        if (!t1 || !t2 || strcmp(t1, t2) != 0)
            abort();
        free(t1);
        free(t2);
        cJSON_Delete(again);
    }
    cJSON_Delete(out);
    cJSON_Delete(tmpl);
    free(why);
    free(why2);
    free(text);
    return 0;
}

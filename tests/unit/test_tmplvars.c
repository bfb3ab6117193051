/*
 * test_tmplvars.c - template variables against hand-built services: every
 * variable, Datadog's %%host%% fallback, host networking, typed
 * substitution, IPv6 bracketing in URLs, the env allowlist, unknown and
 * malformed variables, nested configs, and that a failure returns no
 * config and a reason naming the variable.
 *
 * Services are described in a compact JSON spec (single quotes for
 * readability) and built field by field, so each test states exactly
 * what the container has.
 */
#include "core/base/util.h"
#include "discovery/tmplvars.h"
#include "test.h"
#include "tests/support/svc_spec.h"

#include <stdlib.h>

#define CID MW_TEST_CID

/* ------------------------------------------------------------ services */

/* ------------------------------------------------------------ resolving */

static const char *const allow[] = {"PORT",  "DEBUG",   "RATIO", "ZEROS", "HUGE",
                                    "EMPTY", "MISSING", "URL",   "BIG"};
static const mw__tmplvars_opts opts = {NULL, allow, MW_ARRAY_LEN(allow)};

/* Resolves template `tmpl` (JSON text, single quotes for double) against
 * `svc`: the result as compact JSON, or "unresolved: <reason>". */
static char *resolve_with(const mw__service *svc, const mw__tmplvars_opts *o, const char *tmpl)
{
    cJSON *t = mw__test_spec_parse(tmpl);
    char *reason = NULL, *out;
    cJSON *r = NULL;
    mw_code rc = mw__tmplvars_resolve(t, svc, o, &r, &reason);
    if (rc == MW_OK) {
        out = cJSON_PrintUnformatted(r);
        CHECK(r != NULL && reason == NULL);
    } else {
        out = mw__sprintf("unresolved: %s", reason ? reason : "(null)");
        CHECK(rc == MW_EINVAL && r == NULL);
    }
    free(reason);
    cJSON_Delete(r);
    cJSON_Delete(t);
    return out;
}

#define CHECK_RESOLVE_O(svc, o, tmpl, want)                                                        \
    do {                                                                                           \
        char *got_ = resolve_with(svc, o, tmpl);                                                   \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

#define CHECK_RESOLVE(svc, tmpl, want) CHECK_RESOLVE_O(svc, &opts, tmpl, want)

/* ------------------------------------------------------------ tests */

static void test_host_fallback(void)
{
    /* The only network, whatever its name. */
    mw__service *s = mw__test_service("{'nets':[['mynet','127.0.0.5','']]}");
    CHECK_RESOLVE(s, "['%%host%%']", "[\"127.0.0.5\"]");
    mw__service_free(s);

    /* Several: bridge wins. */
    s = mw__test_service(
        "{'nets':[['a','127.0.0.3',''],['bridge','127.0.0.2',''],['z','127.0.0.4','']]}");
    CHECK_RESOLVE(s, "['%%host%%']", "[\"127.0.0.2\"]");
    mw__service_free(s);

    /* Several, no bridge: ambiguous. */
    s = mw__test_service("{'nets':[['a','127.0.0.3',''],['b','127.0.0.4','']]}");
    CHECK_RESOLVE(s, "['%%host%%']",
                  "unresolved: %%host%%: the container has addresses on 2 networks and none is "
                  "\"bridge\": name one with %%host_<network>%%");
    mw__service_free(s);

    /* A network without an address does not count: the only one left wins. */
    s = mw__test_service("{'nets':[['a','',''],['b','127.0.0.4','']]}");
    CHECK_RESOLVE(s, "['%%host%%']", "[\"127.0.0.4\"]");
    mw__service_free(s);

    /* No address anywhere: the hostname (ECS awsvpc, some CNIs). */
    s = mw__test_service("{'nets':[['a','','']],'hostname':'web-1'}");
    CHECK_RESOLVE(s, "['%%host%%']", "[\"web-1\"]");
    mw__service_free(s);

    /* The hostname is not used when addresses are ambiguous. */
    s = mw__test_service("{'nets':[['a','127.0.0.3',''],['b','127.0.0.4','']],'hostname':'web-1'}");
    CHECK_RESOLVE(s, "'%%host%%'",
                  "unresolved: %%host%%: the container has addresses on 2 networks and none is "
                  "\"bridge\": name one with %%host_<network>%%");
    mw__service_free(s);

    s = mw__test_service("{}");
    CHECK_RESOLVE(s, "'%%host%%'",
                  "unresolved: %%host%%: the container has no IP address and no hostname");
    mw__service_free(s);
}

static void test_host_network(void)
{
    mw__service *s = mw__test_service("{'host_network':true,'nets':[['host','','']]}");
    CHECK_RESOLVE(s, "'http://%%host%%:8080/'", "\"http://127.0.0.1:8080/\"");
    CHECK_RESOLVE(s, "'%%host_host%%'", "\"127.0.0.1\"");
    CHECK_RESOLVE(s, "'%%host_other%%'", "\"127.0.0.1\"");
    mw__tmplvars_opts o = opts;
    o.host_network_host = "127.0.0.9";
    CHECK_RESOLVE_O(s, &o, "'%%host%%'", "\"127.0.0.9\"");
    /* An IPv6 host address is bracketed in URLs like any other. */
    o.host_network_host = "::1";
    CHECK_RESOLVE_O(s, &o, "'http://%%host%%:80'", "\"http://[::1]:80\"");
    mw__service_free(s);
}

static void test_host_named_network(void)
{
    mw__service *s =
        mw__test_service("{'nets':[['backend','127.0.0.3',''],['bridge','127.0.0.2',''],"
                         "['my_net.v2','127.0.0.6','']]}");
    CHECK_RESOLVE(s, "'%%host_backend%%'", "\"127.0.0.3\"");
    CHECK_RESOLVE(s, "'%%host_my_net.v2%%'", "\"127.0.0.6\"");
    /* Not on that network: Datadog falls back to %%host%%. */
    CHECK_RESOLVE(s, "'%%host_nope%%'", "\"127.0.0.2\"");
    /* "host_" with nothing after it is no variable Datadog knows. */
    CHECK_RESOLVE(s, "'%%host_%%'", "unresolved: %%host_%%: unknown template variable");
    mw__service_free(s);

    s = mw__test_service("{'nets':[['a','127.0.0.3',''],['b','127.0.0.4','']]}");
    CHECK_RESOLVE(s, "'%%host_b%%'", "\"127.0.0.4\"");
    CHECK_RESOLVE(s, "'%%host_c%%'",
                  "unresolved: %%host_c%%: the container has addresses on 2 networks and none is "
                  "\"bridge\": name one with %%host_<network>%%");
    mw__service_free(s);
}

static void test_ipv6(void)
{
    mw__service *s = mw__test_service("{'nets':[['bridge','','fd00::2']]}");
    CHECK_RESOLVE(s, "'http://%%host%%:80'", "\"http://[fd00::2]:80\"");
    CHECK_RESOLVE(s, "'http://user:pw@%%host%%:80/x'", "\"http://user:pw@[fd00::2]:80/x\"");
    /* Whole value, no URL, already bracketed, or past the authority: as is. */
    CHECK_RESOLVE(s, "'%%host%%'", "\"fd00::2\"");
    CHECK_RESOLVE(s, "'%%host%%:80'", "\"fd00::2:80\"");
    CHECK_RESOLVE(s, "'http://[%%host%%]:80'", "\"http://[fd00::2]:80\"");
    CHECK_RESOLVE(s, "'http://proxy/?to=%%host%%'", "\"http://proxy/?to=fd00::2\"");
    CHECK_RESOLVE(s, "'see http://x and %%host%%'", "\"see http://x and fd00::2\"");
    CHECK_RESOLVE(s, "'redis://%%host_bridge%%:6379'", "\"redis://[fd00::2]:6379\"");
    mw__service_free(s);

    /* Dual stack: IPv4 first, no brackets. */
    s = mw__test_service("{'nets':[['bridge','127.0.0.2','fd00::2']]}");
    CHECK_RESOLVE(s, "'http://%%host%%:80'", "\"http://127.0.0.2:80\"");
    mw__service_free(s);

    /* Only host addresses are bracketed, not other values with colons. */
    s = mw__test_service("{'env':{'URL':'a:b'},'nets':[['bridge','127.0.0.2','']]}");
    CHECK_RESOLVE(s, "'http://%%env_URL%%'", "\"http://a:b\"");
    mw__service_free(s);
}

static void test_ports(void)
{
    mw__service *s =
        mw__test_service("{'ports':[[53,'tcp'],[53,'udp','dns'],[80,'tcp','http'],[8080,'tcp']]}");
    /* Exactly one variable and a number: a JSON number. */
    CHECK_RESOLVE(s, "{'port':'%%port%%'}", "{\"port\":8080}");
    CHECK_RESOLVE(s, "'%%port%%/x'", "\"8080/x\"");
    CHECK_RESOLVE(s, "' %%port%%'", "\" 8080\"");
    CHECK_RESOLVE(s, "['%%port_0%%','%%port_1%%','%%port_2%%','%%port_3%%']", "[53,53,80,8080]");
    CHECK_RESOLVE(s, "'%%port_http%%'", "80");
    CHECK_RESOLVE(s, "'%%port_dns%%'", "53");
    CHECK_RESOLVE(s, "'%%port_4%%'",
                  "unresolved: %%port_4%%: no port at index 4: the container exposes 4");
    CHECK_RESOLVE(s, "'%%port_99999999999999999999%%'",
                  "unresolved: %%port_99999999999999999999%%: no port at index "
                  "99999999999999999999: the container exposes 4");
    CHECK_RESOLVE(s, "'%%port_https%%'",
                  "unresolved: %%port_https%%: the container has no port named \"https\"");
    CHECK_RESOLVE(s, "'http://127.0.0.1:%%port_http%%/%%port%%'", "\"http://127.0.0.1:80/8080\"");
    mw__service_free(s);

    s = mw__test_service("{'origin':'task_metadata'}");
    CHECK_RESOLVE(s, "'%%port%%'",
                  "unresolved: %%port%%: the task metadata lists no port for this container, and "
                  "the ports its image exposes are unknown without a Docker engine: give the "
                  "port itself");
    CHECK_RESOLVE(s, "'%%pid%%'",
                  "unresolved: %%pid%%: the ECS task metadata does not give a container's pid");
    mw__service_free(s);

    s = mw__test_service("{}");
    CHECK_RESOLVE(s, "'%%port%%'", "unresolved: %%port%%: the container exposes no port");
    CHECK_RESOLVE(s, "'%%port_0%%'",
                  "unresolved: %%port_0%%: no port at index 0: the container exposes 0");
    mw__service_free(s);
}

static void test_identity_vars(void)
{
    mw__service *s = mw__test_service("{'name':'web-1','hostname':'abc123','pid':4242}");
    CHECK_RESOLVE(s, "['%%pid%%','%%hostname%%','%%container_name%%','%%container_id%%']",
                  "[4242,\"abc123\",\"web-1\",\"" CID "\"]");
    CHECK_RESOLVE(s, "'/proc/%%pid%%/status'", "\"/proc/4242/status\"");
    CHECK_RESOLVE(s, "'%%container_name%%.%%hostname%%'", "\"web-1.abc123\"");
    mw__service_free(s);

    /* A 64-digit id is far too long for a number: it stays a string. */
    s = mw__test_service(
        "{'cid':'1234567890123456789012345678901234567890123456789012345678901234'}");
    CHECK_RESOLVE(s, "'%%container_id%%'",
                  "\"1234567890123456789012345678901234567890123456789012345678901234\"");
    mw__service_free(s);

    s = mw__test_service("{'name':''}");
    CHECK_RESOLVE(s, "'%%pid%%'",
                  "unresolved: %%pid%%: the container's pid is unknown (is it running?)");
    CHECK_RESOLVE(s, "'%%hostname%%'", "unresolved: %%hostname%%: the container has no hostname");
    CHECK_RESOLVE(s, "'%%container_name%%'",
                  "unresolved: %%container_name%%: the container has no name");
    mw__service_free(s);
}

static void test_env(void)
{
    mw__service *s =
        mw__test_service("{'env':{'PORT':'9000','DEBUG':'true','RATIO':'0.5','ZEROS':'007',"
                         "'HUGE':'1e400','EMPTY':'','SECRET':'hunter2','BIG':'-1.5E+3'}}");
    CHECK_RESOLVE(s, "{'p':'%%env_PORT%%','d':'%%env_DEBUG%%','r':'%%env_RATIO%%'}",
                  "{\"p\":9000,\"d\":true,\"r\":0.5}");
    /* Not JSON numbers, or not exactly one variable: strings. */
    CHECK_RESOLVE(s, "['%%env_ZEROS%%','%%env_HUGE%%','%%env_EMPTY%%','x%%env_DEBUG%%']",
                  "[\"007\",\"1e400\",\"\",\"xtrue\"]");
    CHECK_RESOLVE(s, "'%%env_BIG%%'", "-1500");
    CHECK_RESOLVE(s, "'%%env_PORT%%%%env_PORT%%'", "\"90009000\"");
    CHECK_RESOLVE(s, "'%%env_SECRET%%'",
                  "unresolved: %%env_SECRET%%: SECRET is not in the env allowlist");
    CHECK_RESOLVE(s, "'%%env_MISSING%%'",
                  "unresolved: %%env_MISSING%%: the container has no env var MISSING");
    /* No allowlist at all: nothing is readable. */
    CHECK_RESOLVE_O(s, NULL, "'%%env_PORT%%'",
                    "unresolved: %%env_PORT%%: PORT is not in the env allowlist");
    mw__service_free(s);
}

/* %%extra_<key>%% and %%kube_<key>%% read the values a source found beside
 * the service; a Docker container has none, so its config stays
 * unresolved with the reason. %%discovered_port%% is Datadog's and never
 * resolves here. */
static void test_extra(void)
{
    mw__service *s = mw__test_service("{'nets':[['bridge','127.0.0.2','']]}");
    CHECK(s->extra == NULL);
    CHECK_RESOLVE(s, "{'region':'%%extra_region%%'}",
                  "unresolved: %%extra_region%%: the service has no extra values (they come from "
                  "the source, such as ECS task metadata; a Docker container has none)");
    CHECK_RESOLVE(s, "'%%kube_namespace%%'",
                  "unresolved: %%kube_namespace%%: the service has no extra values (they come "
                  "from Kubernetes, which is not a source here; a Docker container has none)");
    CHECK_RESOLVE(s, "'http://%%host%%:%%discovered_port%%/metrics'",
                  "unresolved: %%discovered_port%%: set by the Datadog Agent's configuration "
                  "discovery, which moonwatch does not do");
    mw__service_free(s);

    s = mw__test_service("{'nets':[['bridge','127.0.0.2','']],"
                         "'extra':{'region':'eu-west-3','timeout':'5','namespace':'shop'}}");
    CHECK_RESOLVE(s,
                  "{'region':'%%extra_region%%','tags':['region:%%extra_region%%'],"
                  "'timeout':'%%extra_timeout%%','ns':'%%kube_namespace%%'}",
                  "{\"region\":\"eu-west-3\",\"tags\":[\"region:eu-west-3\"],\"timeout\":5,"
                  "\"ns\":\"shop\"}");
    CHECK_RESOLVE(s, "'%%extra_user%%'",
                  "unresolved: %%extra_user%%: the service has no extra value \"user\"");
    /* The key is the whole rest of the name, underscores included. */
    CHECK_RESOLVE(s, "'%%extra_region_x%%'",
                  "unresolved: %%extra_region_x%%: the service has no extra value \"region_x\"");
    mw__service_free(s);
}

static void test_unknown_and_malformed(void)
{
    mw__service *s = mw__test_service("{'nets':[['bridge','127.0.0.2','']]}");
    CHECK_RESOLVE(s, "'%%foo%%'", "unresolved: %%foo%%: unknown template variable");
    CHECK_RESOLVE(s, "'a %%HOST%% b'", "unresolved: %%HOST%%: unknown template variable");
    CHECK_RESOLVE(s, "'%%task_id%%'", "unresolved: %%task_id%%: unknown template variable");
    /* An ECS variable is known: outside ECS it is unresolved for that. */
    CHECK_RESOLVE(s, "'%%task_arn%%'",
                  "unresolved: %%task_arn%%: the container is not part of an ECS task (no "
                  "com.amazonaws.ecs.task-arn label, not listed by the ECS agent; or ECS "
                  "discovery is off)");
    /* Not well-formed: literal. */
    CHECK_RESOLVE(s, "['100%','50%%','%%','%%%%','%%host','host%%','a%%b c%%d','%%ho st%%']",
                  "[\"100%\",\"50%%\",\"%%\",\"%%%%\",\"%%host\",\"host%%\",\"a%%b c%%d\","
                  "\"%%ho st%%\"]");
    /* A stray '%' before a variable stays, the variable resolves. */
    CHECK_RESOLVE(s, "'%%%host%%'", "\"%127.0.0.2\"");
    CHECK_RESOLVE(s, "'100%% of %%host%%'", "\"100%% of 127.0.0.2\"");
    mw__service_free(s);
}

static void test_nested(void)
{
    mw__service *s =
        mw__test_service("{'nets':[['bridge','127.0.0.2','']],'ports':[[6379,'tcp']]}");
    CHECK_RESOLVE(s,
                  "{'k%%host%%':'v','a':[{'b':'%%host%%'},['%%port%%',1,null,true,2.5,[]]],"
                  "'o':{'p':{'q':'tcp://%%host%%:%%port%%'}},'e':{}}",
                  "{\"k%%host%%\":\"v\",\"a\":[{\"b\":\"127.0.0.2\"},[6379,1,null,true,2.5,[]]],"
                  "\"o\":{\"p\":{\"q\":\"tcp://127.0.0.2:6379\"}},\"e\":{}}");
    /* A failure deep inside: nothing comes back but the reason. */
    CHECK_RESOLVE(s, "{'a':[{'b':'%%host%%'},{'c':['x','%%pid%%']}]}",
                  "unresolved: %%pid%%: the container's pid is unknown (is it running?)");
    /* Scalars of every type come back as they were. */
    CHECK_RESOLVE(s, "[0,-1.25,false,null,'']", "[0,-1.25,false,null,\"\"]");
    mw__service_free(s);
}

static void test_check_names(void)
{
    char *why = NULL;
    CHECK(mw__tmplvars_check("http://%%host%%:%%port%%/x", &why) == MW_OK && !why);
    CHECK(mw__tmplvars_check("%%host_bridge%% %%port_0%% %%port_http%% %%env_A%%", &why) == MW_OK);
    CHECK(mw__tmplvars_check("%%pid%%%%hostname%%%%container_name%%%%container_id%%", &why) ==
          MW_OK);
    CHECK(mw__tmplvars_check("50%% off, %%, %%%, % %", &why) == MW_OK); /* literal */
    CHECK(mw__tmplvars_check("", &why) == MW_OK);
    /* Datadog's names are known, resolvable here or not: never a typo. */
    CHECK(mw__tmplvars_check("%%extra_region%% %%kube_namespace%% %%discovered_port%%", &why) ==
              MW_OK &&
          !why);
    CHECK(mw__tmplvars_check("%%extra_%%", &why) == MW_EINVAL); /* extra_ with no key */
    CHECK_STR(why, "%%extra_%%: unknown template variable");
    free(why);
    CHECK(mw__tmplvars_has_var("http://%%host%%/") && mw__tmplvars_has_var("%%nope%%"));
    CHECK(mw__tmplvars_has_var("%%%host%%") && mw__tmplvars_has_var("5%% %%extra_t%%"));
    CHECK(!mw__tmplvars_has_var("5") && !mw__tmplvars_has_var("50%% off") &&
          !mw__tmplvars_has_var("%%") && !mw__tmplvars_has_var("%%a b%%") &&
          !mw__tmplvars_has_var(""));
    CHECK(mw__tmplvars_check("a %%hots%% b", &why) == MW_EINVAL);
    CHECK_STR(why, "%%hots%%: unknown template variable");
    free(why);
    CHECK(mw__tmplvars_check("%%host%%%%env_%%", &why) == MW_EINVAL); /* env_ with no name */
    CHECK_STR(why, "%%env_%%: unknown template variable");
    free(why);
}

static void test_bad_args(void)
{
    mw__service *s = mw__test_service("{}");
    char *reason = NULL;
    cJSON *r = NULL;
    CHECK(mw__tmplvars_resolve(NULL, s, &opts, &r, &reason) == MW_EINVAL && !r);
    CHECK_STR(reason, "no config to resolve");
    free(reason);
    cJSON *t = cJSON_CreateString("x");
    CHECK(mw__tmplvars_resolve(t, NULL, &opts, &r, &reason) == MW_EINVAL && !r);
    CHECK_STR(reason, "no service to resolve against");
    free(reason);
    cJSON_Delete(t);
    mw__service_free(s);
}

/* Many variables in one long string: one pass, every value in place. */
static void test_long_string(void)
{
    mw__service *s = mw__test_service("{'nets':[['bridge','127.0.0.2','']],'ports':[[80,'tcp']]}");
    char *tmpl = malloc(20000 * 9 + 3), *want = malloc(20000 * 13 + 3);
    size_t tn = 0, wn = 0;
    tmpl[tn++] = '\'';
    want[wn++] = '"';
    for (int i = 0; i < 20000; i++) {
        memcpy(tmpl + tn, "%%port%%,", 9), tn += 9;
        memcpy(want + wn, "80,", 3), wn += 3;
    }
    tmpl[tn++] = '\'', tmpl[tn] = '\0';
    want[wn++] = '"', want[wn] = '\0';
    char *got = resolve_with(s, &opts, tmpl);
    CHECK_STR(got, want);
    free(got), free(tmpl), free(want);
    mw__service_free(s);
}

int main(void)
{
    test_host_fallback();
    test_host_network();
    test_host_named_network();
    test_ipv6();
    test_ports();
    test_identity_vars();
    test_env();
    test_extra();
    test_unknown_and_malformed();
    test_nested();
    test_check_names();
    test_bad_args();
    test_long_string();
    return TEST_RESULT();
}

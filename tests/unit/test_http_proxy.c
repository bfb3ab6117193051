/*
 * test_http_proxy.c - the link-local rule of core/base/http.c with a
 * proxy in the environment, against tests/support/mini_proxy (which
 * forwards only to loopback and answers any other target itself) and
 * tests/support/mini_httpd: a name that resolves to a link-local address
 * (pinned with mw__http_resolve(), no DNS) is refused before the proxy
 * hears of it, also after a redirect and for https (CONNECT); an allowed
 * name goes to the proxy; NO_PROXY sends it direct; the rule off lets it
 * through. Then, isolated only: a name that does not resolve here is
 * refused, and a transfer cancelled, or its client freed, while its name
 * is being resolved, reports nothing and leaks nothing.
 *
 * When it may (root), the test first moves itself into a network and a
 * mount namespace of its own, with only loopback up and its own
 * /etc/resolv.conf (bind-mounted): DNS is a UDP socket on 127.0.0.1:53
 * that never answers, so a lookup stays under way for 2 s and then
 * fails, and nothing is sent off the machine. Without that, the cases
 * that need DNS are skipped.
 *
 * The loop is always driven in bounded steps, so a regression fails a
 * CHECK instead of hanging.
 */
#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "test.h"
#include "tests/support/make.h"
#include "tests/support/mini_httpd.h"
#include "tests/support/mini_proxy.h"
#include "tests/support/netns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

static mw__mhd *srv;
static mw__mproxy *px;
static int dns_fd = -1;
static int resolv_mounted;

/* In the test's network namespace: a DNS server on 127.0.0.1:53 that
 * never answers, named by a resolv.conf of its own in a mount namespace
 * of its own. 1 when in place. */
static int silent_dns(void)
{
    static const char conf[] = "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n";
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char resolv[64];
    snprintf(resolv, sizeof resolv, "/tmp/mw-resolv-XXXXXX");
    int fd = mkstemp(resolv);
    if (fd < 0)
        return 0;
    int ok = write(fd, conf, sizeof conf - 1) == (ssize_t)(sizeof conf - 1);
    close(fd);
    ok = ok && unshare(CLONE_NEWNS) == 0 &&
         mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
         (resolv_mounted = mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0);
    unlink(resolv); /* the mount keeps it: nothing is left behind, even on a crash */
    ok = ok && (dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0 &&
         bind(dns_fd, (struct sockaddr *)&a, sizeof a) == 0;
    return ok;
}

static const char *const proxy_vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                         "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};

/* Points every proxy variable at the proxy (0: unsets them), no_proxy at
 * `no_proxy` (NULL: unset). */
static void proxy_env(int on, const char *no_proxy)
{
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d", px ? mw__mproxy_port(px) : 0);
    for (size_t i = 0; i < MW_ARRAY_LEN(proxy_vars); i++) {
        if (on)
            setenv(proxy_vars[i], u, 1);
        else
            unsetenv(proxy_vars[i]);
    }
    if (no_proxy)
        setenv("no_proxy", no_proxy, 1);
    else
        unsetenv("no_proxy");
    unsetenv("NO_PROXY");
}

static void proxy_dump(void)
{
    char line[600];
    for (size_t i = 0; mw__mproxy_request(px, i, line, sizeof line) == 0; i++)
        fprintf(stderr, "  proxy got: %s\n", line);
}

/* ------------------------------------------------------------- transfers */

typedef struct xfer {
    mw__http_req *req;
    int done;
    mw_code code;
    long status;
    char *body, *error;
    double elapsed;
    mw__http_req *cancel_on_data; /* on_data: cancel this one (inside curl) */
} xfer;

static void xfer_clear(xfer *x)
{
    free(x->body);
    free(x->error);
    memset(x, 0, sizeof *x);
}

static void on_done(void *ud, const mw__http_result *r)
{
    xfer *x = ud;
    x->done++;
    x->code = r->code;
    x->status = r->status;
    x->body = mw__strndup(r->body, r->len);
    x->error = r->error ? mw__strdup(r->error) : NULL;
    x->elapsed = r->elapsed;
}

static int on_data(void *ud, const char *p, size_t n)
{
    xfer *x = ud;
    MW_UNUSED(p);
    MW_UNUSED(n);
    if (x->cancel_on_data) {
        mw__http_cancel(x->cancel_on_data);
        x->cancel_on_data = NULL;
    }
    return 0;
}

static void run_until(mw__loop *loop, const int *flag, double max_s)
{
    double end = mw__mono() + max_s;
    for (int i = 0; i < 100000 && !*flag && mw__mono() < end; i++)
        mw__loop_run_once(loop, 20);
}

static void run_for(mw__loop *loop, double s)
{
    int never = 0;
    run_until(loop, &never, s);
}

/* Starts a GET of `u`, the rule on (`deny`) or off, redirects followed. */
static mw__http_req *start(mw__http *h, const char *u, int deny, xfer *x)
{
    mw__http_opts o = {.url = u,
                       .timeout = 5,
                       .follow_redirects = 1,
                       .deny_link_local = deny,
                       .done = on_done,
                       .ud = x};
    char *err = NULL;
    memset(x, 0, sizeof *x);
    x->req = mw__http_start(h, &o, &err);
    if (!x->req)
        fprintf(stderr, "start %s: %s\n", u, err ? err : "?");
    free(err);
    return x->req;
}

static void get(mw__loop *loop, mw__http *h, const char *u, int deny, xfer *x)
{
    if (start(h, u, deny, x))
        run_until(loop, &x->done, 10);
}

/* A client whose names meta.test, both.test, v6meta.test and fine.test
 * resolve without DNS (fine.test to loopback, on port 80 and on the
 * server's). */
static mw__http *pinned_http(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    char fine[64];
    snprintf(fine, sizeof fine, "fine.test:%d:127.0.0.1", mw__mhd_port(srv));
    CHECK(mw__http_resolve(h, "meta.test:80:169.254.169.254") == MW_OK);
    CHECK(mw__http_resolve(h, "meta.test:443:169.254.169.254") == MW_OK);
    CHECK(mw__http_resolve(h, "both.test:80:127.0.0.1,169.254.170.2") == MW_OK);
    CHECK(mw__http_resolve(h, "v6meta.test:80:[fd00:ec2::254]") == MW_OK);
    CHECK(mw__http_resolve(h, "fine.test:80:127.0.0.1") == MW_OK);
    CHECK(mw__http_resolve(h, fine) == MW_OK);
    return h;
}

/* ------------------------------------------------------------- tests */

/* Names that resolve (here) to a link-local address are refused before
 * the proxy hears of them; so are literals, whatever their spelling. */
static void test_refused(mw__loop *loop)
{
    mw__http *h = pinned_http(loop);
    static const struct {
        const char *url, *error;
    } cases[] = {
        {"http://meta.test/latest/meta-data/",
         "refused: meta.test resolves to 169.254.169.254, a link-local address"},
        {"https://meta.test/latest/meta-data/",
         "refused: meta.test resolves to 169.254.169.254, a link-local address"},
        {"http://both.test/", "refused: both.test resolves to 169.254.170.2, a link-local address"},
        {"http://v6meta.test/",
         "refused: v6meta.test resolves to fd00:ec2::254, a link-local address"},
        {"http://[fe80::1]/", "refused: fe80::1 is a link-local address"},
        {"https://0xA9FEA9FE/", "refused: 169.254.169.254 is a link-local address"},
        {"http://169.254.43518/", "refused: 169.254.169.254 is a link-local address"},
    };
    proxy_env(1, NULL);
    mw__mproxy_clear(px);
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        xfer x;
        get(loop, h, cases[i].url, 1, &x);
        CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
        if (!x.error || strcmp(x.error, cases[i].error) != 0)
            fprintf(stderr, "%s: %s\n", cases[i].url, x.error ? x.error : "(none)");
        CHECK_STR(x.error, cases[i].error);
        CHECK(x.elapsed < 1);
        xfer_clear(&x);
    }
    if (mw__mproxy_count(px) != 0)
        proxy_dump();
    CHECK(mw__mproxy_count(px) == 0);
    proxy_env(0, NULL);
    mw__http_free(h);
}

/* An allowed name goes to the proxy; a redirect to a name of the
 * metadata address stops after the first request; NO_PROXY sends a name
 * direct; the rule off lets the proxy be asked. */
static void test_allowed(mw__loop *loop)
{
    mw__http *h = pinned_http(loop);
    int port = mw__mhd_port(srv);
    char u[256];
    xfer x;
    proxy_env(1, NULL);
    mw__mproxy_clear(px);
    get(loop, h, "http://fine.test/x", 1, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "canned by mini_proxy\n");
    CHECK(mw__mproxy_saw(px, "GET http://fine.test/x"));
    xfer_clear(&x);

    mw__mproxy_clear(px);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/redirect?to=http://meta.test/latest/meta-data/",
             port);
    get(loop, h, u, 1, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    CHECK_STR(x.error, "refused: meta.test resolves to 169.254.169.254, a link-local address");
    CHECK(mw__mproxy_count(px) == 1 && !mw__mproxy_saw(px, "GET http://meta.test"));
    xfer_clear(&x);

    /* the other way round: from a name through the proxy to loopback */
    mw__mproxy_clear(px);
    snprintf(u, sizeof u, "http://localhost:%d/redirect?to=http://127.0.0.1:%d/ok", port, port);
    get(loop, h, u, 1, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "ok\n");
    CHECK(mw__mproxy_count(px) == 2);
    xfer_clear(&x);

    mw__mproxy_clear(px);
    get(loop, h, "http://meta.test/latest/meta-data/", 0, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "canned by mini_proxy\n");
    CHECK(mw__mproxy_saw(px, "GET http://meta.test/latest/meta-data/"));
    xfer_clear(&x);

    proxy_env(1, "fine.test");
    mw__mproxy_clear(px);
    snprintf(u, sizeof u, "http://fine.test:%d/ok", port);
    get(loop, h, u, 1, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "ok\n");
    CHECK(mw__mproxy_count(px) == 0);
    xfer_clear(&x);
    proxy_env(0, NULL);
    mw__http_free(h);
}

/* A request for an endpoint of the host itself (`direct`: the ECS agent,
 * task metadata, credentials) never goes to the proxy, link-local or
 * not; the same request without it does. */
static void test_direct(mw__loop *loop)
{
    mw__http *h = pinned_http(loop);
    char u[128];
    xfer x;
    snprintf(u, sizeof u, "http://fine.test:%d/ok", mw__mhd_port(srv));
    proxy_env(1, NULL);
    for (int direct = 1; direct >= 0; direct--) {
        mw__http_opts o = {.url = u, .timeout = 5, .direct = direct, .done = on_done, .ud = &x};
        char *err = NULL;
        mw__mproxy_clear(px);
        memset(&x, 0, sizeof x);
        x.req = mw__http_start(h, &o, &err);
        CHECK(x.req != NULL);
        free(err);
        if (x.req)
            run_until(loop, &x.done, 10);
        CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
        CHECK_STR(x.body, direct ? "ok\n" : "canned by mini_proxy\n");
        CHECK(mw__mproxy_count(px) == (direct ? 0u : 1u));
        xfer_clear(&x);
    }
    proxy_env(0, NULL);
    mw__http_free(h);
}

/* Isolated: a name that does not resolve here (DNS does not answer) is
 * refused, not handed to the proxy to resolve. */
static void test_unresolved(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    proxy_env(1, NULL);
    mw__mproxy_clear(px);
    get(loop, h, "http://nothing-here.invalid/", 1, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    CHECK(x.error &&
          strstr(x.error, "refused: nothing-here.invalid does not resolve here") == x.error);
    CHECK(mw__mproxy_count(px) == 0);
    xfer_clear(&x);
    proxy_env(0, NULL);
    mw__http_free(h);
}

/* Isolated: a name whose lookup is still under way (DNS does not answer
 * for 2 s) when its transfer is cancelled, from outside curl and from
 * inside another transfer's callback, or when the client is freed. */
static void test_cancel_while_resolving(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x, y;
    proxy_env(1, NULL);
    CHECK(start(h, "http://pending.invalid/", 1, &x) != NULL);
    mw__loop_run_once(loop, 0); /* the kick: the lookup starts */
    CHECK(mw__http_active(h) == 1);
    double t0 = mw__mono();
    mw__http_cancel(x.req);
    CHECK(mw__mono() - t0 < 0.5); /* the loop does not wait for the lookup */
    run_for(loop, 0.2);
    CHECK(x.done == 0 && mw__http_active(h) == 0);

    /* from inside curl: another transfer's on_data */
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/bytes/100", mw__mhd_port(srv));
    mw__http_opts o = {
        .url = u, .timeout = 5, .deny_link_local = 1, .on_data = on_data, .done = on_done};
    CHECK(start(h, "http://pending.invalid/", 1, &x) != NULL);
    memset(&y, 0, sizeof y);
    o.ud = &y;
    y.cancel_on_data = x.req;
    CHECK((y.req = mw__http_start(h, &o, NULL)) != NULL);
    t0 = mw__mono();
    run_until(loop, &y.done, 10);
    run_for(loop, 0.1);
    CHECK(mw__mono() - t0 < 1.5);
    CHECK(y.done == 1 && y.code == MW_OK && y.status == 200 && y.cancel_on_data == NULL);
    CHECK(x.done == 0 && mw__http_active(h) == 0);
    xfer_clear(&y);

    CHECK(start(h, "http://pending.invalid/", 1, &x) != NULL);
    mw__loop_run_once(loop, 0);
    t0 = mw__mono();
    mw__http_free(h);
    CHECK(mw__mono() - t0 < 0.5);
    run_for(loop, 0.2);
    CHECK(x.done == 0);
    proxy_env(0, NULL);
}

int main(void)
{
    int isolated = t_isolate_network() && silent_dns();
    if (!isolated)
        printf("not isolated (not root?): names resolved by DNS skipped\n");
    proxy_env(0, NULL);
    srv = mw__mhd_start();
    px = mw__mproxy_start();
    CHECK(srv != NULL && px != NULL);
    if (!srv || !px)
        return TEST_RESULT();
    mw__loop *loop = t_loop();
    test_refused(loop);
    test_allowed(loop);
    test_direct(loop);
    if (isolated) {
        test_unresolved(loop);
        test_cancel_while_resolving(loop);
    }
    CHECK(mw__loop_timers(loop) == 0);
    mw__loop_free(loop);
    mw__mproxy_stop(px);
    mw__mhd_stop(srv);
    if (dns_fd >= 0)
        close(dns_fd);
    if (resolv_mounted)
        umount("/etc/resolv.conf");
    return TEST_RESULT();
}

/*
 * test_httpd.c - the status listener's HTTP server: a request answered,
 * malformed and oversize requests, a slow client, more connections than
 * allowed, running out of descriptors, and the address rules (loopback only unless allowed, unix
 * sockets). Client and server share one thread: every exchange turns the
 * loop itself, bounded in time.
 */
#include "core/base/httpd.h"
#include "core/base/util.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int handled;

static void handler(void *ud, const mw__httpd_req *req, mw__httpd_resp *resp)
{
    MW_UNUSED(ud);
    handled++;
    if (strcmp(req->path, "/hello")) {
        resp->status = 404;
        mw__buf_adds(&resp->body, "not found\n");
        return;
    }
    mw__buf_addf(&resp->body, "%s %s q=%s\n", req->method, req->path, req->query);
}

static mw__httpd *start(mw__loop *loop, const char *addr, size_t max_conns, double timeout)
{
    mw__httpd_opts o = {.loop = loop,
                        .addr = addr,
                        .max_conns = max_conns,
                        .timeout = timeout,
                        .max_request = 1024,
                        .handler = handler};
    mw__httpd *h = NULL;
    char *err = NULL;
    mw_code rc = mw__httpd_new(&o, &h, &err);
    if (rc != MW_OK)
        fprintf(stderr, "httpd: %s\n", err);
    free(err);
    return h;
}

static int connect_to(const mw__httpd *h)
{
    const char *a = mw__httpd_addr(h);
    int fd;
    if (a[0] == '/') {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", a);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&un, sizeof un) != 0)
            return close(fd), -1;
    } else {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_port = htons((uint16_t)atoi(strrchr(a, ':') + 1));
        inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&in, sizeof in) != 0)
            return close(fd), -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Reads until EOF, turning the loop; at most `secs`. Bytes read, -1 on
 * timeout. */
static ssize_t read_all(mw__loop *loop, int fd, char *out, size_t cap, double secs)
{
    size_t n = 0;
    double end = mw__mono() + secs;
    while (mw__mono() < end) {
        mw__loop_run_once(loop, 10);
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            out[n] = '\0';
            return (ssize_t)n;
        }
        if (r > 0)
            n += (size_t)r;
    }
    out[n] = '\0';
    return -1;
}

static void exchange(mw__loop *loop, mw__httpd *h, const char *req, size_t len, char *out,
                     size_t cap)
{
    int fd = connect_to(h);
    CHECK(fd >= 0);
    CHECK(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
    CHECK(read_all(loop, fd, out, cap, 3) >= 0);
    close(fd);
}

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) ? -1 : atoi(resp + 9);
}

static void test_get(mw__loop *loop, mw__httpd *h)
{
    char out[4096];
    const char *req = "GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
    exchange(loop, h, req, strlen(req), out, sizeof out);
    CHECK(status_of(out) == 200);
    CHECK(strstr(out, "Content-Length: 17\r\n") != NULL);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(strstr(out, "\r\n\r\nGET /hello q=x=1\n") != NULL);
    exchange(loop, h, "GET /nope HTTP/1.0\n\n", 20, out, sizeof out);
    CHECK(status_of(out) == 404);
}

static void test_malformed(mw__loop *loop, mw__httpd *h)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"get /hello HTTP/1.1\r\n\r\n", 400},
        {"GET hello HTTP/1.1\r\n\r\n", 400},
        {"GET /hello HTTP/2.0\r\n\r\n", 505},
        {"GET /hello FTP/1.0\r\n\r\n", 400},
        {"GET  /hello HTTP/1.1\r\n\r\n", 400},
        {"GET /hello HTTP/1.1\r\nno colon here\r\n\r\n", 400},
        {"GET /hello HTTP/1.1\r\n: empty name\r\n\r\n", 400},
    };
    char out[4096];
    int before = handled;
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        exchange(loop, h, cases[i].req, strlen(cases[i].req), out, sizeof out);
        if (status_of(out) != cases[i].status)
            fprintf(stderr, "case %zu: %s\n", i, out);
        CHECK(status_of(out) == cases[i].status);
    }
    static const char nul[] = "GET /hello\0 HTTP/1.1\r\n\r\n";
    exchange(loop, h, nul, sizeof nul - 1, out, sizeof out);
    CHECK(status_of(out) == 400);
    CHECK(handled == before);
}

static void test_oversize(mw__loop *loop, mw__httpd *h)
{
    char req[4096], out[4096];
    int n = snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', sizeof req - (size_t)n);
    int fd = connect_to(h);
    CHECK(fd >= 0);
    ssize_t sent = send(fd, req, sizeof req, MSG_NOSIGNAL);
    CHECK(sent > 1024);
    CHECK(read_all(loop, fd, out, sizeof out, 3) >= 0);
    CHECK(status_of(out) == 431);
    close(fd);
}

static void test_slow_client(mw__loop *loop, mw__httpd *h)
{
    char out[4096];
    int fd = connect_to(h);
    CHECK(fd >= 0);
    CHECK(send(fd, "GET /hel", 8, MSG_NOSIGNAL) == 8);
    double t0 = mw__mono();
    CHECK(read_all(loop, fd, out, sizeof out, 3) >= 0);
    double took = mw__mono() - t0;
    CHECK(status_of(out) == 408);
    CHECK(took >= 0.15 && took < 2);
    close(fd);
    CHECK(mw__httpd_conns(h) == 0);
}

/* Ten clients at once where four are allowed: six are turned away at
 * once, the four keep their slots until they time out. */
static void test_many(mw__loop *loop, mw__httpd *h)
{
    int fds[10], refused = 0;
    char out[4096];
    for (int i = 0; i < 10; i++)
        fds[i] = connect_to(h);
    for (int i = 0; i < 100 && mw__httpd_conns(h) < 4; i++)
        mw__loop_run_once(loop, 10);
    CHECK(mw__httpd_conns(h) == 4);
    for (int i = 0; i < 10; i++) {
        ssize_t r = recv(fds[i], out, sizeof out - 1, 0);
        if (r > 0) {
            out[r] = '\0';
            refused += status_of(out) == 503;
        }
    }
    CHECK(refused == 6);
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    double end = mw__mono() + 3;
    while (mw__httpd_conns(h) > 0 && mw__mono() < end)
        mw__loop_run_once(loop, 10);
    CHECK(mw__httpd_conns(h) == 0);
    /* and it still answers */
    exchange(loop, h, "GET /hello HTTP/1.1\r\n\r\n", 23, out, sizeof out);
    CHECK(status_of(out) == 200);
}

/* Out of descriptors: the server pauses accepting instead of spinning
 * on a listener that stays readable, and serves the waiting clients
 * once descriptors are back. */
static void test_out_of_fds(mw__loop *loop, mw__httpd *h)
{
    int fds[3], fill[1024], nfill = 0, maxfd = 0, calls = 0;
    char out[4096];
    struct rlimit old, low;
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_to(h);
        CHECK(send(fds[i], "GET /hello HTTP/1.1\r\n\r\n", 23, MSG_NOSIGNAL) == 23);
        maxfd = fds[i] > maxfd ? fds[i] : maxfd;
    }
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = (rlim_t)maxfd + 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    while (nfill < 1024 && (fill[nfill] = dup(0)) >= 0) /* the holes below it */
        nfill++;
    double end = mw__mono() + 0.3;
    while (mw__mono() < end)
        calls += mw__loop_run_once(loop, 10);
    CHECK(calls < 100);
    CHECK(mw__httpd_conns(h) == 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(read_all(loop, fds[i], out, sizeof out, 3) >= 0);
        CHECK(status_of(out) == 200);
        close(fds[i]);
    }
}

static void test_addresses(mw__loop *loop)
{
    static const char *bad[] = {"0.0.0.0:0",       "[::]:0", "10.1.2.3:80", "127.0.0.1", "1.2.3:80",
                                "127.0.0.1:99999", "",       "[::1]80"};
    char *err = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        CHECK(mw__httpd_check_addr(bad[i], 0, &err) == MW_EINVAL);
        CHECK(err != NULL);
        free(err);
        err = NULL;
    }
    CHECK(mw__httpd_check_addr("0.0.0.0:9100", 1, &err) == MW_OK);
    CHECK(mw__httpd_check_addr("[::1]:9100", 0, &err) == MW_OK);
    CHECK(mw__httpd_check_addr("localhost:9100", 0, &err) == MW_OK);
    CHECK(mw__httpd_check_addr("unix:/tmp/x.sock", 0, &err) == MW_OK);

    char path[] = "/tmp/mw_httpd_XXXXXX";
    CHECK(mkdtemp(path) != NULL);
    char *sock = mw__sprintf("%s/status.sock", path);
    mw__httpd *h = start(loop, sock, 4, 2);
    CHECK(h != NULL);
    if (h) {
        char out[4096];
        exchange(loop, h, "GET /hello HTTP/1.1\r\n\r\n", 23, out, sizeof out);
        CHECK(status_of(out) == 200);
        mw__httpd_free(h);
        CHECK(access(sock, F_OK) != 0);
    }
    rmdir(path);
    free(sock);
}

int main(void)
{
    mw__loop *loop = NULL;
    CHECK(mw__loop_new(&loop) == MW_OK);
    mw__httpd *h = start(loop, "127.0.0.1:0", 4, 0.2);
    CHECK(h != NULL);
    if (h) {
        test_get(loop, h);
        test_malformed(loop, h);
        test_oversize(loop, h);
        test_slow_client(loop, h);
        test_many(loop, h);
        test_out_of_fds(loop, h);
        CHECK(mw__httpd_conns(h) == 0);
        mw__httpd_free(h);
    }
    test_addresses(loop);
    mw__loop_free(loop);
    return TEST_RESULT();
}

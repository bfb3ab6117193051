/*
 * net.c - a check's non-blocking I/O: mw.http.request/get, mw.tcp.connect
 * and its sockets, mw.sleep.
 *
 * Each call starts one operation on the worker's loop (a curl transfer, a
 * connect, a wait for a socket, a timer), records it as sb->op, sets
 * sb->io_yield and yields with a continuation. The yield travels up
 * through the script's own coroutines (coro.c passes it on as it does a
 * preemption) to mw__sandbox_resume(), which returns MW_RUN_WAITING. The
 * operation's completion, on the loop thread, stores its results in the
 * op and calls sb->wake; the scheduler resumes the run, and the
 * continuation pushes the results and frees the op. So nothing blocks
 * and only the calling check waits.
 *
 * Ownership: the sandbox owns its op (freed by the continuation, or by
 * mw__net_stop() when the run is stopped: the transfer is cancelled, the
 * timer stopped). A socket is a userdata owning its mw__http_conn and its
 * receive buffer; it is linked in sb->socks so that a stopped run closes
 * every socket, and its __gc closes it. Values a binding needs across its
 * yield stay on its Lua stack; nothing malloc'd is held across a call that
 * can raise.
 *
 * Policy (instance config comes from container labels): only http and
 * https (core/base/http.c refuses other schemes, also on redirects), a
 * unix_socket only when its real path is on the operator's list, no
 * link-local address unless the operator allows it (http.c checks each
 * URL's host, redirects included, a name first resolved when a proxy
 * from the environment may carry the request, and every address it
 * connects to; mw.tcp never goes through a proxy).
 */
#include "lua/sandbox_int.h"

#include "core/base/buf.h"
#include "core/base/util.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BODY ((size_t)10 << 20)
#define MAX_HEADERS      64
#define SOCK_MT          "mw.tcp.socket"
#define RECV_CHUNK       16384
#define MAX_LINE         ((size_t)1 << 20)

enum op_kind { OP_HTTP, OP_CONNECT, OP_WAIT, OP_SLEEP, OP_AWS };

typedef struct mw__io_op {
    mw__sandbox *sb;
    enum op_kind kind;
    int done;
    char *what; /* "GET http://...", for messages */
    mw__http_req *req;
    mw__aws_req *aws;      /* OP_AWS (aws_lua.c) */
    struct mw__sock *sock; /* OP_WAIT */
    mw__timer timer;       /* OP_SLEEP, and the socket timeout of OP_WAIT */
    /* results */
    int timed_out;
    mw_code code;
    long status;
    char *body;
    size_t len;
    mw__buf hdrs; /* "name\0value\0"... */
    double elapsed, cert_not_after;
    char *err;
    mw__http_conn *conn;
    /* an engine request (mw__net_engine_get): who reads the answer */
    const mw__net_reader *reader;
    void *res;
} mw__io_op;

typedef struct mw__sock {
    mw__sandbox *sb;
    mw__http_conn *conn; /* NULL once closed */
    double timeout;      /* per operation; 0: the run's budget */
    char *buf;           /* received, not yet returned: buf[off..len) */
    size_t off, len, cap;
    int eof;
    char *peer; /* "host:port" */
    struct mw__sock *prev, *next;
} mw__sock;

/* ------------------------------------------------------------- ops */

static void op_free(mw__io_op *op)
{
    if (!op)
        return;
    if (op->req)
        mw__http_cancel(op->req);
    mw__aws_cancel(op->aws);
    if (op->sock && op->sock->conn)
        mw__http_conn_wait_cancel(op->sock->conn);
    if (op->sb->io)
        mw__timer_stop(op->sb->io->loop, &op->timer);
    if (op->conn)
        mw__http_conn_close(op->conn);
    mw__buf_free(&op->hdrs);
    free(op->body);
    free(op->err);
    free(op->what);
    free(op);
}

static void op_done(mw__io_op *op)
{
    op->done = 1;
    op->req = NULL;
    op->aws = NULL;
    if (op->sock && op->sock->conn)
        mw__http_conn_wait_cancel(op->sock->conn);
    mw__timer_stop(op->sb->io->loop, &op->timer);
    if (op->sb->wake)
        op->sb->wake(op->sb->wake_ud);
}

/* Seconds the run has left, at least a millisecond. */
static double time_left(const mw__sandbox *sb)
{
    double left = sb->deadline - mw__mono();
    return left > 0.001 ? left : 0.001;
}

/* Seconds an I/O call may wait: what the run has left, less a margin
 * (a tenth of its budget, at most 1 s) so that a check whose request
 * times out still has the time to report it. Checks pass Datadog's
 * `timeout` option both to the engine (the run's budget) and to their
 * requests; without the margin the run would be stopped at the very
 * moment its request gives up. */
static double io_left(const mw__sandbox *sb)
{
    double margin = sb->budget / 10 < 1 ? sb->budget / 10 : 1;
    double left = sb->deadline - margin - mw__mono();
    return left > 0.001 ? left : 0.001;
}

int mw__net_time_left(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    double left = sb && sb->co ? sb->deadline - mw__mono() : 0;
    lua_pushnumber(L, left > 0 ? left : 0);
    return 1;
}

/* A new op for the running call, or raises. */
static mw__io_op *op_new(lua_State *L, enum op_kind kind, const char *what)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__io_op *op = calloc(1, sizeof *op);
    if (!op || !(op->what = mw__strdup(what))) {
        free(op);
        luaL_error(L, "out of memory");
        return NULL;
    }
    op->sb = sb;
    op->kind = kind;
    mw__buf_init(&op->hdrs, 256u << 10);
    mw__timer_init(&op->timer, NULL, op);
    return op;
}

/* Makes `op` the run's pending operation and suspends the caller. */
static int op_wait(lua_State *L, mw__io_op *op, lua_KContext ctx, lua_KFunction k)
{
    mw__sandbox *sb = op->sb;
    sb->op = op;
    sb->io_yield = 1;
    return lua_yieldk(L, 0, ctx, k);
}

/* The completed op of the resumed run, now the caller's to free. */
static mw__io_op *op_take(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__io_op *op = sb->op;
    sb->op = NULL;
    return op;
}

static void op_timer_cb(mw__timer *t)
{
    mw__io_op *op = t->ud;
    op->timed_out = 1;
    op_done(op);
}

void mw__net_stop(mw__sandbox *sb)
{
    op_free(sb->op);
    sb->op = NULL;
    sb->io_yield = 0;
    while (sb->socks) {
        mw__sock *s = sb->socks;
        MW_LIST_REMOVE(sb->socks, s);
        mw__http_conn_close(s->conn);
        s->conn = NULL;
        s->eof = 1;
    }
}

void mw__net_fail(mw__sandbox *sb, const char *why)
{
    mw__io_op *op = sb->op;
    if (!op)
        return;
    if (op->req)
        mw__http_cancel(op->req);
    op->req = NULL;
    mw__aws_cancel(op->aws);
    op->aws = NULL;
    if (op->sock && op->sock->conn)
        mw__http_conn_wait_cancel(op->sock->conn);
    mw__timer_stop(sb->io->loop, &op->timer);
    op->done = 1;
    op->code = MW_ESTATE;
    free(op->err);
    op->err = mw__strdup(why);
}

const char *mw__net_what(const mw__sandbox *sb)
{
    return sb->op ? sb->op->what : NULL;
}

/* Raises unless the caller may suspend; returns the sandbox. */
static mw__sandbox *io_ready(lua_State *L, const char *fn)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb || !sb->io)
        luaL_error(L, "%s: no I/O here (only checks run by the engine can do I/O)", fn);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s: only possible during init() or run(), outside metamethods", fn);
    return sb;
}

/* ------------------------------------------------------------- for aws_lua.c */

mw__sandbox *mw__net_io_ready(lua_State *L, const char *fn)
{
    return io_ready(L, fn);
}

double mw__net_io_left(const mw__sandbox *sb)
{
    return io_left(sb);
}

mw__io_op *mw__net_op_new(lua_State *L, const char *what)
{
    return op_new(L, OP_AWS, what);
}

void mw__net_op_set_aws(mw__io_op *op, mw__aws_req *req)
{
    op->aws = req;
}

void mw__net_op_complete(mw__io_op *op, mw_code code, long status, const char *body, size_t len,
                         const char *err)
{
    op->code = code;
    op->status = status;
    op->len = body ? len : 0;
    if ((op->body = malloc(op->len + 1)) != NULL) {
        if (op->len)
            memcpy(op->body, body, op->len);
        op->body[op->len] = '\0';
    }
    if (err)
        op->err = mw__strdup(err);
    if (!op->body || (err && !op->err)) {
        op->code = MW_ENOMEM;
        op->len = 0;
    }
    op_done(op);
}

int mw__net_op_wait(lua_State *L, mw__io_op *op, lua_KFunction k)
{
    return op_wait(L, op, 0, k);
}

mw__io_op *mw__net_op_take(lua_State *L)
{
    return op_take(L);
}

void mw__net_op_results(const mw__io_op *op, mw__net_results *out)
{
    out->code = op->code;
    out->status = op->status;
    out->body = op->body ? op->body : "";
    out->len = op->body ? op->len : 0;
    out->err = op->err ? op->err : op->code != MW_OK ? mw_strerror(op->code) : NULL;
}

void mw__net_op_free(mw__io_op *op)
{
    op_free(op);
}

/* ------------------------------------------------------------- options */

static const char *opt_string(lua_State *L, int t, const char *k, const char *fn)
{
    int ty = lua_getfield(L, t, k);
    const char *v = NULL;
    if (ty == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a string, not %s", fn, k, lua_typename(L, ty));
    lua_pop(L, 1); /* the string stays referenced by the options table */
    return v;
}

static double opt_number(lua_State *L, int t, const char *k, double def, const char *fn)
{
    int ty = lua_getfield(L, t, k);
    double v = def;
    if (ty == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a number, not %s", fn, k, lua_typename(L, ty));
    lua_pop(L, 1);
    if (isnan(v) || v < 0)
        luaL_error(L, "%s: option '%s' must be a number >= 0", fn, k);
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k, int def, const char *fn)
{
    int ty = lua_getfield(L, t, k);
    int v = def;
    if (ty == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a boolean, not %s", fn, k, lua_typename(L, ty));
    lua_pop(L, 1);
    return v;
}

/* Raises on a key of table `t` not in `known`: a typo must not pass as
 * a default. */
static void opt_check_keys(lua_State *L, int t, const char *const *known, const char *fn)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option names must be strings", fn);
        const char *k = lua_tostring(L, -1);
        int found = 0;
        for (size_t i = 0; known[i] && !found; i++)
            found = strcmp(known[i], k) == 0;
        if (!found)
            luaL_error(L, "%s: unknown option '%s'", fn, k);
    }
}

static void opt_tls(lua_State *L, int t, mw__http_tls *tls, const char *fn)
{
    tls->no_verify = !opt_bool(L, t, "tls_verify", 1, fn);
    tls->ca_file = opt_string(L, t, "ca_file", fn);
    tls->client_cert = opt_string(L, t, "client_cert", fn);
    tls->client_key = opt_string(L, t, "client_key", fn);
}

/* Whether `path` names a socket the operator allowed (compared by real
 * path, so "/var/run/../run/docker.sock" is the socket it names). */
static int unix_socket_allowed(const mw__io_policy *p, const char *path)
{
    char want[PATH_MAX], have[PATH_MAX];
    if (!p || !realpath(path, want))
        return 0;
    for (size_t i = 0; i < p->n_unix_sockets; i++) {
        const char *allowed = p->unix_sockets[i];
        if (strcmp(allowed, want) == 0 || (realpath(allowed, have) && strcmp(have, want) == 0))
            return 1;
    }
    return 0;
}

/* Returns nil, message (a refusal or failure the check can handle). */
static int fail(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushnil(L);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

/* ------------------------------------------------------------- http */

static void http_done(void *ud, const mw__http_result *r)
{
    mw__io_op *op = ud;
    op->code = r->code;
    op->status = r->status;
    op->elapsed = r->elapsed;
    op->cert_not_after = r->cert_not_after;
    if (r->code == MW_OK) {
        size_t hn;
        const char *h = mw__http_header_block(op->req, &hn);
        if (mw__buf_add(&op->hdrs, h, hn) != MW_OK ||
            !(op->body = mw__http_take_body(op->req, &op->len))) {
            op->code = MW_ENOMEM;
            op->err = mw__strdup("out of memory");
        }
        size_t seen = op->hdrs.len + op->len;
        if (seen > op->sb->http_seen)
            op->sb->http_seen = seen;
    } else {
        op->err = mw__strdup(r->error ? r->error : mw_strerror(r->code));
    }
    op_done(op);
}

/* Pushes `name` in lower case. */
static void push_lower(lua_State *L, const char *name, size_t n)
{
    luaL_Buffer lb;
    char *low = luaL_buffinitsize(L, &lb, n);
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    luaL_pushresultsize(&lb, n);
}

/* Pushes the headers table: lower-case names, repeats joined by ", ". */
static void push_headers(lua_State *L, const mw__buf *b)
{
    const char *p = mw__buf_str(b), *end = p + b->len;
    int strings = 0; /* a name and a value each */
    for (const char *q = p; q < end; q++)
        strings += *q == '\0';
    lua_createtable(L, 0, strings / 2);
    while (p < end) {
        size_t nn = strlen(p);
        const char *name = p, *value = p + nn + 1;
        p = value + strlen(value) + 1;
        push_lower(L, name, nn);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushstring(L, value);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, value);
        }
        lua_rawset(L, -3);
    }
}

static int http_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    mw__io_op *op = mw__sandbox_of(L)->op;
    if (op->code != MW_OK) {
        fail(L, "%s: %s", op->what, op->err ? op->err : "failed");
        op_free(op_take(L));
        return 2;
    }
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, op->status);
    lua_setfield(L, -2, "status");
    lua_pushnumber(L, op->elapsed);
    lua_setfield(L, -2, "elapsed");
    if (op->cert_not_after > 0) {
        lua_pushnumber(L, op->cert_not_after);
        lua_setfield(L, -2, "cert_not_after");
    }
    push_headers(L, &op->hdrs);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, op->body, op->len);
    lua_setfield(L, -2, "body");
    op_free(op_take(L));
    return 1;
}

static const char *const http_keys[] = {
    "method",          "url",         "headers",          "body",      "timeout",
    "connect_timeout", "unix_socket", "tls_verify",       "ca_file",   "client_cert",
    "client_key",      "max_body",    "follow_redirects", "want_cert", NULL,
};

/* Pushes "Name: value" for each pair of the headers table at `t` and
 * returns their count; the strings stay on the stack. */
static int push_header_lines(lua_State *L, int t, const char *fn)
{
    int n = 0;
    if (lua_getfield(L, t, "headers") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: option 'headers' must be a table of name = value", fn);
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h)) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "%s: headers must map names to strings", fn);
        const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
        if (strpbrk(k, ":\r\n") || strpbrk(v, "\r\n"))
            luaL_error(L, "%s: header '%s' has a forbidden character", fn, k);
        if (++n > MAX_HEADERS)
            luaL_error(L, "%s: more than %d headers", fn, MAX_HEADERS);
        lua_pop(L, 1);
        luaL_checkstack(L, 2, "headers");
        lua_pushfstring(L, "%s: %s", k, v);
        lua_insert(L, h); /* keep the iteration key on top */
        h++;
    }
    lua_remove(L, h);
    return n;
}

/* curl's receive buffer for the instance's next request: about a quarter
 * of the largest answer it has had (a few reads for one like it), 1 KiB
 * until then. A buffer is held for the whole transfer: 16 KiB each for
 * thousands of checks waiting on slow servers is most of their memory. */
static size_t recv_buffer(const mw__sandbox *sb)
{
    size_t b = 1024;
    while (b < 16384 && b * 4 < sb->http_seen)
        b *= 2;
    return b;
}

/* The request described by the table at `t` (url/method given by the
 * caller override it when not NULL). */
static int http_start(lua_State *L, int t, const char *url, const char *fn)
{
    mw__sandbox *sb = io_ready(L, fn);
    opt_check_keys(L, t, http_keys, fn);
    mw__http_opts o = {0};
    o.url = url ? url : opt_string(L, t, "url", fn);
    if (!o.url)
        return luaL_error(L, "%s: option 'url' is required", fn);
    o.method = url ? "GET" : opt_string(L, t, "method", fn);
    size_t blen = 0;
    if (lua_getfield(L, t, "body") == LUA_TSTRING)
        o.body = lua_tolstring(L, -1, &blen);
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "%s: option 'body' must be a string", fn);
    lua_pop(L, 1);
    o.body_len = blen;
    o.unix_socket = opt_string(L, t, "unix_socket", fn);
    double left = io_left(sb);
    double timeout = opt_number(L, t, "timeout", 0, fn);
    o.timeout = timeout > 0 && timeout < left ? timeout : left;
    o.connect_timeout = opt_number(L, t, "connect_timeout", 0, fn);
    if (o.connect_timeout > o.timeout)
        o.connect_timeout = o.timeout;
    size_t room = sb->mem->cap > sb->mem->used ? (sb->mem->cap - sb->mem->used) / 2 : 1;
    double max_body = opt_number(L, t, "max_body", (double)DEFAULT_MAX_BODY, fn);
    o.max_body = max_body >= 1 && max_body < (double)room ? (size_t)max_body : room;
    o.recv_buffer = recv_buffer(sb);
    o.memo = &sb->http_memo;
    o.follow_redirects = opt_bool(L, t, "follow_redirects", 1, fn);
    o.want_cert = opt_bool(L, t, "want_cert", 0, fn);
    opt_tls(L, t, &o.tls, fn);
    const mw__io_policy *pol = sb->io->policy;
    o.deny_link_local = !(pol && pol->allow_link_local);
    if (o.unix_socket && !unix_socket_allowed(pol, o.unix_socket))
        return fail(L, "%s: refused: unix socket %s is not in check_unix_sockets", fn,
                    o.unix_socket);
    int base = lua_gettop(L);
    int nh = push_header_lines(L, t, fn);
    const char **lines = nh ? lua_newuserdatauv(L, (size_t)nh * sizeof *lines, 0) : NULL;
    for (int i = 0; i < nh; i++)
        lines[i] = lua_tostring(L, base + 1 + i);
    o.headers = lines;
    o.nheaders = (size_t)nh;
    o.done = http_done;
    char what[512];
    snprintf(what, sizeof what, "%s %s", o.method ? o.method : "GET", o.url);
    mw__io_op *op = op_new(L, OP_HTTP, what);
    o.ud = op;
    char *err = NULL;
    op->req = mw__http_start(sb->io->http, &o, &err);
    if (!op->req) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", what, err ? err : "out of memory");
        free(err);
        op_free(op);
        return 2;
    }
    lua_settop(L, base);
    return op_wait(L, op, 0, http_k);
}

static int http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return http_start(L, 1, NULL, "mw.http.request");
}

static int http_get(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_settop(L, 2);
    }
    return http_start(L, 2, url, "mw.http.get");
}

const luaL_Reg mw__http_funcs[] = {
    {"request", http_request},
    {"get", http_get},
    {NULL, NULL},
};

/* ------------------------------------------------------------- engine requests */

/* The answer is read into the caller's result (C, cannot raise) and the
 * op freed before anything is pushed: nothing is leaked if a push raises. */
static int engine_answer(lua_State *L, mw__io_op *op)
{
    const mw__net_reader *reader = op->reader;
    void *res = op->res;
    mw__net_answer a = {
        .code = op->code,
        .status = op->status,
        .body = op->body ? op->body : "",
        .len = op->len,
        .err = op->err ? op->err : "failed",
        .what = op->what,
    };
    reader->read(&a, res);
    op_free(op);
    return reader->push(L, res);
}

static int engine_get_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return engine_answer(L, op_take(L));
}

int mw__net_engine_get(lua_State *L, const char *fn, const char *url, double timeout,
                       size_t max_body, const mw__net_reader *reader, void *res)
{
    mw__sandbox *sb = io_ready(L, fn);
    double left = io_left(sb);
    mw__http_opts o = {
        .url = url,
        .timeout = timeout > 0 && timeout < left ? timeout : left,
        .max_body = max_body,
        .follow_redirects = 0, /* the URL is the engine's: not where an answer points */
        .deny_link_local = 0,  /* the ECS agent's endpoint is link-local on AWS */
        .direct = 1,           /* ... and no proxy can reach it */
        .done = http_done,
    };
    o.connect_timeout = o.timeout;
    char what[512];
    snprintf(what, sizeof what, "GET %s", url);
    mw__io_op *op = op_new(L, OP_HTTP, what);
    op->reader = reader;
    op->res = res;
    o.ud = op;
    char *err = NULL;
    op->req = mw__http_start(sb->io->http, &o, &err);
    if (!op->req) {
        op->code = MW_EIO;
        op->err = err ? err : mw__strdup("out of memory");
        return engine_answer(L, op);
    }
    return op_wait(L, op, 0, engine_get_k);
}

/* ------------------------------------------------------------- sleep */

static int sleep_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    op_free(op_take(L));
    return 0;
}

int mw__net_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    mw__sandbox *sb = io_ready(L, "mw.sleep");
    if (isnan(s) || s < 0)
        return luaL_error(L, "mw.sleep: seconds must be >= 0");
    char what[64];
    snprintf(what, sizeof what, "mw.sleep(%g)", s);
    mw__io_op *op = op_new(L, OP_SLEEP, what);
    op->timer.cb = op_timer_cb;
    double left = time_left(sb) + 1; /* past the deadline: the run is stopped first */
    uint64_t due = mw__loop_update_time(sb->io->loop) + (uint64_t)((s < left ? s : left) * 1e9);
    if (mw__timer_start(sb->io->loop, &op->timer, due) != 0) {
        op_free(op);
        return luaL_error(L, "out of memory");
    }
    return op_wait(L, op, 0, sleep_k);
}

/* ------------------------------------------------------------- tcp */

static mw__sock *check_sock(lua_State *L)
{
    return luaL_checkudata(L, 1, SOCK_MT);
}

/* An open socket (conn set) is on its sandbox's list; a closed one, or
 * one whose connect never completed, is not. */
static void sock_close(mw__sock *s)
{
    if (s->conn) {
        MW_LIST_REMOVE(s->sb->socks, s);
        mw__http_conn_close(s->conn);
    }
    s->conn = NULL;
    s->eof = 1;
    free(s->buf);
    s->buf = NULL;
    s->off = s->len = s->cap = 0;
}

/* Collected while an instance is made on the scheduling thread: an open
 * socket (its sandbox is alive: it closes its sockets when its run ends
 * or it is freed) leaves its connection to be closed on its worker. No
 * I/O waits on it: a socket something waits on is on a live stack. */
static void sock_defer(lua_State *L, mw__sock *s)
{
    MW_LIST_REMOVE(s->sb->socks, s);
    mw__lshare_defer_close(mw__lshare_of(L), s->conn);
    s->conn = NULL;
}

static int sock_gc(lua_State *L)
{
    mw__sock *s = check_sock(L);
    if (s->conn && mw__sandbox_of(L) && mw__lshare_of(L)->foreign)
        sock_defer(L, s);
    /* only an open socket surely has a live sandbox: its own closes it */
    if (s->conn && s->sb->op && s->sb->op->sock == s)
        s->sb->op->sock = NULL;
    sock_close(s);
    free(s->peer);
    s->peer = NULL;
    return 0;
}

static int sock_close_m(lua_State *L)
{
    sock_close(check_sock(L));
    lua_pushboolean(L, 1);
    return 1;
}

static int sock_settimeout(lua_State *L)
{
    mw__sock *s = check_sock(L);
    double t = luaL_optnumber(L, 2, 0);
    s->timeout = isnan(t) || t < 0 ? 0 : t;
    return 0;
}

static int sock_tostring(lua_State *L)
{
    mw__sock *s = check_sock(L);
    lua_pushfstring(L, "tcp socket (%s%s)", s->peer ? s->peer : "?", s->conn ? "" : ", closed");
    return 1;
}

static void sock_ready(void *ud)
{
    op_done(ud);
}

/* Suspends until `s` is ready (readable or writable) or its timeout. */
static int sock_wait(lua_State *L, mw__sock *s, int want_write, lua_KContext ctx, lua_KFunction k)
{
    mw__sandbox *sb = s->sb;
    char what[300];
    snprintf(what, sizeof what, "%s on %s", want_write ? "send" : "receive", s->peer);
    mw__io_op *op = op_new(L, OP_WAIT, what);
    op->sock = s;
    op->timer.cb = op_timer_cb;
    double left = io_left(sb);
    double t = s->timeout > 0 && s->timeout < left ? s->timeout : left;
    if (mw__http_conn_wait(s->conn, want_write, sock_ready, op) != 0 ||
        mw__timer_start(sb->io->loop, &op->timer,
                        mw__loop_update_time(sb->io->loop) + (uint64_t)(t * 1e9)) != 0) {
        op_free(op);
        return luaL_error(L, "out of memory");
    }
    return op_wait(L, op, ctx, k);
}

/* After a wait: 1 when it timed out (op freed either way). */
static int sock_waited(lua_State *L)
{
    mw__io_op *op = op_take(L);
    int timed_out = op && op->timed_out;
    int failed = op && op->code == MW_ESTATE;
    op_free(op);
    return timed_out ? 1 : failed ? 2 : 0;
}

static int sock_send_k(lua_State *L, int status, lua_KContext sent);

static int sock_send(lua_State *L)
{
    check_sock(L);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    io_ready(L, "socket:send");
    return sock_send_k(L, LUA_OK, 0);
}

static int sock_send_k(lua_State *L, int status, lua_KContext sent)
{
    mw__sock *s = check_sock(L);
    size_t len;
    const char *p = lua_tolstring(L, 2, &len);
    if (status == LUA_YIELD) {
        int w = sock_waited(L);
        if (w)
            return fail(L, w == 1 ? "timeout" : "cannot wait for I/O here");
    }
    while ((size_t)sent < len) {
        if (!s->conn)
            return fail(L, "closed");
        const char *err = NULL;
        long n = mw__http_conn_send(s->conn, p + sent, len - (size_t)sent, &err);
        if (n == MW_HTTP_AGAIN)
            return sock_wait(L, s, 1, sent, sock_send_k);
        if (n < 0)
            return fail(L, "%s", err ? err : "send failed");
        sent += n;
    }
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

/* Reads what is available into the buffer: 1 data or end of stream,
 * 0 would block, -1 error (message pushed). */
static int sock_fill(lua_State *L, mw__sock *s, size_t limit)
{
    if (s->off > 0 && s->off == s->len)
        s->off = s->len = 0;
    if (s->len - s->off >= limit)
        return luaL_error(L, "socket:receive: more than %d bytes buffered", (int)limit);
    if (s->cap - s->len < RECV_CHUNK) {
        if (s->off > 0) {
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        if (s->cap - s->len < RECV_CHUNK) {
            size_t ncap = s->cap ? s->cap * 2 : RECV_CHUNK;
            while (ncap - s->len < RECV_CHUNK)
                ncap *= 2;
            char *nb = realloc(s->buf, ncap);
            if (!nb)
                return luaL_error(L, "out of memory");
            s->buf = nb;
            s->cap = ncap;
        }
    }
    const char *err = NULL;
    long n = mw__http_conn_recv(s->conn, s->buf + s->len, s->cap - s->len, &err);
    if (n == MW_HTTP_AGAIN)
        return 0;
    if (n < 0) {
        lua_pushstring(L, err ? err : "receive failed");
        return -1;
    }
    if (n == 0)
        s->eof = 1;
    s->len += (size_t)n;
    return 1;
}

/* Pushes the answer to `pat` from the buffer if it is there: 1 pushed,
 * 0 need more. At end of stream, "*a" takes the rest; others fail. */
static int sock_take(lua_State *L, mw__sock *s, const char *pat, lua_Integer want)
{
    const char *p = s->buf + s->off;
    size_t have = s->len - s->off;
    if (want > 0) {
        if (have < (size_t)want)
            return 0;
        lua_pushlstring(L, p, (size_t)want);
        s->off += (size_t)want;
        return 1;
    }
    if (pat[1] == 'a') {
        if (!s->eof)
            return 0;
        lua_pushlstring(L, p, have);
        s->off += have;
        return 1;
    }
    const char *nl = have ? memchr(p, '\n', have) : NULL;
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - p);
    lua_pushlstring(L, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
    s->off += n + 1;
    return 1;
}

/* nil, err, partial (what was buffered, consumed). */
static int sock_fail_partial(lua_State *L, mw__sock *s, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushlstring(L, s->buf ? s->buf + s->off : "", s->len - s->off);
    s->off = s->len = 0;
    return 3;
}

static int sock_receive_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    mw__sock *s = check_sock(L);
    mw__sandbox *sb = s->sb;
    lua_Integer want = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    const char *pat = want ? "" : lua_tostring(L, 2);
    if (status == LUA_YIELD) {
        int w = sock_waited(L);
        if (w)
            return sock_fail_partial(L, s, w == 1 ? "timeout" : "cannot wait for I/O here");
    }
    size_t limit = sb->mem->cap > sb->mem->used ? (sb->mem->cap - sb->mem->used) / 2 : 1;
    if (!want && pat[1] == 'l' && limit > MAX_LINE)
        limit = MAX_LINE;
    for (;;) {
        if (sock_take(L, s, pat, want))
            return 1;
        if (s->eof)
            return sock_fail_partial(L, s, "closed");
        if (!s->conn)
            return sock_fail_partial(L, s, "closed");
        int r = sock_fill(L, s, limit);
        if (r < 0) {
            const char *e = lua_tostring(L, -1);
            return sock_fail_partial(L, s, e);
        }
        if (r == 0)
            return sock_wait(L, s, 0, 0, sock_receive_k);
    }
}

static int sock_receive(lua_State *L)
{
    check_sock(L);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushliteral(L, "*l");
    }
    lua_settop(L, 2);
    if (lua_isinteger(L, 2)) {
        if (lua_tointeger(L, 2) <= 0)
            return luaL_error(L, "socket:receive: count must be > 0");
    } else {
        const char *pat = luaL_checkstring(L, 2);
        if (strcmp(pat, "*l") != 0 && strcmp(pat, "*a") != 0 && strcmp(pat, "l") != 0 &&
            strcmp(pat, "a") != 0)
            return luaL_error(L, "socket:receive: pattern must be \"*l\", \"*a\" or a count");
        lua_pushfstring(L, "*%s", pat[0] == '*' ? pat + 1 : pat);
        lua_replace(L, 2);
    }
    io_ready(L, "socket:receive");
    return sock_receive_k(L, LUA_OK, 0);
}

static const luaL_Reg sock_methods[] = {
    {"send", sock_send},
    {"receive", sock_receive},
    {"close", sock_close_m},
    {"settimeout", sock_settimeout},
    {NULL, NULL},
};

static void sock_metatable(lua_State *L)
{
    if (luaL_newmetatable(L, SOCK_MT)) {
        luaL_newlib(L, sock_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, sock_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, sock_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, sock_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "mw.tcp.socket");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
}

static void connect_done(void *ud, mw__http_conn *c, const mw__http_result *r)
{
    mw__io_op *op = ud;
    op->code = r->code;
    op->conn = c;
    if (!c)
        op->err = mw__strdup(r->error ? r->error : mw_strerror(r->code));
    op_done(op);
}

/* Stack: host, port, opts, socket userdata. */
static int tcp_connect_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    mw__io_op *op = mw__sandbox_of(L)->op;
    mw__sock *s = lua_touserdata(L, 4);
    if (!op->conn) {
        const char *e = op->err ? op->err : "failed";
        if (strncmp(e, "connect to ", 11) == 0) /* names its target already */
            fail(L, "%s", e);
        else
            fail(L, "connect to %s: %s", s->peer, e);
        op_free(op_take(L));
        return 2;
    }
    op_take(L);
    s->conn = op->conn;
    op->conn = NULL;
    op_free(op);
    MW_LIST_PUSH(s->sb->socks, s);
    lua_settop(L, 4);
    return 1;
}

static const char *const tcp_keys[] = {
    "timeout", "tls", "tls_verify", "ca_file", "client_cert", "client_key", NULL,
};

static int tcp_connect(lua_State *L)
{
    const char *fn = "mw.tcp.connect";
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    if (port < 1 || port > 65535)
        return luaL_error(L, "%s: port %d out of range", fn, (int)port);
    if (lua_isnoneornil(L, 3)) {
        lua_settop(L, 2);
        lua_newtable(L);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    mw__sandbox *sb = io_ready(L, fn);
    opt_check_keys(L, 3, tcp_keys, fn);
    mw__http_conn_opts o = {0};
    o.host = host;
    o.port = (unsigned)port;
    o.tls = opt_bool(L, 3, "tls", 0, fn);
    opt_tls(L, 3, &o.tls_opts, fn);
    double timeout = opt_number(L, 3, "timeout", 0, fn), left = io_left(sb);
    o.connect_timeout = timeout > 0 && timeout < left ? timeout : left;
    o.deny_link_local = !(sb->io->policy && sb->io->policy->allow_link_local);
    o.done = connect_done;
    mw__sock *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->sb = sb;
    s->timeout = timeout;
    sock_metatable(L);
    int v6 = strchr(host, ':') != NULL;
    if (!(s->peer = mw__sprintf(v6 ? "[%s]:%d" : "%s:%d", host, (int)port)))
        return luaL_error(L, "out of memory");
    char what[300];
    snprintf(what, sizeof what, "connect to %s", s->peer);
    mw__io_op *op = op_new(L, OP_CONNECT, what);
    o.ud = op;
    char *err = NULL;
    op->req = mw__http_connect(sb->io->http, &o, &err);
    if (!op->req) {
        lua_pushnil(L);
        lua_pushfstring(L, "connect to %s: %s", s->peer, err ? err : "out of memory");
        free(err);
        op_free(op);
        return 2;
    }
    return op_wait(L, op, 0, tcp_connect_k);
}

const luaL_Reg mw__tcp_funcs[] = {
    {"connect", tcp_connect},
    {NULL, NULL},
};

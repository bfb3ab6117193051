/*
 * aws_lua.c - mw.aws: AWS API requests for checks, signed by the engine
 * with credentials the check never sees (core/base/aws.h).
 *
 *   mw.aws.request{service = "ecs", target = "AmazonEC2ContainerServiceV20141113.ListClusters",
 *                  region = "us-east-1", body = {...} or "json", timeout = seconds}
 *     -> {status = 200, body = "<json text>", json = <decoded table>}
 *     -> nil, err  ("AccessDeniedException: User ... is not authorized ...",
 *                   "no AWS credentials: environment (...), ...", a refusal)
 *
 * `region` and `timeout` are optional (the default region; the run's
 * budget less its margin, as mw.http). `body` is a table (encoded as
 * mw.json.encode does, {} for an empty one), a JSON string, or nil ("{}").
 * `json` is absent when the answer is not JSON. The call suspends only
 * the calling check, as mw.http does (net.c); wrong arguments raise.
 *
 * Ownership: the request (and its copy of the credentials) belongs to
 * the run's pending operation, cancelled with it when the run is
 * stopped. Nothing malloc'd is held across a call that can raise.
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FN               "mw.aws.request"
#define DEFAULT_MAX_BODY ((size_t)10 << 20)

static const char *const keys[] = {"service", "region", "target", "body", "timeout", NULL};

static void check_keys(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int found = 0;
        for (size_t i = 0; k && keys[i] && !found; i++)
            found = strcmp(keys[i], k) == 0;
        if (!found)
            luaL_error(L, "%s: unknown option '%s'", FN, k ? k : luaL_typename(L, -1));
    }
}

/* A string option (the table keeps it alive); NULL when nil. */
static const char *opt_str(lua_State *L, const char *k, int required)
{
    int ty = lua_getfield(L, 1, k);
    const char *v = ty == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    if (ty != LUA_TSTRING && (ty != LUA_TNIL || required))
        luaL_error(L, "%s: option '%s' must be a string%s", FN, k, required ? " (required)" : "");
    return v;
}

/* Pushes the body as JSON text. */
static void push_body(lua_State *L)
{
    int ty = lua_getfield(L, 1, "body");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "{}");
    } else if (ty == LUA_TTABLE) {
        lua_pushcfunction(L, mw__json_encode);
        lua_insert(L, -2);
        lua_call(L, 1, 1);
    } else if (ty != LUA_TSTRING) {
        luaL_error(L, "%s: option 'body' must be a table or a JSON string", FN);
    }
}

static double opt_timeout(lua_State *L, const mw__sandbox *sb)
{
    double left = mw__net_io_left(sb), t = 0;
    int ty = lua_getfield(L, 1, "timeout");
    if (ty == LUA_TNUMBER)
        t = lua_tonumber(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option 'timeout' must be a number", FN);
    lua_pop(L, 1);
    if (isnan(t) || t < 0)
        luaL_error(L, "%s: option 'timeout' must be a number >= 0", FN);
    return t > 0 && t < left ? t : left;
}

static void aws_done(void *ud, const mw__aws_result *r)
{
    mw__net_op_complete(ud, r->code, r->status, r->body, r->len, r->error);
}

/* json = mw.json.decode(body), when it decodes. */
static void set_json(lua_State *L, int res)
{
    lua_pushcfunction(L, mw__json_decode);
    lua_getfield(L, res, "body");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        lua_setfield(L, res, "json");
    else
        lua_pop(L, 1);
}

static int request_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    mw__io_op *op = mw__net_op_take(L);
    mw__net_results r;
    mw__net_op_results(op, &r);
    if (r.code != MW_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, r.err ? r.err : "failed");
        mw__net_op_free(op);
        return 2;
    }
    lua_createtable(L, 0, 3);
    int res = lua_gettop(L);
    lua_pushinteger(L, r.status);
    lua_setfield(L, res, "status");
    lua_pushlstring(L, r.body, r.len);
    lua_setfield(L, res, "body");
    mw__net_op_free(op);
    set_json(L, res);
    return 1;
}

static int aws_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    mw__sandbox *sb = mw__net_io_ready(L, FN);
    check_keys(L);
    mw__aws_call c = {0};
    c.service = opt_str(L, "service", 1);
    c.target = opt_str(L, "target", 1);
    c.region = opt_str(L, "region", 0);
    double timeout = opt_timeout(L, sb);
    push_body(L); /* stays on the stack until the request copied it */
    c.body = lua_tolstring(L, -1, &c.body_len);
    const mw__io_policy *pol = sb->io->policy;
    if (!pol || !pol->aws) {
        luaL_pushfail(L);
        lua_pushliteral(L, FN ": AWS requests are not available here");
        return 2;
    }
    size_t room = sb->mem->cap > sb->mem->used ? (sb->mem->cap - sb->mem->used) / 2 : 1;
    c.max_body = room < DEFAULT_MAX_BODY ? room : DEFAULT_MAX_BODY;
    c.deadline = mw__mono() + timeout;
    c.deny_link_local = !pol->allow_link_local;
    c.http = sb->io->http;
    c.loop = sb->io->loop;
    c.done = aws_done;
    const char *dot = strchr(c.target, '.');
    char what[256];
    snprintf(what, sizeof what, "%s %s", c.service, dot ? dot + 1 : c.target);
    mw__io_op *op = mw__net_op_new(L, what);
    c.ud = op;
    char *err = NULL;
    mw__aws_req *req = mw__aws_start(pol->aws, &c, &err);
    if (!req) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", FN, err ? err : "out of memory");
        free(err);
        mw__net_op_free(op);
        return 2;
    }
    mw__net_op_set_aws(op, req);
    lua_settop(L, 1);
    return mw__net_op_wait(L, op, request_k);
}

static const luaL_Reg aws_funcs[] = {
    {"request", aws_request},
    {NULL, NULL},
};

void mw__open_aws(lua_State *L)
{
    lua_createtable(L, 0, 2);
    luaL_setfuncs(L, aws_funcs, 0);
    lua_pushliteral(L, "mw.aws");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "aws");
    lua_pop(L, 1);
}

/*
 * helpers.h - the helpers bundled and third-party checks share through
 * `mw`, since a check cannot `require` a module of its own: the option
 * readers (mw.opt, opt.c), tag normalisation (mw.tag, tag.c) and base64
 * (mw.base64, base64.c).
 *
 * Each opener makes its read-only sub-table and sets it in the table on
 * top of the stack under its name ("opt", "tag", "base64"). api.c calls
 * them on first use, so a check that never reads them never pays for
 * them. Not for use outside lua/.
 */
#ifndef MW_LUA_HELPERS_H
#define MW_LUA_HELPERS_H

#include <lua.h>

void mw__open_opt(lua_State *L);
void mw__open_tag(lua_State *L);
void mw__open_base64(lua_State *L);

#endif

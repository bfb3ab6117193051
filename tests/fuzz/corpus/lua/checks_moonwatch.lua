0-- moonwatch: the engine watching itself — scheduled instances, check runs
-- and failures, live aggregator contexts, records delivered and the memory
-- every Lua sandbox holds.
--
-- Instance options: none beyond the common ones.

local check = {}

function check.run(self)
  local s = mw.engine_stats()
  if not s then
    error("engine stats are not available")
  end
  mw.gauge("moonwatch.instances", s.instances)
  mw.monotonic_count("moonwatch.runs", s.runs)
  mw.monotonic_count("moonwatch.errors", s.errors)
  mw.gauge("moonwatch.contexts", s.contexts)
  mw.monotonic_count("moonwatch.records", s.records)
  mw.gauge("moonwatch.lua.memory", s.lua_bytes)
  mw.gauge("moonwatch.lua.self_memory", collectgarbage("count") * 1024)
  mw.service_check("moonwatch.up", mw.OK)
end

return check

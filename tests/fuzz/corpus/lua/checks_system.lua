0-- system: host load, memory, swap, CPU and uptime from /proc, with the
-- metric names of the Datadog `system` checks (memory in MiB, CPU in
-- percent of all cores over the time since the previous run).
--
-- Instance options: none beyond the common ones (tags, service,
-- min_collection_interval).

local check = {}

local function proc(name)
  local text, err = mw.proc.read(name)
  if not text then
    error("cannot read /proc/" .. name .. ": " .. tostring(err))
  end
  return text
end

local function cpu_count(stat)
  local n = 0
  for _ in stat:gmatch("\ncpu%d+ ") do
    n = n + 1
  end
  return math.max(n, 1)
end

local function load(stat)
  local l1, l5, l15 = proc("loadavg"):match("^(%S+) (%S+) (%S+)")
  l1, l5, l15 = tonumber(l1), tonumber(l5), tonumber(l15)
  local cores = cpu_count(stat)
  mw.gauge("system.load.1", l1)
  mw.gauge("system.load.5", l5)
  mw.gauge("system.load.15", l15)
  mw.gauge("system.load.norm.1", l1 / cores)
  mw.gauge("system.load.norm.5", l5 / cores)
  mw.gauge("system.load.norm.15", l15 / cores)
  mw.gauge("system.cpu.num_cores", cores)
end

local function meminfo()
  local m = {}
  for key, kb in proc("meminfo"):gmatch("(%w+):%s+(%d+)") do
    m[key] = tonumber(kb) / 1024 -- MiB
  end
  return m
end

local function memory()
  local m = meminfo()
  local total, free = m.MemTotal or 0, m.MemFree or 0
  local usable = m.MemAvailable or (free + (m.Buffers or 0) + (m.Cached or 0))
  mw.gauge("system.mem.total", total)
  mw.gauge("system.mem.free", free)
  mw.gauge("system.mem.used", total - free)
  mw.gauge("system.mem.usable", usable)
  mw.gauge("system.mem.cached", m.Cached or 0)
  mw.gauge("system.mem.buffered", m.Buffers or 0)
  if total > 0 then
    mw.gauge("system.mem.pct_usable", usable / total)
  end
  local stotal, sfree = m.SwapTotal or 0, m.SwapFree or 0
  mw.gauge("system.swap.total", stotal)
  mw.gauge("system.swap.free", sfree)
  mw.gauge("system.swap.used", stotal - sfree)
  if stotal > 0 then
    mw.gauge("system.swap.pct_free", sfree / stotal)
  end
end

-- /proc/stat's first line: cpu user nice system idle iowait irq softirq steal
local function cpu_times(stat)
  local f = {}
  for v in stat:match("^cpu%s+([^\n]+)"):gmatch("%d+") do
    f[#f + 1] = tonumber(v)
  end
  return {
    user = f[1] + f[2], system = f[3] + (f[6] or 0) + (f[7] or 0),
    idle = f[4], iowait = f[5] or 0, stolen = f[8] or 0,
  }
end

local function cpu(self, stat)
  local now = cpu_times(stat)
  local prev = self.prev_cpu
  self.prev_cpu = now
  if not prev then
    return -- percentages need two readings
  end
  local total = 0
  for k, v in pairs(now) do
    total = total + (v - prev[k])
  end
  if total <= 0 then
    return
  end
  for _, k in ipairs({ "user", "system", "idle", "iowait", "stolen" }) do
    mw.gauge("system.cpu." .. k, 100 * (now[k] - prev[k]) / total)
  end
end

function check.run(self)
  local stat = proc("stat")
  load(stat)
  memory()
  cpu(self, stat)
  local up = tonumber(proc("uptime"):match("^(%S+)"))
  mw.gauge("system.uptime", up)
end

return check

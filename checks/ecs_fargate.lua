-- ecs_fargate: the resources one container of the ECS task moonwatch runs
-- in uses, with the metric names and types of Datadog's ECS Fargate
-- integration, from the task metadata endpoint
-- (${ECS_CONTAINER_METADATA_URI_V4}/task/stats and /task, read by the
-- engine through mw.ecs: a check never names that link-local URL). The
-- bundled templates/ecs_fargate.d/auto_conf.yaml runs one instance per
-- container of the task (ad_identifiers: [_ecs_task_container]), with the
-- container's tags.
--
-- Metrics, each absent when the payload does not have it (cgroup v2 has
-- no max_usage, rss nor cache):
--   ecs.fargate.cpu.percent           gauge, percent of one CPU (200: two
--                                     busy), as `docker stats` computes it
--                                     from two samples: this run's and the
--                                     last run's; the first run sends none
--   ecs.fargate.cpu.usage, .user,     rate, ns of CPU time per second
--   .system                           (total, user, kernel)
--   ecs.fargate.cpu.limit             gauge, the container's CPU units
--                                     (1024 a vCPU) in /task, when set
--   ecs.fargate.mem.usage             gauge, bytes (memory_stats.usage)
--   ecs.fargate.mem.working_set       gauge, bytes, what `docker stats`
--                                     shows: usage - cache (cgroup v1),
--                                     usage - inactive_file (v2)
--   ecs.fargate.mem.limit             gauge, bytes, when limited
--   ecs.fargate.mem.rss, .cache,      gauge, bytes (cgroup v1)
--   .max_usage
--   ecs.fargate.io.bytes.read/write,  rate, bytes and operations per
--   ecs.fargate.io.ops.read/write     second, all block devices
--   ecs.fargate.net.bytes_rcvd/sent   rate, bytes per second, per
--                                     interface (interface:<name>)
--   ecs.fargate.net.rcvd_errors/      gauge, errors, per interface
--   sent_errors
-- Service check fargate_check: OK when the endpoint answered, CRITICAL
-- with the reason when it did not or its answer is not what it should be.
-- Rates are first sent on an instance's second run.
--
-- Instance options: container_id (required, "%%container_id%%": the
-- DockerId) and the common ones.

local opt = mw.opt
local check = {}

local MEM = { -- gauges and their field in mw.ecs.task_stats().mem
  { "ecs.fargate.mem.usage", "usage" },
  { "ecs.fargate.mem.working_set", "working_set" },
  { "ecs.fargate.mem.limit", "limit" },
  { "ecs.fargate.mem.rss", "rss" },
  { "ecs.fargate.mem.cache", "cache" },
  { "ecs.fargate.mem.max_usage", "max_usage" },
}

local RATES = { -- rates: group, field, metric
  { "cpu", "usage_ns", "ecs.fargate.cpu.usage" },
  { "cpu", "user_ns", "ecs.fargate.cpu.user" },
  { "cpu", "system_ns", "ecs.fargate.cpu.system" },
  { "io", "read_bytes", "ecs.fargate.io.bytes.read" },
  { "io", "write_bytes", "ecs.fargate.io.bytes.write" },
  { "io", "read_ops", "ecs.fargate.io.ops.read" },
  { "io", "write_ops", "ecs.fargate.io.ops.write" },
}

function check.init(self)
  local inst = self.instance
  local id = opt.string(inst, "container_id", opt.REQUIRED)
  if #id > 128 or id:find("[^%w_.-]") then
    opt.error("container_id", "container id (1 to 128 of A-Z a-z 0-9 _ . -)", id)
  end
  self.id = id
  self.opts = { timeout = opt.timeout(self) }
end

-- docker stats: the container's CPU time over the host's (all CPUs) in
-- the same interval, times the CPUs online. The interval is the one
-- between this run's sample and the last run's: the sample's own
-- precpu_stats is zeros in the first stats of a container and spans only
-- the agent's last second.
local function cpu_percent(self, cpu)
  local prev = self.prev
  self.prev = cpu
  if not (prev and cpu.usage_ns and prev.usage_ns and cpu.host_ns and prev.host_ns) then
    return
  end
  local used, host = cpu.usage_ns - prev.usage_ns, cpu.host_ns - prev.host_ns
  if used >= 0 and host > 0 and cpu.online then -- a counter that went back: a new container
    mw.gauge("ecs.fargate.cpu.percent", 100 * cpu.online * used / host)
  end
end

local function network(net)
  for name, n in pairs(net) do
    local t = { "interface:" .. name }
    if n.rx_bytes then mw.rate("ecs.fargate.net.bytes_rcvd", n.rx_bytes, t) end
    if n.tx_bytes then mw.rate("ecs.fargate.net.bytes_sent", n.tx_bytes, t) end
    if n.rx_errors then mw.gauge("ecs.fargate.net.rcvd_errors", n.rx_errors, t) end
    if n.tx_errors then mw.gauge("ecs.fargate.net.sent_errors", n.tx_errors, t) end
  end
end

local function submit(self, s)
  cpu_percent(self, s.cpu)
  for i = 1, #RATES do
    local r = RATES[i]
    local v = s[r[1]][r[2]]
    if v then mw.rate(r[3], v) end
  end
  for i = 1, #MEM do
    local v = s.mem[MEM[i][2]]
    if v then mw.gauge(MEM[i][1], v) end
  end
  local cpu_limit = self.limits and self.limits.cpu
  if cpu_limit then
    mw.gauge("ecs.fargate.cpu.limit", cpu_limit)
  end
  network(s.net)
end

-- The task's limits do not change while it runs: /task is read until it
-- lists the container, then kept.
local function limits(self)
  if self.limits then
    return true
  end
  local l, err = mw.ecs.task_limits(self.id, self.opts)
  if l == nil then
    return nil, err
  end
  self.limits = l or nil -- false: not listed (yet), no limit to send
  return true
end

function check.run(self)
  local ok, err = limits(self)
  local s
  if ok then
    s, err = mw.ecs.task_stats(self.id, self.opts)
  end
  if s == nil then
    mw.service_check("fargate_check", mw.CRITICAL, nil, err)
    return
  end
  mw.service_check("fargate_check", mw.OK)
  if not s then -- the endpoint works; no stats of this container (yet)
    mw.warning(err)
    return
  end
  submit(self, s)
end

return check

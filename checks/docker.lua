-- docker: the resources one container uses, with the metric names of
-- Datadog's Docker integration, read from the host's cgroups and /proc
-- (mw.container.stats: no Docker API call). The bundled
-- templates/docker.d/auto_conf.yaml runs one instance per discovered
-- container (ad_identifiers: [_any_container]), with the container's tags.
--
-- Metrics, each tagged runtime:docker besides the container's tags:
--   docker.cpu.usage, docker.cpu.user,   gauge, percent of one core (200:
--   docker.cpu.system                    two cores busy), from two samples
--                                        as `docker stats` computes it; the
--                                        first run sends none
--   docker.cpu.throttled                 rate, CFS periods throttled per s
--   docker.cpu.throttled.time            rate, time throttled in hundredths
--                                        of a second per second (Datadog
--                                        sends nanoseconds / 1e7 as a rate)
--   docker.mem.rss, docker.mem.cache     gauge, bytes (anonymous memory,
--                                        page cache)
--   docker.mem.swap                      gauge, bytes (with swap accounting)
--   docker.mem.limit, docker.mem.sw_limit  gauge, bytes, when a limit is set
--                                        (sw_limit: memory + swap)
--   docker.mem.in_use                    gauge, fraction: usage / limit
--   docker.io.read_bytes,                rate, bytes per second, all block
--   docker.io.write_bytes                devices
--   docker.net.bytes_rcvd,               rate, bytes per second, per
--   docker.net.bytes_sent                interface (docker_network:<name>);
--                                        none on the host's network
--   docker.thread.count                  gauge, tasks in the container
-- Rates are first sent on an instance's second run.
--
-- Instance options: container_id (required, "%%container_id%%"), pid
-- (optional, "%%pid%%": finds the cgroup from /proc/<pid>/cgroup when the
-- runtime put it where the id alone cannot find it), and the common ones.

local opt = mw.opt
local check = {}

local CPU = { -- the percent gauges and their counters in mw.container.stats
  { "docker.cpu.usage", "usage_ns" },
  { "docker.cpu.user", "user_ns" },
  { "docker.cpu.system", "system_ns" },
}

function check.init(self)
  local inst = self.instance
  local id = opt.string(inst, "container_id", opt.REQUIRED)
  if #id ~= 64 or id:find("[^0-9a-f]") then
    opt.error("container_id", "container id (64 lowercase hex digits)", id)
  end
  self.id = id
  self.pid = opt.integer(inst, "pid", nil, 1, 4194304)
  self.tags = { "runtime:docker" }
end

-- Percent of one core over the interval: docker stats divides the
-- container's CPU time by the host's (all CPUs) over the same interval and
-- multiplies by the number of CPUs, which is the elapsed time; that time
-- is read here from the monotonic clock of each sample.
local function cpu_percent(self, s)
  local prev = self.prev
  self.prev = s
  local dt = prev and (s.time - prev.time) * 1e9
  if not dt or dt <= 0 then
    return
  end
  for i = 1, #CPU do
    local name, key = CPU[i][1], CPU[i][2]
    local now, before = s.cpu[key], prev.cpu[key]
    if now and before and now >= before then -- a counter that went back: a new container
      mw.gauge(name, 100 * (now - before) / dt, self.tags)
    end
  end
end

local function gauge(name, v, tags)
  if v then
    mw.gauge(name, v, tags)
  end
end

local function rate(name, v, tags)
  if v then
    mw.rate(name, v, tags)
  end
end

local function memory(self, m)
  local t = self.tags
  gauge("docker.mem.rss", m.rss, t)
  gauge("docker.mem.cache", m.cache, t)
  gauge("docker.mem.swap", m.swap, t)
  gauge("docker.mem.limit", m.limit, t)
  gauge("docker.mem.sw_limit", m.sw_limit, t)
  if m.usage and m.limit and m.limit > 0 then
    mw.gauge("docker.mem.in_use", m.usage / m.limit, t)
  end
end

local function network(self, net)
  for name, n in pairs(net or {}) do
    local t = { "runtime:docker", "docker_network:" .. name }
    mw.rate("docker.net.bytes_rcvd", n.rx_bytes, t)
    mw.rate("docker.net.bytes_sent", n.tx_bytes, t)
  end
end

-- A container found before whose cgroup is gone has stopped, and its
-- instance is about to go: a warning, not a failure. So is one not found
-- at its first run (it may have stopped before that run, its instance
-- not removed yet); not found twice running, it fails the run (a wrong
-- cgroup_root, a container of another host).
function check.run(self)
  local s, err = mw.container.stats(self.id, self.pid)
  if not s then
    self.misses = (self.misses or 0) + 1
    if self.found or self.misses == 1 then
      mw.warning(err)
      return
    end
    error(err, 0)
  end
  self.found, self.misses = true, 0
  local t = self.tags
  cpu_percent(self, s)
  rate("docker.cpu.throttled", s.cpu.throttled_periods, t)
  rate("docker.cpu.throttled.time", s.cpu.throttled_ns and s.cpu.throttled_ns / 1e7, t)
  memory(self, s.mem)
  rate("docker.io.read_bytes", s.io.read_bytes, t)
  rate("docker.io.write_bytes", s.io.write_bytes, t)
  network(self, s.net)
  gauge("docker.thread.count", s.threads, t)
end

return check

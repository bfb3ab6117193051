-- container: CPU time, resident memory and threads of one process, read
-- from /proc/<pid>, and whether that process is still there. Meant for
-- autodiscovery with `pid: "%%pid%%"`, which resolves to the container's
-- main process (with `docker run --init`, the init process that runs it).
--
-- Metrics:
--   container.cpu.user, container.cpu.system  monotonic_count, seconds of
--                                             CPU time (utime, stime)
--   container.mem.rss                         gauge, bytes (VmRSS)
--   container.threads                         gauge
-- Service check: container.process.up, OK while /proc/<pid> is readable,
-- CRITICAL (with the reason) once the process is gone.
--
-- Instance options: pid (required, a positive integer), and the common
-- ones (tags, service, min_collection_interval). Read once, in init(),
-- with mw.opt; a bad one fails every run with a message that names it.

local check = {}

local CLOCK_TICKS = 100 -- USER_HZ: clock ticks per second in /proc/<pid>/stat
local PAGE_SIZE = 4096 -- bytes per page in /proc/<pid>/statm

-- utime and stime in seconds. The command name (field 2) is in
-- parentheses and may hold spaces or ')', so fields are counted after the
-- last ')': state is field 3, utime field 14, stime field 15.
local function cpu_seconds(stat)
  local rest = stat:match("^.*%)%s+(.*)$")
  if not rest then
    return nil
  end
  local f = {}
  for v in rest:gmatch("%S+") do
    f[#f + 1] = v
  end
  local utime, stime = tonumber(f[12]), tonumber(f[13])
  if not utime or not stime then
    return nil
  end
  return utime / CLOCK_TICKS, stime / CLOCK_TICKS
end

-- Resident bytes: VmRSS from status (kB); statm's second field (pages)
-- when status has none (kernel threads).
local function rss_bytes(pid, status)
  local kb = tonumber(status:match("\nVmRSS:%s+(%d+) kB"))
  if kb then
    return kb * 1024
  end
  local statm = mw.proc.pid(pid, "statm")
  local pages = statm and tonumber(statm:match("^%d+ (%d+)"))
  return pages and pages * PAGE_SIZE
end

-- pid: a number, or a string of digits (a quoted YAML value); at most
-- the kernel's PID_MAX_LIMIT.
function check.init(self)
  self.pid = mw.opt.integer(self.instance, "pid", mw.opt.REQUIRED, 1, 4194304)
end

-- The first file read decides whether the process is up; one that
-- vanishes between two reads is simply down at the next run.
function check.run(self)
  local pid = self.pid
  local stat, err = mw.proc.pid(pid, "stat")
  local status = stat and mw.proc.pid(pid, "status")
  if not stat or not status then
    mw.service_check("container.process.up", mw.CRITICAL, nil,
      "process " .. pid .. " is gone: " .. tostring(err or "status unreadable"))
    return
  end
  mw.service_check("container.process.up", mw.OK)
  local user, system = cpu_seconds(stat)
  if user then
    mw.monotonic_count("container.cpu.user", user)
    mw.monotonic_count("container.cpu.system", system)
  else
    mw.warning("cannot parse /proc/" .. pid .. "/stat")
  end
  local rss = rss_bytes(pid, status)
  if rss then
    mw.gauge("container.mem.rss", rss)
  end
  local threads = tonumber(status:match("\nThreads:%s+(%d+)"))
  if threads then
    mw.gauge("container.threads", threads)
  end
end

return check

-- mcache: a memcached server's `stats` (and on request `stats items` and
-- `stats slabs`) over the text protocol, with the metric and service check
-- names of the Datadog `mcache` integration.
--
-- Metrics, tagged url:<url>:<port>:
--   gauges memcache.<stat> for total_items, curr_items, limit_maxbytes,
--     uptime, bytes, curr_connections, max_connections,
--     connection_structures, threads, pointer_size
--   rates memcache.<stat>_rate for rusage_user, rusage_system, cmd_get,
--     cmd_set, cmd_flush, get_hits, get_misses, delete_misses, delete_hits,
--     evictions, bytes_read, bytes_written, cas_misses, cas_hits,
--     cas_badval, total_connections, listen_disabled_num
--   memcache.get_hit_percent (100 * get_hits / cmd_get),
--   memcache.fill_percent (100 * bytes / limit_maxbytes),
--   memcache.avg_item_size (bytes / curr_items): gauges, left out while
--     their divisor is 0
--   with options.items: memcache.items.<stat> and memcache.items.<stat>_rate,
--     tagged slab:<id>; with options.slabs: memcache.slabs.<stat> and
--     memcache.slabs.<stat>_rate (slab:<id> for per-slab stats)
-- Rates need two runs: the first run sets their base.
--
-- Service check memcache.can_connect, tagged host:<url> and port:<port>:
-- OK when `stats` answered, else CRITICAL with the reason, and the run
-- fails (as Datadog raises).
--
-- Instance options: url (required), port (default 11211), options
-- (items, slabs), username and password (memcached's text-protocol
-- authentication, `memcached -Y`), and the common ones (tags, service,
-- min_collection_interval, timeout). Each connect, send and answer may take
-- the run's budget (`timeout`, default 10 s or the interval if lower) less
-- a tenth (at most 1 s), so a server that never answers is reported by
-- memcache.can_connect rather than by the budget stopping the run. socket
-- (a unix socket) is refused: this check connects over TCP. The options
-- are read once, in init(), with mw.opt; a bad one fails every run with a
-- message that names it.

local check = {}

local DEFAULT_PORT = 11211
local MAX_LINES = 100000 -- STAT lines in one answer

local function set(list)
  local s = {}
  for _, k in ipairs(list) do
    s[k] = true
  end
  return s
end

local GAUGES = set({
  "total_items", "curr_items", "limit_maxbytes", "uptime", "bytes", "curr_connections",
  "max_connections", "connection_structures", "threads", "pointer_size",
})

local RATES = set({
  "rusage_user", "rusage_system", "cmd_get", "cmd_set", "cmd_flush", "get_hits", "get_misses",
  "delete_misses", "delete_hits", "evictions", "bytes_read", "bytes_written", "cas_misses",
  "cas_hits", "cas_badval", "total_connections", "listen_disabled_num",
})

-- `stats items` keys are items:<slab>:<stat>; `stats slabs` keys are
-- <slab>:<stat>, or <stat> for the totals.
local OPTIONAL = {
  items = {
    rates = set({
      "evicted", "evicted_nonzero", "expired_unfetched", "evicted_unfetched", "outofmemory",
      "tailrepairs", "moves_to_cold", "moves_to_warm", "moves_within_lru", "reclaimed",
      "crawler_reclaimed", "lrutail_reflocked", "direct_reclaims",
    }),
    gauges = set({
      "number", "number_hot", "number_warm", "number_cold", "number_noexp", "age", "evicted_time",
    }),
    split = function(key)
      local slab, stat = key:match("^items:(%d+):(.+)$")
      return stat, slab
    end,
  },
  slabs = {
    rates = set({
      "get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "cas_badval",
      "touch_hits", "used_chunks",
    }),
    gauges = set({
      "chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks", "free_chunks",
      "free_chunks_end", "mem_requested", "active_slabs", "total_malloced",
    }),
    split = function(key)
      local slab, stat = key:match("^(%d+):(.+)$")
      if slab then
        return stat, slab
      end
      return key
    end,
  },
}

local opt = mw.opt

-- The options, read once, in init(). `timeout` (the instance's, else
-- init_config's) is also the run's budget: mw.tcp ends every wait a tenth
-- of the budget (at most 1 s) before the run's deadline, so a server that
-- never answers is still reported here; without one, each wait may take
-- what the run has left.
local function options(self)
  local inst = self.instance
  if inst.socket ~= nil then
    opt.error("socket", "not supported: set url (and port)")
  end
  local url = opt.string(inst, "url", opt.REQUIRED)
  local port = opt.integer(inst, "port", DEFAULT_PORT, 1, 65535)
  return {
    url = url,
    port = port,
    timeout = opt.timeout(self),
    username = opt.string(inst, "username"),
    password = opt.string(inst, "password"),
    items = opt.bool(inst, "options.items", false),
    slabs = opt.bool(inst, "options.slabs", false),
    tags = { "url:" .. url .. ":" .. port },
    sc_tags = { "host:" .. url, "port:" .. port },
  }
end

-- ------------------------------------------------------------ protocol

-- The STAT lines of one `stats [arg]` answer as a map, in order; or nil
-- and the reason.
local function stats(sock, arg)
  local ok, err = sock:send(arg and ("stats " .. arg .. "\r\n") or "stats\r\n")
  if not ok then
    return nil, "send failed: " .. tostring(err)
  end
  local map, order = {}, {}
  for _ = 1, MAX_LINES do
    local line, rerr = sock:receive("*l")
    if not line then
      return nil, "reading stats: " .. tostring(rerr)
    end
    if line == "END" then
      return map, order
    end
    local k, v = line:match("^STAT (%S+) (.*)$")
    if not k then
      return nil, "unexpected answer to stats: " .. string.format("%q", line:sub(1, 80))
        .. " (expected STAT lines then END)"
    end
    if map[k] == nil then
      order[#order + 1] = k
    end
    map[k] = v
  end
  return nil, "more than " .. MAX_LINES .. " STAT lines"
end

-- memcached -Y: the credentials are the data of a `set` of any key.
local function authenticate(sock, o)
  local cred = o.username .. " " .. o.password
  local ok, err = sock:send("set auth 0 0 " .. #cred .. "\r\n" .. cred .. "\r\n")
  if not ok then
    return nil, "send failed: " .. tostring(err)
  end
  local line, rerr = sock:receive("*l")
  if line ~= "STORED" then
    return nil, "authentication refused: " .. tostring(line or rerr)
  end
  return true
end

local function connect(o)
  local sock, err = mw.tcp.connect(o.url, o.port, { timeout = o.timeout })
  if not sock then
    return nil, "cannot connect: " .. tostring(err)
  end
  sock:settimeout(o.timeout)
  if o.username ~= nil and o.password ~= nil then
    local ok, aerr = authenticate(sock, o)
    if not ok then
      sock:close()
      return nil, aerr
    end
  end
  return sock
end

-- ------------------------------------------------------------ metrics

local function number(v)
  return tonumber(v)
end

local function ratio(a, b)
  a, b = number(a), number(b)
  if a and b and b ~= 0 then
    return a / b
  end
end

local function general(s, order, tags)
  for _, k in ipairs(order) do
    local v = number(s[k])
    if v then
      if GAUGES[k] then
        mw.gauge("memcache." .. k, v, tags)
      end
      if RATES[k] then
        mw.rate("memcache." .. k .. "_rate", v, tags)
      end
    end
  end
  local hit = ratio(s.get_hits, s.cmd_get)
  if hit then
    mw.gauge("memcache.get_hit_percent", 100 * hit, tags)
  end
  local fill = ratio(s.bytes, s.limit_maxbytes)
  if fill then
    mw.gauge("memcache.fill_percent", 100 * fill, tags)
  end
  local avg = ratio(s.bytes, s.curr_items)
  if avg then
    mw.gauge("memcache.avg_item_size", avg, tags)
  end
end

local function optional(sock, which, tags)
  local spec = OPTIONAL[which]
  local s, order = stats(sock, which)
  if not s then
    mw.warning("unable to retrieve optional stats from memcached, running 'stats " .. which
      .. "': " .. tostring(order))
    return false
  end
  local prefix = "memcache." .. which .. "."
  for _, key in ipairs(order) do
    local stat, slab = spec.split(key)
    local v = number(s[key])
    if stat and v then
      local t = tags
      if slab then
        t = table.move(tags, 1, #tags, 1, {})
        t[#t + 1] = "slab:" .. slab
      end
      if spec.gauges[stat] then
        mw.gauge(prefix .. stat, v, t)
      end
      if spec.rates[stat] then
        mw.rate(prefix .. stat .. "_rate", v, t)
      end
    end
  end
  return true
end

local function fail(o, msg)
  local full = "Unable to fetch stats from server " .. o.url .. ":" .. o.port .. ": " .. msg
  mw.service_check("memcache.can_connect", mw.CRITICAL, o.sc_tags, full)
  error(full, 0)
end

function check.init(self)
  self.o = options(self)
end

function check.run(self)
  local o = self.o
  local sock, err = connect(o)
  if not sock then
    fail(o, err)
  end
  local s, order = stats(sock)
  if s and #order == 0 then
    s, order = nil, "empty answer to stats (END without STAT lines)"
  end
  if not s then
    sock:close()
    fail(o, order)
  end
  mw.service_check("memcache.can_connect", mw.OK, o.sc_tags)
  general(s, order, o.tags)
  local alive = true
  if o.items then
    alive = optional(sock, "items", o.tags)
  end
  if o.slabs and alive then
    optional(sock, "slabs", o.tags)
  end
  sock:close()
end

return check

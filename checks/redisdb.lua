-- redisdb: a Redis server's INFO, keyspace, replication, slow log and,
-- on request, key lengths, command statistics and clients, with the metric
-- and service check names of the Datadog `redisdb` integration. Speaks
-- RESP over mw.tcp; the connection is kept between runs (unless
-- disable_connection_cache) and opened again when it fails.
--
-- Tags: redis_host:<host> and redis_port:<port> on everything, plus
-- redis_role:<master|slave> once INFO answered; redis_db:dbN on keyspace
-- metrics.
--
-- Metrics (names as Datadog's redisdb check):
--   redis.info.latency_ms                   gauge, INFO round trip in ms
--   redis.keys, redis.expires, redis.persist, redis.persist.percent,
--   redis.expires.percent                   gauges per db (redis_db:dbN)
--   INFO fields as gauges: redis.net.clients, redis.net.slaves,
--   redis.net.rejected, redis.clients.*, redis.keys.evicted|expired,
--   redis.mem.*, redis.rdb.*, redis.aof.*, redis.pubsub.*,
--   redis.replication.*, redis.perf.latest_fork_usec, redis.active_defrag.*,
--   redis.net.instantaneous_ops_per_sec (see GAUGE_KEYS)
--   rates: redis.net.commands (total_commands_processed), redis.cpu.sys,
--   redis.cpu.user (+ _children), redis.stats.keyspace_hits|misses
--   redis.net.maxclients                    gauge (CONFIG GET maxclients)
--   redis.replication.delay                 gauge per replica (on a master)
--   redis.replication.master_link_down_since_seconds  gauge (on a replica)
--   redis.slowlog.micros                    histogram, tagged command:<name>
--   redis.key.length                        gauge per key (option keys)
--   redis.command.calls, redis.command.usec_per_call  (option command_stats)
--   redis.net.connections                   gauge by client name, tagged
--                                           source:<name> (option
--                                           collect_client_metrics)
-- Service checks: redis.can_connect (CRITICAL with the reason when the
-- server cannot be reached, refuses AUTH, or INFO fails; the run then
-- fails, as Datadog raises), redis.replication.master_link_status (on a
-- replica).
--
-- Instance options: host and port (required), username, password, db,
-- socket_timeout (seconds per reply, default 5, and at most the run's
-- budget less a tenth, so a server that stops answering is reported by
-- redis.can_connect rather than by the budget stopping the run), ssl, ssl_certfile, ssl_keyfile,
-- ssl_ca_certs, ssl_cert_reqs (0: no verification, the default; 1 or 2:
-- verify), keys (a list of names and patterns, or one), warn_on_missing_keys,
-- slowlog-max-len, command_stats, collect_client_metrics,
-- disable_connection_cache, and the common ones. unix_socket_path is
-- refused: this check connects over TCP. The options are read once, in
-- init(), with mw.opt; a bad one fails every run with a message that
-- names it.

local check = {}

local DEFAULT_TIMEOUT = 5
local MIN_TIMEOUT = 0.001 -- seconds, as the engine's own `timeout`
local DEFAULT_MAX_SLOW_ENTRIES = 128
local MAX_BULK = 64 << 20 -- bytes in one bulk reply
local MAX_ARRAY = 1 << 20 -- elements in one array reply
local MAX_DEPTH = 8 -- nested arrays
local SCAN_MAX_KEYS = 10000 -- keys matched per pattern and db
local SCAN_MAX_CALLS = 1000 -- SCAN round trips per pattern and db
local NULL = setmetatable({}, { __tostring = function() return "(nil)" end })

local GAUGE_KEYS = {
  -- active defragmentation
  active_defrag_running = "redis.active_defrag.running",
  active_defrag_hits = "redis.active_defrag.hits",
  active_defrag_misses = "redis.active_defrag.misses",
  active_defrag_key_hits = "redis.active_defrag.key_hits",
  active_defrag_key_misses = "redis.active_defrag.key_misses",
  -- append-only file
  aof_last_rewrite_time_sec = "redis.aof.last_rewrite_time",
  aof_rewrite_in_progress = "redis.aof.rewrite",
  aof_current_size = "redis.aof.size",
  aof_buffer_length = "redis.aof.buffer_length",
  loading_total_bytes = "redis.aof.loading_total_bytes",
  loading_loaded_bytes = "redis.aof.loading_loaded_bytes",
  loading_loaded_perc = "redis.aof.loading_loaded_perc",
  loading_eta_seconds = "redis.aof.loading_eta_seconds",
  -- network
  connected_clients = "redis.net.clients",
  connected_slaves = "redis.net.slaves",
  rejected_connections = "redis.net.rejected",
  -- clients
  blocked_clients = "redis.clients.blocked",
  client_biggest_input_buf = "redis.clients.biggest_input_buf",
  client_longest_output_list = "redis.clients.longest_output_list",
  -- keys
  evicted_keys = "redis.keys.evicted",
  expired_keys = "redis.keys.expired",
  -- stats
  latest_fork_usec = "redis.perf.latest_fork_usec",
  bytes_received_per_sec = "redis.bytes_received_per_sec",
  bytes_sent_per_sec = "redis.bytes_sent_per_sec",
  instantaneous_ops_per_sec = "redis.net.instantaneous_ops_per_sec",
  -- pubsub
  pubsub_channels = "redis.pubsub.channels",
  pubsub_patterns = "redis.pubsub.patterns",
  -- rdb
  rdb_bgsave_in_progress = "redis.rdb.bgsave",
  rdb_changes_since_last_save = "redis.rdb.changes_since_last",
  rdb_last_bgsave_time_sec = "redis.rdb.last_bgsave_time",
  -- memory
  mem_fragmentation_ratio = "redis.mem.fragmentation_ratio",
  used_memory = "redis.mem.used",
  used_memory_lua = "redis.mem.lua",
  used_memory_peak = "redis.mem.peak",
  used_memory_rss = "redis.mem.rss",
  used_memory_startup = "redis.mem.startup",
  used_memory_overhead = "redis.mem.overhead",
  maxmemory = "redis.mem.maxmemory",
  -- replication
  master_last_io_seconds_ago = "redis.replication.last_io_seconds_ago",
  master_sync_in_progress = "redis.replication.sync",
  master_sync_left_bytes = "redis.replication.sync_left_bytes",
  repl_backlog_histlen = "redis.replication.backlog_histlen",
  master_repl_offset = "redis.replication.master_repl_offset",
  slave_repl_offset = "redis.replication.slave_repl_offset",
}

local RATE_KEYS = {
  used_cpu_sys = "redis.cpu.sys",
  used_cpu_sys_children = "redis.cpu.sys_children",
  used_cpu_user = "redis.cpu.user",
  used_cpu_user_children = "redis.cpu.user_children",
  keyspace_hits = "redis.stats.keyspace_hits",
  keyspace_misses = "redis.stats.keyspace_misses",
  total_commands_processed = "redis.net.commands",
}

-- ------------------------------------------------------------ options

local opt = mw.opt

-- A string option, nil when it is "": what an unset %%env_...%% gives.
local function unless_empty(v)
  return v ~= "" and v or nil
end

-- The options, read once, in init(). `timeout` (the instance's, else
-- init_config's) is also the run's budget: mw.tcp ends every wait a tenth
-- of the budget (at most 1 s) before the run's deadline, so a server that
-- never answers is still reported here; socket_timeout is lowered to it.
local function options(self)
  local inst = self.instance
  if inst.unix_socket_path ~= nil then
    opt.error("unix_socket_path", "not supported: set host and port")
  end
  local host = opt.string(inst, "host", opt.REQUIRED)
  local port = opt.integer(inst, "port", opt.REQUIRED, 1, 65535)
  local timeout = opt.number(inst, "socket_timeout", DEFAULT_TIMEOUT, MIN_TIMEOUT)
  timeout = math.min(timeout, opt.timeout(self) or timeout)
  local keys = opt.list(inst, "keys")
  local keys_warning
  if keys and #keys == 0 then
    keys, keys_warning = nil, "keys in redis configuration is either not a list or empty"
  end
  return {
    host = host,
    port = port,
    where = host .. ":" .. port,
    username = unless_empty(opt.string(inst, "username")),
    password = unless_empty(opt.string(inst, "password")),
    db = opt.integer(inst, "db", 0, 0),
    timeout = timeout,
    tcp = {
      timeout = timeout,
      tls = opt.bool(inst, "ssl", false),
      tls_verify = opt.integer(inst, "ssl_cert_reqs", 0, 0, 2) ~= 0,
      ca_file = opt.string(inst, "ssl_ca_certs"),
      client_cert = opt.string(inst, "ssl_certfile"),
      client_key = opt.string(inst, "ssl_keyfile"),
    },
    keys = keys,
    keys_warning = keys_warning,
    warn_on_missing_keys = opt.bool(inst, "warn_on_missing_keys", true),
    slowlog_max = opt.integer(inst, "slowlog-max-len", nil, 1),
    command_stats = opt.bool(inst, "command_stats", false),
    client_metrics = opt.bool(inst, "collect_client_metrics", false),
    no_cache = opt.bool(inst, "disable_connection_cache", false),
    tags = { "redis_host:" .. host, "redis_port:" .. port },
  }
end

-- ------------------------------------------------------------ RESP

local function encode(args)
  local t = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    t[#t + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(t)
end

local read_reply

local function read_bulk(sock, len)
  if not len or len < -1 or len > MAX_BULK then
    return nil, "bad bulk length"
  end
  if len == -1 then
    return NULL
  end
  local data, err = sock:receive(len + 2)
  if not data then
    return nil, err
  end
  return data:sub(1, len)
end

local function read_array(sock, n, depth)
  if not n or n < -1 or n > MAX_ARRAY or depth >= MAX_DEPTH then
    return nil, "bad array length or nesting"
  end
  if n == -1 then
    return NULL
  end
  local t = {}
  for i = 1, n do
    local v, err, server_err = read_reply(sock, depth + 1)
    if server_err then
      v = { err = err } -- an error inside an array is a value
    elseif v == nil then
      return nil, err
    end
    t[i] = v
  end
  return t
end

-- One reply: its value; or nil, message, true for an error reply (the
-- connection is still usable); or nil, message for an I/O or protocol
-- error (it is not).
function read_reply(sock, depth)
  local line, err = sock:receive("*l")
  if not line then
    return nil, err
  end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then
    return rest
  elseif kind == "-" then
    return nil, rest, true
  elseif kind == ":" then
    local n = math.tointeger(tonumber(rest))
    if not n then
      return nil, "bad integer reply"
    end
    return n
  elseif kind == "$" then
    return read_bulk(sock, math.tointeger(tonumber(rest)))
  elseif kind == "*" then
    return read_array(sock, math.tointeger(tonumber(rest)), depth or 0)
  end
  return nil, "not a RESP reply: " .. string.format("%q", line:sub(1, 40))
end

-- ------------------------------------------------------------ connection

local function roundtrip(sock, args)
  local ok, err = sock:send(encode(args))
  if not ok then
    return nil, err
  end
  return read_reply(sock)
end

local function handshake(sock, o)
  if o.password then
    local args = o.username and { "AUTH", o.username, o.password } or { "AUTH", o.password }
    local _, err, server_err = roundtrip(sock, args)
    if err then
      return nil, (server_err and "AUTH refused: " or "AUTH failed: ") .. err
    end
  end
  if o.db ~= 0 then
    local _, err, server_err = roundtrip(sock, { "SELECT", o.db })
    if err then
      return nil, (server_err and "SELECT " .. o.db .. " refused: " or "SELECT failed: ") .. err
    end
  end
  return true
end

local function connect(o)
  local sock, err = mw.tcp.connect(o.host, o.port, o.tcp)
  if not sock then
    return nil, "cannot connect: " .. tostring(err)
  end
  sock:settimeout(o.timeout)
  local ok, herr = handshake(sock, o)
  if not ok then
    sock:close()
    return nil, herr
  end
  return sock
end

local function drop(self)
  if self.conn then
    self.conn.sock:close()
    self.conn = nil
  end
end

-- Runs one command on the kept connection, opening it first if needed.
-- An I/O error on a kept connection (closed by the server while idle) is
-- retried once on a new one. Returns the value; or nil, message,
-- server_error.
local function command(self, o, args)
  for attempt = 1, 2 do
    local fresh = false
    if not self.conn then
      local sock, err = connect(o)
      if not sock then
        return nil, err
      end
      self.conn, fresh = { sock = sock }, true
    end
    self.conn.busy = true
    local v, err, server_err = roundtrip(self.conn.sock, args)
    if v ~= nil or server_err then
      self.conn.busy = false
      return v, err, server_err
    end
    drop(self)
    if fresh or attempt == 2 then
      return nil, args[1] .. " failed: " .. tostring(err)
    end
  end
end

-- ------------------------------------------------------------ INFO

local function info_value(v)
  if v:find(",", 1, true) and v:find("=", 1, true) then
    local t = {}
    for item in v:gmatch("[^,]+") do
      local k, sub = item:match("^(.*)=([^=]*)$")
      if k then
        t[k] = tonumber(sub) or sub
      end
    end
    return t
  end
  return tonumber(v) or v
end

local function parse_info(text)
  local info = {}
  for line in text:gmatch("[^\r\n]+") do
    if line:sub(1, 1) ~= "#" then
      local k, v = line:match("^([^:]+):(.*)$")
      if k then
        info[k] = info_value(v)
      end
    end
  end
  return info
end

local function with(tags, ...)
  local t = table.move(tags, 1, #tags, 1, {})
  for _, x in ipairs({ ... }) do
    t[#t + 1] = x
  end
  return t
end

local function sorted_dbs(info)
  local dbs = {}
  for k, v in pairs(info) do
    local n = k:match("^db(%d+)$")
    if n and type(v) == "table" then
      dbs[#dbs + 1] = math.tointeger(tonumber(n))
    end
  end
  table.sort(dbs)
  return dbs
end

local function keyspace(info, tags)
  for _, n in ipairs(sorted_dbs(info)) do
    local db = info["db" .. n]
    local keys, expires = tonumber(db.keys), tonumber(db.expires)
    if keys and expires then
      local t = with(tags, "redis_db:db" .. n)
      local persist = keys - expires
      mw.gauge("redis.persist", persist, t)
      if keys > 0 then
        mw.gauge("redis.persist.percent", 100 * persist / keys, t)
        mw.gauge("redis.expires.percent", 100 * expires / keys, t)
      end
      mw.gauge("redis.keys", keys, t)
      mw.gauge("redis.expires", expires, t)
    end
  end
end

local function info_metrics(info, tags)
  for k, v in pairs(info) do
    if type(v) == "number" then
      if GAUGE_KEYS[k] then
        mw.gauge(GAUGE_KEYS[k], v, tags)
      elseif RATE_KEYS[k] then
        mw.rate(RATE_KEYS[k], v, tags)
      end
    end
  end
end

local function replication(info, tags)
  local master_offset = tonumber(info.master_repl_offset) or 0
  for k, v in pairs(info) do
    local id = k:match("^slave(%d+)$")
    if id and type(v) == "table" then
      local delay = master_offset - (tonumber(v.offset) or 0)
      if delay >= 0 then
        local t = with(tags)
        if v.ip then
          t[#t + 1] = "slave_ip:" .. tostring(v.ip)
        end
        if v.port then
          t[#t + 1] = "slave_port:" .. tostring(v.port)
        end
        t[#t + 1] = "slave_id:" .. id
        mw.gauge("redis.replication.delay", delay, t)
      end
    end
  end
  if info.master_link_status ~= nil then
    local up = info.master_link_status == "up"
    mw.service_check("redis.replication.master_link_status", up and mw.OK or mw.CRITICAL, tags,
      up and nil or "master link is " .. tostring(info.master_link_status))
    local down = up and 0 or tonumber(info.master_link_down_since_seconds) or 0
    mw.gauge("redis.replication.master_link_down_since_seconds", down, tags)
  end
end

-- ------------------------------------------------------------ optional parts

-- A value of CONFIG GET NAME as a number, or nil when CONFIG is refused.
local function config_number(self, o, name)
  local v, err, server_err = command(self, o, { "CONFIG", "GET", name })
  if v == nil and not server_err then
    error("redis at " .. o.where .. ": " .. err, 0)
  end
  if type(v) == "table" and v[1] == name then
    return tonumber(v[2])
  end
  return nil
end

local function maxclients(self, o, tags)
  local n = config_number(self, o, "maxclients")
  if n then
    mw.gauge("redis.net.maxclients", n, tags)
  end
end

-- Must succeed once the connection is known good: an I/O error fails the run.
local function must(self, o, args)
  local v, err, server_err = command(self, o, args)
  if v == nil and not server_err then
    error("redis at " .. o.where .. ": " .. err, 0)
  end
  return v, err, server_err
end

local function client_metrics(self, o, tags)
  local text = must(self, o, { "CLIENT", "LIST" })
  if type(text) ~= "string" then
    return
  end
  local by_name, order = {}, {}
  for line in text:gmatch("[^\r\n]+") do
    local name = line:match("%f[%w]name=(%S*)")
    if not name or name == "" then
      name = "unknown"
    end
    if not by_name[name] then
      order[#order + 1] = name
    end
    by_name[name] = (by_name[name] or 0) + 1
  end
  for _, name in ipairs(order) do
    mw.gauge("redis.net.connections", by_name[name], with(tags, "source:" .. name))
  end
end

local function command_stats(self, o, tags)
  local text, err = must(self, o, { "INFO", "commandstats" })
  if type(text) ~= "string" then
    mw.warning("could not retrieve command stats from redis: " .. tostring(err))
    return
  end
  for k, v in pairs(parse_info(text)) do
    local cmd = k:match("^cmdstat_(.+)$")
    if cmd and type(v) == "table" then
      local t = with(tags, "command:" .. cmd)
      if tonumber(v.calls) then
        mw.gauge("redis.command.calls", v.calls, t)
      end
      if tonumber(v.usec_per_call) then
        mw.gauge("redis.command.usec_per_call", v.usec_per_call, t)
      end
    end
  end
end

local function slowlog(self, o, tags)
  local max = o.slowlog_max
  if not max then
    max = math.min(config_number(self, o, "slowlog-max-len") or DEFAULT_MAX_SLOW_ENTRIES,
      DEFAULT_MAX_SLOW_ENTRIES)
  end
  local entries = must(self, o, { "SLOWLOG", "GET", max })
  if type(entries) ~= "table" or entries == NULL then
    return
  end
  local last, newest = self.slowlog_last or 0, self.slowlog_last or 0
  for _, e in ipairs(entries) do
    local start, micros, argv = tonumber(e[2]), tonumber(e[3]), e[4]
    if start and micros and start > last then
      newest = math.max(newest, start)
      local t = with(tags)
      if type(argv) == "table" and type(argv[1]) == "string" then
        t[#t + 1] = "command:" .. argv[1]
      end
      mw.histogram("redis.slowlog.micros", micros, t)
    end
  end
  self.slowlog_last = newest
end

-- ------------------------------------------------------------ key lengths

local function is_pattern(key)
  local i = 1
  while i <= #key do
    local c = key:sub(i, i)
    if c == "\\" then
      i = i + 1
    elseif c == "*" or c == "?" or c == "[" then
      return true
    end
    i = i + 1
  end
  return false
end

local function scan(self, o, pattern)
  local found, cursor, calls = {}, "0", 0
  repeat
    local r = must(self, o, { "SCAN", cursor, "MATCH", pattern, "COUNT", 1000 })
    if type(r) ~= "table" or type(r[2]) ~= "table" then
      break
    end
    for _, k in ipairs(r[2]) do
      if type(k) == "string" and #found < SCAN_MAX_KEYS then
        found[#found + 1] = k
      end
    end
    cursor, calls = tostring(r[1]), calls + 1
  until cursor == "0" or calls >= SCAN_MAX_CALLS or #found >= SCAN_MAX_KEYS
  if cursor ~= "0" then
    mw.warning("keys pattern " .. pattern .. " matched too many keys, counted the first "
      .. #found)
  end
  return found
end

local LENGTH_OF = { list = "LLEN", set = "SCARD", zset = "ZCARD", hash = "HLEN" }

local function key_length(self, o, key)
  local kind = must(self, o, { "TYPE", key })
  if type(kind) ~= "string" then
    return 0, "none"
  end
  if kind == "string" then
    return 1, kind
  end
  local cmd = LENGTH_OF[kind]
  if not cmd then
    return 0, kind
  end
  local n = must(self, o, { cmd, key })
  return tonumber(n) or 0, kind
end

local function missing_key(o, tags, key)
  local t = with(tags, "key:" .. key)
  if o.db ~= 0 then
    t[#t + 1] = "redis_db:db" .. o.db
  end
  mw.gauge("redis.key.length", 0, t)
  if o.warn_on_missing_keys then
    mw.warning(key .. " key not found in redis")
  end
end

local function lengths_in_db(self, o, tags, db, overall)
  must(self, o, { "SELECT", db })
  local lengths, order = {}, {}
  for _, pattern in ipairs(o.keys) do
    local keys = is_pattern(pattern) and scan(self, o, pattern) or { pattern }
    for _, key in ipairs(keys) do
      local n, kind = key_length(self, o, key)
      if not lengths[key] then
        lengths[key], order[#order + 1] = { n = 0 }, key
      end
      lengths[key].n, lengths[key].kind = lengths[key].n + n, kind
      if overall[key] == nil then
        overall[key], overall[#overall + 1] = 0, key
      end
      overall[key] = overall[key] + n
    end
  end
  for _, key in ipairs(order) do
    local l = lengths[key]
    if l.n > 0 then
      mw.gauge("redis.key.length", l.n,
        with(tags, "key:" .. key, "key_type:" .. l.kind, "redis_db:db" .. db))
    end
  end
end

local function key_lengths(self, o, info, tags)
  local dbs = sorted_dbs(info)
  if #dbs == 0 then
    mw.warning("Redis database is empty")
    for _, key in ipairs(o.keys) do
      missing_key(o, tags, key)
    end
    return
  end
  if o.db ~= 0 then
    local present = false
    for _, n in ipairs(dbs) do
      present = present or n == o.db
    end
    if not present then
      mw.warning("Cannot find database " .. o.db)
      return
    end
    dbs = { o.db }
  end
  local overall = {}
  for _, db in ipairs(dbs) do
    lengths_in_db(self, o, tags, db, overall)
  end
  must(self, o, { "SELECT", o.db })
  for _, key in ipairs(overall) do
    if overall[key] == 0 then
      missing_key(o, tags, key)
    end
  end
end

-- ------------------------------------------------------------ run

local function fail(o, msg)
  local full = "redis at " .. o.where .. ": " .. msg
  if msg:find("NOAUTH", 1, true) then
    full = full .. " (set the instance option password)"
  end
  mw.service_check("redis.can_connect", mw.CRITICAL, o.tags, full)
  error(full, 0)
end

local function collect(self, o)
  local t0 = mw.time()
  local text, err = command(self, o, { "INFO" })
  if type(text) ~= "string" then
    fail(o, text == nil and err or "INFO did not return a bulk string")
  end
  local latency = math.floor((mw.time() - t0) * 100000 + 0.5) / 100
  local info = parse_info(text)
  local tags = with(o.tags)
  if type(info.role) == "string" then
    tags[#tags + 1] = "redis_role:" .. info.role
  end
  mw.gauge("redis.info.latency_ms", latency, tags)
  mw.service_check("redis.can_connect", mw.OK, tags)
  keyspace(info, tags)
  info_metrics(info, tags)
  maxclients(self, o, tags)
  if o.client_metrics then
    client_metrics(self, o, tags)
  end
  if o.keys then
    key_lengths(self, o, info, tags)
  end
  replication(info, tags)
  if o.command_stats then
    command_stats(self, o, tags)
  end
  slowlog(self, o, o.tags)
end

function check.init(self)
  self.o = options(self)
end

function check.run(self)
  local o = self.o
  if o.keys_warning then
    mw.warning(o.keys_warning) -- Datadog's, on every run
  end
  -- A run stopped mid-reply (time budget) leaves the stream out of step.
  if self.conn and self.conn.busy then
    drop(self)
  end
  local ok, err = pcall(collect, self, o)
  if o.no_cache or not ok then
    drop(self)
  end
  if not ok then
    error(err, 0)
  end
end

return check

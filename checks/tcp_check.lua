-- tcp_check: can a TCP connection to host:port be opened, and how long
-- does it take. Options, names, tags and messages follow Datadog's
-- tcp_check.
--
-- Service check tcp.can_connect: OK, or CRITICAL with the reason. Tags
-- target_host:<host>, port:<port>, instance:<name> (normalized as
-- Datadog does), and address:<host> when host is an IP address (Datadog
-- tags the resolved address; the connection API does not expose it, so
-- a host name gets no address tag rather than one that differs between
-- OK and CRITICAL).
-- Metrics:
--   network.tcp.can_connect    gauge, 1 or 0, the service check's tags
--   network.tcp.response_time  gauge, seconds, with collect_response_time;
--                              tags url:<host>:<port>, instance:<name>
--
-- Instance options: name, host and port (required), timeout (seconds,
-- default 10), collect_response_time (default false), and the common
-- ones (tags, service, min_collection_interval). Read once, in init(),
-- with mw.opt; a bad one fails every run with a message that names it
-- ("bad option 'port': integer from 1 to 65535 expected, got string
-- \"http\"").

local check = {}

local DEFAULT_TIMEOUT = 10

local opt = mw.opt

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

local function parse_config(self)
  local inst = self.instance
  local name = opt.string(inst, "name", opt.REQUIRED)
  local host = opt.string(inst, "host", opt.REQUIRED)
  local port = opt.integer(inst, "port", opt.REQUIRED, 1, 65535)
  local address = is_ip(host) and { "address:" .. host } or {}
  local cfg = {
    host = host, port = port, timeout = opt.timeout(self, DEFAULT_TIMEOUT),
    response_time = opt.bool(inst, "collect_response_time", false),
    sc_tags = { "target_host:" .. host, "port:" .. port, "instance:" .. mw.tag.normalize(name) },
    metric_tags = { "url:" .. host .. ":" .. port, "instance:" .. name },
  }
  table.move(address, 1, #address, #cfg.sc_tags + 1, cfg.sc_tags)
  table.move(address, 1, #address, #cfg.metric_tags + 1, cfg.metric_tags)
  return cfg
end

local function failure_message(err, ms)
  if err:find("timed out", 1, true) or err:find("timeout", 1, true) then
    return string.format("Socket error: %s. The connection timed out after %d ms", err, ms)
  end
  return string.format("%s. Connection failed after %d ms", err, ms)
end

local function report(cfg, status, msg)
  mw.service_check("tcp.can_connect", status, cfg.sc_tags, msg)
  mw.gauge("network.tcp.can_connect", status == mw.OK and 1 or 0, cfg.sc_tags)
end

function check.init(self)
  self.cfg = parse_config(self)
end

function check.run(self)
  local cfg = self.cfg
  local start = mw.time()
  local sock, err = mw.tcp.connect(cfg.host, cfg.port, { timeout = cfg.timeout })
  local elapsed = mw.time() - start
  if not sock then
    report(cfg, mw.CRITICAL, failure_message(tostring(err), math.floor(elapsed * 1000)))
    return
  end
  sock:close()
  report(cfg, mw.OK)
  if cfg.response_time then
    mw.gauge("network.tcp.response_time", elapsed, cfg.metric_tags)
  end
end

return check

-- nginx: connections and requests of an open source NGINX, read from its
-- stub_status page (ngx_http_stub_status_module), with the metric and
-- service check names of the Datadog `nginx` integration.
--
-- The page looks like:
--   Active connections: 8
--   server accepts handled requests
--    1156958 1156958 4491319
--   Reading: 0 Writing: 2 Waiting: 6
--
-- Metrics (instance tags only, as Datadog sends them):
--   nginx.net.connections               gauge, active connections (waiting included)
--   nginx.net.reading|writing|waiting   gauges, connections by state
--   nginx.net.conn_opened_per_s         rate of `accepts`
--   nginx.net.conn_dropped_per_s        rate of `accepts - handled`
--   nginx.net.request_per_s             rate of `requests`
--   nginx.connections.accepted          gauge of `accepts`, and
--   nginx.connections.accepted_count    its monotonic count
--   nginx.connections.dropped(_count)   the same for `accepts - handled`
--   nginx.requests.total(_count)        the same for `requests`
-- The last three pairs carry the names Datadog gives these totals when they
-- come from NGINX Plus or the VTS module; Datadog's stub_status parser sends
-- only the rates.
-- Rates and monotonic counts need two runs: the first run sets their base.
--
-- Service check nginx.can_connect, tagged host:<host> and port:<port> of
-- the URL: OK when the page answered 2xx with the expected text, else
-- CRITICAL with the reason, and the run fails (as Datadog raises).
--
-- Instance options: nginx_status_url (required), username and password
-- (basic auth; `user` is accepted for username), tls_verify (default true;
-- `ssl_validation` is accepted), tls_ca_cert, tls_cert, tls_private_key,
-- headers, and the common ones (tags, service, min_collection_interval,
-- timeout). `timeout` is the run's time budget (default 10 s, or the
-- interval if lower); the status request gets that less a tenth (at most
-- 1 s), so a page that never answers is reported as nginx.can_connect
-- CRITICAL by this check instead of the run being stopped. use_plus_api
-- and use_vts (NGINX Plus API, VTS JSON) are refused with a message: this
-- check reads stub_status. The options are read once, in init(), with
-- mw.opt; a bad one fails every run with a message that names it.

local check = {}

local EXPECTED = "a stub_status page ('Active connections: N', "
  .. "'server accepts handled requests' then three numbers, "
  .. "'Reading: N Writing: N Waiting: N')"

local opt = mw.opt

-- host and port of an http(s) URL, for the service check's tags.
local function url_host_port(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then
    return nil
  end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil
  end
  authority = authority:gsub("^.*@", "")
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then
    host, port = authority:match("^([^:]*):?(%d*)$")
  end
  if not host or host == "" then
    return nil
  end
  if port == "" then
    port = scheme == "https" and "443" or "80"
  end
  return host, port
end

-- The options, read once, in init(). `timeout` (the instance's, else
-- init_config's) is also the run's budget: mw.http ends every wait a
-- tenth of the budget (at most 1 s) before the run's deadline, so a page
-- that never answers is still reported here; without one, the request
-- may take what the run has left.
local function options(self)
  local inst = self.instance
  local url = opt.string(inst, "nginx_status_url")
  local host, port = url_host_port(url or "")
  if not host then
    opt.error("nginx_status_url", "http:// or https:// URL", url)
  end
  for _, option in ipairs({ "use_plus_api", "use_vts" }) do
    if opt.bool(inst, option, false) then
      opt.error(option, "not supported: point nginx_status_url at a stub_status page")
    end
  end
  local headers = opt.map(inst, "headers", {})
  local user = opt.string(inst, opt.first(inst, "username", "user"))
  local password = opt.string(inst, "password")
  if user and password then
    headers["Authorization"] = "Basic " .. mw.base64.encode(user .. ":" .. password)
  end
  return {
    url = url,
    sc_tags = { "host:" .. host, "port:" .. port },
    http = {
      timeout = opt.timeout(self),
      tls_verify = opt.bool(inst, opt.first(inst, "tls_verify", "ssl_validation"), true),
      ca_file = opt.string(inst, "tls_ca_cert"),
      client_cert = opt.string(inst, "tls_cert"),
      client_key = opt.string(inst, "tls_private_key"),
      headers = headers,
    },
  }
end

-- The counters of a stub_status page, or nil when the text is not one.
local function parse(body)
  local s = {}
  s.active = tonumber(body:match("Active connections:%s*(%d+)"))
  local a, h, r = body:match("accepts%s+handled%s+requests%s+(%d+)%s+(%d+)%s+(%d+)")
  s.accepts, s.handled, s.requests = tonumber(a), tonumber(h), tonumber(r)
  local rd, wr, wt = body:match("Reading:%s*(%d+)%s+Writing:%s*(%d+)%s+Waiting:%s*(%d+)")
  s.reading, s.writing, s.waiting = tonumber(rd), tonumber(wr), tonumber(wt)
  if not (s.active and s.accepts and s.reading) then
    return nil
  end
  return s
end

-- The first line of a body, short enough for a message.
local function excerpt(body)
  local line = body:match("^%s*([^\r\n]*)") or ""
  if #line > 80 then
    line = line:sub(1, 80) .. "..."
  end
  return string.format("%q", line)
end

local function fetch(o)
  local res, err = mw.http.get(o.url, o.http)
  if not res then
    err = tostring(err)
    if not err:find(o.url, 1, true) then
      err = o.url .. ": " .. err
    end
    return nil, "cannot reach the status page: " .. err
  end
  if res.status < 200 or res.status > 299 then
    return nil, o.url .. " answered HTTP " .. res.status .. ", expected 200 with " .. EXPECTED
  end
  local s = parse(res.body or "")
  if not s then
    return nil, o.url .. " did not return " .. EXPECTED .. "; got " .. excerpt(res.body or "")
  end
  return s
end

local function total(name, value)
  mw.gauge(name, value)
  mw.monotonic_count(name .. "_count", value)
end

local function submit(s)
  mw.gauge("nginx.net.connections", s.active)
  mw.gauge("nginx.net.reading", s.reading)
  mw.gauge("nginx.net.writing", s.writing)
  mw.gauge("nginx.net.waiting", s.waiting)
  local dropped = s.accepts - s.handled
  mw.rate("nginx.net.conn_opened_per_s", s.accepts)
  mw.rate("nginx.net.conn_dropped_per_s", dropped)
  mw.rate("nginx.net.request_per_s", s.requests)
  total("nginx.connections.accepted", s.accepts)
  total("nginx.connections.dropped", dropped)
  total("nginx.requests.total", s.requests)
end

function check.init(self)
  self.o = options(self)
end

function check.run(self)
  local o = self.o
  local s, err = fetch(o)
  if not s then
    mw.service_check("nginx.can_connect", mw.CRITICAL, o.sc_tags, err)
    error(err, 0)
  end
  mw.service_check("nginx.can_connect", mw.OK, o.sc_tags)
  submit(s)
end

return check

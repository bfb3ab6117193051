-- openmetrics: scrapes a Prometheus / OpenMetrics text endpoint and
-- submits its series as Datadog's OpenMetrics V2 check does
-- (OpenMetricsBaseCheckV2). Parsing and submission are done in C by
-- mw.openmetrics.submit; this file reads the options and does the HTTP.
--
-- Names, for namespace N and a family F (after raw_metric_prefix, or its
-- rename from `metrics`):
--   counter    N.F.count     monotonic_count (the F_total series; F is
--                            the family name without _total)
--   gauge      N.F           gauge
--   histogram  N.F.bucket    monotonic_count, tag upper_bound:<le> (the
--                            +Inf bucket is left out: it is N.F.count)
--              N.F.sum, N.F.count  monotonic_count
--   summary    N.F.quantile  gauge, tag quantile:<q>
--              N.F.sum, N.F.count  monotonic_count
-- Labels become tags label:value, plus endpoint:<url> (tag_by_endpoint).
-- Untyped metrics (no # TYPE, or untyped/unknown) are skipped, as in V2,
-- unless `metrics` or `type_overrides` gives them a type; _created
-- series, NaN and +/-Inf values are never submitted. A monotonic count is
-- first reported on the second run (it needs two values).
--
-- Service check N.openmetrics.health (tag endpoint:<url>): OK when the
-- endpoint answered 2xx, else CRITICAL with the reason, and the run fails
-- (unless ignore_connection_errors, for connection errors only).
--
-- Instance options: openmetrics_endpoint (or the V1 prometheus_url),
-- namespace and metrics (required); raw_metric_prefix, exclude_metrics,
-- exclude_labels, include_labels, rename_labels, type_overrides,
-- collect_histogram_buckets (or send_histograms_buckets),
-- enable_health_service_check, ignore_connection_errors, tag_by_endpoint,
-- use_latest_spec, headers, extra_headers, username / password, timeout,
-- connect_timeout, tls_verify, tls_ca_cert (or ca_file), tls_cert,
-- tls_private_key, allow_redirects, and the common ones (tags, service,
-- min_collection_interval). With prometheus_url the V1 spellings work too:
-- metrics, ignore_metrics and type_overrides keys are shell globs
-- (`go_*`), labels_mapper renames labels, prometheus_metrics_prefix is
-- the raw prefix, health_service_check switches the service check. With
-- openmetrics_endpoint, metrics and exclude_metrics entries are names or
-- regular expressions searched anywhere in the name (V2: ".*" is every
-- metric, "^go_" those starting with go_).
--
-- The options are read once, in init(), with mw.opt; a bad one fails
-- every run with a message that names it.

local check = {}

local DEFAULT_TIMEOUT = 10
local ACCEPT_TEXT = "text/plain"
local ACCEPT_OPENMETRICS = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1"

-- V2 options this check does not implement: said once, in init().
local UNSUPPORTED = {
  "share_labels", "exclude_metrics_by_labels", "hostname_label", "hostname_format",
  "histogram_buckets_as_distributions", "non_cumulative_histogram_buckets",
  "collect_counters_with_distributions", "use_process_start_time", "raw_line_filters",
  "extra_metrics", "telemetry", "auth_token", "bearer_token_auth", "label_joins",
  "label_to_hostname",
}

local opt = mw.opt

local function absent(v)
  return v == nil or v == mw.json.null
end

-- ------------------------------------------------------------ config

local function parse_endpoint(inst)
  local option = opt.first(inst, "openmetrics_endpoint", "prometheus_url")
  local url = opt.string(inst, option)
  if not url or not url:match("^[hH][tT][tT][pP][sS]?://.") then
    opt.error(option, "http:// or https:// URL", url)
  end
  return url, option == "prometheus_url"
end

local function parse_http(self, inst)
  local headers = { Accept = opt.bool(inst, "use_latest_spec", false) and ACCEPT_OPENMETRICS or ACCEPT_TEXT }
  for k, v in pairs(opt.map(inst, "headers", {})) do
    headers[k] = v
  end
  for k, v in pairs(opt.map(inst, "extra_headers", {})) do
    headers[k] = v
  end
  local user, password = opt.string(inst, "username"), opt.string(inst, "password")
  if user and password then
    headers.Authorization = "Basic " .. mw.base64.encode(user .. ":" .. password)
  elseif user or password then
    opt.error(user and "password" or "username", "required with " .. (user and "username" or "password"))
  end
  return {
    headers = headers,
    timeout = opt.timeout(self, DEFAULT_TIMEOUT),
    connect_timeout = opt.number(inst, "connect_timeout", nil, 0.001),
    tls_verify = opt.bool(inst, opt.first(inst, "tls_verify", "ssl_verify"), true),
    ca_file = opt.string(inst, opt.first(inst, "tls_ca_cert", "ca_file", "ssl_ca_cert")),
    client_cert = opt.string(inst, opt.first(inst, "tls_cert", "ssl_cert")),
    client_key = opt.string(inst, opt.first(inst, "tls_private_key", "ssl_private_key")),
    follow_redirects = opt.bool(inst, "allow_redirects", true),
  }
end

-- V2 reads these under the V1 names only when the V2 name is not set.
local V1_ALIASES = {
  { "exclude_metrics", "ignore_metrics" },
  { "rename_labels", "labels_mapper" },
  { "raw_metric_prefix", "prometheus_metrics_prefix" },
  { "enable_health_service_check", "health_service_check" },
}

local function v1_aliases(inst)
  local out = setmetatable({}, { __index = inst })
  for _, pair in ipairs(V1_ALIASES) do
    if absent(inst[pair[1]]) and not absent(inst[pair[2]]) then
      out[pair[1]] = inst[pair[2]]
    end
  end
  return out
end

-- What mw.openmetrics.submit takes, copied from the instance; types are
-- checked there (an error names the option).
local function submit_options(inst, url, v1)
  local ns = opt.string(inst, "namespace", opt.REQUIRED)
  if absent(inst.metrics) then
    opt.error("metrics", "list of metric names or regular expressions ([\".*\"]: every metric)", nil)
  end
  local opts = { namespace = ns, metrics = inst.metrics, globs = v1 }
  for _, option in ipairs({ "raw_metric_prefix", "exclude_metrics", "exclude_labels",
                            "include_labels", "rename_labels", "type_overrides" }) do
    if not absent(inst[option]) then
      opts[option] = inst[option]
    end
  end
  opts.collect_histogram_buckets =
    opt.bool(inst, opt.first(inst, "collect_histogram_buckets", "send_histograms_buckets"))
  -- instance `tags` are added to every sample by the engine
  opts.tags = opt.bool(inst, "tag_by_endpoint", true) and { "endpoint:" .. url } or {}
  return opts
end

local function parse_config(self)
  if not mw.openmetrics then
    error("mw.openmetrics is not available in this build of moonwatch", 0)
  end
  local raw = self.instance
  local url, v1 = parse_endpoint(raw)
  local inst = v1 and v1_aliases(raw) or raw
  local cfg = {
    url = url,
    http = parse_http(self, inst),
    opts = submit_options(inst, url, v1),
    health = opt.bool(inst, "enable_health_service_check", true),
    ignore_connection_errors = opt.bool(inst, "ignore_connection_errors", false),
  }
  cfg.health_name = cfg.opts.namespace .. ".openmetrics.health"
  cfg.health_tags = { "endpoint:" .. url }
  -- compiles the options on an empty exposition: a bad one fails here,
  -- said as mw.opt says it
  local ok, err = pcall(mw.openmetrics.submit, "", cfg.opts)
  if not ok then
    err = tostring(err):gsub("^mw%.openmetrics%.submit: ", "")
    local option, why = err:match("^option '([^']*)':? (.*)$")
    if option then
      opt.error(option, why)
    end
    error(err, 0)
  end
  for _, option in ipairs(UNSUPPORTED) do
    if not absent(raw[option]) then
      mw.log.warn("openmetrics: option " .. option .. " is not supported and is ignored")
    end
  end
  return cfg
end

-- ------------------------------------------------------------ run

local function health(cfg, status, message)
  if cfg.health then
    mw.service_check(cfg.health_name, status, cfg.health_tags, message)
  end
end

-- The reason requests' raise_for_status gives, as V2 reports it.
local function status_error(status, url)
  local kind = status >= 500 and status < 600 and "Server Error" or "Client Error"
  if status < 400 or status >= 600 then
    kind = "Unexpected Status"
  end
  return string.format("%d %s for url: %s", status, kind, url)
end

function check.init(self)
  self.cfg = parse_config(self)
end

function check.run(self)
  local cfg = self.cfg
  local resp, err = mw.http.get(cfg.url, cfg.http)
  if not resp then
    health(cfg, mw.CRITICAL, err)
    if cfg.ignore_connection_errors then
      mw.log.warn("OpenMetrics endpoint " .. cfg.url .. " is not accessible: " .. tostring(err))
      return
    end
    error(err, 0)
  end
  if resp.status < 200 or resp.status > 299 then
    local why = status_error(resp.status, cfg.url)
    health(cfg, mw.CRITICAL, why)
    error(why, 0)
  end
  health(cfg, mw.OK)
  mw.openmetrics.submit(resp.body, cfg.opts)
end

return check

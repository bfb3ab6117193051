-- http_check: is a URL up, does it answer with the expected status and
-- content, and how long until its TLS certificate expires. Options,
-- metric and service check names, tags and messages follow Datadog's
-- http_check.
--
-- Metrics (tags url:<url>, instance:<name>):
--   network.http.response_time  gauge, seconds (collect_response_time)
--   network.http.can_connect    gauge, 1 when http.can_connect is OK
--   network.http.cant_connect   gauge, its opposite
--   http.ssl.days_left          gauge, whole days (rounded down) and
--   http.ssl.seconds_left       gauge, seconds, for https URLs
-- Service checks (same tags):
--   http.can_connect  OK, or CRITICAL with the reason (no connection,
--                     wrong status, content (not) found)
--   http.ssl_cert     OK / WARNING / CRITICAL by days left; CRITICAL when
--                     the certificate is expired or cannot be verified;
--                     UNKNOWN when it could not be read at all
--
-- Instance options: name and url (required), method, data, headers,
-- timeout, http_response_status_code, content_match (a Lua pattern),
-- reverse_content_match, include_content, collect_response_time,
-- check_certificate_expiration, days_warning, days_critical,
-- seconds_warning, seconds_critical, tls_verify (or the older
-- disable_ssl_validation), ca_certs (or tls_ca_cert), tls_cert /
-- client_cert, tls_private_key / client_key, allow_redirects, and the
-- common ones (tags, service, min_collection_interval). The options are
-- read once, in init(), with mw.opt; a bad one fails every run with a
-- message that names it ("bad option 'days_warning': number >= 0
-- expected, got string \"soon\"").

local check = {}

local DEFAULT_STATUS = "(1|2|3)\\d\\d"
local DEFAULT_TIMEOUT = 10
local CONTENT_IN_MESSAGE = 200 -- bytes of the body that include_content adds
-- Sets of names as " NAME NAME " strings: a literal is shared by every
-- instance in the state, where a table would be each instance's own.
local DATA_METHODS = " POST PUT DELETE PATCH OPTIONS "
local METHODS = " GET HEAD POST PUT DELETE PATCH OPTIONS "

local function one_of(set, name)
  return name:match("^%u+$") ~= nil and set:find(" " .. name .. " ", 1, true) ~= nil
end

local opt = mw.opt

-- --------------------------------------- http_response_status_code
--
-- Datadog matches the option as a Python regex at the start of the
-- status ("re.match"). Lua has none, so the forms people write are
-- compiled here: digits, \d, ., [..] classes of digits and ranges, {n}
-- after an item, one level of (a|b) or (?:a|b) groups, top-level a|b,
-- and ^ / $ at the ends. Anything else is refused with the position.
-- Compiled: a list of alternatives, each a list of sets: a string of
-- the digits it allows (interned: shared, not each instance's own), or
-- ANY.

local DIGITS = "0123456789"
local ANY = true
local MAX_ALTERNATIVES = 256

local function status_error(pat, pos, why)
  opt.error("http_response_status_code", string.format(
    "'%s': %s at position %d (supported: digits, \\d, ., [0-9] classes, {n}, " ..
    "(a|b) groups, a|b, ^ and $)", pat, why, pos))
end

-- Every sequence of `a` followed by every sequence of `b`.
local function product(pat, pos, a, b)
  if #a * #b > MAX_ALTERNATIVES then
    status_error(pat, pos, "too many alternatives")
  end
  local out = {}
  for _, x in ipairs(a) do
    for _, y in ipairs(b) do
      local seq = table.move(x, 1, #x, 1, {})
      table.move(y, 1, #y, #seq + 1, seq)
      out[#out + 1] = seq
    end
  end
  return out
end

-- "[...]" at `i`: a set of digits and digit ranges; returns set, next i.
local function parse_class(pat, i)
  local set, j = "", i + 1
  while true do
    local c = pat:sub(j, j)
    if c == "]" and j > i + 1 then
      return set, j + 1
    end
    local hi = pat:match("^%-(%d)", j + 1)
    if c:match("^%d$") and hi then
      if hi < c then
        status_error(pat, j, "reversed range")
      end
      for d = tonumber(c), tonumber(hi) do
        set = set .. d
      end
      j = j + 3
    elseif c:match("^%d$") then
      set = set .. c
      j = j + 1
    else
      status_error(pat, j, c == "" and "unclosed [" or "unsupported character in [...]")
    end
  end
end

local parse_alternatives

-- One item at `i` (a set or a group), as a list of sequences; next i.
local function parse_item(pat, i, depth, m)
  local c = pat:sub(i, i)
  if c:match("^%d$") then
    return { { c } }, i + 1
  elseif c == "." then
    return { { ANY } }, i + 1
  elseif c == "\\" and pat:sub(i + 1, i + 1) == "d" then
    return { { DIGITS } }, i + 2
  elseif c == "[" then
    local set, j = parse_class(pat, i)
    return { { set } }, j
  elseif c == "(" then
    if depth > 0 then
      status_error(pat, i, "nested group")
    end
    local j = pat:sub(i + 1, i + 2) == "?:" and i + 3 or i + 1
    local alts, k = parse_alternatives(pat, j, depth + 1, m)
    if pat:sub(k, k) ~= ")" then
      status_error(pat, k, "unclosed (")
    end
    return alts, k + 1
  end
  status_error(pat, i, c == "" and "unexpected end" or "unsupported '" .. c .. "'")
end

-- "{n}" after an item: the item n times.
local function repeat_item(pat, i, item)
  local n, j = pat:match("^{(%d+)}()", i)
  if not n then
    return item, i
  end
  local out = { {} }
  for _ = 1, tonumber(n) do
    out = product(pat, i, out, item)
  end
  return out, j
end

-- Alternatives up to an unmatched ")", a final "$" (sets m.anchored)
-- or the end; returns them and the next index.
function parse_alternatives(pat, i, depth, m)
  local alts, cur = {}, { {} }
  while true do
    local c = pat:sub(i, i)
    if c == "$" and i == #pat and depth == 0 then
      m.anchored, i = true, i + 1
      break
    elseif c == "" or c == ")" then
      break
    elseif c == "|" then
      table.move(cur, 1, #cur, #alts + 1, alts)
      cur, i = { {} }, i + 1
    else
      local item
      item, i = parse_item(pat, i, depth, m)
      item, i = repeat_item(pat, i, item)
      cur = product(pat, i, cur, item)
    end
  end
  table.move(cur, 1, #cur, #alts + 1, alts)
  return alts, i
end

local function compile_status(pat)
  if pat == DEFAULT_STATUS then
    -- what most instances use reads as a Lua pattern: nothing to compile
    return { lua_pattern = "^[123]%d%d" }
  end
  local m = { anchored = false }
  local alts, i = parse_alternatives(pat, pat:sub(1, 1) == "^" and 2 or 1, 0, m)
  if i <= #pat then
    status_error(pat, i, "unmatched )")
  end
  m.alts = alts
  return m
end

-- re.match semantics: a prefix match unless the pattern ends with $.
local function status_matches(m, code)
  if m.lua_pattern then
    return code:find(m.lua_pattern) ~= nil
  end
  for _, seq in ipairs(m.alts) do
    local fits = #seq <= #code and (not m.anchored or #seq == #code)
    for k = 1, fits and #seq or 0 do
      local set = seq[k]
      if set ~= ANY and not set:find(code:sub(k, k), 1, true) then
        fits = false
        break
      end
    end
    if fits then
      return true
    end
  end
  return false
end

-- ------------------------------------------------------------ config

-- The URL, and whether it is https.
local function parse_url(inst)
  local url = opt.string(inst, "url")
  local s = url and url:match("^[hH][tT][tT][pP]([sS]?)://")
  if not s then
    opt.error("url", "http:// or https:// URL", url)
  end
  return url, s ~= ""
end

local function has_header(headers, name)
  for k in pairs(headers) do
    if k:lower() == name then
      return true
    end
  end
  return false
end

-- The request body and its default Content-Type, for the methods that
-- send one: a mapping is sent as JSON, a string as it is.
local function parse_data(inst, method, headers)
  local data = inst.data
  if not one_of(DATA_METHODS, method) or data == nil or data == mw.json.null then
    return nil
  end
  local body, ctype
  if type(data) == "table" then
    body, ctype = mw.json.encode(data), "application/json"
  elseif type(data) == "string" then
    body, ctype = data, "application/x-www-form-urlencoded"
  else
    opt.error("data", "mapping or string", data)
  end
  if not has_header(headers, "content-type") then
    headers["Content-Type"] = ctype
  end
  return body
end

local function parse_content_match(inst)
  local pat = opt.string(inst, "content_match")
  if pat then
    local ok, err = pcall(string.find, "", pat)
    if not ok then
      opt.error("content_match", "not a valid Lua pattern: " .. tostring(err):gsub("^.-:%d+: ", ""))
    end
  end
  return pat
end

-- TLS: tls_verify wins over the older disable_ssl_validation. Returns
-- verify, ca_file, client_cert, client_key.
local function parse_tls(inst)
  local verify
  if opt.first(inst, "tls_verify", "disable_ssl_validation") == "tls_verify" then
    verify = opt.bool(inst, "tls_verify", true)
  else
    verify = not opt.bool(inst, "disable_ssl_validation")
  end
  return verify, opt.string(inst, opt.first(inst, "tls_ca_cert", "ca_certs")),
    opt.string(inst, opt.first(inst, "tls_cert", "client_cert")),
    opt.string(inst, opt.first(inst, "tls_private_key", "client_key"))
end

-- Thresholds in seconds, warning and critical; seconds_* win over
-- days_*, as in Datadog.
local function parse_thresholds(inst)
  local days_w = opt.number(inst, "days_warning", 14, 0)
  local days_c = opt.number(inst, "days_critical", 7, 0)
  return opt.number(inst, "seconds_warning", days_w * 86400, 0),
    opt.number(inst, "seconds_critical", days_c * 86400, 0)
end

-- Datadog adds url:<url> only when the instance's tags have none.
local function has_url_tag(tags)
  if type(tags) ~= "table" then
    return false
  end
  for _, t in ipairs(tags) do
    if type(t) == "string" and t:match("^url:") then
      return true
    end
  end
  return false
end

-- The options in the order they are checked (the first bad one is the
-- one reported), then the instance's config in one constructor, which
-- sizes the table once instead of growing it field by field.
local function parse_config(self)
  local inst = self.instance
  local name = opt.string(inst, "name", opt.REQUIRED)
  local url, https = parse_url(inst)
  local method = opt.string(inst, "method", "GET"):upper()
  if not one_of(METHODS, method) then
    opt.error("method", "one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS", method)
  end
  local headers = opt.map(inst, "headers", {})
  local body = parse_data(inst, method, headers)
  local timeout = opt.timeout(self, DEFAULT_TIMEOUT)
  local status_pattern = opt.string(inst, "http_response_status_code", DEFAULT_STATUS)
  local status = compile_status(status_pattern)
  local content_match = parse_content_match(inst)
  local reverse = opt.bool(inst, "reverse_content_match", false)
  local include_content = opt.bool(inst, "include_content", false)
  local response_time = opt.bool(inst, "collect_response_time", true)
  local follow = opt.bool(inst, "allow_redirects", true)
  local ssl_expire = https and opt.bool(inst, "check_certificate_expiration", true)
  local tls_verify, ca_file, client_cert, client_key = parse_tls(inst)
  local warn_s, crit_s = parse_thresholds(inst)
  local instance_tag = "instance:" .. mw.tag.normalize(name)
  return {
    name = name, url = url, https = https, method = method, headers = headers, body = body,
    timeout = timeout, status_pattern = status_pattern, status = status,
    content_match = content_match, reverse = reverse, include_content = include_content,
    response_time = response_time, follow = follow, ssl_expire = ssl_expire,
    tls_verify = tls_verify, ca_file = ca_file, client_cert = client_cert, client_key = client_key,
    warn_s = warn_s, crit_s = crit_s,
    tags = has_url_tag(inst.tags) and { instance_tag } or { "url:" .. url, instance_tag },
  }
end

-- ------------------------------------------------------------ run

local function fetch(cfg)
  local start = mw.time()
  local res, err = mw.http.request({
    method = cfg.method, url = cfg.url, headers = cfg.headers, body = cfg.body,
    timeout = cfg.timeout, follow_redirects = cfg.follow,
    tls_verify = cfg.tls_verify, ca_file = cfg.ca_file,
    client_cert = cfg.client_cert, client_key = cfg.client_key,
    want_cert = cfg.ssl_expire,
  })
  return res, err, math.floor((mw.time() - start) * 1000)
end

local function with_content(cfg, msg, body)
  if cfg.include_content then
    msg = msg .. "\nContent: " .. (body or ""):sub(1, CONTENT_IN_MESSAGE)
  end
  return msg
end

-- The http.can_connect status and message for a response.
local function judge(cfg, res)
  local code = tostring(res.status)
  if not status_matches(cfg.status, code) then
    local expected = cfg.status_pattern == DEFAULT_STATUS and "1xx or 2xx or 3xx" or cfg.status_pattern
    return mw.CRITICAL, with_content(cfg, string.format(
      "Incorrect HTTP return code for url %s. Expected %s, got %s.", cfg.url, expected, code), res.body)
  end
  if not cfg.content_match then
    return mw.OK
  end
  local found = (res.body or ""):find(cfg.content_match) ~= nil
  if found and cfg.reverse then
    return mw.CRITICAL, with_content(cfg, string.format(
      'Content "%s" found in response with the reverse_content_match', cfg.content_match), res.body)
  elseif not found and not cfg.reverse then
    return mw.CRITICAL, with_content(cfg, string.format(
      'Content "%s" not found in response.', cfg.content_match), res.body)
  end
  return mw.OK
end

-- A request that failed on the certificate (rather than on the
-- connection) says so: curl's and OpenSSL's words for it.
local function cert_error(err)
  local e = err:lower()
  return e:find("certificate", 1, true) or e:find("ssl", 1, true) or e:find("tls", 1, true)
end

-- http.ssl_cert status, message, seconds left (nil when unknown).
local function judge_cert(cfg, res, err)
  if not res then
    if cert_error(err) then
      return mw.CRITICAL, err
    end
    return mw.UNKNOWN, err
  end
  if not res.cert_not_after then
    return mw.UNKNOWN, "Empty or no certificate found."
  end
  local left = res.cert_not_after - os.time()
  local days = math.floor(left / 86400)
  if left < cfg.crit_s then
    return mw.CRITICAL, string.format("This cert TTL is critical: only %d days before it expires", days), left
  elseif left < cfg.warn_s then
    return mw.WARNING, string.format("This cert is almost expired, only %d days left", days), left
  end
  return mw.OK, string.format("Days left: %d", days), left
end

local function report_cert(cfg, res, err)
  local status, msg, left = judge_cert(cfg, res, err)
  if left then
    mw.gauge("http.ssl.days_left", math.floor(left / 86400), cfg.tags)
    mw.gauge("http.ssl.seconds_left", left, cfg.tags)
  end
  mw.service_check("http.ssl_cert", status, cfg.tags, status ~= mw.OK and msg or nil)
end

function check.init(self)
  self.cfg = parse_config(self)
end

function check.run(self)
  local cfg = self.cfg
  local res, err, ms = fetch(cfg)
  local status, msg
  if res then
    if cfg.response_time then
      mw.gauge("network.http.response_time", res.elapsed, cfg.tags)
    end
    status, msg = judge(cfg, res)
  else
    status, msg = mw.CRITICAL, string.format("%s. Connection failed after %d ms", err, ms)
  end
  local up = status == mw.OK and 1 or 0
  mw.gauge("network.http.can_connect", up, cfg.tags)
  mw.gauge("network.http.cant_connect", 1 - up, cfg.tags)
  mw.service_check("http.can_connect", status, cfg.tags, msg)
  if cfg.ssl_expire then
    report_cert(cfg, res, err)
  end
end

return check

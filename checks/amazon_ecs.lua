-- amazon_ecs: the clusters of Amazon ECS as the ECS API describes them:
-- their container instances, services and service events, with the
-- metric, tag and event names of Datadog's Amazon ECS integration. One
-- instance covers a region's clusters; run it once per account and
-- region (deploy/ecs/ runs it as a service of its own with one task), not
-- on every host. The calls go through mw.aws.request: the engine signs
-- them with its AWS credentials (the task role on ECS), which the check
-- never sees.
--
-- Calls per run, every page followed (nextToken) and every batch within
-- AWS's limits, none made twice:
--   ListClusters (100 a page; not with `clusters`), DescribeClusters (100
--   clusters a call), and per cluster ListContainerInstances (100 a page),
--   DescribeContainerInstances (100 a call), and with collect_services
--   ListServices (100 a page) and DescribeServices (10 a call).
--
-- Metrics, each tagged ecs_cluster_name:<name> and region:<region>:
--   per container instance, also tagged container_instance_arn:,
--   instance_id: (the EC2 instance), ecs_agent_version:, status::
--     aws.ecs.running_tasks_count, aws.ecs.pending_tasks_count   gauge, tasks
--     aws.ecs.registered_cpu, aws.ecs.remaining_cpu              gauge, CPU units
--     aws.ecs.registered_memory, aws.ecs.remaining_memory        gauge, MiB
--     aws.ecs.agent_connected                                    gauge, 1 or 0
--   per cluster (DescribeClusters):
--     aws.ecs.services (active services), aws.ecs.container_instances,
--     aws.ecs.cluster.running_tasks, aws.ecs.cluster.pending_tasks
--   per service, also tagged ecs_service:<name>:
--     aws.ecs.service.desired, aws.ecs.service.running,
--     aws.ecs.service.pending                                    gauge, tasks
-- Service checks:
--   aws.ecs.agent_connected  per container instance (its tags): OK, or
--                            CRITICAL naming the EC2 instance whose agent
--                            is not connected
--   amazon_ecs.can_connect   tagged region: when set: OK, or CRITICAL with
--                            the first failed call and AWS's error (what
--                            the other calls got is still sent)
-- Events (source_type_name amazon_ecs, the metrics' tags and
-- ecs_event:<kind>):
--   the services' events (DescribeServices: the 100 latest of each) whose
--   message holds one of event_keywords, any case; kind is the keyword
--   (the first of the list that the message holds; a space becomes "_"),
--   title "<cluster>/<service>: <kind>", text the message, timestamp its
--   createdAt; alert_type error for error, fail and insufficient memory,
--   warning for drain, pending, reboot and terminate, info for others.
--   With event_keywords: [] every event is sent, its kind the first
--   default keyword it holds, else "other".
--   drain: a container instance turned DRAINING (once per turn);
--   terminate: a container instance was deregistered (INACTIVE, or no
--   longer listed); both warning.
-- Each event is sent once: what was sent is kept in mw.state (per
-- service, the newest createdAt seen and the ids at it; per container
-- instance, its status), so also across restarts of moonwatch. On the
-- very first run (no state yet) service events older than
-- event_lookback seconds are history, not sent, and no instance is said
-- to have turned DRAINING.
--
-- Instance options: clusters (names or ARNs; default: every cluster,
-- from ListClusters), region (default: the engine's default region),
-- collect_services (default true), event_keywords (default drain, error,
-- fail, insufficient memory, pending, reboot, terminate; [] for every
-- event), event_lookback (seconds, default 300), and the common ones
-- (tags, timeout, min_collection_interval: 60 by default, this check's
-- own, not the engine's 15).

local opt = mw.opt
-- Every run costs API calls (AWS's rate limits are per account and
-- region): once a minute unless the config says otherwise.
local check = { min_collection_interval = 60 }

local TARGET = "AmazonEC2ContainerServiceV20141113."
local PAGE = 100 -- results per List* page: AWS's most
local DESCRIBE_CLUSTERS = 100 -- per call: AWS's limits
local DESCRIBE_INSTANCES = 100
local DESCRIBE_SERVICES = 10
local MAX_PAGES = 1000 -- per list: a loop bound, 100,000 items
local DEFAULT_KEYWORDS = { "drain", "error", "fail", "insufficient memory", "pending", "reboot", "terminate" }
local ALERT = {
  drain = "warning", error = "error", fail = "error", insufficient_memory = "error",
  pending = "warning", reboot = "warning", terminate = "warning",
}
local EMPTY = {}
-- The mw calls made per container instance, looked up once (each mw.x
-- is a lookup through a read-only proxy).
local mw_gauge, mw_service_check, mw_event = mw.gauge, mw.service_check, mw.event
local state_get, state_set, state_keys = mw.state.get, mw.state.set, mw.state.keys

local function keyword(word)
  local kind = word:lower():gsub("%s+", "_")
  return { word = word:lower(), kind = kind, alert = ALERT[kind] or "info" }
end

function check.init(self)
  local inst = self.instance
  self.clusters = opt.list(inst, "clusters", {})
  for i, c in ipairs(self.clusters) do
    if c == "" then
      opt.error("clusters[" .. i .. "]", "cluster name or ARN", c)
    end
  end
  self.region = opt.string(inst, "region", nil)
  if self.region and (#self.region > 32 or not self.region:find("^[a-z][a-z0-9-]*$")) then
    opt.error("region", "AWS region name", self.region)
  end
  self.collect_services = opt.bool(inst, "collect_services", true)
  local words = opt.list(inst, "event_keywords", DEFAULT_KEYWORDS)
  self.all_events = #words == 0
  self.keywords = {}
  for i, w in ipairs(self.all_events and DEFAULT_KEYWORDS or words) do
    if not w:find("%S") then
      opt.error("event_keywords[" .. i .. "]", "non-empty string", w)
    end
    self.keywords[i] = keyword(w)
  end
  self.lookback = opt.number(inst, "event_lookback", 300, 0)
  self.region_tags = self.region and { "region:" .. self.region } or nil
end

-- ------------------------------------------------------------- calls

-- One run's bookkeeping: the first error and how many there were.
local function failed(run, what, err)
  run.errors = run.errors + 1
  run.error = run.error or (what .. ": " .. tostring(err))
end

-- One ECS API call; its decoded answer, or nil (the error recorded).
local function call(self, run, action, body, what)
  local r, err = mw.aws.request{ service = "ecs", target = TARGET .. action, region = self.region, body = body }
  run.calls = run.calls + 1
  if not r then
    failed(run, what or action, err)
    return nil
  end
  if type(r.json) ~= "table" then
    failed(run, what or action, "the answer is not a JSON object")
    return nil
  end
  return r.json
end

-- Every page of a List* call: the items under `key`, and whether the
-- list is whole (every page answered).
local function list_all(self, run, action, body, key, what)
  local items, token, pages = {}, nil, 0
  repeat
    body.nextToken = token
    local j = call(self, run, action, body, what)
    if not j then
      return items, false
    end
    local page = type(j[key]) == "table" and j[key] or EMPTY
    table.move(page, 1, #page, #items + 1, items)
    local next = j.nextToken
    if type(next) == "string" and next ~= "" and next == token then
      failed(run, what or action, "the same nextToken twice")
      return items, false
    end
    token, pages = type(next) == "string" and next ~= "" and next or nil, pages + 1
  until not token or pages == MAX_PAGES
  return items, token == nil
end

-- Describe* over `ids` in batches of `size`: calls each(item) for every
-- item of `out_key`, missing(arn) for every failure whose reason is
-- MISSING; returns whether every batch was answered.
local function describe_all(self, run, action, body, in_key, out_key, ids, size, each, missing, what)
  local whole = true
  for i = 1, #ids, size do
    body[in_key] = table.move(ids, i, math.min(i + size - 1, #ids), 1, {})
    local j = call(self, run, action, body, what)
    if j then
      local items = type(j[out_key]) == "table" and j[out_key] or EMPTY
      for k = 1, #items do
        if type(items[k]) == "table" then
          each(items[k])
        end
      end
      local fails = type(j.failures) == "table" and j.failures or EMPTY
      for k = 1, #fails do
        local f = fails[k]
        if type(f) == "table" and f.reason == "MISSING" and missing then
          missing(f.arn)
        elseif type(f) == "table" then
          failed(run, what or action, tostring(f.arn) .. ": " .. tostring(f.reason))
          whole = false
        end
      end
    else
      whole = false
    end
  end
  return whole
end

-- ------------------------------------------------------------- helpers

local function num(v)
  return type(v) == "number" and v or nil
end

local function gauge(name, v, tags)
  if type(v) == "number" then
    mw_gauge(name, v, tags)
  end
end

-- CPU and MEMORY of a registeredResources / remainingResources list.
local function resources(list)
  local cpu, mem
  if type(list) ~= "table" then
    return
  end
  for i = 1, #list do
    local r = list[i]
    local name = type(r) == "table" and r.name
    if name == "CPU" or name == "MEMORY" then
      local v = num(r.integerValue) or num(r.doubleValue) or num(r.longValue)
      if name == "CPU" then
        cpu = v
      else
        mem = v
      end
    end
  end
  return cpu, mem
end

local function region_of(arn)
  return type(arn) == "string" and arn:match("^arn:[^:]*:ecs:([^:]+):") or nil
end

-- A copy of the list `t` with a, b, c, d after it (the nils last).
local function copy(t, a, b, c, d)
  local out, n = {}, #t
  for i = 1, n do
    out[i] = t[i]
  end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = a, b, c, d -- no hole: nils come last
  return out
end

-- mw.state.set, and a warning (once a run) when the state is full.
local function remember(run, key, value)
  local ok, err = state_set(key, value)
  if not ok and not run.state_full then
    run.state_full = true
    mw.warning(err .. ": events may be sent again")
  end
end

local function send_event(title, text, kind, alert, tags, ts)
  mw_event{
    title = title, text = text, alert_type = alert, source_type_name = "amazon_ecs",
    tags = copy(tags, "ecs_event:" .. kind), timestamp = ts,
  }
end

-- ------------------------------------------------------------- instances

-- The last status known of a container instance: "STATUS EC2-ID".
local function ci_key(cl, arn)
  return "ci:" .. cl.name .. "/" .. arn
end

local function instance_tags(cl, ci)
  local arn = tostring(ci.containerInstanceArn)
  local version = type(ci.versionInfo) == "table" and ci.versionInfo.agentVersion
  return copy(cl.tags,
    "container_instance_arn:" .. arn,
    "instance_id:" .. tostring(ci.ec2InstanceId or ""),
    "ecs_agent_version:" .. tostring(version or ""),
    "status:" .. tostring(ci.status or ""))
end

local function instance_gone(self, run, cl, arn, why)
  local key = ci_key(cl, arn)
  local rec = state_get(key)
  if not rec then
    return
  end
  local status, ec2 = rec:match("^(%S*) ?(.*)$")
  local tags = copy(cl.tags, "container_instance_arn:" .. arn, "instance_id:" .. ec2)
  send_event(cl.name .. "/" .. ec2 .. ": terminate",
    "Container instance " .. arn .. " (EC2 instance " .. ec2 .. ") " .. why .. " (it was " .. status .. ")",
    "terminate", "warning", tags, run.now)
  remember(run, key, nil)
end

-- A change of status said once: DRAINING (drain), INACTIVE (terminate).
local function instance_status(self, run, cl, ci, tags)
  local arn, status = ci.containerInstanceArn, tostring(ci.status)
  local ec2 = tostring(ci.ec2InstanceId or "")
  if status == "INACTIVE" then
    instance_gone(self, run, cl, arn, "was deregistered")
    return
  end
  local key = ci_key(cl, arn)
  local rec = state_get(key)
  local was = rec and rec:match("^%S*")
  if status == "DRAINING" and was ~= "DRAINING" and (rec or not run.first) then
    send_event(cl.name .. "/" .. ec2 .. ": drain",
      "Container instance " .. arn .. " (EC2 instance " .. ec2 .. ") is DRAINING" ..
      (was and " (it was " .. was .. ")" or ""), "drain", "warning", tags, run.now)
  end
  local now = status .. " " .. ec2
  if rec ~= now then
    remember(run, key, now)
  end
end

local function container_instance(self, run, cl, ci)
  local arn = ci.containerInstanceArn
  if type(arn) ~= "string" then
    return
  end
  cl.seen[arn] = true
  local tags = instance_tags(cl, ci)
  gauge("aws.ecs.running_tasks_count", ci.runningTasksCount, tags)
  gauge("aws.ecs.pending_tasks_count", ci.pendingTasksCount, tags)
  local rcpu, rmem = resources(ci.registeredResources)
  local fcpu, fmem = resources(ci.remainingResources)
  gauge("aws.ecs.registered_cpu", rcpu, tags)
  gauge("aws.ecs.remaining_cpu", fcpu, tags)
  gauge("aws.ecs.registered_memory", rmem, tags)
  gauge("aws.ecs.remaining_memory", fmem, tags)
  local connected = ci.agentConnected == true
  mw_gauge("aws.ecs.agent_connected", connected and 1 or 0, tags)
  if connected then
    mw_service_check("aws.ecs.agent_connected", mw.OK, tags)
  else
    mw_service_check("aws.ecs.agent_connected", mw.CRITICAL, tags,
      "the ECS agent of container instance " .. tostring(ci.ec2InstanceId) .. " (" .. arn ..
      ") is not connected")
  end
  instance_status(self, run, cl, ci, tags)
end

local function container_instances(self, run, cl)
  local what = "ListContainerInstances (cluster " .. cl.name .. ")"
  local arns, whole = list_all(self, run, "ListContainerInstances",
    { cluster = cl.arn, maxResults = PAGE }, "containerInstanceArns", what)
  what = "DescribeContainerInstances (cluster " .. cl.name .. ")"
  whole = describe_all(self, run, "DescribeContainerInstances", { cluster = cl.arn },
    "containerInstances", "containerInstances", arns, DESCRIBE_INSTANCES,
    function(ci) container_instance(self, run, cl, ci) end,
    function(arn) if type(arn) == "string" then cl.seen[arn] = nil end end, what) and whole
  if not whole then -- what was not listed may still be there
    return
  end
  local prefix = ci_key(cl, "")
  for _, key in ipairs(state_keys(prefix)) do
    local arn = key:sub(#prefix + 1)
    if not cl.seen[arn] then
      instance_gone(self, run, cl, arn, "is no longer registered")
    end
  end
end

-- ------------------------------------------------------------- services

local function svc_key(cl, name)
  return "svc:" .. cl.name .. "/" .. name
end

-- The record of a service: the newest createdAt seen, and the ids at it.
local function parse_record(rec)
  local t, rest = rec:match("^(%S+) ?(.*)$")
  local ids = {}
  for id in (rest or ""):gmatch("%S+") do
    ids[id] = true
  end
  return tonumber(t), ids
end

local function kind_of(self, message)
  local m = message:lower()
  for _, k in ipairs(self.keywords) do
    if m:find(k.word, 1, true) then
      return k
    end
  end
  return self.all_events and { kind = "other", alert = "info" } or nil
end

-- The service's events not sent yet (DescribeServices lists them newest
-- first), sent oldest first; the record moved to the newest.
local function service_events(self, run, cl, svc, tags)
  local key = svc_key(cl, svc.serviceName)
  local rec = state_get(key)
  local last, ids = nil, EMPTY
  if rec then
    last, ids = parse_record(rec)
  end
  local cutoff = last or run.cutoff
  local events = type(svc.events) == "table" and svc.events or EMPTY
  local new, newest, at_newest = {}, cutoff, {}
  for i = 1, #events do
    local e = events[i]
    local t = type(e) == "table" and num(e.createdAt)
    if t and type(e.id) == "string" then
      if t > newest then
        newest, at_newest = t, { e.id }
      elseif t == newest then
        at_newest[#at_newest + 1] = e.id
      end
      if t < cutoff then
        break
      end
      if (last and (t > last or not ids[e.id])) or (not last and t >= cutoff) then
        new[#new + 1] = e
      end
    end
  end
  for i = #new, 1, -1 do
    local e = new[i]
    local msg = type(e.message) == "string" and e.message or ""
    local k = kind_of(self, msg)
    if k then
      send_event(cl.name .. "/" .. svc.serviceName .. ": " .. k.kind, msg, k.kind, k.alert,
        tags, math.floor(e.createdAt))
    end
  end
  local now = string.format("%.17g", newest)
  if #at_newest > 0 then
    table.sort(at_newest)
    now = now .. " " .. table.concat(at_newest, " ")
  end
  if rec ~= now and (#at_newest > 0 or not rec) then
    remember(run, key, now)
  end
end

local function service(self, run, cl, svc)
  local name = svc.serviceName
  if type(name) ~= "string" then
    return
  end
  cl.services[name] = true
  local tags = copy(cl.tags, "ecs_service:" .. name)
  gauge("aws.ecs.service.desired", svc.desiredCount, tags)
  gauge("aws.ecs.service.running", svc.runningCount, tags)
  gauge("aws.ecs.service.pending", svc.pendingCount, tags)
  service_events(self, run, cl, svc, tags)
end

local function services(self, run, cl)
  local what = "ListServices (cluster " .. cl.name .. ")"
  local arns, whole = list_all(self, run, "ListServices", { cluster = cl.arn, maxResults = PAGE },
    "serviceArns", what)
  what = "DescribeServices (cluster " .. cl.name .. ")"
  whole = describe_all(self, run, "DescribeServices", { cluster = cl.arn }, "services", "services",
    arns, DESCRIBE_SERVICES, function(svc) service(self, run, cl, svc) end, nil, what) and whole
  if not whole then
    return
  end
  local prefix = svc_key(cl, "")
  for _, key in ipairs(state_keys(prefix)) do -- deleted services: forget them
    if not cl.services[key:sub(#prefix + 1)] then
      remember(run, key, nil)
    end
  end
end

-- ------------------------------------------------------------- clusters

-- The clusters to look at, described: {name, arn, region, tags, ...}.
local function clusters(self, run)
  local ids, whole = self.clusters, true
  if #ids == 0 then
    ids, whole = list_all(self, run, "ListClusters", { maxResults = PAGE }, "clusterArns")
  end
  local out, known = {}, {}
  whole = describe_all(self, run, "DescribeClusters", {}, "clusters", "clusters", ids,
    DESCRIBE_CLUSTERS, function(c) -- a cluster named twice (name and ARN) is described once
      if type(c.clusterName) == "string" and type(c.clusterArn) == "string" and not known[c.clusterArn] then
        known[c.clusterArn] = true
        local region = self.region or region_of(c.clusterArn)
        out[#out + 1] = {
          name = c.clusterName, arn = c.clusterArn, desc = c, seen = {}, services = {},
          tags = { "ecs_cluster_name:" .. c.clusterName, region and "region:" .. region or nil },
        }
      end
    end, function(arn) mw.warning("cluster " .. tostring(arn) .. " not found (DescribeClusters: MISSING)") end)
    and whole
  return out, whole
end

local function cluster_metrics(cl)
  local d = cl.desc
  gauge("aws.ecs.services", d.activeServicesCount, cl.tags)
  gauge("aws.ecs.container_instances", d.registeredContainerInstancesCount, cl.tags)
  gauge("aws.ecs.cluster.running_tasks", d.runningTasksCount, cl.tags)
  gauge("aws.ecs.cluster.pending_tasks", d.pendingTasksCount, cl.tags)
end

-- The state of clusters that are gone (all of them known): forgotten.
local function forget_clusters(run, list)
  local names = {}
  for _, cl in ipairs(list) do
    names[cl.name] = true
  end
  for _, prefix in ipairs({ "ci:", "svc:" }) do
    for _, key in ipairs(state_keys(prefix)) do
      local name = key:match("^[^:]+:([^/]*)/")
      if not names[name] then
        remember(run, key, nil)
      end
    end
  end
end

function check.run(self)
  local now, prev = os.time(), self.last_run
  local run = {
    -- the very first run of this instance: no state kept yet (the marker
    -- is written once, so that a run that changes nothing writes nothing)
    now = now, first = state_get("since") == nil, calls = 0, errors = 0,
    -- services seen for the first time: their events of the last
    -- event_lookback seconds, or since the last run of this process
    cutoff = prev and math.min(prev, now - self.lookback) or now - self.lookback,
  }
  self.last_run = now
  local list, whole = clusters(self, run)
  for _, cl in ipairs(list) do
    cluster_metrics(cl)
    container_instances(self, run, cl)
    if self.collect_services then
      services(self, run, cl)
    end
  end
  if whole then
    forget_clusters(run, list)
  end
  if run.first then
    remember(run, "since", tostring(now))
  end
  if run.error then
    local more = run.errors > 1 and string.format(" (and %d more errors)", run.errors - 1) or ""
    mw.service_check("amazon_ecs.can_connect", mw.CRITICAL, self.region_tags, run.error .. more)
  else
    mw.service_check("amazon_ecs.can_connect", mw.OK, self.region_tags)
  end
end

return check

-- demo_web: stands in for an HTTP check until checks can make HTTP
-- requests. It reports the URL autodiscovery resolved for it (from
-- %%host%% and %%port%% of the container it was scheduled for), so the
-- demo shows template variables and container tags at work.
--
-- Instance options: url (required, http://...), name (optional, added
-- as the tag name:<name>), and the common ones.

local check = {}

function check.run(self)
  local url, name = self.instance.url, self.instance.name
  if type(url) ~= "string" or not url:match("^http://[^/]+/") then
    error("instance option url must be an http:// URL, got " .. mw.json.encode(url))
  end
  local tags = { "url:" .. url }
  if type(name) == "string" then
    tags[#tags + 1] = "name:" .. name
  end
  mw.gauge("demo.web.target", 1, tags)
end

return check

-- runaway: a broken check, to show that one cannot hurt the engine.
local check = {}

function check.run(self)
  mw.gauge("demo.runaway.started", 1)
  while true do
  end
end

return check

1mw.gauge("g", 1, {"a:b"})
local t = {} for i=1,100 do t[i]=("x"):rep(i) end
mw.service_check("up", mw.OK)
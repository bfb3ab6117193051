1local s = ("a"):rep(30) .. "b"
return s:find(("a*"):rep(20) .. "c")
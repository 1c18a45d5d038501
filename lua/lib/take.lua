-- lib/take.lua: taking an owned entry out of its stream, to move it elsewhere.
-- Defines take(stream, group, eid): reads entry `eid`'s fields, then XACK + XDEL it; returns
--   the fields, or nil when the entry was deleted while pending (it is acknowledged anyway).
-- Expects the caller to have checked that this consumer owns the entry (lib/owned.lua).
local function take(stream, group, eid)
  local entry = redis.call('XRANGE', stream, eid, eid)
  redis.call('XACK', stream, group, eid)
  redis.call('XDEL', stream, eid)
  return entry[1] and entry[1][2]
end

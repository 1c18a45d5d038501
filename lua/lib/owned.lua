-- lib/owned.lua: the ownership check of the scripts that act for one consumer.
-- Defines owned(stream, group, eid, consumer): whether entry `eid` of `stream` is pending in
--   `group` for `consumer` (one XPENDING of that id).
-- Expects nothing.
local function owned(stream, group, eid, consumer)
  local pending = redis.call('XPENDING', stream, group, eid, eid, 1)
  return pending[1] ~= nil and pending[1][2] == consumer
end

-- lib/clock.lua: Redis's clock.
-- Defines clock_ms(): one TIME call, returned as milliseconds since the Unix epoch, then the
--   microseconds past that millisecond.
-- Expects nothing.
local function clock_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), tonumber(now[2]) % 1000
end

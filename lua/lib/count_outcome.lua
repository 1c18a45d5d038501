-- lib/count_outcome.lua: outcome counters for `status` and `top`.
-- Defines count_outcome(stats, kind, replies, now_ms): adds the number of replies equal to 1 to
--   field `<kind>:<slot>` of the stats hash `stats`, slot = Redis time / 10 s. The first count of
--   a slot drops fields more than 360 slots (an hour) old, so the hash stays small; an idle
--   group's hash expires after two hours. Nothing is written when nothing is counted.
-- Expects now_ms: Redis time in ms, or nil to read the clock only when something is counted
--   (includes lib/clock.lua).
--#include lib/clock.lua
local function count_outcome(stats, kind, replies, now_ms)
  local counted = 0
  for _, r in ipairs(replies) do
    if r == 1 then counted = counted + 1 end
  end
  if counted == 0 then return end
  local slot = math.floor((now_ms or clock_ms()) / 10000)
  if redis.call('HINCRBY', stats, kind .. ':' .. slot, counted) == counted then
    for _, f in ipairs(redis.call('HKEYS', stats)) do
      local s = tonumber(string.match(f, ':(%d+)$'))
      if s and s < slot - 360 then redis.call('HDEL', stats, f) end
    end
  end
  redis.call('PEXPIRE', stats, 7200000)
end

-- promote: move at most LIMIT due jobs (score <= Redis time) from the delayed set into their
-- priority streams: ZREM + HDEL + XADD per job, with the fields they were stored with.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set
-- KEYS[5]     delayed payload hash
-- ARGV[1]     LIMIT: the most jobs to move in this call
-- Returns: {moved, next due time in ms or -1 when the set is empty, Redis time in ms,
--   orphans, µs of Redis time past that ms}; orphans counts members that had no payload
--   (removed; never expected).

--#include lib/clock.lua
--#include lib/delayed.lua

local now_ms, now_us = clock_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, orphans = 0, 0
for _, id in ipairs(due) do
  local packed = redis.call('HGET', KEYS[5], id)
  redis.call('ZREM', KEYS[4], id)
  if packed then
    local prio, fields = unpack_delayed(packed)
    redis.call('XADD', KEYS[prio], '*', unpack(fields))
    redis.call('HDEL', KEYS[5], id)
    moved = moved + 1
  else
    orphans = orphans + 1
  end
end
local next_due = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local next_ms = -1
if next_due[2] then next_ms = tonumber(next_due[2]) end
return {moved, next_ms, now_ms, orphans, now_us}

-- heartbeat: renew this consumer's lease on the entries it is running, so the reaper does not
-- take a job that is merely long. XCLAIM ... JUSTID resets the idle time without counting a
-- delivery. An entry now owned by another consumer (this one stalled past its lease and the
-- job was reclaimed) is left alone and reported lost: claiming it back would run it twice.
--
-- KEYS[1..3]  priority streams: high, default, low
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of entries N
-- then per entry 2 values: priority index, entry id
-- Returns: one integer per entry: 1 renewed, 0 lost (owned by another consumer, acknowledged,
--          or gone).

--#include lib/owned.lua

local group, consumer = ARGV[1], ARGV[2]
local replies = {}
local pos = 4
for j = 1, tonumber(ARGV[3]) do
  local stream, eid = KEYS[tonumber(ARGV[pos])], ARGV[pos + 1]
  pos = pos + 2
  if owned(stream, group, eid, consumer) then
    redis.call('XCLAIM', stream, group, consumer, 0, eid, 'JUSTID')
    replies[j] = 1
  else
    replies[j] = 0
  end
end
return replies

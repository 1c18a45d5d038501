-- read: deliver at most COUNT new entries to one consumer, in strict priority order: high
-- first, then default, then low, so a worker never takes more than its free slots.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     pause flag of the group: while it exists nothing is delivered
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     COUNT: the most entries to deliver
-- Returns: a flat array {priority index, entry id, fields, ...}; fields is the entry's
--          field/value array as XREADGROUP returns it. The integer 0 when the group is paused.
-- Errors: NOGROUP when a stream or its consumer group is missing (the caller recreates it).

if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local left = tonumber(ARGV[3])
local out = {}
for p = 1, 3 do
  if left <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left,
    'STREAMS', KEYS[p], '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      out[#out + 1] = p
      out[#out + 1] = entry[1]
      out[#out + 1] = entry[2]
      left = left - 1
    end
  end
end
return out

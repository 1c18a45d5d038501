-- hand_back: on shutdown, return the entries a consumer still holds to their stream so another
-- worker starts them at once: XACK + XDEL + XADD of the same fields (same attempt) per entry.
-- Entries this consumer no longer owns (already finished or reclaimed) are left alone.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4..]   status hashes of the tracked entries (see ARGV)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of entries N
-- then per entry 4 values: priority index, entry id, job id (kept as the `id` field, so a job
--   typed into redis-cli keeps the id it was given by its first entry), index into KEYS of its
--   status hash (0 = not tracked; a tracked job's status goes back to queued)
-- Returns: one integer per entry: 1 handed back, 0 not owned, -1 payload missing (acknowledged).

--#include lib/owned.lua
--#include lib/take.lua
--#include lib/fields.lua

local group, consumer = ARGV[1], ARGV[2]
local replies = {}
local pos = 4
for j = 1, tonumber(ARGV[3]) do
  local stream, eid, id = KEYS[tonumber(ARGV[pos])], ARGV[pos + 1], ARGV[pos + 2]
  local key = tonumber(ARGV[pos + 3])
  pos = pos + 4
  if not owned(stream, group, eid, consumer) then
    replies[j] = 0
  else
    local fields = take(stream, group, eid)
    if fields then
      if field(fields, 'id') == nil then
        fields[#fields + 1] = 'id'
        fields[#fields + 1] = id
      end
      redis.call('XADD', stream, '*', unpack(fields))
      if key > 0 then
        redis.call('HSET', KEYS[key], 'state', 'queued')
        redis.call('HDEL', KEYS[key], 'consumer')
      end
      replies[j] = 1
    else
      replies[j] = -1
    end
  end
end
return replies

-- progress: record how far a running job is, for `streamworker job ID` and the status API;
-- only while this consumer still owns the entry (a worker that lost the job to a reaper
-- writes nothing).
--
-- KEYS[1]     the priority stream the job runs from
-- KEYS[2]     the job's progress hash
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     entry id
-- ARGV[4]     percent (0-100)
-- ARGV[5]     message
-- ARGV[6]     TTL of the progress hash in ms
-- Returns: 1 recorded, 0 not (the entry is not this consumer's any more).

--#include lib/clock.lua
--#include lib/owned.lua

if not owned(KEYS[1], ARGV[1], ARGV[3], ARGV[2]) then
  return 0
end
local now_ms = clock_ms()
redis.call('HSET', KEYS[2], 'percent', ARGV[4], 'message', ARGV[5], 'updated_ms', now_ms)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1

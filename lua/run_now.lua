-- run_now: move one job from the delayed set into its priority stream at once: ZREM + HDEL +
-- XADD with the fields it was stored with (same attempt). A tracked job's status hash, if it
-- exists, goes to queued.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set
-- KEYS[5]     delayed payload hash
-- KEYS[6]     status hash of the job (left alone when it does not exist)
-- ARGV[1]     job id
-- Returns: the new entry id, or 0 when the job is not in the delayed set (promoted meanwhile,
--   or never there). A member without payload is removed and reported as -1.

--#include lib/delayed.lua

local id = ARGV[1]
if not redis.call('ZSCORE', KEYS[4], id) then return 0 end
local packed = redis.call('HGET', KEYS[5], id)
redis.call('ZREM', KEYS[4], id)
if not packed then return -1 end
local prio, fields = unpack_delayed(packed)
local eid = redis.call('XADD', KEYS[prio], '*', unpack(fields))
redis.call('HDEL', KEYS[5], id)
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('HSET', KEYS[6], 'state', 'queued')
  redis.call('HDEL', KEYS[6], 'due_ms')
end
return eid

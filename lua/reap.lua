-- reap: take over one priority stream's entries whose worker stopped answering (idle longer
-- than the visibility timeout), so this consumer runs them again; report entries deleted
-- while pending (XDEL/XTRIM by someone else: their payload is gone).
--
-- KEYS[1]  one priority stream
-- KEYS[2]  pause flag of the group: while it exists nothing is taken over
-- ARGV[1]  consumer group name
-- ARGV[2]  consumer name (the new owner)
-- ARGV[3]  min idle time in ms (the visibility timeout)
-- ARGV[4]  scan cursor: an entry id, "0-0" to start from the beginning
-- ARGV[5]  COUNT: the most entries to claim (XAUTOCLAIM scans at most 10 x COUNT)
-- Returns: {next cursor ("0-0" when the scan is complete), claimed, deleted}, or the
--          integer 0 when the group is paused
--   claimed: a flat array {entry id, fields, times delivered (this claim included), ...}
--   deleted: ids that were pending but whose entries no longer exist (Redis 7 removed them
--            from the pending list while scanning)
-- Errors: NOGROUP when the stream or its consumer group is missing.

if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local reply = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local claimed = {}
for _, entry in ipairs(reply[2]) do
  local id = entry[1]
  local pending = redis.call('XPENDING', stream, group, id, id, 1)
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = entry[2]
  claimed[#claimed + 1] = pending[1] and pending[1][4] or 1
end
return {reply[1], claimed, reply[3] or {}}

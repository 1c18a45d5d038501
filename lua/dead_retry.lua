-- dead_retry: re-drive jobs from the dead stream: XDEL the dead entry + XADD the job to its
-- priority stream, as a fresh first attempt. The new entry keeps the job's fields and its `id`,
-- with `attempt` set to 1, the dead reason kept as `last_error`, and `priority`, `reason` and
-- `dead_ms` dropped. A tracked job's status hash, if it still exists, goes back to queued.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     dead stream
-- KEYS[5..]   status hashes of the jobs (see ARGV; one that does not exist is left alone)
-- ARGV[1]     status TTL added to a job's keep_result_ms while it is unfinished, in ms
-- ARGV[2]     number of entries N
-- then per entry 2 values: dead stream entry id, index into KEYS of the job's status hash
--   (0 = none)
-- Returns: one reply per entry: the new entry id in its priority stream, or 0 when the dead
--   entry is gone (retried or purged meanwhile).

local grace_ms = tonumber(ARGV[1])
local index = {high = 1, default = 2, low = 3}
local replies = {}
local pos = 3
for j = 1, tonumber(ARGV[2]) do
  local eid, key = ARGV[pos], tonumber(ARGV[pos + 1])
  pos = pos + 2
  local entry = redis.call('XRANGE', KEYS[4], eid, eid)
  if not entry[1] then
    replies[j] = 0
  else
    local prio, reason, keep_ms = 2, nil, nil
    local fields = {}
    local src = entry[1][2]
    for i = 1, #src, 2 do
      local name, value = src[i], src[i + 1]
      if name == 'priority' then
        prio = index[value] or 2
      elseif name == 'reason' then
        reason = value
      elseif name == 'keep_result_ms' then
        keep_ms = tonumber(value)
        fields[#fields + 1] = name
        fields[#fields + 1] = value
      elseif name ~= 'dead_ms' and name ~= 'attempt' and name ~= 'last_error' then
        fields[#fields + 1] = name
        fields[#fields + 1] = value
      end
    end
    fields[#fields + 1] = 'attempt'
    fields[#fields + 1] = '1'
    if reason then
      fields[#fields + 1] = 'last_error'
      fields[#fields + 1] = reason
    end
    replies[j] = redis.call('XADD', KEYS[prio], '*', unpack(fields))
    redis.call('XDEL', KEYS[4], eid)
    if key > 0 and redis.call('EXISTS', KEYS[key]) == 1 then
      redis.call('HSET', KEYS[key], 'state', 'queued', 'attempt', '1')
      redis.call('HDEL', KEYS[key], 'consumer', 'finished_ms', 'result', 'due_ms')
      if keep_ms then redis.call('PEXPIRE', KEYS[key], keep_ms + grace_ms) end
    end
  end
end
return replies

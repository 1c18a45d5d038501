-- enqueue: add jobs of one group to their priority streams or, when due later, to the delayed
-- set, all in one atomic step (all or none).
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set (member = job id, score = due time in ms)
-- KEYS[5]     delayed payload hash (job id -> msgpack array {priority index, field, value, ...})
-- KEYS[6..]   status hashes of the jobs that asked to keep their result (see ARGV)
-- ARGV[1]     wake-up channel of the group's promoters
-- ARGV[2]     number of jobs N
-- then per job, a record:
--   priority index (1 high, 2 default, 3 low)
--   due time in ms since the Unix epoch (0 = run now)
--   job id
--   index into KEYS of the job's status hash (0 = not tracked)
--   status hash TTL in ms (used when tracked)
--   number of stream fields F, then F field names each followed by its value
-- Returns: one reply per job: the stream entry id, or "delayed".
-- Errors: a malformed record, or a delayed job whose id is already in the delayed set (it would
--   replace that job), raises before any write.

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

-- Validate every record before the first write: a script error does not roll back writes.
local jobs = {}
local scheduled = {}
local pos = 3
for j = 1, tonumber(ARGV[2]) do
  local job = {
    prio = tonumber(ARGV[pos]),
    due = tonumber(ARGV[pos + 1]),
    id = ARGV[pos + 2],
    key = tonumber(ARGV[pos + 3]),
    ttl = tonumber(ARGV[pos + 4]),
    fields = {},
  }
  local nfields = tonumber(ARGV[pos + 5])
  if not job.prio or job.prio < 1 or job.prio > 3 or not job.due or not job.key or not nfields then
    return redis.error_reply('ERR streamworker enqueue: malformed record ' .. j)
  end
  for f = 1, nfields * 2 do
    job.fields[f] = ARGV[pos + 5 + f]
  end
  pos = pos + 6 + nfields * 2
  if job.due > now_ms and (scheduled[job.id] or redis.call('ZSCORE', KEYS[4], job.id)) then
    return redis.error_reply('ERR streamworker enqueue: job id ' .. job.id ..
      ' is already scheduled; enqueue a new Job rather than the same one twice')
  end
  if job.due > now_ms then scheduled[job.id] = true end
  jobs[j] = job
end

local earliest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local earliest_due = tonumber(earliest[2])
local wake = false
local replies = {}
for j, job in ipairs(jobs) do
  local state
  if job.due > now_ms then
    local packed = {tostring(job.prio)}
    for f = 1, #job.fields do packed[f + 1] = job.fields[f] end
    redis.call('ZADD', KEYS[4], job.due, job.id)
    redis.call('HSET', KEYS[5], job.id, cmsgpack.pack(packed))
    if earliest_due == nil or job.due < earliest_due then
      earliest_due = job.due
      wake = true
    end
    replies[j] = 'delayed'
    state = 'scheduled'
  else
    replies[j] = redis.call('XADD', KEYS[job.prio], '*', unpack(job.fields))
    state = 'queued'
  end
  if job.key > 0 then
    redis.call('HSET', KEYS[job.key], 'state', state, 'attempt', '1', 'enqueued_ms', now_ms,
      'due_ms', job.due)
    redis.call('PEXPIRE', KEYS[job.key], job.ttl)
  end
end
if wake then
  redis.call('PUBLISH', ARGV[1], earliest_due)
end
return replies

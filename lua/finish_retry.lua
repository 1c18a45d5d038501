-- finish_retry: move a batch of failed jobs that have attempts left from their stream to the
-- delayed set, due at Redis time + backoff: XACK + XDEL + ZADD, with the entry's fields carried
-- over, `attempt` raised by one, `id` and `last_error` set. Entries this consumer no longer owns
-- are left alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set
-- KEYS[5]     delayed payload hash
-- KEYS[6..]   status hashes of the tracked jobs in the batch
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see the end)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     wake-up channel of the group's promoters
-- ARGV[4]     number of jobs N
-- then per job 7 values: priority index, entry id, job id, next attempt number, backoff in ms,
--   last error text, index into KEYS of its status hash (0 = not tracked), status TTL in ms
--   (8 values in all)
-- Returns: one integer per job: 1 moved to delayed, 0 stale, -1 entry payload missing (the
--   entry was deleted while pending: acknowledged and reported, nothing to retry).

local group, consumer = ARGV[1], ARGV[2]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

local function set_field(fields, name, value)
  for i = 1, #fields, 2 do
    if fields[i] == name then fields[i + 1] = value; return end
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end

local earliest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local earliest_due = tonumber(earliest[2])
local wake = false
local replies = {}
local pos = 5
for j = 1, tonumber(ARGV[4]) do
  local prio = tonumber(ARGV[pos])
  local stream, eid, id = KEYS[prio], ARGV[pos + 1], ARGV[pos + 2]
  local attempt, backoff, err = ARGV[pos + 3], tonumber(ARGV[pos + 4]), ARGV[pos + 5]
  local key, ttl = tonumber(ARGV[pos + 6]), ARGV[pos + 7]
  pos = pos + 8
  local pending = redis.call('XPENDING', stream, group, eid, eid, 1)
  if not (pending[1] and pending[1][2] == consumer) then
    replies[j] = 0
  else
    local entry = redis.call('XRANGE', stream, eid, eid)
    redis.call('XACK', stream, group, eid)
    redis.call('XDEL', stream, eid)
    if not entry[1] then
      replies[j] = -1
    else
      local fields = entry[1][2]
      set_field(fields, 'id', id)
      set_field(fields, 'attempt', attempt)
      set_field(fields, 'last_error', err)
      local packed = {tostring(prio)}
      for f = 1, #fields do packed[f + 1] = fields[f] end
      local due = now_ms + backoff
      redis.call('ZADD', KEYS[4], due, id)
      redis.call('HSET', KEYS[5], id, cmsgpack.pack(packed))
      if earliest_due == nil or due < earliest_due then
        earliest_due = due
        wake = true
      end
      if key > 0 then
        redis.call('HSET', KEYS[key], 'state', 'retry_scheduled', 'attempt', attempt,
          'last_error', err, 'due_ms', due)
        redis.call('HDEL', KEYS[key], 'consumer')
        redis.call('PEXPIRE', KEYS[key], ttl)
      end
      replies[j] = 1
    end
  end
end
if wake then
  redis.call('PUBLISH', ARGV[3], earliest_due)
end

-- Outcome counters for `status` and `top` (KEYS[last], the stats hash): field `retry:<slot>`,
-- slot = Redis time / 10 s. The first count of a slot drops fields over an hour old, so the
-- hash stays small; an idle group's hash expires after two hours.
local counted = 0
for _, r in ipairs(replies) do if r == 1 then counted = counted + 1 end end
if counted > 0 then
  local stats, slot = KEYS[#KEYS], math.floor(now_ms / 10000)
  if redis.call('HINCRBY', stats, 'retry:' .. slot, counted) == counted then
    for _, f in ipairs(redis.call('HKEYS', stats)) do
      local s = tonumber(string.match(f, ':(%d+)$'))
      if s and s < slot - 360 then redis.call('HDEL', stats, f) end
    end
  end
  redis.call('PEXPIRE', stats, 7200000)
end
return replies

-- finish_ok: record the success of a batch of jobs one consumer ran: XACK + XDEL each entry,
-- and write the status hash (state, result) only for jobs that asked to keep their result.
-- An entry this consumer no longer owns (its lease was lost and the job reclaimed) is left
-- alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4..]   status hashes of the tracked jobs in the batch, then uniqueness locks
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see the end)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of jobs N
-- then per job 5 values: priority index, entry id, index into KEYS of its status hash
--   (0 = not tracked), status TTL in ms, result bytes
-- then, optional (absent = 0), the number of uniqueness locks L, then L triples: job number j
--   (1-based, in the order above), index into KEYS of the lock, job id; the lock is deleted
--   when job j was finished here (reply 1) and the lock still names that job.
-- Returns: one integer per job: 1 finished, 0 stale (not owned by this consumer).

local group, consumer = ARGV[1], ARGV[2]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

local replies = {}
local pos = 4
for j = 1, tonumber(ARGV[3]) do
  local stream, eid = KEYS[tonumber(ARGV[pos])], ARGV[pos + 1]
  local key, ttl, result = tonumber(ARGV[pos + 2]), ARGV[pos + 3], ARGV[pos + 4]
  pos = pos + 5
  local pending = redis.call('XPENDING', stream, group, eid, eid, 1)
  if pending[1] and pending[1][2] == consumer then
    redis.call('XACK', stream, group, eid)
    redis.call('XDEL', stream, eid)
    if key > 0 then
      redis.call('HSET', KEYS[key], 'state', 'succeeded', 'result', result, 'finished_ms', now_ms)
      redis.call('HDEL', KEYS[key], 'consumer')
      redis.call('PEXPIRE', KEYS[key], ttl)
    end
    replies[j] = 1
  else
    replies[j] = 0
  end
end
-- Uniqueness locks of the jobs finished here.
local nlocks = tonumber(ARGV[pos]) or 0
for l = 1, nlocks do
  local at = pos + 1 + (l - 1) * 3
  local lock = KEYS[tonumber(ARGV[at + 1])]
  if replies[tonumber(ARGV[at])] == 1 and redis.call('GET', lock) == ARGV[at + 2] then
    redis.call('DEL', lock)
  end
end

-- Outcome counters for `status` and `top` (KEYS[last], the stats hash): field `ok:<slot>`,
-- slot = Redis time / 10 s. The first count of a slot drops fields over an hour old, so the
-- hash stays small; an idle group's hash expires after two hours.
local counted = 0
for _, r in ipairs(replies) do if r == 1 then counted = counted + 1 end end
if counted > 0 then
  local stats, slot = KEYS[#KEYS], math.floor(now_ms / 10000)
  if redis.call('HINCRBY', stats, 'ok:' .. slot, counted) == counted then
    for _, f in ipairs(redis.call('HKEYS', stats)) do
      local s = tonumber(string.match(f, ':(%d+)$'))
      if s and s < slot - 360 then redis.call('HDEL', stats, f) end
    end
  end
  redis.call('PEXPIRE', stats, 7200000)
end
return replies

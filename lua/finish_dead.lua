-- finish_dead: move a batch of jobs that will not be tried again (no attempts left, unknown
-- task, args that do not decode, payload too large) from their stream to the dead stream:
-- XACK + XDEL + XADD, keeping every field of the entry and adding `id`, `priority`, `reason`
-- and `dead_ms`. Entries this consumer no longer owns are left alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     dead stream
-- KEYS[5..]   status hashes of the tracked jobs in the batch, then uniqueness locks
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see the end)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of jobs N
-- then per job 6 values: priority index, entry id, job id, reason text, index into KEYS of its
--   status hash (0 = not tracked), status TTL in ms
-- then, optional (absent = 0), the number of uniqueness locks L, then L triples: job number j
--   (1-based, in the order above), index into KEYS of the lock, job id; the lock is deleted
--   when job j was finished here (reply 1) and the lock still names that job.
-- Returns: one integer per job: 1 moved to dead, 0 stale.

local group, consumer = ARGV[1], ARGV[2]
local names = {'high', 'default', 'low'}
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

local function set_field(fields, name, value)
  for i = 1, #fields, 2 do
    if fields[i] == name then fields[i + 1] = value; return end
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end

local replies = {}
local pos = 4
for j = 1, tonumber(ARGV[3]) do
  local prio = tonumber(ARGV[pos])
  local stream, eid, id, reason = KEYS[prio], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3]
  local key, ttl = tonumber(ARGV[pos + 4]), ARGV[pos + 5]
  pos = pos + 6
  local pending = redis.call('XPENDING', stream, group, eid, eid, 1)
  if not (pending[1] and pending[1][2] == consumer) then
    replies[j] = 0
  else
    local entry = redis.call('XRANGE', stream, eid, eid)
    -- An entry deleted while pending has no fields left: its id and reason are still recorded.
    local fields = {}
    if entry[1] then fields = entry[1][2] end
    set_field(fields, 'id', id)
    set_field(fields, 'priority', names[prio])
    set_field(fields, 'reason', reason)
    set_field(fields, 'dead_ms', tostring(now_ms))
    redis.call('XADD', KEYS[4], '*', unpack(fields))
    redis.call('XACK', stream, group, eid)
    redis.call('XDEL', stream, eid)
    if key > 0 then
      redis.call('HSET', KEYS[key], 'state', 'dead', 'last_error', reason, 'finished_ms', now_ms)
      redis.call('HDEL', KEYS[key], 'consumer')
      redis.call('PEXPIRE', KEYS[key], ttl)
    end
    replies[j] = 1
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

-- Outcome counters for `status` and `top` (KEYS[last], the stats hash): field `dead:<slot>`,
-- slot = Redis time / 10 s. The first count of a slot drops fields over an hour old, so the
-- hash stays small; an idle group's hash expires after two hours.
local counted = 0
for _, r in ipairs(replies) do if r == 1 then counted = counted + 1 end end
if counted > 0 then
  local stats, slot = KEYS[#KEYS], math.floor(now_ms / 10000)
  if redis.call('HINCRBY', stats, 'dead:' .. slot, counted) == counted then
    for _, f in ipairs(redis.call('HKEYS', stats)) do
      local s = tonumber(string.match(f, ':(%d+)$'))
      if s and s < slot - 360 then redis.call('HDEL', stats, f) end
    end
  end
  redis.call('PEXPIRE', stats, 7200000)
end
return replies

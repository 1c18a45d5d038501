-- finish_ok: record the success of a batch of jobs one consumer ran: acknowledge and remove
-- their entries, and write the status hash (state, result) only for jobs that asked to keep
-- their result. An entry this consumer no longer owns (its lease was lost and the job
-- reclaimed) is left alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4..]   status hashes of the tracked jobs in the batch, then uniqueness locks, then
--             batch children's batch keys
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see lib/count_outcome.lua)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of streams S the batch touches
-- then per stream: priority index, number of entries n, the lowest entry id, the highest,
--   the id right after the highest (its sequence + 1), then the n entry ids in ascending order.
--   Jobs are numbered 1.. in this order.
-- then the number of tracked jobs T, then T quadruples: job number, index into KEYS of its
--   status hash, status TTL in ms, result bytes
-- then, optional (absent = 0), the number of uniqueness locks L, then L triples: job number j,
--   index into KEYS of the lock, job id; the lock is deleted when job j was finished here
--   (reply 1) and the lock still names that job.
-- then, optional (absent = 0; when present the lock count is written, 0 if none), the number
--   of batch children B, then B records of 6 values: job number j, indices into KEYS of its
--   batch's hash, pending set and failed set, job id, result (a chain step's, else empty); child j is counted in its batch as 'ok'
--   when it was finished here (lib/batch.lua), which may add the batch's callbacks.
-- Returns: one integer per job, in job-number order: 1 finished, 0 stale (not owned by this
--   consumer).
--
-- Removal, per stream: XDEL finds each id by walking its listpack node, a few µs per id;
-- XTRIM MINID drops a run of entries from the stream's head for far less. Every entry below the
-- cut is delivered (it precedes an entry of this batch) and not pending (it precedes the oldest
-- pending entry), so it is finished: the trim removes exactly finished entries. Owned entries
-- at or above the cut (an older job is still running) are deleted one by one.

--#include lib/clock.lua
--#include lib/lock_trailer.lua
--#include lib/batch.lua
--#include lib/count_outcome.lua

local group, consumer = ARGV[1], ARGV[2]

-- Stream ids compare as (milliseconds, sequence).
local function id_less(a, b)
  local ad, bd = string.find(a, '-', 1, true), string.find(b, '-', 1, true)
  local am, bm = tonumber(string.sub(a, 1, ad - 1)), tonumber(string.sub(b, 1, bd - 1))
  if am ~= bm then return am < bm end
  return tonumber(string.sub(a, ad + 1)) < tonumber(string.sub(b, bd + 1))
end

local replies = {}
local pos, job = 4, 0
for _ = 1, tonumber(ARGV[3]) do
  local prio, n = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  local lo, hi, after_hi = ARGV[pos + 2], ARGV[pos + 3], ARGV[pos + 4]
  local first = pos + 5
  pos = first + n
  local stream = KEYS[prio]
  local owned = {}
  for _, p in ipairs(redis.call('XPENDING', stream, group, lo, hi, 1000000000, consumer)) do
    owned[p[1]] = true
  end
  local mine = {}
  for i = first, pos - 1 do
    job = job + 1
    if owned[ARGV[i]] then
      mine[#mine + 1] = ARGV[i]
      replies[job] = 1
    else
      replies[job] = 0
    end
  end
  if #mine > 0 then
    redis.call('XACK', stream, group, unpack(mine))
    local cut = after_hi
    local oldest = redis.call('XPENDING', stream, group, '-', '+', 1)[1]
    if oldest and id_less(oldest[1], cut) then cut = oldest[1] end
    redis.call('XTRIM', stream, 'MINID', cut)
    if cut ~= after_hi then
      -- The owned entries at or above the cut: a suffix of `mine` (ascending), found by
      -- bisection.
      local low, high = 1, #mine + 1
      while low < high do
        local mid = math.floor((low + high) / 2)
        if id_less(mine[mid], cut) then low = mid + 1 else high = mid end
      end
      if low <= #mine then redis.call('XDEL', stream, unpack(mine, low)) end
    end
  end
end

local tracked = tonumber(ARGV[pos])
pos = pos + 1
if tracked > 0 then
  local now_ms = clock_ms()
  for _ = 1, tracked do
    local j, key, ttl, result = tonumber(ARGV[pos]), KEYS[tonumber(ARGV[pos + 1])],
      ARGV[pos + 2], ARGV[pos + 3]
    pos = pos + 4
    if replies[j] == 1 then
      redis.call('HSET', key, 'state', 'succeeded', 'result', result, 'finished_ms', now_ms)
      redis.call('HDEL', key, 'consumer')
      redis.call('PEXPIRE', key, ttl)
    end
  end
end

batch_trailer(release_locks(pos, replies), replies, 'ok')
-- The clock is read here (as for the status hashes) only when something is counted.
count_outcome(KEYS[#KEYS], 'ok', replies, nil)
return replies

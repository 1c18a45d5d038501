-- finish_cancelled: record that a batch of running jobs stopped because they were cancelled:
-- XACK + XDEL each entry; tracked jobs get state `cancelled`; uniqueness locks are released.
-- Nothing goes to the dead stream: the job was dropped on purpose. An entry this consumer no
-- longer owns is left alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4..]   status hashes of the tracked jobs in the batch, then uniqueness locks, then
--             batch children's batch keys
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of jobs N
-- then per job 4 values: priority index, entry id, index into KEYS of its status hash
--   (0 = not tracked), status TTL in ms
-- then, optional (absent = 0), the number of uniqueness locks L, then L triples: job number j
--   (1-based, in the order above), index into KEYS of the lock, job id; the lock is deleted
--   when job j was finished here (reply 1) and the lock still names that job.
-- then, optional (absent = 0; when present the lock count is written, 0 if none), the number
--   of batch children B, then B records of 6 values: job number j, indices into KEYS of its
--   batch's hash, pending set and failed set, job id, result (a chain step's, else empty); child j is counted in its batch as
--   'cancelled' when it was finished here (lib/batch.lua), which may add the batch's callbacks.
-- Returns: one integer per job: 1 finished, 0 stale (not owned by this consumer).

--#include lib/clock.lua
--#include lib/owned.lua
--#include lib/lock_trailer.lua
--#include lib/batch.lua

local group, consumer = ARGV[1], ARGV[2]
local now_ms = clock_ms()

local replies = {}
local pos = 4
for j = 1, tonumber(ARGV[3]) do
  local stream, eid = KEYS[tonumber(ARGV[pos])], ARGV[pos + 1]
  local key, ttl = tonumber(ARGV[pos + 2]), ARGV[pos + 3]
  pos = pos + 4
  if owned(stream, group, eid, consumer) then
    redis.call('XACK', stream, group, eid)
    redis.call('XDEL', stream, eid)
    if key > 0 then
      redis.call('HSET', KEYS[key], 'state', 'cancelled', 'finished_ms', now_ms)
      redis.call('HDEL', KEYS[key], 'consumer')
      redis.call('PEXPIRE', KEYS[key], ttl)
    end
    replies[j] = 1
  else
    replies[j] = 0
  end
end
batch_trailer(release_locks(pos, replies), replies, 'cancelled')
return replies

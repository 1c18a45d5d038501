-- finish_retry: move a batch of failed jobs that have attempts left from their stream to the
-- delayed set, due at Redis time + backoff: XACK + XDEL + ZADD, with the entry's fields carried
-- over, `attempt` raised by one, `id` and `last_error` set. Entries this consumer no longer owns
-- are left alone and reported stale.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set
-- KEYS[5]     delayed payload hash
-- KEYS[6..]   status hashes of the tracked jobs in the batch
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see lib/count_outcome.lua)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     wake-up channel of the group's promoters
-- ARGV[4]     number of jobs N
-- then per job 7 values: priority index, entry id, job id, next attempt number, backoff in ms,
--   last error text, index into KEYS of its status hash (0 = not tracked), status TTL in ms
--   (8 values in all)
-- Returns: one integer per job: 1 moved to delayed, 0 stale, -1 entry payload missing (the
--   entry was deleted while pending: acknowledged and reported, nothing to retry).

--#include lib/clock.lua
--#include lib/owned.lua
--#include lib/take.lua
--#include lib/fields.lua
--#include lib/delayed.lua
--#include lib/wake.lua
--#include lib/count_outcome.lua

local group, consumer = ARGV[1], ARGV[2]
local now_ms = clock_ms()

wake_start(KEYS[4])
local replies = {}
local pos = 5
for j = 1, tonumber(ARGV[4]) do
  local prio = tonumber(ARGV[pos])
  local stream, eid, id = KEYS[prio], ARGV[pos + 1], ARGV[pos + 2]
  local attempt, backoff, err = ARGV[pos + 3], tonumber(ARGV[pos + 4]), ARGV[pos + 5]
  local key, ttl = tonumber(ARGV[pos + 6]), ARGV[pos + 7]
  pos = pos + 8
  if not owned(stream, group, eid, consumer) then
    replies[j] = 0
  else
    local fields = take(stream, group, eid)
    if not fields then
      replies[j] = -1
    else
      set_field(fields, 'id', id)
      set_field(fields, 'attempt', attempt)
      set_field(fields, 'last_error', err)
      local due = now_ms + backoff
      redis.call('ZADD', KEYS[4], due, id)
      redis.call('HSET', KEYS[5], id, pack_delayed(prio, fields))
      wake_note(due)
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
wake_publish(ARGV[3])
count_outcome(KEYS[#KEYS], 'retry', replies, now_ms)
return replies

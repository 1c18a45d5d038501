-- finish_dead: move a batch of jobs that will not be tried again (no attempts left, unknown
-- task, args that do not decode, payload too large) from their stream to the dead stream:
-- XACK + XDEL + XADD, keeping every field of the entry and adding `id`, `priority`, `reason`
-- and `dead_ms`. Entries this consumer no longer owns are left alone and reported stale.
-- Args over the job's kept size (a job too large to run) are stored cut to that size, with
-- `args_truncated_from` = their size in bytes. After the moves, the dead stream's retention is
-- applied once (lib/dead_retention.lua).
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     dead stream
-- KEYS[5]     dead retention hash (the bounds in force, for `status`)
-- KEYS[6..]   status hashes of the tracked jobs in the batch, then uniqueness locks, then
--             batch children's batch keys
-- KEYS[last]  stats hash of the group (outcome counters per 10 s; see lib/count_outcome.lua)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name
-- ARGV[3]     number of jobs N
-- ARGV[4]     most entries kept in the dead stream (0 = no bound)
-- ARGV[5]     longest time an entry is kept in the dead stream, in ms (0 = no bound)
-- then per job 7 values: priority index, entry id, job id, reason text, index into KEYS of its
--   status hash (0 = not tracked), status TTL in ms, bytes of args kept (0 = all)
-- then, optional (absent = 0), the number of uniqueness locks L, then L triples: job number j
--   (1-based, in the order above), index into KEYS of the lock, job id; the lock is deleted
--   when job j was finished here (reply 1) and the lock still names that job.
-- then, optional (absent = 0; when present the lock count is written, 0 if none), the number
--   of batch children B, then B records of 6 values: job number j, indices into KEYS of its
--   batch's hash, pending set and failed set, job id, result (a chain step's, else empty); child j is counted in its batch as
--   'dead' when it was finished here (lib/batch.lua), which may add the batch's callbacks.
-- Returns: one integer per job: 1 moved to dead, 0 stale.

--#include lib/clock.lua
--#include lib/owned.lua
--#include lib/fields.lua
--#include lib/lock_trailer.lua
--#include lib/batch.lua
--#include lib/count_outcome.lua
--#include lib/dead_retention.lua

local group, consumer = ARGV[1], ARGV[2]
local names = {'high', 'default', 'low'}
local now_ms = clock_ms()

-- Cuts `args` / `args_msgpack` longer than `keep` bytes to `keep`, noting the size they had.
local function truncate_args(fields, keep)
  if keep <= 0 then return end
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if (name == 'args' or name == 'args_msgpack') and #value > keep then
      fields[i + 1] = string.sub(value, 1, keep)
      set_field(fields, 'args_truncated_from', tostring(#value))
    end
  end
end

local replies = {}
local moved = 0
local pos = 6
for j = 1, tonumber(ARGV[3]) do
  local prio = tonumber(ARGV[pos])
  local stream, eid, id, reason = KEYS[prio], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3]
  local key, ttl, keep = tonumber(ARGV[pos + 4]), ARGV[pos + 5], tonumber(ARGV[pos + 6])
  pos = pos + 7
  if not owned(stream, group, eid, consumer) then
    replies[j] = 0
  else
    local entry = redis.call('XRANGE', stream, eid, eid)
    -- An entry deleted while pending has no fields left: its id and reason are still recorded.
    local fields = {}
    if entry[1] then fields = entry[1][2] end
    truncate_args(fields, keep)
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
    moved = moved + 1
  end
end
if moved > 0 then
  trim_dead(KEYS[4], KEYS[5], tonumber(ARGV[4]), tonumber(ARGV[5]), now_ms)
end
batch_trailer(release_locks(pos, replies), replies, 'dead')
count_outcome(KEYS[#KEYS], 'dead', replies, now_ms)
return replies

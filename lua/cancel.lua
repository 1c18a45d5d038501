-- cancel: stop a job that has not finished. A job waiting in its stream or in the delayed set
-- is removed in this one step (XDEL, or ZREM + HDEL), its uniqueness lock released and, when it
-- is tracked, its status set to `cancelled`. A running job (its entry is pending for a
-- consumer) is left where it is and its id published on the group's cancel channel: the worker
-- running it drops it and records the end with finish_cancelled.lua.
--
-- Finding the job, cheapest first: the delayed set (ZSCORE); the entry named by its status hash
-- (tracked jobs record `entry` and `priority` when they enter a stream) or by the job id itself
-- (a redis-cli job's id is its entry id); then a scan of the streams, high to low, that reads
-- at most LIMIT entries per call and returns a cursor to call again with.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set
-- KEYS[5]     delayed payload hash
-- KEYS[6]     the job's status hash (need not exist)
-- KEYS[7]     optional: a uniqueness lock, named in ARGV[7]
-- ARGV[1]     consumer group name
-- ARGV[2]     job id
-- ARGV[3]     the group's cancel channel
-- ARGV[4]     scan cursor: index 1..3 of the stream to scan from
-- ARGV[5]     scan cursor: where to start in it ('-' = the start, '(' .. id = after id)
-- ARGV[6]     LIMIT: the most entries the scan reads in this call
-- ARGV[7]     the uniqueness key whose lock is KEYS[7] ('' = none given; '*' = leave any lock
--             to expire by its TTL)
-- ARGV[8]     optional: the batch id whose keys are given by ARGV[9] ('' or absent = none
--             given; '*' = the job's batch field is not a usable name: count it nowhere)
-- ARGV[9]     optional: index into KEYS of that batch's hash, then its pending and failed sets
--             (lib/batch.lua): a waiting child removed here is counted there as 'cancelled'
-- Returns one of:
--   {'finished', state}       the status record says the job ended (succeeded, dead, cancelled)
--   {'removed', 'delayed'}    taken out of the delayed set
--   {'removed', 'waiting'}    taken out of its stream before any worker read it
--   {'running', consumer, n}  its entry is pending for `consumer`; n = subscribers that got
--                             the cancel message (PUBLISH's count; 0 = no worker listening)
--   {'need_lock', key}        the job holds uniqueness key `key`, not the one in ARGV[7]:
--                             nothing was changed; call again with its lock as KEYS[7]
--   {'need_batch', id}        the job is a child of batch `id`, not the one in ARGV[8]:
--                             nothing was changed; call again with that batch's keys
--   {'continue', index, id}   not found within LIMIT entries: call again with this cursor
--   {'not_found', state}      nowhere; state is the status record's state, or ''

--#include lib/clock.lua
--#include lib/fields.lua
--#include lib/release_lock.lua
--#include lib/delayed.lua
--#include lib/batch.lua

local group, id, channel = ARGV[1], ARGV[2], ARGV[3]
local given_lock = ARGV[7]
local given_batch, batch_at = ARGV[8] or '', tonumber(ARGV[9] or '0') or 0
local status = KEYS[6]
local state = redis.call('HGET', status, 'state') or ''
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then
  return {'finished', state}
end

local now_ms = clock_ms()

-- nil when the job's lock (if any) may be handled here, else the reply asking for it.
local function lock_check(fields)
  local key = field(fields, 'unique_key')
  if not key or given_lock == '*' or key == given_lock then return nil end
  return {'need_lock', key}
end

-- nil when the job's batch (if any) may be counted here, else the reply asking for it.
local function batch_check(fields)
  local b = field(fields, 'batch')
  if not b or given_batch == '*' or b == given_batch then return nil end
  return {'need_batch', b}
end

-- The job was removed: release its lock, record its end.
local function removed(fields)
  local key = field(fields, 'unique_key')
  if key and key == given_lock and KEYS[7] then release_lock(KEYS[7], id) end
  local b = field(fields, 'batch')
  if b and b == given_batch and batch_at > 0 then
    batch_finish(KEYS[batch_at], KEYS[batch_at + 1], KEYS[batch_at + 2], 'cancelled', id)
  end
  if redis.call('EXISTS', status) == 1 then
    redis.call('HSET', status, 'state', 'cancelled', 'finished_ms', now_ms)
    redis.call('HDEL', status, 'consumer', 'entry', 'priority')
    local keep = tonumber(field(fields, 'keep_result_ms'))
    if keep and keep > 0 then redis.call('PEXPIRE', status, keep) end
  end
end

if redis.call('ZSCORE', KEYS[4], id) then
  local packed = redis.call('HGET', KEYS[5], id)
  local fields = {}
  if packed then
    local _, stored = unpack_delayed(packed)
    fields = stored
  end
  local need = lock_check(fields) or batch_check(fields)
  if need then return need end
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  removed(fields)
  return {'removed', 'delayed'}
end

-- Whether the entry eid with these fields carries the job.
local function carries(eid, fields)
  local fid = field(fields, 'id')
  if fid then return fid == id end
  return eid == id
end

local function found(s, eid, fields)
  -- pcall: before any worker ran, the stream has no consumer group (NOGROUP): not pending.
  local pending = redis.pcall('XPENDING', KEYS[s], group, eid, eid, 1)
  if type(pending) == 'table' and pending[1] then
    local n = redis.call('PUBLISH', channel, id)
    return {'running', pending[1][2], n}
  end
  local need = lock_check(fields) or batch_check(fields)
  if need then return need end
  redis.call('XDEL', KEYS[s], eid)
  removed(fields)
  return {'removed', 'waiting'}
end

local hints = {}
local hint_entry = redis.call('HGET', status, 'entry')
local hint_prio = tonumber(redis.call('HGET', status, 'priority'))
if hint_entry and hint_prio and hint_prio >= 1 and hint_prio <= 3 then
  hints[#hints + 1] = {hint_prio, hint_entry}
end
if string.match(id, '^%d+%-%d+$') then
  for s = 1, 3 do hints[#hints + 1] = {s, id} end
end
for _, h in ipairs(hints) do
  local e = redis.call('XRANGE', KEYS[h[1]], h[2], h[2])
  if e[1] and carries(e[1][1], e[1][2]) then return found(h[1], e[1][1], e[1][2]) end
end

local s, start, budget = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
while s <= 3 do
  local entries = redis.call('XRANGE', KEYS[s], start, '+', 'COUNT', budget)
  for _, e in ipairs(entries) do
    if carries(e[1], e[2]) then return found(s, e[1], e[2]) end
  end
  budget = budget - #entries
  if budget <= 0 then
    return {'continue', s, '(' .. entries[#entries][1]}
  end
  s = s + 1
  start = '-'
end
return {'not_found', state}

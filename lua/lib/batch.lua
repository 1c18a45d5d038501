-- lib/batch.lua: a batch's bookkeeping (see README "Chains and batches"). A batch's hash holds
-- `state` (running, done), `total`, `succeeded`, `failed`, `ignored` (failed children whose
-- policy is ignore), `policy` (fail, ignore: the children's default; `policy:<id>` is one
-- child's own), `ttl_ms`,
-- `created_ms`, `finished_ms`, `outcome` (succeeded, failed) and each callback held until the
-- batch completes (`cb_on_success`, `cb_on_complete`: the lib/delayed.lua packing of its
-- fields), then the entry id it was added as (`fired_on_success`, `fired_on_complete`). Its
-- pending set holds the ids of the children not finished yet; its failed set the ids of those
-- that went dead or were cancelled. A chain is a batch whose hash also holds `steps` (their
-- number), `next` (the step to add next) and, per later step i, `cb_step_<i>` (held like a
-- callback), `id_step_<i>` and, once added, `entry_step_<i>`; `not_run` lists the ids of the
-- steps a failure stopped.
-- Defines batch_complete(hash, pending, failed): when the pending set is empty and the batch
--   still running, adds the callbacks due to their priority streams (KEYS[1..3]) and marks the
--   batch done, all three keys expiring after `ttl_ms`; and batch_finish(hash, pending, failed,
--   outcome, job_id): counts child `job_id` as finished with `outcome` ('ok', 'dead' or
--   'cancelled') when it is still in the pending set (a child is counted once, whatever runs
--   or re-drives it later); in a chain, a step that succeeded adds the next step (its field
--   `prev_result` = `result`), one that failed marks the rest not run; then calls
--   batch_complete.
-- Expects KEYS[1..3] to be the group's priority streams (includes lib/clock.lua and
--   lib/delayed.lua).
--#include lib/clock.lua
--#include lib/delayed.lua

-- Longest list of failed ids a callback carries in its `batch_failed` header (the failed set
-- has them all).
local BATCH_FAILED_MAX = 4000

local function batch_fire(hash, name, batch_id, failed_ids)
  local packed = redis.call('HGET', hash, 'cb_' .. name)
  if not packed then return end
  local prio, fields = unpack_delayed(packed)
  fields[#fields + 1] = 'h.batch_id'
  fields[#fields + 1] = batch_id
  fields[#fields + 1] = 'h.batch_failed'
  fields[#fields + 1] = failed_ids
  local entry = redis.call('XADD', KEYS[prio], '*', unpack(fields))
  redis.call('HSET', hash, 'fired_' .. name, entry)
end

local function batch_complete(hash, pending, failed)
  if redis.call('SCARD', pending) > 0 then return end
  local state = redis.call('HMGET', hash, 'state', 'failed', 'ignored', 'ttl_ms', 'batch_id')
  if state[1] ~= 'running' then return end
  local nfailed = tonumber(state[2]) or 0
  local ids = redis.call('SMEMBERS', failed)
  table.sort(ids)
  local list = table.concat(ids, ',')
  if #list > BATCH_FAILED_MAX then
    list = string.sub(list, 1, BATCH_FAILED_MAX)
    list = string.sub(list, 1, (string.find(list, ',[^,]*$') or 1) - 1) .. ',...'
  end
  local succeeded = nfailed == (tonumber(state[3]) or 0)
  if succeeded then batch_fire(hash, 'on_success', state[5], list) end
  batch_fire(hash, 'on_complete', state[5], list)
  local outcome = 'failed'
  if nfailed == 0 then outcome = 'succeeded' end
  local now_ms = clock_ms()
  redis.call('HSET', hash, 'state', 'done', 'outcome', outcome, 'finished_ms', now_ms)
  local ttl = tonumber(state[4]) or 604800000
  redis.call('PEXPIRE', hash, ttl)
  redis.call('PEXPIRE', failed, ttl)
end

-- A chain's step finished with `ok` (and `result`): adds the next step, or marks every step
-- left as not run.
local function chain_advance(hash, pending, ok, result)
  local chain = redis.call('HMGET', hash, 'steps', 'next')
  local steps, nxt = tonumber(chain[1]), tonumber(chain[2])
  if not steps or not nxt or nxt > steps then return end
  if ok then
    local prio, fields = unpack_delayed(redis.call('HGET', hash, 'cb_step_' .. nxt))
    fields[#fields + 1] = 'prev_result'
    fields[#fields + 1] = result or ''
    local entry = redis.call('XADD', KEYS[prio], '*', unpack(fields))
    redis.call('SADD', pending, redis.call('HGET', hash, 'id_step_' .. nxt))
    redis.call('HDEL', hash, 'cb_step_' .. nxt)
    redis.call('HSET', hash, 'next', nxt + 1, 'entry_step_' .. nxt, entry)
  else
    local ids = {}
    for i = nxt, steps do
      ids[#ids + 1] = redis.call('HGET', hash, 'id_step_' .. i)
      redis.call('HDEL', hash, 'cb_step_' .. i)
    end
    redis.call('HSET', hash, 'not_run', table.concat(ids, ','), 'next', steps + 1)
  end
end

local function batch_finish(hash, pending, failed, outcome, job_id, result)
  if redis.call('SREM', pending, job_id) == 0 then return end
  if outcome == 'ok' then
    redis.call('HINCRBY', hash, 'succeeded', 1)
  else
    redis.call('HINCRBY', hash, 'failed', 1)
    redis.call('SADD', failed, job_id)
    local policy = redis.call('HMGET', hash, 'policy:' .. job_id, 'policy')
    if (policy[1] or policy[2]) == 'ignore' then redis.call('HINCRBY', hash, 'ignored', 1) end
  end
  chain_advance(hash, pending, outcome == 'ok', result)
  batch_complete(hash, pending, failed)
end

-- Children of one batch that succeeded, finished by one script call: counted with one SREM,
-- one HINCRBY and one completion check, rather than per child (a chain, whose steps are
-- pending one at a time, goes step by step through batch_finish).
local function batch_succeeded(hash, pending, failed, ids, results)
  if redis.call('HGET', hash, 'steps') then
    for i, id in ipairs(ids) do batch_finish(hash, pending, failed, 'ok', id, results[i]) end
    return
  end
  local counted = 0
  for i = 1, #ids, 1000 do
    counted = counted + redis.call('SREM', pending, unpack(ids, i, math.min(i + 999, #ids)))
  end
  if counted == 0 then return end
  redis.call('HINCRBY', hash, 'succeeded', counted)
  batch_complete(hash, pending, failed)
end

-- Reads the optional batch trailer at ARGV[pos] (absent = 0): the number of children B, then
-- B records of 6 values: job number j, index into KEYS of its batch hash, of its pending set,
-- of its failed set, its job id, its result (a chain step's, else empty); counts each child
-- whose job was finished here (replies[j] == 1) with `outcome`, the children of one batch
-- together.
local function batch_trailer(pos, replies, outcome)
  local batches, order = {}, {}
  for b = 1, tonumber(ARGV[pos]) or 0 do
    local at = pos + 1 + (b - 1) * 6
    if replies[tonumber(ARGV[at])] == 1 then
      local hash = KEYS[tonumber(ARGV[at + 1])]
      local batch = batches[hash]
      if not batch then
        batch = {hash = hash, pending = KEYS[tonumber(ARGV[at + 2])],
          failed = KEYS[tonumber(ARGV[at + 3])], ids = {}, results = {}}
        batches[hash] = batch
        order[#order + 1] = batch
      end
      batch.ids[#batch.ids + 1] = ARGV[at + 4]
      batch.results[#batch.results + 1] = ARGV[at + 5]
    end
  end
  for _, batch in ipairs(order) do
    if outcome == 'ok' then
      batch_succeeded(batch.hash, batch.pending, batch.failed, batch.ids, batch.results)
    else
      for _, id in ipairs(batch.ids) do
        batch_finish(batch.hash, batch.pending, batch.failed, outcome, id)
      end
    end
  end
end

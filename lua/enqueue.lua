-- enqueue: add jobs of one group to their priority streams or, when due later, to the delayed
-- set, all in one atomic step (all or none). Unique jobs take their lock, and a schedule's
-- tick is taken, in the same step.
--
-- KEYS[1..3]  priority streams: high, default, low
-- KEYS[4]     delayed sorted set (member = job id, score = due time in ms)
-- KEYS[5]     delayed payload hash (job id -> msgpack array {priority index, field, value, ...})
-- KEYS[6..]   status hashes of the jobs that asked to keep their result, uniqueness locks and
--             schedule state hashes (see ARGV)
-- ARGV[1]     wake-up channel of the group's promoters
-- ARGV[2]     number of jobs N
-- then per job, a record:
--   priority index (1 high, 2 default, 3 low)
--   due time in ms since the Unix epoch (0 = run now)
--   job id
--   index into KEYS of the job's status hash (0 = not tracked)
--   status hash TTL in ms (used when tracked)
--   number of stream fields F, then F field names each followed by its value
-- then, optional (absent = 0), the number of conditions C, then C conditions of 4 values:
--   job number j (1-based, in the order above), kind, index into KEYS, a number:
--   'unique'     KEYS[i] is the job's uniqueness lock, the number its TTL in ms: when the lock
--                is held, the job is not added and its reply is {'duplicate', holder's job id};
--                otherwise the lock is set to the job id (SET NX PX).
--   'tick'       KEYS[i] is the job's schedule state hash, the number the tick in ms: when the
--                hash's tick_ms is already >= the tick, another scheduler took it: the job is
--                not added and its reply is {'tick_taken'}; otherwise tick_ms = the tick, and,
--                when the job is added, last_run_tick_ms, last_job_id and last_run_ms are set.
--   'tick_skip'  as 'tick', but the job is never added (a missed tick the schedule skips); its
--                reply is {'tick_skipped'} or {'tick_taken'}.
--   'once'       KEYS[i] is the job's enqueue-once mark, the number its TTL in ms: when the mark
--                is there, this job id was enqueued before: nothing is written and its reply is
--                {'enqueued_before'}; otherwise the mark is set (SET PX), whatever else the
--                conditions decide, so a repeated call gets the same answer.
--   'once' is checked first; a 'tick' before a 'unique' lock: a tick already taken leaves the
--   lock alone.
-- then, optional (absent; when present the condition count is written, 0 if none), a batch
--   trailer (README "Chains and batches"): the word 'batch', the mode ('create' a new batch,
--   'add' children to a running one), indices into KEYS of the batch's hash, pending set and
--   failed set, the batch id, its TTL after completion in ms, its policy ('fail' or 'ignore'),
--   the number of callbacks K, then K pairs: job number j, callback name ('on_success',
--   'on_complete', or 'step_<i>' for step i >= 2 of a chain; or 'fail' / 'ignore': not a
--   callback but a child with its own policy, `policy:<id>` in the hash). A callback job is
--   not added: its
--   fields are held in the batch's hash (its reply is "held"); a batch created with steps is a
--   chain (`steps` = 1 + their number, `next` = 2), whose one child is its first step. Every other job is a child: when added, its id joins the pending set and
--   `total` grows. A created batch whose children were all refused (duplicates) completes at
--   once.
-- Returns: one reply per job: the stream entry id, "delayed", "held", or a table as above.
-- Errors: a malformed record or condition, or a delayed job whose id is already in the delayed
--   set (it would replace that job), a batch to create that exists, or a batch to add to
--   that is not running, raises before any write.

--#include lib/clock.lua
--#include lib/delayed.lua
--#include lib/wake.lua
--#include lib/batch.lua

local now_ms = clock_ms()

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
  jobs[j] = job
end

local nconds = tonumber(ARGV[pos]) or 0
for c = 1, nconds do
  local at = pos + 1 + (c - 1) * 4
  local j, kind, key, num = tonumber(ARGV[at]), ARGV[at + 1], tonumber(ARGV[at + 2]),
    tonumber(ARGV[at + 3])
  local job = j and jobs[j]
  if not job or not key or not KEYS[key] or not num or
      not (kind == 'unique' or kind == 'tick' or kind == 'tick_skip' or kind == 'once') then
    return redis.error_reply('ERR streamworker enqueue: malformed condition ' .. c)
  end
  if kind == 'unique' then
    job.lock, job.lock_ttl = KEYS[key], num
  elseif kind == 'once' then
    job.once, job.once_ttl = KEYS[key], num
  else
    job.tick_key, job.tick, job.tick_only = KEYS[key], num, kind == 'tick_skip'
  end
end

local batch
if ARGV[pos + 1 + nconds * 4] == 'batch' then
  local at = pos + 2 + nconds * 4
  batch = {
    mode = ARGV[at], hash = KEYS[tonumber(ARGV[at + 1])], pending = KEYS[tonumber(ARGV[at + 2])],
    failed = KEYS[tonumber(ARGV[at + 3])], id = ARGV[at + 4], ttl = tonumber(ARGV[at + 5]),
    policy = ARGV[at + 6],
  }
  if not batch.hash or not batch.pending or not batch.failed or not batch.ttl or
      not (batch.policy == 'fail' or batch.policy == 'ignore') then
    return redis.error_reply('ERR streamworker enqueue: malformed batch trailer')
  end
  for c = 1, tonumber(ARGV[at + 7]) or 0 do
    local j, name = tonumber(ARGV[at + 6 + c * 2]), ARGV[at + 7 + c * 2]
    if not (j and jobs[j]) or
        not (name == 'on_success' or name == 'on_complete' or name == 'fail' or
          name == 'ignore' or string.match(name, '^step_%d+$')) then
      return redis.error_reply('ERR streamworker enqueue: malformed batch callback ' .. c)
    end
    if name == 'fail' or name == 'ignore' then
      jobs[j].policy = name
    else
      jobs[j].callback = name
    end
    if string.match(name, '^step_') then batch.steps = (batch.steps or 1) + 1 end
  end
  local state = redis.call('HGET', batch.hash, 'state')
  if batch.mode == 'create' then
    if state then
      return redis.error_reply('ERR streamworker enqueue: batch ' .. batch.id ..
        ' already exists; build a new Batch rather than enqueueing the same one twice')
    end
  elseif batch.mode == 'add' then
    if state ~= 'running' then
      return redis.error_reply('ERR streamworker enqueue: batch ' .. batch.id ..
        ' is not running (finished, expired or never created): jobs can be added to a ' ..
        'batch only by one of its children while it runs')
    end
  else
    return redis.error_reply('ERR streamworker enqueue: malformed batch trailer')
  end
end

-- A delayed job must not replace one of the same id, unless this is a repeat of a job
-- enqueued once (it will store nothing).
for j = 1, #jobs do
  local job = jobs[j]
  if job.due > now_ms and not (job.once and redis.call('EXISTS', job.once) == 1) then
    if scheduled[job.id] or redis.call('ZSCORE', KEYS[4], job.id) then
      return redis.error_reply('ERR streamworker enqueue: job id ' .. job.id ..
        ' is already scheduled; enqueue a new Job rather than the same one twice')
    end
    scheduled[job.id] = true
  end
end

wake_start(KEYS[4])
local replies = {}
-- Whether the job may be added: its tick is new and its uniqueness lock free (then taken).
local function admit(j, job)
  if job.once then
    if redis.call('EXISTS', job.once) == 1 then
      replies[j] = {'enqueued_before'}
      return false
    end
    redis.call('SET', job.once, '1', 'PX', job.once_ttl)
  end
  if job.tick_key then
    local taken = tonumber(redis.call('HGET', job.tick_key, 'tick_ms'))
    if taken and taken >= job.tick then
      replies[j] = {'tick_taken'}
      return false
    end
    redis.call('HSET', job.tick_key, 'tick_ms', job.tick)
    if job.tick_only then
      replies[j] = {'tick_skipped'}
      return false
    end
  end
  if job.lock then
    local holder = redis.call('GET', job.lock)
    if holder then
      replies[j] = {'duplicate', holder}
      return false
    end
    redis.call('SET', job.lock, job.id, 'PX', job.lock_ttl)
  end
  if job.tick_key then
    redis.call('HSET', job.tick_key, 'last_run_tick_ms', job.tick, 'last_job_id', job.id,
      'last_run_ms', now_ms)
  end
  return true
end

-- Adds the job to its stream, or to the delayed set when it is due later.
local function add(j, job)
  local state
  if job.due > now_ms then
    redis.call('ZADD', KEYS[4], job.due, job.id)
    redis.call('HSET', KEYS[5], job.id, pack_delayed(job.prio, job.fields))
    wake_note(job.due)
    replies[j] = 'delayed'
    state = 'scheduled'
  else
    replies[j] = redis.call('XADD', KEYS[job.prio], '*', unpack(job.fields))
    state = 'queued'
  end
  if job.key > 0 then
    redis.call('HSET', KEYS[job.key], 'state', state, 'attempt', '1', 'enqueued_ms', now_ms,
      'due_ms', job.due)
    for f = 1, #job.fields - 1, 2 do
      if job.fields[f] == 'task' then
        redis.call('HSET', KEYS[job.key], 'task', job.fields[f + 1])
      end
    end
    if state == 'queued' then
      -- Where the job waits: lets cancel find it without scanning the stream.
      redis.call('HSET', KEYS[job.key], 'entry', replies[j], 'priority', job.prio)
    end
    redis.call('PEXPIRE', KEYS[job.key], job.ttl)
  end
end

if batch and batch.mode == 'create' then
  redis.call('HSET', batch.hash, 'state', 'running', 'batch_id', batch.id, 'total', 0,
    'succeeded', 0, 'failed', 0, 'ignored', 0, 'policy', batch.policy, 'ttl_ms', batch.ttl,
    'created_ms', now_ms)
  if batch.steps then
    redis.call('HSET', batch.hash, 'steps', batch.steps, 'next', 2, 'total', batch.steps - 1)
  end
end
for j, job in ipairs(jobs) do
  if job.callback then
    redis.call('HSET', batch.hash, 'cb_' .. job.callback, pack_delayed(job.prio, job.fields))
    if string.match(job.callback, '^step_') then
      redis.call('HSET', batch.hash, 'id_' .. job.callback, job.id)
    end
    replies[j] = 'held'
  elseif admit(j, job) then
    add(j, job)
    if batch then
      redis.call('SADD', batch.pending, job.id)
      redis.call('HINCRBY', batch.hash, 'total', 1)
      if job.policy then redis.call('HSET', batch.hash, 'policy:' .. job.id, job.policy) end
    end
  end
end
if batch then batch_complete(batch.hash, batch.pending, batch.failed) end
wake_publish(ARGV[1])
return replies

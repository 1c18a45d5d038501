-- prune_consumers: remove consumers that own nothing and have been idle for a long time
-- (workers that exited or died, once the reaper took their entries). The check and the
-- removal happen in one script: XGROUP DELCONSUMER drops a consumer's pending entries, so a
-- consumer that read something between a separate check and the removal would lose it.
--
-- KEYS[1..3]  priority streams: high, default, low
-- ARGV[1]     consumer group name
-- ARGV[2]     min idle time in ms
-- ARGV[3]     this worker's consumer name (never removed)
-- Returns: the names removed, as a flat array {stream index, name, ...}.
-- Errors: NOGROUP when a stream or its consumer group is missing.

local group, min_idle, self = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local removed = {}
for p = 1, 3 do
  for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[p], group)) do
    local name, pending, idle
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1]
      elseif info[i] == 'pending' then pending = info[i + 1]
      elseif info[i] == 'idle' then idle = info[i + 1] end
    end
    if name ~= self and pending == 0 and idle >= min_idle then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[p], group, name)
      removed[#removed + 1] = p
      removed[#removed + 1] = name
    end
  end
end
return removed

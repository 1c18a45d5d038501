-- lib/wake.lua: the wake-up of the group's promoters when a job enters the delayed set ahead of
-- every job there, so a promoter asleep until a later due time runs it on time.
-- Defines wake_start(set): reads the earliest due time of delayed set `set` (call it before
--   adding to it); wake_note(due): records a job added with due time `due` (ms);
--   wake_publish(channel): publishes the new earliest due time on `channel`, once, when a noted
--   job came first.
-- Expects nothing.
local wake_earliest, wake_needed = nil, false

local function wake_start(set)
  local earliest = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  wake_earliest = tonumber(earliest[2])
end

local function wake_note(due)
  if wake_earliest == nil or due < wake_earliest then
    wake_earliest = due
    wake_needed = true
  end
end

local function wake_publish(channel)
  if wake_needed then
    redis.call('PUBLISH', channel, wake_earliest)
  end
end

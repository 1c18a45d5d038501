-- lib/dead_retention.lua: the dead stream's retention, applied where jobs are added to it.
-- Defines trim_dead(dead, record, max_len, max_age_ms, now_ms): keeps the newest max_len
--   entries of the dead stream `dead` and deletes those added before now_ms - max_age_ms (entry
--   ids are Redis time in ms when added); 0 turns a bound off. Both trims are exact (no `~`):
--   one call per script call, not per job. Records the bounds in force in the hash `record`
--   (`max_len`, `max_age_ms`), where `status` reads them.
-- Expects nothing.
local function trim_dead(dead, record, max_len, max_age_ms, now_ms)
  if max_len > 0 then
    redis.call('XTRIM', dead, 'MAXLEN', max_len)
  end
  if max_age_ms > 0 and now_ms > max_age_ms then
    redis.call('XTRIM', dead, 'MINID', now_ms - max_age_ms)
  end
  redis.call('HSET', record, 'max_len', max_len, 'max_age_ms', max_age_ms)
end

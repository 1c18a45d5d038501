-- lib/lock_trailer.lua: the uniqueness locks of the scripts that end jobs for good.
-- Defines release_locks(pos, replies): reads the optional trailer at ARGV[pos] (absent = 0): the
--   number of locks L, then L triples: job number j (1-based), index into KEYS of the lock, job
--   id; releases each lock whose job was finished here (replies[j] == 1). Returns the position
--   right after the trailer (where an absent trailer's count would be, plus one).
-- Expects nothing (includes lib/release_lock.lua).
--#include lib/release_lock.lua
local function release_locks(pos, replies)
  for l = 1, tonumber(ARGV[pos]) or 0 do
    local at = pos + 1 + (l - 1) * 3
    if replies[tonumber(ARGV[at])] == 1 then
      release_lock(KEYS[tonumber(ARGV[at + 1])], ARGV[at + 2])
    end
  end
  return pos + 1 + (tonumber(ARGV[pos]) or 0) * 3
end

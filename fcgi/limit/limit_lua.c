/* limit_lua — the limiter's Lua scripts (limit_lua.h). Times are µs from
 * Redis's TIME (exact in a double); the rpm GCRA keeps its theoretical
 * arrival time as an integer string, the tpm bucket "level time" (tokens,
 * µs) in a string. The day and month of the budget keys are UTC, computed
 * here from TIME (days-to-civil), so every host names the same key; only
 * when a budget is set (each call is on a request's critical path). */
#include "fcgi/limit/limit_lua.h"

/* Shared head: the base key, the clock (Redis's TIME; a unit test may give
 * its own µs as the ARGV after the documented ones), and two functions: the
 * budget keys and their resets, and the tpm bucket's level now (what was
 * charged, less what has flowed out since). */
#define LIMIT__HEAD \
    "local b = KEYS[1]\n" \
    "local W = 60000000\n" \
    "local now, sec\n" \
    "local function clock(test)\n" \
    "  if test and test ~= '' then now = tonumber(test)\n" \
    "  else local t = redis.call('TIME'); now = tonumber(t[1]) * 1000000 + tonumber(t[2]) end\n" \
    "  sec = math.floor(now / 1000000)\n" \
    "end\n" \
    "local function days()\n" \
    "  local z = math.floor(sec / 86400) + 719468\n" \
    "  local era = math.floor(z / 146097)\n" \
    "  local doe = z - era * 146097\n" \
    "  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)" \
    " - math.floor(doe / 146096)) / 365)\n" \
    "  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n" \
    "  local mp = math.floor((5 * doy + 2) / 153)\n" \
    "  local d = doy - math.floor((153 * mp + 2) / 5) + 1\n" \
    "  local m = mp < 10 and mp + 3 or mp - 9\n" \
    "  local y = yoe + era * 400\n" \
    "  if m <= 2 then y = y + 1 end\n" \
    "  local dim = ({31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31})[m]\n" \
    "  if m == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then dim = 29 end\n" \
    "  local dleft = 86400 - sec % 86400\n" \
    "  return b .. string.format('d:%04d%02d%02d', y, m, d), b .. string.format('m:%04d%02d', y, m),\n" \
    "         dleft, (dim - d) * 86400 + dleft\n" \
    "end\n" \
    "local function level(tpm)\n" \
    "  local s = redis.call('GET', b .. 'tpm')\n" \
    "  if not s then return 0 end\n" \
    "  local lvl, ts = string.match(s, '^(%S+) (%S+)$')\n" \
    "  lvl = (tonumber(lvl) or 0) - (now - (tonumber(ts) or now)) * tpm / W\n" \
    "  if lvl < 0 then lvl = 0 end\n" \
    "  return lvl\n" \
    "end\n"

#define LIMIT__GATE_BODY \
    "clock(ARGV[8])\n" \
    "local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n" \
    "local dayl, monl = tonumber(ARGV[4]), tonumber(ARGV[5])\n" \
    "local v, retry, dused, mused, infl = 0, 0, 0, 0, 0\n" \
    "if dayl > 0 or monl > 0 then\n" \
    "  local dk, mk, dleft, mleft = days()\n" \
    "  if dayl > 0 then\n" \
    "    dused = tonumber(redis.call('GET', dk) or 0) or 0\n" \
    "    if dused >= dayl then v = 4; retry = dleft * 1000 end\n" \
    "  end\n" \
    "  if monl > 0 then\n" \
    "    mused = tonumber(redis.call('GET', mk) or 0) or 0\n" \
    "    if v == 0 and mused >= monl then v = 5; retry = mleft * 1000 end\n" \
    "  end\n" \
    "end\n" \
    /* rpm: GCRA, burst rpm, one more every T */ \
    "local rrem, rreset, T, tau, tat, ntat = 0, 0, 0, 0, 0, nil\n" \
    "if rpm > 0 then\n" \
    "  T = math.ceil(W / rpm)\n" \
    "  tau = T * rpm\n" \
    "  tat = tonumber(redis.call('GET', b .. 'rpm') or 0) or 0\n" \
    "  if tat < now then tat = now end\n" \
    "  if tat + T - now > tau then\n" \
    "    if v == 0 then v = 1; retry = math.ceil((tat + T - now - tau) / 1000) end\n" \
    "  else ntat = tat + T end\n" \
    "end\n" \
    /* tpm: refused while not one whole token is left */ \
    "local trem, treset = 0, 0\n" \
    "if tpm > 0 then\n" \
    "  local lvl = level(tpm)\n" \
    "  trem = math.floor(tpm - lvl)\n" \
    "  if trem < 0 then trem = 0 end\n" \
    "  treset = math.ceil(lvl * W / tpm / 1000)\n" \
    "  if trem < 1 and v == 0 then v = 2; retry = math.ceil((lvl - tpm + 1) * W / tpm / 1000) end\n" \
    "end\n" \
    "local ck = b .. 'conc'\n" \
    "if conc > 0 then\n" \
    "  redis.call('ZREMRANGEBYSCORE', ck, '-inf', math.floor(now / 1000))\n" \
    "  infl = redis.call('ZCARD', ck)\n" \
    "  if infl >= conc and v == 0 then v = 3; retry = 1000 end\n" \
    "end\n" \
    "if v == 0 then\n" \
    "  if ntat then\n" \
    "    tat = ntat\n" \
    "    redis.call('SET', b .. 'rpm', string.format('%.0f', ntat), 'PX'," \
    " math.ceil((ntat - now) / 1000) + 1000)\n" \
    "  end\n" \
    "  if conc > 0 and ARGV[6] ~= '' then\n" \
    "    local lease = tonumber(ARGV[7])\n" \
    "    redis.call('ZADD', ck, math.floor(now / 1000) + lease, ARGV[6])\n" \
    "    redis.call('PEXPIRE', ck, lease)\n" \
    "    infl = infl + 1\n" \
    "  end\n" \
    "end\n" \
    "if rpm > 0 then\n" \
    "  rrem = math.floor((tau - (tat - now)) / T)\n" \
    "  if rrem < 0 then rrem = 0 end\n" \
    "  rreset = math.ceil((tat - now) / 1000)\n" \
    "end\n" \
    "return {v, rrem, rreset, trem, treset, retry, dused, mused, infl}\n"

const char limit_lua_gate[] = LIMIT__HEAD LIMIT__GATE_BODY;

const char limit_lua_gate_fn[] = "local function limit_gate(KEYS, ARGV)\n" LIMIT__HEAD LIMIT__GATE_BODY
    "end\n";


const char limit_lua_end[] = LIMIT__HEAD
    "clock(ARGV[6])\n"
    "local tpm, dayl, monl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tok = tonumber(ARGV[5])\n"
    "if tok > 0 then\n"
    "  if tpm > 0 then\n"
    "    local lvl = level(tpm) + tok\n"
    "    redis.call('SET', b .. 'tpm', string.format('%.3f %.0f', lvl, now), 'PX',"
    " math.ceil(lvl * W / tpm / 1000) + 1000)\n"
    "  end\n"
    "  if dayl > 0 or monl > 0 then\n"
    "    local dk, mk = days()\n"
    "    if dayl > 0 then redis.call('INCRBY', dk, tok); redis.call('EXPIRE', dk, 172800) end\n"
    "    if monl > 0 then redis.call('INCRBY', mk, tok); redis.call('EXPIRE', mk, 3456000) end\n"
    "  end\n"
    "end\n"
    "if ARGV[4] ~= '' then redis.call('ZREM', b .. 'conc', ARGV[4]) end\n"
    "return 1\n";

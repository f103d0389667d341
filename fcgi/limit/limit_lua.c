/* limit_lua — the limiter's Lua scripts (limit_lua.h). Times are µs from
 * Redis's TIME (exact in a double); the rpm GCRA keeps its theoretical
 * arrival time as an integer string, the tpm bucket "level time" (tokens,
 * µs) in a string. The day and month of the budget keys are UTC, computed
 * here from TIME (days-to-civil), so every host names the same key; only
 * when a budget is set (each call is on a request's critical path). */
#include "fcgi/limit/limit_lua.h"

/* The budget keys and their resets, from `sec` and `b`: a local function
 * written only inside the branches that have a budget, so a request
 * without one does not build it (each call is on a request's critical
 * path, and Redis runs the script's body afresh every time). */
#define LIMIT__DAYS \
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
    "end\n"

/* The tpm bucket's level now, into `lvl`: what was charged, less what has
 * flowed out since (tpm > 0). */
#define LIMIT__LEVEL \
    "local lvl = 0\n" \
    "local ls = redis.call('GET', b .. 'tpm')\n" \
    "if ls then\n" \
    "  local l, ts = string.match(ls, '^(%S+) (%S+)$')\n" \
    "  lvl = (tonumber(l) or 0) - (now - (tonumber(ts) or now)) * tpm / W\n" \
    "  if lvl < 0 then lvl = 0 end\n" \
    "end\n"

/* The clock into `now` (µs) and `sec`: Redis's TIME, or the µs in `test`
 * when a caller gives them (a unit test, or the lookup that read TIME). */
#define LIMIT__CLOCK(test) \
    "local now\n" \
    "if " test " and " test " ~= '' then now = tonumber(" test ")\n" \
    "else local t = redis.call('TIME'); now = tonumber(t[1]) * 1000000 + tonumber(t[2]) end\n" \
    "local sec = math.floor(now / 1000000)\n"

/* The gate on locals b (base key), rpm, tpm, conc, dayl, monl (numbers),
 * member, lease (ms, a number) and the clock: no table of arguments and no
 * number turned to text and back when the lookup calls it. */
#define LIMIT__GATE_BODY \
    "local W = 60000000\n" \
    "local v, retry, dused, mused, infl = 0, 0, 0, 0, 0\n" \
    "if dayl > 0 or monl > 0 then\n" \
    LIMIT__DAYS \
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
    LIMIT__LEVEL \
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
    "    redis.call('SET', b .. 'rpm', string.format('%d', ntat), 'PX'," \
    " math.ceil((ntat - now) / 1000) + 1000)\n" \
    "  end\n" \
    "  if conc > 0 and member ~= '' then\n" \
    "    redis.call('ZADD', ck, math.floor(now / 1000) + lease, member)\n" \
    "    redis.call('PEXPIRE', ck, lease)\n" \
    "    infl = infl + 1\n" \
    "  end\n" \
    "end\n" \
    "if rpm > 0 then\n" \
    "  rrem = math.floor((tau - (tat - now)) / T)\n" \
    "  if rrem < 0 then rrem = 0 end\n" \
    "  rreset = math.ceil((tat - now) / 1000)\n" \
    "end\n" \
    "return {v, rrem, rreset, trem, treset, retry, dused, mused, infl, now}\n"

const char limit_lua_gate[] =
    "local b = KEYS[1]\n"
    "local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local dayl, monl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local member, lease = ARGV[6], tonumber(ARGV[7])\n"
    LIMIT__CLOCK("ARGV[8]")
    LIMIT__GATE_BODY;

const char limit_lua_gate_fn[] =
    "local function limit_gate(b, rpm, tpm, conc, dayl, monl, member, lease, clock)\n"
    LIMIT__CLOCK("clock")
    LIMIT__GATE_BODY
    "end\n";

const char limit_lua_end[] =
    "local b = KEYS[1]\n"
    "local W = 60000000\n"
    LIMIT__CLOCK("ARGV[6]")
    "local tpm, dayl, monl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tok = tonumber(ARGV[5])\n"
    "if tok > 0 then\n"
    "  if tpm > 0 then\n"
    LIMIT__LEVEL
    "    lvl = lvl + tok\n"
    "    redis.call('SET', b .. 'tpm', string.format('%.3f %d', lvl, now), 'PX',"
    " math.ceil(lvl * W / tpm / 1000) + 1000)\n"
    "  end\n"
    "  if dayl > 0 or monl > 0 then\n"
    LIMIT__DAYS
    "    local dk, mk = days()\n"
    "    if dayl > 0 then redis.call('INCRBY', dk, tok); redis.call('EXPIRE', dk, 172800) end\n"
    "    if monl > 0 then redis.call('INCRBY', mk, tok); redis.call('EXPIRE', mk, 3456000) end\n"
    "  end\n"
    "end\n"
    "if ARGV[4] ~= '' then redis.call('ZREM', b .. 'conc', ARGV[4]) end\n"
    "return 1\n";

#include "orroute/cost/redis_ledger_lua.h"

namespace orroute::redis_ledger {

// Shared by every script. ARGV[1] is always the key prefix.
//
// Numbers: Redis's Lua numbers are doubles, exact only below 2^53 (9e15 attodollars = $0.009).
// Amounts travel as decimal strings of attodollars and are held as base-1e9 limbs (little endian)
// with a sign: every limb < 1e9, sums < 2e9, products by a threshold (<= 1000) < 1e12 — all exact.
extern const char* const kLuaPrelude = R"lua(
local P = ARGV[1]
local B = 1000000000
local function norm(x)
  while #x.d > 0 and x.d[#x.d] == 0 do x.d[#x.d] = nil end
  if #x.d == 0 then x.neg = false end
  return x
end
local function big(s)
  s = s or '0'
  local neg = false
  if string.sub(s, 1, 1) == '-' then neg = true; s = string.sub(s, 2) end
  local d = {}
  local i = #s
  while i >= 1 do
    local j = i - 8
    if j < 1 then j = 1 end
    d[#d + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return norm({neg = neg, d = d})
end
local function str(x)
  if #x.d == 0 then return '0' end
  local parts = {x.neg and '-' or '', string.format('%d', x.d[#x.d])}
  for i = #x.d - 1, 1, -1 do parts[#parts + 1] = string.format('%09d', x.d[i]) end
  return table.concat(parts)
end
local function cmpabs(a, b)
  if #a.d ~= #b.d then return #a.d < #b.d and -1 or 1 end
  for i = #a.d, 1, -1 do
    if a.d[i] ~= b.d[i] then return a.d[i] < b.d[i] and -1 or 1 end
  end
  return 0
end
local function addabs(a, b)
  local r, c = {}, 0
  for i = 1, math.max(#a, #b) do
    local s = (a[i] or 0) + (b[i] or 0) + c
    if s >= B then r[i] = s - B; c = 1 else r[i] = s; c = 0 end
  end
  if c > 0 then r[#r + 1] = c end
  return r
end
local function subabs(a, b)  -- |a| >= |b|
  local r, c = {}, 0
  for i = 1, #a do
    local s = a[i] - (b[i] or 0) - c
    if s < 0 then r[i] = s + B; c = 1 else r[i] = s; c = 0 end
  end
  return r
end
local function add(x, y)
  if x.neg == y.neg then return norm({neg = x.neg, d = addabs(x.d, y.d)}) end
  local c = cmpabs(x, y)
  if c == 0 then return big('0') end
  if c > 0 then return norm({neg = x.neg, d = subabs(x.d, y.d)}) end
  return norm({neg = y.neg, d = subabs(y.d, x.d)})
end
local function neg(x) return norm({neg = not x.neg, d = x.d}) end
local function cmp(x, y)
  if x.neg ~= y.neg then return x.neg and -1 or 1 end
  local c = cmpabs(x, y)
  if x.neg then return -c end
  return c
end
local function mul_small(x, k)  -- 0 <= k <= 1e6
  local r, c = {}, 0
  for i = 1, #x.d do
    local p = x.d[i] * k + c
    r[i] = p % B
    c = math.floor(p / B)
  end
  while c > 0 do r[#r + 1] = c % B; c = math.floor(c / B) end
  return norm({neg = x.neg, d = r})
end
local ZERO = big('0')

local function wkey(bid, start) return P .. 'w:' .. bid .. ':' .. start end
local function scope_match(kind, skey, sval, project, conv, tags)
  if kind == 'global' then return true end
  if kind == 'project' then return project == sval end
  if kind == 'conversation' then return conv == sval end
  return string.find('\n' .. tags, '\n' .. skey .. '=' .. sval .. '\n', 1, true) ~= nil
end
-- A window's counters (spent, reserved); created on first use from the calls already in it.
-- W: index of a window tuple in ARGV (bid, start, end, expire_ms, kind, key, value, limit,
-- thresholds, name).
local function ensure(W)
  local bid, start = ARGV[W], ARGV[W + 1]
  local k = wkey(bid, start)
  local v = redis.call('HMGET', k, 's', 'r')
  if v[1] then return big(v[1]), big(v[2]) end
  local spent = big('0')
  local ids = redis.call('ZRANGEBYSCORE', P .. 'calls', start, '(' .. ARGV[W + 2])
  for _, id in ipairs(ids) do
    local c = redis.call('HMGET', P .. 'call:' .. id, 'cost', 'project', 'conversation', 'tags')
    if c[1] and scope_match(ARGV[W + 4], ARGV[W + 5], ARGV[W + 6], c[2] or '', c[3] or '',
                            c[4] or '') then
      spent = add(spent, big(c[1]))
    end
  end
  redis.call('HSET', k, 's', str(spent), 'r', '0')
  if ARGV[W + 3] ~= '0' then redis.call('PEXPIREAT', k, ARGV[W + 3]) end
  redis.call('SADD', P .. 'bw:' .. bid, k)
  return spent, big('0')
end
local function remove_res(id)
  local k = P .. 'res:' .. id
  redis.call('ZREM', P .. 'res_exp', id)
  local v = redis.call('HMGET', k, 'a', 'win')
  if not v[1] then return false end
  local a = big(v[1])
  for bid, start in string.gmatch(v[2], '([^:;]+):([^;]+);') do
    local wk = wkey(bid, start)
    local r = redis.call('HGET', wk, 'r')
    if r then
      local nr = add(big(r), neg(a))
      if nr.neg then nr = ZERO end
      redis.call('HSET', wk, 'r', str(nr))
    end
  end
  redis.call('DEL', k)
  return true
end
-- An expired reservation: its owner did not settle it within the time its call may take, and
-- whether it lives (or sent its call) cannot be told from here. Money fails closed: its amount
-- is booked as spent, with a call row (outcome 'abandoned'), never handed back. The row is named
-- by 'abandoned:<id>' (reservation ids are never reused) for the owner that lived: its late
-- settle replaces the booking, its release undoes it (kLuaSettle, kLuaRelease). The key lives as
-- long as the row it names (a late settle may come at any time: a process stopped for a week);
-- with an expiry, a settle after it found nothing and booked the call on top of the booking.
-- Adds the windows it booked to the set `touched` ("bid:start"), whose alerts the caller checks.
local function abandon_res(id, touched)
  local k = P .. 'res:' .. id
  local v = redis.call('HMGET', k, 'a', 'win', 'at', 'project', 'conversation', 'tags', 'model',
                       'task_id')
  redis.call('ZREM', P .. 'res_exp', id)
  if not v[1] then return end
  local a = big(v[1])
  for bid, start in string.gmatch(v[2], '([^:;]+):([^;]+);') do
    local wk = wkey(bid, start)
    local w = redis.call('HMGET', wk, 's', 'r')
    if w[1] then
      local nr = add(big(w[2]), neg(a))
      if nr.neg then nr = ZERO end
      redis.call('HSET', wk, 's', str(add(big(w[1]), a)), 'r', str(nr))
      touched[bid .. ':' .. start] = true
    end
  end
  redis.call('DEL', k)
  local cid = redis.call('INCR', P .. 'call_seq')
  redis.call('HSET', P .. 'call:' .. cid, 'ts', v[3], 'project', v[4] or '',
             'conversation', v[5] or '', 'tags', v[6] or '', 'model_requested', v[7] or '',
             'model_used', v[7] or '', 'task_id', v[8] or '', 'task_type', '', 'provider', '',
             'generation_id', '', 'pt', '0', 'ct', '0', 'cached', '0', 'cw', '0', 'rt', '0',
             'cost', v[1], 'outcome', 'abandoned', 'err', '', 'attempts', '1',
             'src', 'reservation: not settled before it expired (its process may have ended ' ..
                    'after sending the call)')
  redis.call('ZADD', P .. 'calls', v[3], cid)
  redis.call('SET', P .. 'abandoned:' .. id, cid)
end
-- Books every expired reservation as abandoned; returns how many, and the windows booked
-- ("bid:start", each once), whose thresholds the caller checks (kLuaAlerts).
local function reclaim(at)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'res_exp', '-inf', at, 'LIMIT', 0, 10000)
  local touched = {}
  for _, id in ipairs(ids) do abandon_res(id, touched) end
  local windows = {}
  for w in pairs(touched) do windows[#windows + 1] = w end
  return #ids, windows
end
-- Inserts the alerts window tuple W (index i) crossed at spent `s`, each once across clients,
-- and appends those inserted here to `out` as (i, threshold, spent).
local function alerts_crossed(W, i, s, at, out)
  if s.neg or #s.d == 0 then return end
  local limit = big(ARGV[W + 7])
  for t in string.gmatch(ARGV[W + 8], '[^,]+') do
    if cmp(mul_small(s, 100), mul_small(limit, tonumber(t))) >= 0 then
      local ak = ARGV[W] .. ':' .. ARGV[W + 1] .. ':' .. t
      local rec = table.concat({ARGV[W], ARGV[W + 1], t, at, str(s), ARGV[W + 7], ARGV[W + 9]}, '\n')
      if redis.call('HSETNX', P .. 'alert_keys', ak, rec) == 1 then
        redis.call('ZADD', P .. 'alerts', at, ak)
        out[#out + 1] = tostring(i)
        out[#out + 1] = t
        out[#out + 1] = str(s)
      end
    end
  end
end
local function gen_ok(g) return (redis.call('GET', P .. 'gen') or '0') == g end
)lua";

// ARGV: P, gen, token, at, expires, amount, project, conversation, tags, model, task_id, n,
// then n window tuples of 10. Replies status, id, each window's spent and reserved, then the
// windows its reclaim booked (kLuaAlerts checks them).
extern const char* const kLuaReserve = R"lua(
local tk = P .. 'tok:' .. ARGV[3]
local head = redis.call('MGET', tk, P .. 'cutoff', P .. 'gen')
if head[1] then return {'dup', head[1]} end
if head[2] then return {'cutoff', head[2]} end
if (head[3] or '0') ~= ARGV[2] then return {'stale'} end
local _, touched = reclaim(ARGV[4])
local amount = big(ARGV[6])
local n = tonumber(ARGV[12])
local out = {}
local blocked = false
local rs = {}
for i = 0, n - 1 do
  local W = 13 + i * 10
  local s, r = ensure(W)
  out[#out + 1] = str(s)
  out[#out + 1] = str(r)
  if cmp(add(add(s, r), amount), big(ARGV[W + 7])) > 0 then blocked = true end
  rs[i] = r
end
for _, w in ipairs(touched) do out[#out + 1] = w end  -- after the counters
if blocked then return {'exceeded', '0', unpack(out)} end
local id = redis.call('INCR', P .. 'res_seq')
local wins = {}
for i = 0, n - 1 do
  local W = 13 + i * 10
  redis.call('HSET', wkey(ARGV[W], ARGV[W + 1]), 'r', str(add(rs[i], amount)))
  wins[#wins + 1] = ARGV[W] .. ':' .. ARGV[W + 1] .. ';'
end
redis.call('HSET', P .. 'res:' .. id, 'a', ARGV[6], 'at', ARGV[4], 'exp', ARGV[5],
           'project', ARGV[7], 'conversation', ARGV[8], 'tags', ARGV[9], 'model', ARGV[10],
           'task_id', ARGV[11], 'win', table.concat(wins))
redis.call('ZADD', P .. 'res_exp', ARGV[5], id)
redis.call('SET', tk, id, 'EX', 3600)
return {'ok', tostring(id), unpack(out)}
)lua";

// ARGV: P, gen, token, reservation id ('0' = record), assumed found ('1'/'0'), its created_at,
// cost, ts, quantile key ('' = none), completion tokens, the call a refund gives money back for
// ('0' = none) and what its refunds gave back before, n, n window tuples, then the call's hash as
// field/value pairs.
extern const char* const kLuaSettle = R"lua(
local tk = P .. 'tok:' .. ARGV[3]
local head = redis.call('MGET', tk, P .. 'gen')
if head[1] then return {'dup', head[1]} end
if (head[2] or '0') ~= ARGV[2] then return {'stale'} end
-- A refund of call ARGV[11]: its refunds gave back what the caller checked it against.
local refunded_key = nil
if ARGV[11] ~= '0' then
  refunded_key = P .. 'call:' .. ARGV[11]
  local was = redis.call('HMGET', refunded_key, 'ts', 'refunded')
  if was[1] ~= ARGV[8] or (was[2] or '0') ~= ARGV[12] then return {'retry'} end
end
local found = false
-- The reservation was booked as abandoned by a reclaim: the call takes that row over (same time,
-- so the same windows) and its cost replaces the booking's.
local booked_row, booked = nil, ZERO
if ARGV[4] ~= '0' then
  local at = redis.call('HGET', P .. 'res:' .. ARGV[4], 'at')
  found = at and true or false
  if not found then
    booked_row = redis.call('GET', P .. 'abandoned:' .. ARGV[4])
    if booked_row then
      local b = redis.call('HMGET', P .. 'call:' .. booked_row, 'ts', 'cost')
      at, booked = b[1], big(b[2])
    end
  end
  local assumed = (at and true or false)
  if (assumed and '1' or '0') ~= ARGV[5] or (assumed and at ~= ARGV[6]) then return {'retry'} end
  if found then remove_res(ARGV[4]) end
end
local n = tonumber(ARGV[13])
local spent = {}
for i = 0, n - 1 do spent[i] = ensure(14 + i * 10) end  -- counters before the row
local cost = add(big(ARGV[7]), neg(booked))
if string.sub(ARGV[7], 1, 1) == '-' then  -- a refund: never more than a window spent
  for i = 0, n - 1 do
    if add(spent[i], cost).neg then return {'refund', tostring(i), str(spent[i])} end
  end
end
local id = booked_row or redis.call('INCR', P .. 'call_seq')
if booked_row then redis.call('DEL', P .. 'call:' .. id) end
local row = {}
for i = 14 + n * 10, #ARGV do row[#row + 1] = ARGV[i] end
redis.call('HSET', P .. 'call:' .. id, unpack(row))
redis.call('ZADD', P .. 'calls', ARGV[8], id)
if booked_row then redis.call('DEL', P .. 'abandoned:' .. ARGV[4]) end
if refunded_key then
  redis.call('HSET', refunded_key, 'refunded', str(add(big(ARGV[12]), neg(big(ARGV[7])))))
end
if ARGV[9] ~= '' then
  redis.call('LPUSH', ARGV[9], ARGV[10])
  redis.call('LTRIM', ARGV[9], 0, 9999)
end
local out = {'ok', tostring(id), found and '1' or '0'}
for i = 0, n - 1 do
  local W = 14 + i * 10
  local s = add(spent[i], cost)
  redis.call('HSET', wkey(ARGV[W], ARGV[W + 1]), 's', str(s))
  alerts_crossed(W, i, s, ARGV[8], out)
end
redis.call('SET', tk, tostring(id) .. ':' .. (found and '1' or '0'), 'EX', 3600)
return out
)lua";

// ARGV: P, gen, n, n window tuples.
extern const char* const kLuaStates = R"lua(
if not gen_ok(ARGV[2]) then return {'stale'} end
local out = {'ok'}
for i = 0, tonumber(ARGV[3]) - 1 do
  local s, r = ensure(4 + i * 10)
  out[#out + 1] = str(s)
  out[#out + 1] = str(r)
end
return out
)lua";

// ARGV: P, id, gen, the time of the booking naming it ('0': none known), n, n window tuples
// (the booking's). Replies 'ok' (released), 'none', or 'booked': a reclaim booked the
// reservation as abandoned, and the caller asks again with the booking's time and windows.
// Its release then undoes the booking, as a late settle of a call that cost nothing would: the
// row stays, at 0, and names the reservation no more.
extern const char* const kLuaRelease = R"lua(
if remove_res(ARGV[2]) then return {'ok'} end
local cid = redis.call('GET', P .. 'abandoned:' .. ARGV[2])
if not cid then return {'none'} end
local b = redis.call('HMGET', P .. 'call:' .. cid, 'ts', 'cost')
if not b[1] then return {'none'} end
if b[1] ~= ARGV[4] or not gen_ok(ARGV[3]) then return {'booked'} end
local booked = big(b[2])
for i = 0, tonumber(ARGV[5]) - 1 do
  local W = 6 + i * 10
  local s = ensure(W)
  redis.call('HSET', wkey(ARGV[W], ARGV[W + 1]), 's', str(add(s, neg(booked))))
end
redis.call('HSET', P .. 'call:' .. cid, 'cost', '0', 'src',
           'reservation: released by its owner after the reclaim booked it (nothing was billed)')
redis.call('DEL', P .. 'abandoned:' .. ARGV[2])
return {'ok'}
)lua";

// ARGV: P, at. Replies how many reservations it booked, then the windows booked.
extern const char* const kLuaReclaim = R"lua(
local n, touched = reclaim(ARGV[2])
local out = {n}
for _, w in ipairs(touched) do out[#out + 1] = w end
return out
)lua";

// The thresholds a reclaim's bookings crossed. ARGV: P, gen, at, n, n window tuples. Replies
// 'stale', or 'ok' then (window index, threshold, spent) for each alert inserted here.
extern const char* const kLuaAlerts = R"lua(
if not gen_ok(ARGV[2]) then return {'stale'} end
local out = {'ok'}
for i = 0, tonumber(ARGV[4]) - 1 do
  local W = 5 + i * 10
  local s = redis.call('HGET', wkey(ARGV[W], ARGV[W + 1]), 's')
  if s then alerts_crossed(W, i, big(s), ARGV[3], out) end
end
return out
)lua";

extern const char* const kLuaLive = R"lua(
local ids = redis.call('ZRANGE', P .. 'res_exp', 0, -1)
local sum = big('0')
local n = 0
for _, id in ipairs(ids) do
  local a = redis.call('HGET', P .. 'res:' .. id, 'a')
  if a then sum = add(sum, big(a)); n = n + 1 end
end
return {tostring(n), str(sum)}
)lua";

// ARGV: P, identity, encoded spec.
extern const char* const kLuaSetBudget = R"lua(
local id = redis.call('HGET', P .. 'budget_idx', ARGV[2])
if not id then
  id = tostring(redis.call('INCR', P .. 'budget_seq'))
  redis.call('HSET', P .. 'budget_idx', ARGV[2], id)
end
redis.call('HSET', P .. 'budgets', id, ARGV[3])
redis.call('INCR', P .. 'gen')
return id
)lua";

extern const char* const kLuaRemoveBudget = R"lua(
local id = redis.call('HGET', P .. 'budget_idx', ARGV[2])
if not id then return '0' end
redis.call('HDEL', P .. 'budget_idx', ARGV[2])
redis.call('HDEL', P .. 'budgets', id)
local ws = redis.call('SMEMBERS', P .. 'bw:' .. id)
for _, k in ipairs(ws) do redis.call('DEL', k) end
redis.call('DEL', P .. 'bw:' .. id)
redis.call('INCR', P .. 'gen')
return id
)lua";

extern const char* const kLuaLoadBudgets = R"lua(
local out = {redis.call('GET', P .. 'gen') or '0'}
local all = redis.call('HGETALL', P .. 'budgets')
for _, v in ipairs(all) do out[#out + 1] = v end
return out
)lua";

}  // namespace orroute::redis_ledger

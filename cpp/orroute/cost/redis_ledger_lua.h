// The Redis ledger's Lua scripts: each money operation is one atomic script on the server.
// kLuaPrelude is prepended to every other script.
#pragma once

namespace orroute::redis_ledger {

// Shared by every script. ARGV[1] is always the key prefix.
//
// Numbers: Redis's Lua numbers are doubles, exact only below 2^53 (9e15 attodollars = $0.009).
// Amounts travel as decimal strings of attodollars and are held as base-1e9 limbs (little endian)
// with a sign: every limb < 1e9, sums < 2e9, products by a threshold (<= 1000) < 1e12 — all exact.
extern const char* const kLuaPrelude;

// ARGV: P, gen, token, at, expires, amount, project, conversation, tags, model, task_id, n,
// then n window tuples of 10.
extern const char* const kLuaReserve;

// ARGV: P, gen, token, reservation id ('0' = record), assumed found ('1'/'0'), its created_at,
// cost, ts, quantile key ('' = none), completion tokens, n, n window tuples, then the call's
// hash as field/value pairs.
extern const char* const kLuaSettle;

// ARGV: P, gen, n, n window tuples.
extern const char* const kLuaStates;

extern const char* const kLuaRelease;

extern const char* const kLuaReclaim;

// The thresholds a reclaim's bookings crossed (see the .cpp).
extern const char* const kLuaAlerts;

extern const char* const kLuaLive;

// ARGV: P, identity, encoded spec.
extern const char* const kLuaSetBudget;

extern const char* const kLuaRemoveBudget;

extern const char* const kLuaLoadBudgets;

}  // namespace orroute::redis_ledger

// The sidecar's table of money in flight per lease row (see impl.h, "money in flight"). Slots
// are shared by every process on the file: taken by compare-and-swap, written only by the
// process whose lease it is while it lives, then read and freed by whoever reclaims its row.
#include <atomic>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

namespace {

std::atomic_ref<int64_t> field(int64_t& value) { return std::atomic_ref<int64_t>(value); }

}  // namespace

SqliteLedger::Impl::HeldSlot* SqliteLedger::Impl::take_held_slot(int64_t row_id, TimeUs created_at) {
  if (!held_slots) return nullptr;
  for (size_t i = 0; i < kHeldSlots; ++i) {
    HeldSlot& slot = held_slots[i];
    int64_t expected = 0;
    if (!field(slot.owner).compare_exchange_strong(expected, slot_owner)) continue;
    if (field(slot.row_id).load() != 0) {  // an older build's (it takes a slot by its row id)
      field(slot.owner).store(0);
      continue;
    }
    field(slot.held_nanos).store(0);
    field(slot.created_at).store(created_at);
    field(slot.row_id).store(row_id);
    return &slot;
  }
  return nullptr;
}

void SqliteLedger::Impl::free_held_slot(HeldSlot& slot) {
  field(slot.created_at).store(0);
  field(slot.row_id).store(0);
  field(slot.owner).store(0);
}

void SqliteLedger::Impl::free_orphan_slots() {
  if (!held_slots) return;
  const int64_t machine = sqlite::slot_owner_machine(slot_owner);
  for (size_t i = 0; i < kHeldSlots; ++i) {
    HeldSlot& slot = held_slots[i];
    const int64_t owner = field(slot.owner).load();
    if (owner == 0 || owner == slot_owner || sqlite::slot_owner_machine(owner) != machine) continue;
    if (sqlite::process_alive(sqlite::slot_owner_pid(owner), 0)) continue;  // a reused pid keeps it: never wrong
    auto row = q("SELECT 1 FROM reservations WHERE id = ? AND created_at = ? AND lease != 0");
    row.bind(1, field(slot.row_id).load()).bind(2, field(slot.created_at).load());
    if (!row.step()) free_held_slot(slot);
  }
}

void SqliteLedger::Impl::hold(Lease& lease, Money amount) {
  lease.held += amount;
  if (lease.slot) field(lease.slot->held_nanos).fetch_add(amount.to_nanos_ceil());
}

void SqliteLedger::Impl::unhold(Lease& lease, Money amount) {
  lease.held -= amount;
  if (lease.slot) field(lease.slot->held_nanos).fetch_sub(amount.to_nanos_ceil());
}

SqliteLedger::Impl::HeldSlot* SqliteLedger::Impl::find_held_slot(int64_t row_id, TimeUs created_at) {
  if (!held_slots) return nullptr;
  for (size_t i = 0; i < kHeldSlots; ++i) {
    HeldSlot& slot = held_slots[i];
    if (field(slot.row_id).load() == row_id && field(slot.created_at).load() == created_at) return &slot;
  }
  return nullptr;
}

Money SqliteLedger::Impl::held_in(HeldSlot& slot) {
  const int64_t nanos = field(slot.held_nanos).load();
  return Money::from_units(static_cast<Money::Rep>(std::max<int64_t>(nanos, 0)) * 1'000'000'000);
}

Money SqliteLedger::Impl::as_held(Money amount) {
  return Money::from_units(static_cast<Money::Rep>(amount.to_nanos_ceil()) * 1'000'000'000);
}

std::optional<Money> SqliteLedger::Impl::take_dead_held(int64_t row_id, TimeUs created_at) {
  HeldSlot* slot = find_held_slot(row_id, created_at);
  if (!slot) return std::nullopt;
  const Money held = held_in(*slot);
  free_held_slot(*slot);
  return held;
}

std::optional<Money> SqliteLedger::Impl::peek_held(int64_t row_id, TimeUs created_at) {
  HeldSlot* slot = find_held_slot(row_id, created_at);
  if (!slot) return std::nullopt;
  return held_in(*slot);
}

}  // namespace orroute

// Money counted once: a settle after the reclaim booked its reservation as abandoned (the owner
// lived: a call slower than its expiry, on another host) replaces that booking, its release
// undoes it; refunds are booked only as refunds of a call, never past what it cost.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "orroute/cost/sqlite/process.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"
#include "refund_checks.h"

using namespace orroute;
using namespace orroute::test;

namespace {

// Every reservation row as another host's, expired: its process cannot be checked from here.
void expire_on_another_host(const std::string& path) {
  REQUIRE(exec_on_file(path, "UPDATE reservations SET host = 'elsewhere', expires_at = 1") == SQLITE_OK);
}

SpendScope project(const char* name) { return SpendScope{name, "", {}}; }

BudgetState state_of(Ledger& ledger, const char* name) {
  return ledger.budget_states(project(name), 0, false).at(0);
}

SqliteLedgerOptions without_leases() {
  SqliteLedgerOptions plain;
  plain.leases = false;
  return plain;
}

// Two ledgers on one file without leases (a row per reservation), a budget of 10 on project p,
// and `mine`'s reservation of 1 there, which `other`'s reclaim booked as abandoned at
// `reclaimed_at` (its row made another host's and expired: its process cannot be checked).
struct BookedReservation {
  TempLedgerFile file;
  SqliteLedger mine{file.path, without_leases()}, other{file.path, without_leases()};
  ReserveOutcome r;
  TimeUs reclaimed_at = 0;
  BookedReservation() {
    mine.set_budget(spec("project:p", Window::kTotal, "10", Policy::kRefuse));
    r = mine.reserve(req("1", "p"));
    REQUIRE(r.status == ReserveStatus::kReserved);
    expire_on_another_host(file.path);
    reclaimed_at = now_us();
    REQUIRE(other.reclaim(reclaimed_at) == 1);
    REQUIRE(state_of(other, "p").spent == Money::dollars(1));  // booked: its owner may be dead
  }
};

}  // namespace

TEST_CASE("a late settle replaces the reclaim's booking of its reservation", "[ledger][late]") {
  BookedReservation booked;
  auto& [file, mine, other, r, reclaimed_at] = booked;

  SECTION("the settle takes the abandoned row over") {
    CallRecord c = call("m/a", "0.1");
    c.outcome = "ok";
    const SettleOutcome out = mine.settle(r.reservation_id, c);
    CHECK_FALSE(out.reservation_found);
    const std::vector<CallRecord> rows = other.calls({});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].id == out.call_id);
    CHECK(rows[0].outcome == "ok");
    CHECK(rows[0].cost == Money::parse("0.1"));
    CHECK(rows[0].model_used == "m/a");
    CHECK(rows[0].scope.project == "p");
    CHECK(state_of(other, "p").spent == Money::parse("0.1"));
    // Replaced once: a second settle of the id is a call of its own (at its own scope).
    mine.settle(r.reservation_id, call("m/a", "0.2"));
    CHECK(state_of(other, "p").spent == Money::parse("0.1"));
    CHECK(other.total_cost({}) == Money::parse("0.3"));
  }
  SECTION("a call that cost more than its booking adds the difference") {
    mine.settle(r.reservation_id, call("m/a", "1.5"));
    CHECK(state_of(other, "p").spent == Money::parse("1.5"));
    CHECK(other.calls({}).size() == 1);
  }
  SECTION("the reservation's id is not given to a new reservation") {
    const ReserveOutcome next = other.reserve(req("0.5", "p"));
    REQUIRE(next.status == ReserveStatus::kReserved);
    CHECK(next.reservation_id != r.reservation_id);
    mine.settle(r.reservation_id, call("m/a", "0.1"));
    const BudgetState st = state_of(other, "p");
    CHECK(st.spent == Money::parse("0.1"));
    CHECK(st.reserved == Money::parse("0.5"));  // the new reservation stands
  }
}

TEST_CASE("a lease's booking is replaced call by call, each by its share", "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger mine(file.path), other(file.path);
  mine.set_budget(spec("project:p", Window::kTotal, "100", Policy::kRefuse));
  const ReserveOutcome a = mine.reserve(req("1", "p"));
  const ReserveOutcome b = mine.reserve(req("0.5", "p"));
  REQUIRE(a.reservation_id < 0);  // served from a lease
  expire_on_another_host(file.path);
  const TimeUs reclaimed_at = now_us();
  REQUIRE(other.reclaim(reclaimed_at) == 1);
  REQUIRE(state_of(other, "p").spent == Money::parse("1.5"));  // what its slot held in flight
  // Served after the reclaim (the lease not yet known gone): no share in the booking.
  const ReserveOutcome late = mine.reserve(req("0.25", "p", reclaimed_at + 1'000'000));
  REQUIRE(late.status == ReserveStatus::kReserved);

  mine.settle(a.reservation_id, call("m/a", "0.1"));
  INFO(state_of(other, "p").spent.to_string());
  CHECK(state_of(other, "p").spent == Money::parse("0.6"));  // 0.5 still booked
  mine.settle(late.reservation_id, call("m/a", "0.05"));
  CHECK(state_of(other, "p").spent == Money::parse("0.65"));
  mine.settle(b.reservation_id, call("m/a", "0.2"));
  CHECK(state_of(other, "p").spent == Money::parse("0.35"));
  std::vector<std::string> outcomes;
  for (const CallRecord& row : other.calls({})) outcomes.push_back(row.outcome);
  CHECK(outcomes == std::vector<std::string>{"ok", "ok", "ok"});  // the booking taken over
  CHECK(other.total_cost({}) == Money::parse("0.35"));
}

// Its owner lived and released it (its call never sent, or cancelled before it was): the call
// cost nothing, and the booking stood (1 spent for nothing). The release undoes it, as a late
// settle at 0 would, and the id names no booking after it.
TEST_CASE("a release after the reclaim undoes the booking", "[ledger][late]") {
  BookedReservation booked;
  auto& [file, mine, other, r, reclaimed_at] = booked;
  CHECK(mine.release(r.reservation_id));
  CHECK(state_of(other, "p").spent.is_zero());
  const std::vector<CallRecord> rows = other.calls({});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].outcome == "abandoned");
  CHECK(rows[0].cost.is_zero());
  CHECK(rows[0].cost_source.find("released") != std::string::npos);
  CHECK_FALSE(mine.release(r.reservation_id));  // undone once
  CallRecord c = call("m/a", "0.1");
  c.scope.project = "p";
  mine.settle(r.reservation_id, c);  // a call of its own (at its own scope), not a take-over
  CHECK(other.calls({}).size() == 2);
  CHECK(state_of(other, "p").spent == Money::parse("0.1"));
}

TEST_CASE("a lease reservation released after its lease's reclaim takes its share off the booking",
          "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger mine(file.path), other(file.path);
  mine.set_budget(spec("project:p", Window::kTotal, "100", Policy::kRefuse));
  const ReserveOutcome a = mine.reserve(req("1", "p"));
  const ReserveOutcome b = mine.reserve(req("0.5", "p"));
  REQUIRE(b.reservation_id < 0);
  expire_on_another_host(file.path);
  REQUIRE(other.reclaim(now_us()) == 1);
  REQUIRE(state_of(other, "p").spent == Money::parse("1.5"));
  mine.settle(a.reservation_id, call("m/a", "0.1"));  // finds its lease gone
  REQUIRE(state_of(other, "p").spent == Money::parse("0.6"));
  CHECK(mine.release(b.reservation_id));
  CHECK(state_of(other, "p").spent == Money::parse("0.1"));
  CHECK(other.total_cost({}) == Money::parse("0.1"));
}

// SQLite gives a new row the largest id + 1. An older orroute (schema 5's code, still running
// when another process migrated the file to 6) knows nothing of the abandoned ids, and every
// build gives again the id of a reservation the reclaim released (expired, its owner alive here)
// when it was the newest. The late settle of the first reservation then found the second one's
// row and settled it: the other call's reservation gone, the booking left standing.
TEST_CASE("a late settle never settles another reservation given its id", "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger mine(file.path, without_leases()), other(file.path, without_leases());
  mine.set_budget(spec("project:p", Window::kTotal, "10", Policy::kRefuse));
  const TimeUs t0 = now_us();
  const ReserveOutcome r = mine.reserve(req("1", "p", t0));
  REQUIRE(r.status == ReserveStatus::kReserved);
  SECTION("an older build's reservation takes a booked id") {
    expire_on_another_host(file.path);
    REQUIRE(other.reclaim(t0 + 1'000'000) == 1);
    REQUIRE(state_of(other, "p").spent == Money::dollars(1));
    // as schema 5's code reserves: SQLite's id, charged to the window's reserved counter
    REQUIRE(exec_on_file(file.path,
                         "INSERT INTO reservations(pid, pid_start, host, created_at, expires_at, "
                         "amount_nanos, amount_attos, project, conversation, tags, model, task_id, "
                         "windows) SELECT 1, 0, 'old-build', 5, 9000000000000000000, 500000000, 0, "
                         "'p', '', '', 'm/b', '', budget_id || ':' || window_start || ';' FROM "
                         "budget_windows; UPDATE budget_windows SET reserved_nanos = "
                         "reserved_nanos + 500000000") == SQLITE_OK);
    mine.settle(r.reservation_id, call("m/a", "0.1"));
    const BudgetState st = state_of(other, "p");
    CHECK(st.spent == Money::parse("0.1"));     // the booking replaced
    CHECK(st.reserved == Money::parse("0.5"));  // the older build's reservation stands
    CHECK(other.live_reservations().first == 1);
  }
  SECTION("a new reservation takes the id of one the reclaim released") {
    const TimeUs past_expiry = t0 + 16LL * 60 * 1'000'000;
    REQUIRE(other.reclaim(past_expiry) == 1);  // expired, its owner alive here: released
    const ReserveOutcome next = other.reserve(req("0.5", "p", past_expiry));
    REQUIRE(next.reservation_id == r.reservation_id);  // SQLite's id again
    CallRecord c = call("m/a", "0.1");
    c.scope.project = "p";  // its reservation is gone: booked at its own scope
    mine.settle(r.reservation_id, c);
    const BudgetState st = state_of(other, "p");
    CHECK(st.spent == Money::parse("0.1"));     // the late call, booked
    CHECK(st.reserved == Money::parse("0.5"));  // the new reservation stands
    other.settle(next.reservation_id, call("m/b", "0.2"));
    CHECK(state_of(other, "p").spent == Money::parse("0.3"));
    CHECK(state_of(other, "p").reserved.is_zero());
  }
}

TEST_CASE("a refund names its call and gives back no more than it cost", "[ledger][refund]") {
  SqliteLedger ledger(":memory:");
  check_refunds_name_their_call(ledger);
}

TEST_CASE("a refund of a reclaim's booking is refused", "[ledger][refund]") {
  BookedReservation booked;
  const int64_t booking = booked.other.calls({}).at(0).id;
  CHECK_THROWS_WITH(record_refund(booked.other, booking, call("", "0.5")), Catch::Contains("booking"));
  CHECK(state_of(booked.other, "p").spent == Money::dollars(1));
}

TEST_CASE("a settle or a call's record refuses the outcome refund", "[ledger][refund]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1", Policy::kRefuse));
  ledger.record(call("m", "0.5"));
  CallRecord as_refund = call("m", "0.1");
  as_refund.outcome = std::string(kRefundOutcome);
  CHECK_THROWS_AS(record_call(ledger, as_refund), InvalidArgument);
  const ReserveOutcome r = ledger.reserve(req("0.1"));
  CHECK_THROWS_AS(ledger.settle(r.reservation_id, as_refund), InvalidArgument);
  std::vector<SettleItem> batch(2);
  batch[0] = {r.reservation_id, as_refund};
  batch[1] = {0, call("m", "0.1")};
  const std::vector<BatchSettle> out = ledger.settle_batch(batch);
  CHECK_FALSE(out[0].outcome);
  CHECK(out[1].outcome);
  CHECK(ledger.budget_states({}, 0, false).at(0).spent == Money::parse("0.6"));
}

TEST_CASE("the alerts a reclaim's booking crosses are handed out once", "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger mine(file.path, without_leases()), other(file.path, without_leases());
  BudgetSpec budget = spec("project:p", Window::kTotal, "1", Policy::kRefuse);
  budget.thresholds_pct = {50, 90};
  mine.set_budget(budget);
  REQUIRE(mine.reserve(req("0.6", "p")).status == ReserveStatus::kReserved);
  expire_on_another_host(file.path);
  REQUIRE(other.reclaim(now_us()) == 1);
  CallRecord c = call("m", "0.01");
  c.scope.project = "p";
  SECTION("by the next settle") {
    const SettleOutcome first = other.settle(other.reserve(req("0.01", "p")).reservation_id, c);
    REQUIRE(first.alerts.size() == 1);
    CHECK(first.alerts[0].threshold_pct == 50);
    CHECK(first.alerts[0].spent == Money::parse("0.6"));
    CHECK(other.record(c).alerts.empty());
  }
  SECTION("by the next record") {
    CHECK(other.record(c).alerts.size() == 1);
    CHECK(other.flush_settles().empty());
  }
  SECTION("by flush_settles") {
    CHECK(other.flush_settles().size() == 1);
    CHECK(other.record(c).alerts.empty());
  }
  CHECK(mine.record(c).alerts.empty());  // the process that reclaimed hands them out
}

namespace {

// The sidecar's slot table (impl.h, HeldSlot: row_id, created_at, held_nanos, owner), after the
// epoch's 64 bytes.
struct Slot {
  int64_t row_id, created_at, held_nanos, owner;
};
constexpr size_t kSlots = 1024;

std::vector<Slot> read_slots(const std::string& path) {
  std::vector<Slot> slots(kSlots);
  const int fd = ::open((path + "-orroute").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const auto bytes = static_cast<ssize_t>(kSlots * sizeof(Slot));
  REQUIRE(::pread(fd, slots.data(), kSlots * sizeof(Slot), 64) == bytes);
  ::close(fd);
  return slots;
}

void write_slots(const std::string& path, const std::vector<Slot>& slots) {
  const int fd = ::open((path + "-orroute").c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  const auto bytes = static_cast<ssize_t>(kSlots * sizeof(Slot));
  REQUIRE(::pwrite(fd, slots.data(), kSlots * sizeof(Slot), 64) == bytes);
  ::close(fd);
}

// A process of this machine as a slot names it (sqlite::slot_owner_tag).
int64_t owner_tag(pid_t pid) { return sqlite::slot_owner_tag(pid, sqlite::boot_id() + " " + sqlite::host_name()); }

pid_t a_dead_pid() {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return child;
}

}  // namespace

// A process that died while taking its slot, or after another host's reclaim of its row (which
// leaves the slot to its owner), never freed it: each such death lost one of 1,024 slots, and a
// lease without one is booked whole when its process dies.
TEST_CASE("a slot of a process gone is freed by a reclaim once its row is gone", "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  ledger.set_budget(spec("project:p", Window::kTotal, "100", Policy::kRefuse));
  REQUIRE(ledger.reserve(req("0.01", "p")).status == ReserveStatus::kReserved);  // a slot's sidecar
  std::vector<Slot> slots = read_slots(file.path);
  size_t mine = kSlots;
  for (size_t i = 0; i < kSlots; ++i) {
    if (slots[i].row_id != 0) mine = i;
  }
  REQUIRE(mine < kSlots);  // this process's lease
  const int64_t dead = owner_tag(a_dead_pid());
  const int64_t live = owner_tag(::getppid());
  size_t of_dead = 0;
  for (size_t i = 0; i < kSlots; ++i) {
    if (i == mine) continue;
    // a dead owner's slots: mid-take (no created_at), or its row gone; a live owner's
    const auto row = static_cast<int64_t>(i) + 1000;
    slots[i] = i % 3 == 0 ? Slot{row, 0, 0, dead} : i % 3 == 1 ? Slot{row, 5, 7, dead} : Slot{row, 5, 7, live};
    if (slots[i].owner == dead) ++of_dead;
  }
  write_slots(file.path, slots);
  ledger.reclaim(0);
  const std::vector<Slot> after = read_slots(file.path);
  size_t freed = 0, kept_live = 0;
  for (size_t i = 0; i < kSlots; ++i) {
    if (i == mine) {
      CHECK(after[i].row_id == slots[i].row_id);  // its own, in use
      continue;
    }
    if (after[i].owner == 0 && after[i].row_id == 0) ++freed;
    if (slots[i].owner == live && after[i].owner == live) ++kept_live;
  }
  CHECK(freed == of_dead);
  CHECK(kept_live == kSlots - 1 - of_dead);  // a live process's slot is its own to free
}

// Two machines' initial PID namespaces have the same inode (4026531836): a slot tagged by the pid
// and that inode alone named another machine's live process as a process of this one, gone here
// (its pid unused), and a reclaim that found its lease row gone (this machine's reclaim of the
// row, expired: it leaves the slot to its owner) freed the slot its owner still wrote to.
TEST_CASE("a slot of another machine's process is never freed as dead", "[ledger][late]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  ledger.set_budget(spec("project:p", Window::kTotal, "100", Policy::kRefuse));
  REQUIRE(ledger.reserve(req("0.01", "p")).status == ReserveStatus::kReserved);  // a slot's sidecar
  std::vector<Slot> slots = read_slots(file.path);
  const pid_t gone_here = a_dead_pid();
  // the same host name and PID namespace (a clone of this machine's image), another boot
  const int64_t elsewhere = sqlite::slot_owner_tag(gone_here, "another-boot " + sqlite::host_name());
  const int64_t here = owner_tag(gone_here);
  size_t first = kSlots;
  for (size_t i = 0; i < kSlots && first == kSlots; ++i) {
    if (slots[i].owner == 0) first = i;
  }
  REQUIRE(first + 1 < kSlots);
  slots[first] = Slot{777, 5, 7, elsewhere};    // its row reclaimed, its owner alive there
  slots[first + 1] = Slot{778, 5, 7, here};     // a process of this machine, gone
  write_slots(file.path, slots);
  ledger.reclaim(0);
  const std::vector<Slot> after = read_slots(file.path);
  CHECK(after[first].owner == elsewhere);
  CHECK(after[first].held_nanos == 7);
  CHECK(after[first + 1].owner == 0);
}

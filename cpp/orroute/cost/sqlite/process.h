// Processes that own reservations: start times (against pid reuse), liveness, host.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace orroute::sqlite {

// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); 0 if unknown.
// Guards against pid reuse when deciding that a reservation's owner is still alive.
int64_t process_start(int64_t pid);

// Whether `pid` (started at `start`, 0 = unknown) still runs on this host.
bool process_alive(int64_t pid, int64_t start);

// This host as reservations name it: its name and its PID namespace (where a row's pid means
// something), e.g. "box pid:[4026531836]".
std::string host_name();

// The running kernel's boot id (/proc/sys/kernel/random/boot_id), "" if unreadable. Every
// container on one kernel shares it; another machine, or this one after a reboot, has another.
std::string boot_id();

// The tag a held-money slot names its owner by (held_slots.cpp): process `pid` of the machine
// `machine` (its boot id and host_name(): the PID namespace's inode alone, 4026531836 in every
// machine's initial namespace, named another machine's live process as this one's, dead here).
// The pid in the low 24 bits, a 39-bit hash of `machine` above them; never 0.
int64_t slot_owner_tag(int64_t pid, std::string_view machine);
// The parts of a tag: its pid, and the machine's hash.
int64_t slot_owner_pid(int64_t tag);
int64_t slot_owner_machine(int64_t tag);

}  // namespace orroute::sqlite

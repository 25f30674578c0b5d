// Processes that own reservations: start times (against pid reuse), liveness, host.
#pragma once

#include <cstdint>
#include <string>

namespace orroute::sqlite {

// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); 0 if unknown.
// Guards against pid reuse when deciding that a reservation's owner is still alive.
int64_t process_start(int64_t pid);

// Whether `pid` (started at `start`, 0 = unknown) still runs on this host.
bool process_alive(int64_t pid, int64_t start);

// This host as reservations name it: its name and its PID namespace (where a row's pid means
// something), e.g. "box pid:[4026531836]".
std::string host_name();

}  // namespace orroute::sqlite

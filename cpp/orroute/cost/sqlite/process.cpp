#include "orroute/cost/sqlite/process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace orroute::sqlite {

int64_t process_start(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return 0;
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

bool process_alive(int64_t pid, int64_t start) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (start != 0) {
    const int64_t now_start = process_start(pid);
    if (now_start != 0 && now_start != start) return false;  // pid reused
  }
  return true;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  std::string host = buf;
  // Pids name processes only within a PID namespace: containers sharing the file and the host's
  // name (docker --network host) are other hosts to each other, their owners checked by expiry.
  char ns[64] = {};
  const ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (n > 0) host.append(1, ' ').append(ns, static_cast<size_t>(n));
  return host;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

namespace {
constexpr int kPidBits = 24;  // Linux pids fit in 22
}  // namespace

int64_t slot_owner_tag(int64_t pid, std::string_view machine) {
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a
  for (const char c : machine) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  const auto high = static_cast<int64_t>((hash >> (64 - 39)) | 1);  // 39 bits, never 0
  return (high << kPidBits) | (pid & ((int64_t{1} << kPidBits) - 1));
}

int64_t slot_owner_pid(int64_t tag) { return tag & ((int64_t{1} << kPidBits) - 1); }

int64_t slot_owner_machine(int64_t tag) { return tag >> kPidBits; }

}  // namespace orroute::sqlite

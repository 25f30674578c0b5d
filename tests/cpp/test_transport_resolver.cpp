// libcurl's threaded resolver waits on a socketpair that does not go through
// CURLOPT_OPENSOCKETFUNCTION/CLOSESOCKETFUNCTION: the loop adds it to its epoll set when libcurl
// asks (on_socket) and takes it out when libcurl says CURL_POLL_REMOVE, which libcurl says before
// it closes the socket (7.88.1: asyn-thread.c destroy_async_data calls Curl_multi_closed, then
// sclose; curl_multi_remove_handle first ends the resolve through multi_done, then tells
// singlesocket() of the sockets that vanish). A forked child holding a copy of the socketpair
// (forked while the name resolves) therefore leaves no registration behind in the parent's set
// under a number that is closed, or names another file: that registration would stay readable
// (the resolver thread wrote its wake-up byte, which nobody reads) and turn the loop for ever.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSlowName = "slow-resolve.orroute.test";
std::atomic<int> g_resolving{0};       // resolves of kSlowName waiting for g_release
std::atomic<bool> g_release{false};

}  // namespace

// The resolver thread's getaddrinfo: kSlowName waits for the test (10 s at most), then resolves
// as 127.0.0.1; every other name as the C library does.
extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (node != nullptr && std::strcmp(node, kSlowName) == 0) {
    g_resolving.fetch_add(1);
    for (int i = 0; i < 10'000 && !g_release.load(); ++i) std::this_thread::sleep_for(1ms);
    g_resolving.fetch_sub(1);
    return real("127.0.0.1", service, hints, res);
  }
  return real(node, service, hints, res);
}

namespace {

class OkServer : public test::LoopbackServer {
 public:
  OkServer() { start(); }
  ~OkServer() override { stop(); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos) {
      if (!read_more(conn, got)) return;
    }
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (write(conn, reply.data(), reply.size()) < 0) return;
  }
};

std::string link_of(int fd) {
  char buf[256];
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') fds.push_back(std::atoi(e->d_name));
  }
  closedir(dir);
  return fds;
}

struct Registration {
  int epoll_fd, fd;
  unsigned long inode;
};

std::vector<int> epoll_sets() {
  std::vector<int> out;
  for (const int fd : open_fds()) {
    if (link_of(fd) == "anon_inode:[eventpoll]") out.push_back(fd);
  }
  return out;
}

std::vector<int> g_before;  // the epoll sets open before the test's transport was made

// Every registration in the epoll sets made since g_before (/proc/self/fdinfo: "tfd: N ...
// ino:X").
std::vector<Registration> registrations() {
  std::vector<Registration> out;
  for (const int fd : epoll_sets()) {
    if (std::find(g_before.begin(), g_before.end(), fd) != g_before.end()) continue;
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind("tfd:", 0) != 0) continue;
      std::istringstream words(line);
      std::string word;
      Registration r{fd, -1, 0};
      while (words >> word) {
        if (word == "tfd:") words >> r.fd;
        if (word.rfind("ino:", 0) == 0) r.inode = std::stoul(word.substr(4), nullptr, 16);
      }
      out.push_back(r);
    }
  }
  return out;
}

// Registrations whose number is closed or names another file than the one registered.
std::vector<Registration> stale() {
  std::vector<Registration> out;
  for (const Registration& r : registrations()) {
    struct stat st {};
    if (fstat(r.fd, &st) != 0 || st.st_ino != r.inode) out.push_back(r);
  }
  return out;
}

bool resolver_socket_watched() {
  for (const Registration& r : registrations()) {
    if (link_of(r.fd).rfind("socket:", 0) == 0) return true;
  }
  return false;
}

struct DoneSink : Sink {
  std::promise<TransferResult> done;
  DataAction on_data(std::string_view) override { return DataAction::kContinue; }
  void on_done(const TransferResult& r) override { done.set_value(r); }
};

}  // namespace

TEST_CASE("the resolver's socket is out of the loop's set before it is closed, a forked child holding a copy",
          "[transport][sockets][resolver][fork]") {
  const bool cancel = GENERATE(false, true);
  CAPTURE(cancel);
  OkServer server;
  std::string url = server.url("/x");
  url.replace(url.find("127.0.0.1"), 9, kSlowName);
  g_release = false;
  g_before = epoll_sets();
  Transport t;
  auto sink = std::make_shared<DoneSink>();
  HttpRequest request;
  request.url = url;
  request.timeouts.total_ms = 10'000;
  const TransferId id = t.submit(request, sink);
  // The name is resolving and the loop waits on the resolver's socketpair.
  for (int i = 0; i < 5000 && !(g_resolving.load() == 1 && resolver_socket_watched()); ++i) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(g_resolving.load() == 1);
  REQUIRE(resolver_socket_watched());
  const pid_t child = fork();  // holds a copy of every descriptor, the socketpair's included
  if (child == 0) {
    sleep(30);
    _exit(0);
  }
  REQUIRE(child > 0);
  std::thread release([] {
    std::this_thread::sleep_for(50ms);
    g_release = true;
  });
  if (cancel) t.cancel(id);  // libcurl ends the resolve (waits for its thread) and removes it
  auto done = sink->done.get_future();
  const bool finished = done.wait_for(10s) == std::future_status::ready;
  release.join();
  // The loop waits for a timer 200 ms away: a stale registration, readable, would turn it
  // meanwhile (one turn for the post, at most one more).
  const int64_t turns = t.turns();
  std::promise<void> ran;
  t.post([&ran] { ran.set_value(); }, 200ms);
  const bool ran_in_time = ran.get_future().wait_for(5s) == std::future_status::ready;
  const int64_t turned = t.turns() - turns;
  const std::vector<Registration> left = stale();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  REQUIRE(finished);
  if (!cancel) CHECK(done.get().status == TransferStatus::kOk);
  CHECK(ran_in_time);
  CHECK(turned <= 10);
  for (const Registration& r : left) {
    UNSCOPED_INFO("epoll " << r.epoll_fd << " holds fd " << r.fd << " (" << link_of(r.fd) << ")");
  }
  CHECK(left.empty());
}

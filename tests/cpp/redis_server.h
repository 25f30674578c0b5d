// A private redis-server for tests: started on a free loopback port in a temp directory, killed at
// exit. Tests that need it call RedisServer::shared() and skip (with a warning) when it is null.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

namespace orroute::test {

class RedisServer {
 public:
  // The process-wide server, started on first use; nullptr if no redis-server binary is found.
  static RedisServer* shared() {
    static std::unique_ptr<RedisServer> server = start();
    return server.get();
  }
  ~RedisServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  // A URL with a prefix unique to `name`, so tests sharing the server do not see each other.
  std::string url(const std::string& name) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/0?prefix=t" +
           std::to_string(::getpid()) + ":" + name + ":";
  }

 private:
  static std::string binary() {
    if (const char* env = std::getenv("ORROUTE_REDIS_SERVER")) return env;
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
                          "/opt/homebrew/bin/redis-server"}) {
      if (::access(p, X_OK) == 0) return p;
    }
    return "";
  }
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  static bool accepting(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  static std::unique_ptr<RedisServer> start() {
    const std::string bin = binary();
    if (bin.empty()) return nullptr;
    auto s = std::unique_ptr<RedisServer>(new RedisServer());
    s->dir_ = (std::filesystem::temp_directory_path() /
               ("orroute-redis-" + std::to_string(::getpid())))
                  .string();
    std::filesystem::create_directories(s->dir_);
    s->port_ = free_port();
    const std::string port = std::to_string(s->port_);
    s->pid_ = ::fork();
    if (s->pid_ == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(bin.c_str(), bin.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--dir",
              s->dir_.c_str(), "--save", "", "--appendonly", "no", "--loglevel", "warning",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500 && !accepting(s->port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }
  RedisServer() = default;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace orroute::test

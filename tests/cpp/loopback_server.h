// A TCP server on 127.0.0.1 for the transport's tests: a listening socket on a free port and a
// thread that accepts one connection at a time and hands it to serve_connection(). The thread
// starts with start() (from the derived constructor, once its members exist) and is stopped and
// joined by stop() (from the derived destructor).
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "orroute/net/transport.h"

namespace orroute::test {

class LoopbackServer {
 public:
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 protected:
  LoopbackServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(listen(listen_fd_, 4) == 0);
  }
  virtual ~LoopbackServer() { close(listen_fd_); }

  void start() {
    thread_ = std::thread([this] {
      while (readable(listen_fd_)) {
        const int conn = accept(listen_fd_, nullptr, nullptr);
        serve_connection(conn);
        close(conn);
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Reads and answers requests on `conn` until it closes or the server stops.
  virtual void serve_connection(int conn) = 0;
  // Waits for `fd` to be readable, giving up (false) once the server stops.
  bool readable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  // Appends what `conn` has to `got`; false once it closed or the server stops.
  bool read_more(int conn, std::string& got) const {
    if (!readable(conn)) return false;
    char buf[4096];
    const ssize_t n = read(conn, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool stopping() const { return stop_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Collects one transfer's body; body() waits for the transfer's end (5 s) and fails the test
// unless it ended well.
class BodySink : public Sink {
 public:
  DataAction on_data(std::string_view bytes) override {
    body_.append(bytes);
    return DataAction::kContinue;
  }
  void on_done(const TransferResult& result) override { done_.set_value(result); }
  std::string body() {
    auto done = done_.get_future();
    REQUIRE(done.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    const TransferResult r = done.get();
    INFO(r.error);
    REQUIRE(r.status == TransferStatus::kOk);
    return body_;
  }

 private:
  std::string body_;
  std::promise<TransferResult> done_;
};

}  // namespace orroute::test

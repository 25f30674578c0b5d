// The environment's proxy variables, read once when a Transport is made and handed to libcurl per
// transfer (CURLOPT_PROXY / CURLOPT_NOPROXY) with libcurl's own rules: http_proxy (never
// HTTP_PROXY) or else all_proxy / ALL_PROXY for an http URL; no_proxy before NO_PROXY excludes hosts.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Answers every request with 200 and a body naming itself, one request per connection; keeps the
// last request line it read (a proxy's is in absolute form: "GET http://host:port/path HTTP/1.1").
class NamedServer : public test::LoopbackServer {
 public:
  explicit NamedServer(std::string name) : name_(std::move(name)) { start(); }
  ~NamedServer() override { stop(); }
  std::string last_request_line() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_line_;
  }
  // host:port, for a proxy variable
  std::string address() const { return url("").substr(std::string("http://").size()); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos) {
      if (!read_more(conn, got)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_line_ = got.substr(0, got.find("\r\n"));
    }
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(name_.size()) +
                              "\r\nConnection: close\r\n\r\n" + name_;
    [[maybe_unused]] const ssize_t n = write(conn, reply.data(), reply.size());
  }

  std::string name_;
  std::mutex mu_;
  std::string last_line_;
};

// Sets the proxy variables for one test and puts back what was there.
class ProxyVariables {
 public:
  ProxyVariables() {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      if (value != nullptr) saved_[name] = value;
      unsetenv(name);
    }
  }
  ~ProxyVariables() {
    for (const char* name : kNames) {
      if (auto it = saved_.find(name); it != saved_.end()) {
        setenv(name, it->second.c_str(), 1);
      } else {
        unsetenv(name);
      }
    }
  }
  ProxyVariables(const ProxyVariables&) = delete;
  ProxyVariables& operator=(const ProxyVariables&) = delete;
  void set(const char* name, const std::string& value) { setenv(name, value.c_str(), 1); }
  void unset(const char* name) { unsetenv(name); }

 private:
  static constexpr const char* kNames[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                           "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  std::map<std::string, std::string> saved_;
};

// Who answered a GET of `url` through a transport made now: "target" or "proxy".
std::string answered_by(const std::string& url) {
  Transport transport;
  HttpRequest req;
  req.method = "GET";
  req.url = url;
  auto sink = std::make_shared<orroute::test::BodySink>();
  transport.submit(std::move(req), sink);
  return sink->body();
}

}  // namespace

TEST_CASE("the environment's proxy is used with libcurl's rules", "[net][transport][proxy]") {
  NamedServer target("target");
  NamedServer proxy("proxy");
  ProxyVariables vars;
  const std::string url = target.url("/v1/chat");

  SECTION("no variable: straight to the host") { CHECK(answered_by(url) == "target"); }
  SECTION("http_proxy") {
    vars.set("http_proxy", "http://" + proxy.address());
    CHECK(answered_by(url) == "proxy");
    CHECK(proxy.last_request_line() == "GET " + url + " HTTP/1.1");
    SECTION("NO_PROXY excludes the host") {
      vars.set("NO_PROXY", "127.0.0.1");
      CHECK(answered_by(url) == "target");
    }
    SECTION("no_proxy excludes the host, and is read before NO_PROXY") {
      vars.set("no_proxy", "127.0.0.1");
      vars.set("NO_PROXY", "example.com");
      CHECK(answered_by(url) == "target");
      vars.set("no_proxy", "example.com");
      vars.set("NO_PROXY", "127.0.0.1");
      CHECK(answered_by(url) == "proxy");
    }
    SECTION("no_proxy set to empty counts as unset") {
      vars.set("no_proxy", "");
      vars.set("NO_PROXY", "*");
      CHECK(answered_by(url) == "target");
    }
  }
  SECTION("HTTP_PROXY is not read for http (libcurl's rule)") {
    vars.set("HTTP_PROXY", "http://" + proxy.address());
    CHECK(answered_by(url) == "target");
  }
  SECTION("all_proxy, then ALL_PROXY, when no http_proxy") {
    vars.set("ALL_PROXY", "http://" + proxy.address());
    CHECK(answered_by(url) == "proxy");
    vars.set("all_proxy", "http://" + target.address());
    vars.set("http_proxy", "");  // empty: unset
    CHECK(answered_by(url) == "target");
    CHECK(target.last_request_line() == "GET " + url + " HTTP/1.1");  // target as the proxy
  }
  SECTION("https_proxy is not used for http") {
    vars.set("https_proxy", "http://" + proxy.address());
    CHECK(answered_by(url) == "target");
  }
}

TEST_CASE("a transport reads the proxy variables when it is made", "[net][transport][proxy]") {
  NamedServer target("target");
  NamedServer proxy("proxy");
  ProxyVariables vars;
  const std::string url = target.url("/v1/chat");
  Transport transport;
  vars.set("http_proxy", "http://" + proxy.address());
  auto get = [&] {
    HttpRequest req;
    req.method = "GET";
    req.url = url;
    auto sink = std::make_shared<orroute::test::BodySink>();
    transport.submit(std::move(req), sink);
    return sink->body();
  };
  CHECK(get() == "target");  // set after it was made
  CHECK(answered_by(url) == "proxy");  // a new transport reads it
  vars.unset("http_proxy");
  CHECK(get() == "target");
}

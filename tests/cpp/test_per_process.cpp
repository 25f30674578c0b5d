// What a forked child inherits from objects made before fork() (gunicorn --preload, Celery's
// prefork pool): the child's first use makes its own (PerProcess) and never touches the parent's:
// a transport's loop, a SQLite ledger's connection, a settle worker's queue and thread.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "fork_util.h"
#include "ledger_test_util.h"
#include "loopback_server.h"
#include "orroute/cost/sqlite_ledger.h"
#include "orroute/engine/settle_worker.h"
#include "orroute/net/transport.h"
#include "orroute/per_process.h"

using namespace orroute;
using namespace orroute::test;
using namespace std::chrono_literals;

namespace {

// Runs `check` in a forked child (killed after 20 s, so a hang fails instead of blocking the
// run); true if it returned true. A failure says how the child ended and what it threw.
bool in_child(const std::function<bool()>& check) {
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t pid = fork_when_quiet();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(report[0]);
    ::alarm(20);
    bool ok = false;
    std::string why = "returned false";
    try {
      ok = check();
    } catch (const std::exception& e) {
      why = std::string("threw: ") + e.what();
    } catch (...) {
      why = "threw something that is not a std::exception";
    }
    if (!ok) {
      [[maybe_unused]] const ssize_t n = ::write(report[1], why.data(), why.size());
    }
    ::_exit(ok ? 0 : 1);
  }
  ::close(report[1]);
  std::string why;
  char buf[512];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) {
    why.append(buf, static_cast<size_t>(n));
  }
  ::close(report[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("the child " << (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                            : "exited with " + std::to_string(WEXITSTATUS(status)))
                    << (why.empty() ? "" : ": " + why));
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Answers every request with "ok" and closes the connection (one at a time: the parent's and
// the child's requests each get their own).
class OkServer : public LoopbackServer {
 public:
  OkServer() { start(); }
  ~OkServer() override { stop(); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos) {
      if (!read_more(conn, got)) return;
    }
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    [[maybe_unused]] const ssize_t n = write(conn, reply.data(), reply.size());
  }
};

// Reads requests and never answers.
class SilentServer : public LoopbackServer {
 public:
  SilentServer() { start(); }
  ~SilentServer() override { stop(); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (read_more(conn, got)) {
    }
  }
};

class Collect : public Sink {
 public:
  DataAction on_data(std::string_view bytes) override {
    body_.append(bytes);
    return DataAction::kContinue;
  }
  void on_done(const TransferResult& result) override {
    done_.set_value(result.status == TransferStatus::kOk ? body_ : "failed");
  }
  std::string body(std::chrono::milliseconds within) {
    auto f = done_.get_future();
    return f.wait_for(within) == std::future_status::ready ? f.get() : "timed out";
  }

 private:
  std::string body_;
  std::promise<std::string> done_;
};

std::string get(Transport& t, const OkServer& server) {
  auto sink = std::make_shared<Collect>();
  HttpRequest req;
  req.url = server.url("/");
  t.submit(std::move(req), sink);
  return sink->body(5s);
}

// A call of project "p" that cost `usd`.
CallRecord of_p(const char* usd) {
  CallRecord c = call("m", usd);
  c.scope.project = "p";
  return c;
}

}  // namespace

TEST_CASE("per process: a forked child's first use makes its own object", "[fork]") {
  int made = 0;
  PerProcess<int> held([&made] { return std::make_shared<int>(++made); });
  int* parents = held.get();
  CHECK(*parents == 1);
  CHECK(held.made_here() == parents);
  CHECK(in_child([&] {
    if (held.made_here() != nullptr) return false;  // the parent's is not this process's
    int* mine = held.get();
    return mine != parents && *mine == 2 && held.get() == mine && held.made_here() == mine &&
           *parents == 1;
  }));
  CHECK(held.get() == parents);  // the parent's is untouched
  CHECK(made == 1);
}

TEST_CASE("per process: a transport made before fork works in the child, on a loop of its own",
          "[fork][transport]") {
  OkServer server;
  Transport t;
  REQUIRE(get(t, server) == "ok");
  CHECK(in_child([&] { return get(t, server) == "ok" && get(t, server) == "ok"; }));
  CHECK(get(t, server) == "ok");
}

TEST_CASE("per process: a transport forked while its loop thread serves a transfer",
          "[fork][transport]") {
  OkServer server;
  SilentServer silent;
  Transport t;
  auto slow = std::make_shared<Collect>();
  HttpRequest req;
  req.url = silent.url("/");  // the parent's loop thread waits for its answer over the fork
  req.timeouts.total_ms = 1'000;
  t.submit(std::move(req), slow);
  std::this_thread::sleep_for(50ms);
  CHECK(in_child([&] { return get(t, server) == "ok"; }));
  CHECK(get(t, server) == "ok");
  CHECK(slow->body(5s) == "failed");  // the parent's own transfer ended in the parent
}

TEST_CASE("per process: a SQLite ledger made before fork opens its own connection in the child",
          "[fork][ledger]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  ledger.set_budget(spec("project:p", Window::kTotal, "1"));
  const auto held = ledger.reserve(req("0.30", "p"));  // the parent's, in flight over the fork
  REQUIRE(held.status == ReserveStatus::kReserved);
  CHECK(in_child([&] {
    const auto r = ledger.reserve(req("0.10", "p"));
    if (r.status != ReserveStatus::kReserved) return false;
    ledger.settle(r.reservation_id, of_p("0.10"));
    ledger.release_leases();
    return true;
  }));
  ledger.settle(held.reservation_id, of_p("0.30"));
  const auto st = ledger.budget_states({"p", "", {}}, 0, false).at(0);
  CHECK(st.spent == Money::parse("0.40"));
}

TEST_CASE("per process: a settle worker started before fork settles in the child",
          "[fork][ledger]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  SettleWorker worker(ledger);
  auto settle_one = [&](const char* amount) {
    const auto r = ledger.reserve(req(amount, "p"));
    std::promise<bool> written;
    REQUIRE(worker.start());
    worker.post(r.reservation_id, of_p(amount),
                [&](std::optional<SettleOutcome> o) { written.set_value(o.has_value()); });
    auto f = written.get_future();
    return f.wait_for(5s) == std::future_status::ready && f.get();
  };
  REQUIRE(settle_one("0.10"));
  CHECK(in_child([&] { return settle_one("0.20"); }));
  CHECK(settle_one("0.30"));
}

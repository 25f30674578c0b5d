// The network event loop: one libcurl multi handle driven by one thread. Every request of an engine
// goes through it, so connections are reused (keep-alive, HTTP/2 multiplexing where offered) and
// thousands of transfers share one thread. Callers submit a request with a Sink that receives the
// response as it arrives; they cancel, pause (backpressure) and schedule work by id.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "orroute/net/http.h"
#include "orroute/per_process.h"

namespace orroute {

using TransferId = uint64_t;  // never 0 for a real transfer

// What the sink wants after a piece of body.
enum class DataAction {
  kContinue,  // consumed; keep going
  // Consumed, but nothing of the answer: keep-alives (SSE comments, pings). The idle timeout keeps
  // running, so a stream that only keeps alive ends when it says, not when the upstream stops.
  kKeepAlive,
  kPause,     // NOT consumed: pause the transfer; the same bytes come again after resume()
  kAbort,     // stop the transfer; on_done gets kCancelled
};

// Receives one response. All calls come from the transport thread, in order: on_head (at most once),
// on_data (any number), on_done (exactly once, also after cancel). Implementations must not block:
// they run on the thread that serves every transfer. They may call Transport methods.
class Sink {
 public:
  virtual ~Sink() = default;
  // The status line and headers are complete (1xx interim responses are skipped).
  virtual void on_head(int /*status*/, const Headers& /*headers*/) {}
  virtual DataAction on_data(std::string_view bytes) = 0;
  virtual void on_done(const TransferResult& result) = 0;
};

struct TransportOptions {
  int64_t max_connections_per_host = 0;  // 0 = no limit (each HTTP/1.1 stream needs its own)
  int64_t max_total_connections = 0;
  bool verbose = false;  // libcurl's debug output on stderr (never enabled by default: shows headers)
  // The CA certificates to trust instead of libcurl's bundle (a corporate proxy's, a private
  // server's): a PEM file and/or a directory of hashed certificates. Empty: SSL_CERT_FILE and
  // SSL_CERT_DIR of the environment when the transport is made (as httpx, under the openai SDK,
  // and OpenSSL read them); a variable set to an empty text counts as unset.
  std::string ca_file;
  std::string ca_dir;
};

class LoopWatch;

// Thread-safe: every public method may be called from any thread, including from inside a Sink.
// The destructor cancels what is still running (sinks get on_done(kCancelled)) and joins the thread.
// Proxies: the environment's http_proxy, https_proxy / HTTPS_PROXY, all_proxy / ALL_PROXY and
// no_proxy / NO_PROXY are honoured with libcurl's rules, read once when the transport is made (as
// httpx reads them when its client is made), not at every transfer: a change to them afterwards
// reaches the next transport. (A URL of another scheme than http/https is left to libcurl, which
// reads its <scheme>_proxy at each transfer.)
class Transport {
 public:
  explicit Transport(TransportOptions options = {});
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Queues `request`; the transport thread starts it at once. Never throws for network failures
  // (they reach sink->on_done); throws InvalidArgument for an empty URL.
  TransferId submit(HttpRequest request, std::shared_ptr<Sink> sink);

  // Aborts a transfer promptly and frees its connection; the sink gets on_done(kCancelled). No-op if
  // it already finished.
  void cancel(TransferId id);

  // Resumes a transfer its sink paused (kPause). No-op if not paused or finished.
  void resume(TransferId id);

  // Runs `fn` on the transport thread after `delay` (0: on the next loop turn). Used for retry
  // backoff without a thread per wait. Functions still pending at destruction are dropped.
  void post(std::function<void()> fn, std::chrono::milliseconds delay = std::chrono::milliseconds(0));

  // Number of transfers in flight (approximate when read from another thread).
  int64_t active() const;

  // How many times the transport thread was woken, by a command or a Driver letting go (commands
  // queued while one is waiting, or from the thread driving the loop, wake nobody). Diagnostics.
  int64_t wakeups() const;

  // How many times a caller's thread took the idle loop to drive it (a Driver that held it).
  // Diagnostics.
  int64_t drives() const;

  // How many times a Driver lent the loop to an event loop's LoopWatch when it let go. Diagnostics.
  int64_t lends() const;

  // How many turns the loop took (its work run once, by the loop thread, a Driver or a lease):
  // over a quiet interval, whether something keeps waking it. Diagnostics.
  int64_t turns() const;

 private:
  struct Impl;
  friend class LoopWatch;

 public:
  // Lets a blocking caller run the event loop on its own thread while the loop's thread has nothing
  // to do (no transfer, timer nor command), so its call needs no hand-off between threads: no
  // wake-up of the loop thread to send, none of the caller to return (each costs as much as a small
  // call's CPU when it crosses cores). Still one loop: one multi handle, one thread in it at a time;
  // the loop thread stays parked while a Driver is held. Commands queued from the holder's thread
  // wake nobody (it reads the queue before it polls); sinks and posted functions run on it.
  // When released, the loop thread takes over whatever is left (a transfer still under way).
  class Driver {
   public:
    // Claims the loop if its thread is idle; held() says whether it did (otherwise it is busy,
    // or another Driver holds it, and the caller waits as usual).
    explicit Driver(Transport& transport);
    ~Driver();
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;
    bool held() const { return impl_ != nullptr; }
    // Runs the loop on this thread until `done()` or `timeout` passed; true if done(). Held only.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
    // Lets go of the loop, lending it to `watch`'s event loop (same thread) when what is left is
    // one transfer waiting on its connection's socket and nothing else (no command, no timer): its
    // reply is then read on this thread, in watch.turn(), with no wake-up of the loop thread, none
    // back. Otherwise (or when not held) the same as letting go. See LoopWatch.
    void lend_to(std::shared_ptr<LoopWatch> watch);

   private:
    std::shared_ptr<Impl> impl_;  // null when not held
    const void* outer_loop_ = nullptr;    // the loop this thread ran before (restored on release)
  };

 private:
  PerProcess<Impl> impl_;  // a forked child's first use makes its own loop
};

// What an event loop (asyncio) watches so that the transport's loop can be lent to its thread
// between its other work (Transport::Driver::lend_to): fd() is an epoll descriptor, readable when
// a socket the lent loop waits on is ready, when the lent loop's next deadline (libcurl's timeout,
// a first-byte or idle check) has passed, or when a descriptor added with add() is readable; the
// event loop then calls turn() on its thread. Still one loop, one thread in it at a time: while
// lent, the loop thread stays parked and a turn runs the loop's work once. The lease ends when its
// transfer is done or when anything else needs the loop: another thread's command, this thread's
// next call or cancel, a retry timer, a Driver claiming it, the transport closing. The loop thread
// then takes over what is left, and its set is no longer watched. The watch's descriptors are its
// own and the lender's epoll set (libcurl's sockets are only ever inside that set, never the event
// loop's), so the event loop never holds a descriptor libcurl may close. Thread-safe.
class LoopWatch {
 public:
  LoopWatch();  // throws Error when no epoll descriptor can be made
  ~LoopWatch();
  LoopWatch(const LoopWatch&) = delete;
  LoopWatch& operator=(const LoopWatch&) = delete;
  int fd() const { return epoll_fd_; }
  // Also makes fd() readable while `fd` is (an eventfd of the watch's owner).
  void add(int fd);
  // Whether a loop is lent to this watch now.
  bool lent() const;
  // The lent loop's turn, if one is lent to this watch (else nothing). The event loop's thread,
  // when fd() was readable.
  void turn();
  // Serves the loop lent to this watch on the calling (event loop's) thread until `done()`, while
  // the event loop has nothing else to do: waits on fd() and on `loop_fd` (the event loop's own
  // descriptor, -1: none) for at most `timeout` (negative: no limit). True once done(); false as
  // soon as loop_fd is readable, the lease ends, fd() has news for another waiter, a signal
  // arrives or the time passes: the caller then waits the event loop's way.
  bool serve_until(const std::function<bool()>& done, int loop_fd, std::chrono::milliseconds timeout);

 private:
  friend class Transport;
  // Lends the loop: watches `lender_fd` (the lender's epoll set of libcurl's sockets) and wakes
  // fd() after `timeout` at the latest. Called by the transport with its lock held.
  void watch(int lender_fd, std::chrono::microseconds timeout, std::weak_ptr<Transport::Impl> lender);
  // The lease ended: the lender's set is no longer watched, and fd() is readable once (the timer
  // fires at once) so that a thread in serve_until() learns it. From any thread, with the
  // transport's lock held.
  void unwatch();

  // Takes the last lender's set out of this one, if it is in (under mu_).
  void forget_lender_locked();

  bool serve_until_unmarked(const std::function<bool()>& done, int loop_fd, std::chrono::milliseconds timeout);

  // Made before a fork(), in the parent: the epoll set is shared with the parent's watch (an
  // epoll_ctl here edits its watch list) and the loop lent to it is the parent's. In the child it
  // is never lent a loop and does nothing (no lock taken: the parent's threads may have held it).
  bool inherited() const { return made_in_ != fork_generation(); }
  const uint64_t made_in_ = detail::counted_fork_generation();
  int epoll_fd_ = -1;
  int timer_fd_ = -1;  // made on the first lease
  mutable std::mutex mu_;
  // When the timer fires (it may be armed with no lease: it then fires once, read by turn()); max
  // when disarmed. Guarded by mu_.
  std::chrono::steady_clock::time_point timer_due_ = std::chrono::steady_clock::time_point::max();
  int watched_ = -1;                        // guarded by mu_; the lender's epoll set while lent
  // The lender's epoll set in this one (-1: none) and whose it is: it stays in between the leases
  // of one lender (its next lease needs it), and is taken out by a turn() with nothing lent (so a
  // set readable for the loop thread's work wakes the event loop once) or by another's lease. It
  // is the watch's own copy of the lender's descriptor (the lender's number only when none could
  // be made), so that it can be taken out after the lender is gone. Guarded by mu_.
  int registered_ = -1;
  bool registered_copy_ = false;  // registered_ is the watch's own copy of the lender's descriptor
  std::weak_ptr<Transport::Impl> registered_for_;
  std::weak_ptr<Transport::Impl> lender_;   // guarded by mu_; the lent loop's transport
  std::thread::id serving_;                 // guarded by mu_; the thread in serve_until(), if any
};

// start() (which submits transfers to `transport`), then, when the loop's thread was idle, the
// loop's next turn on this thread: the requests go out at once (a kept-alive connection writes
// them), and the loop thread, woken as the Driver lets go, only waits for the replies while the
// server works, instead of being woken first to send them late. With `watch` (this thread's event
// loop), the loop is lent to it instead when the one transfer started is all that is left: its
// reply is read on this thread too (Driver::lend_to). Returns what start() returns.
template <class Start>
auto start_sending_here(Transport& transport, Start&& start, std::shared_ptr<LoopWatch> watch = nullptr) {
  Transport::Driver driver(transport);
  auto started = std::forward<Start>(start)();
  if (driver.held()) {
    driver.run_until([] { return true; }, std::chrono::milliseconds(0));
    if (watch) driver.lend_to(std::move(watch));
  }
  return started;
}

}  // namespace orroute

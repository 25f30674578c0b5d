// One object per process, for what a forked child must never touch: a libcurl multi handle and its
// connections, epoll sets, a database connection, threads. gunicorn --preload, uwsgi, Celery's
// prefork pool and multiprocessing's fork context make a client once, in the parent, and use it in
// every worker; in a worker the parent's object is left alone and a new one is made on first use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace orroute {

namespace detail {
extern std::atomic<uint64_t> g_fork_generation;
// fork_generation() now, with the atfork handler that counts forks registered (once): what an
// object that compares generations records when it is made.
uint64_t counted_fork_generation() noexcept;
// Held while a PerProcess makes its object anew. fork() takes it first (pthread_atfork), so a
// child never starts with it held by a thread that is not there.
std::mutex& renew_mutex() noexcept;
}  // namespace detail

// How many fork()s lie between the process that made the first object recording a generation
// (detail::counted_fork_generation) and this one: bumped in every child by an atfork handler. A
// relaxed load, inline: cheap enough for every call of a hot path.
inline uint64_t fork_generation() noexcept {
  return detail::g_fork_generation.load(std::memory_order_relaxed);
}

// Holds a T made by `make`, and makes another with it on the first use in a forked child. The one
// made in the parent is deliberately never touched there again, not even destroyed: its locks may
// be held by threads that are not in the child, its threads are not there, and its destructor
// would act on the parent's kernel objects (an epoll_ctl on a shared epoll set edits the parent's
// watch list; libcurl would write on the parent's connections). It is leaked, once per fork.
// Thread-safe: concurrent first uses in a child make one T.
//
// `Guard` is held around a renewal, taken before detail::renew_mutex(): a gate that fork() waits
// to see empty before it takes that mutex (sqlite::ForkGate, whose T's `make` enters it too) must
// be entered first. Entered after, it was a lock-order inversion: a thread took the mutex while a
// fork waited for the gate, then waited at the gate for that fork, which waited for the mutex.
struct NoGuard {};
template <class T, class Guard = NoGuard>
class PerProcess {
 public:
  using Make = std::function<std::shared_ptr<T>()>;

  explicit PerProcess(Make make) : make_(std::move(make)), live_(first(make_)) {}
  ~PerProcess() {
    Node* node = live_.load(std::memory_order_acquire);
    if (node->generation == fork_generation()) delete node;  // else the parent's: left alone
  }
  PerProcess(const PerProcess&) = delete;
  PerProcess& operator=(const PerProcess&) = delete;

  // This process's T (made now if the one held was made in another process).
  // Logically const: a child's T stands for the parent's.
  T* get() const { return node()->object.get(); }
  T* operator->() const { return get(); }
  T& operator*() const { return *get(); }
  std::shared_ptr<T> shared() const { return node()->object; }

  // The T held if it was made in this process, else null: what a destructor may clean up,
  // without making a T only to destroy it.
  T* made_here() const {
    Node* node = live_.load(std::memory_order_acquire);
    return node->generation == fork_generation() ? node->object.get() : nullptr;
  }

  // The T held, made here or in a parent process: inside `make` (in a child, the parent's), for
  // what it may copy from the parent's memory. Never to lock, use or destroy.
  const T* held() const { return live_.load(std::memory_order_acquire)->object.get(); }

 private:
  struct Node {
    std::shared_ptr<T> object;
    uint64_t generation;
  };

  static Node* first(const Make& make) {
    const uint64_t generation = detail::counted_fork_generation();
    return new Node{make(), generation};
  }

  Node* node() const {
    Node* node = live_.load(std::memory_order_acquire);
    if (node->generation != fork_generation()) [[unlikely]] node = renew();
    return node;
  }

  Node* renew() const {
    [[maybe_unused]] const Guard guard{};  // before the mutex (see Guard)
    std::lock_guard<std::mutex> lock(detail::renew_mutex());
    Node* node = live_.load(std::memory_order_acquire);
    const uint64_t now = fork_generation();
    if (node->generation == now) return node;  // another thread of this process made it
    auto* fresh = new Node{make_(), now};
    live_.store(fresh, std::memory_order_release);  // the parent's node is leaked (see above)
    return fresh;
  }

  Make make_;
  mutable std::atomic<Node*> live_;
};

}  // namespace orroute

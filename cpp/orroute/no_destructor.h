// A static that is never destroyed.
//
// Threads that run without the GIL (the network loop, the settle worker, a daemon thread inside a
// call that released it) go on running while exit() destroys the library's statics: a daemon
// thread loading a vocabulary read the encodings' table after its destructor had run and the
// process died at exit (SIGSEGV, 1 run in ~40 of tests/py/test_client_driver.py's daemon child).
// A static that such a thread may read must outlive them all, so none has a destructor:
//
//   static const NoDestructor<std::vector<std::string>> names(std::vector<std::string>{"a", "b"});
//   return *names;
//
// T is made in place on first use (thread-safe, as any function-local static), its destructor
// never runs, and NoDestructor itself is trivially destructible, so the compiler registers no
// exit-time destructor. tools/check_exit_destructors.py fails CI on a static of ours that has one.
#pragma once

#include <new>
#include <type_traits>
#include <utility>

namespace orroute {

template <class T>
class NoDestructor {
 public:
  template <class... Args>
  explicit NoDestructor(Args&&... args) {
    new (storage_) T(std::forward<Args>(args)...);
  }
  NoDestructor(const NoDestructor&) = delete;
  NoDestructor& operator=(const NoDestructor&) = delete;

  T* get() { return std::launder(reinterpret_cast<T*>(storage_)); }
  const T* get() const { return std::launder(reinterpret_cast<const T*>(storage_)); }
  T& operator*() { return *get(); }
  const T& operator*() const { return *get(); }
  T* operator->() { return get(); }
  const T* operator->() const { return get(); }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

static_assert(std::is_trivially_destructible_v<NoDestructor<std::pair<int, int>>>);

}  // namespace orroute

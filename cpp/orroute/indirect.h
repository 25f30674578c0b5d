// A value kept on the heap, copied and moved as a value (C++26's std::indirect).
//
// For a large member that would push its owner past glibc's per-thread cache: malloc serves
// requests up to 1,032 bytes from a per-thread list (~100 instructions); a larger one takes its
// large-chunk path, which walks and sorts bins (~500-800 instructions and ~50 first-level cache
// misses a call, docs/performance.md, foot17 and foot18). Two allocations under the limit cost
// less than one above it.
//
// Never null except after being moved from (then only assignment or destruction is valid).
#pragma once

#include <memory>
#include <utility>

namespace orroute {

template <class T>
class Indirect {
 public:
  Indirect() : value_(std::make_unique<T>()) {}
  explicit Indirect(T&& value) : value_(std::make_unique<T>(std::move(value))) {}
  // Takes over `value` where it lies (not null): no move of a large T, no second allocation.
  explicit Indirect(std::unique_ptr<T> value) noexcept : value_(std::move(value)) {}
  Indirect(const Indirect& other) : value_(std::make_unique<T>(*other)) {}
  Indirect(Indirect&&) noexcept = default;
  Indirect& operator=(const Indirect& other) {
    if (this != &other) value_ = std::make_unique<T>(*other);
    return *this;
  }
  Indirect& operator=(Indirect&&) noexcept = default;
  ~Indirect() = default;

  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return value_.get(); }
  const T* operator->() const { return value_.get(); }

 private:
  std::unique_ptr<T> value_;
};

}  // namespace orroute

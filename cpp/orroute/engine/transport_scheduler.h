#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>

#include "orroute/net/transport.h"
#include "orroute/route/attempt_loop.h"

namespace orroute {

// Runs loop steps on the transport thread (backoff and admission waits need no thread of their own).
class TransportScheduler final : public Scheduler {
 public:
  explicit TransportScheduler(Transport& t) : transport_(t) {}
  void post(std::function<void()> fn, Duration delay) override {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(std::max(delay, Duration(0)));
    transport_.post(std::move(fn), ms);
  }

 private:
  Transport& transport_;
};

}  // namespace orroute

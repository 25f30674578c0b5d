#include "orroute/tokenizer/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

namespace orroute {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kWorthIt = size_t{512} << 10;  // smaller arrays fit the TLB anyway
}  // namespace

void* alloc_table_memory(size_t bytes) {
  if (bytes < kWorthIt) {
    void* p = std::malloc(bytes == 0 ? 1 : bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, rounded) != 0) throw std::bad_alloc();
  // Advice only: failure (no THP support, "never" mode) leaves ordinary pages, still correct.
  (void)madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void free_table_memory(void* p) noexcept { std::free(p); }

}  // namespace orroute

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
  // The last huge page only when the array fills a fair part of it: a 2 MB table with a small
  // header after it must not make the header cost another 2 MB of memory.
  const size_t tail = bytes % kHugePage;
  const size_t advised = tail == 0 || tail >= kWorthIt ? rounded : bytes - tail;
  // Advice only: failure (no THP support, "never" mode) leaves ordinary pages, still correct.
  if (advised > 0) (void)madvise(p, advised, MADV_HUGEPAGE);
  return p;
}

void free_table_memory(void* p) noexcept { std::free(p); }

}  // namespace orroute

// Memory for the tokenizer's large lookup tables (the vocabulary's hash tables, the per-thread
// piece cache), backed by 2 MB pages where the kernel allows it.
//
// Why: every token lookup and merge is one random access into a table of 1-8 MB. With 4 KB pages
// such a table spans hundreds to thousands of pages, more than the TLB holds, so most lookups paid
// a page walk on top of the cache miss. Transparent huge pages are usually in "madvise" mode, so
// the tables ask for them; where they are unavailable the memory is ordinary and only slower.
#pragma once

#include <cstddef>
#include <new>

namespace orroute {

// Allocates `bytes` (uninitialised) aligned to 2 MB and advised for huge pages when `bytes` is at
// least 512 KB (a last, partly used huge page only if at least 512 KB of it is used), else plain
// malloc. Throws std::bad_alloc. Release with free_table_memory().
void* alloc_table_memory(size_t bytes);
void free_table_memory(void* p) noexcept;

// A std::allocator that routes large arrays through alloc_table_memory.
template <class T>
struct TableAllocator {
  using value_type = T;
  TableAllocator() noexcept = default;
  template <class U>
  TableAllocator(const TableAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(alloc_table_memory(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) noexcept { free_table_memory(p); }
  template <class U>
  bool operator==(const TableAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace orroute

#include "orroute/tokenizer/vocab.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orroute/error.h"

namespace orroute {
namespace {

constexpr char kMagic[8] = {'O', 'R', 'T', 'K', 'V', 'B', '0', '1'};

std::string read_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw NotFound("cannot open vocabulary file " + path);
  std::string data;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long size = std::ftell(f.get());
    if (size > 0) data.reserve(static_cast<size_t>(size));
    std::rewind(f.get());
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) data.append(buf, n);
  if (std::ferror(f.get())) throw ParseError("cannot read vocabulary file " + path);
  return data;
}

int8_t b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<int8_t>(c - 'A');
  if (c >= 'a' && c <= 'z') return static_cast<int8_t>(c - 'a' + 26);
  if (c >= '0' && c <= '9') return static_cast<int8_t>(c - '0' + 52);
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes standard padded base64; false if malformed.
bool b64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0 || in.empty()) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const unsigned char c = static_cast<unsigned char>(in[i + k]);
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return false;
        v[k] = b64_value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t w = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) |
                       uint32_t(v[3]);
    out.push_back(static_cast<char>(w >> 16));
    if (pad < 2) out.push_back(static_cast<char>((w >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(w & 0xFF));
  }
  return true;
}

// Indices of `hashes` ordered by their top 16 bits (counting sort; stable).
std::vector<uint32_t> order_by_top_bits(const std::vector<uint64_t>& hashes) {
  std::vector<uint32_t> start(65537, 0);
  for (uint64_t h : hashes) ++start[(h >> 48) + 1];
  for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
  std::vector<uint32_t> order(hashes.size());
  for (size_t i = 0; i < hashes.size(); ++i) order[start[hashes[i] >> 48]++] = static_cast<uint32_t>(i);
  return order;
}

// Read-only mapping of a whole file (pre-faulted): the binary vocabulary is read once, in order,
// and copying it through stdio into a buffer cost more page faults than the tables themselves.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw NotFound("cannot open vocabulary file " + path);
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      size_ = static_cast<size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      data_ = p == MAP_FAILED ? nullptr : static_cast<const char*>(p);
    }
    ::close(fd);
    if (!data_) throw ParseError("cannot map vocabulary file " + path);
  }
  ~MappedFile() { ::munmap(const_cast<char*>(data_), size_); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view view() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

uint64_t Vocab::hash_bytes(std::string_view s) noexcept {
  uint64_t h = 0x243F6A8885A308D3ull ^ s.size();
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = std::rotl((h ^ w) * 0x9E3779B97F4A7C15ull, 29);
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = std::rotl((h ^ w) * 0x9E3779B97F4A7C15ull, 29);
  }
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

uint32_t Vocab::find_long(std::string_view bytes) const noexcept {
  if (bytes.size() > max_len_) return kNone;
  const uint64_t h = hash_bytes(bytes);
  const uint64_t tag = h >> 32;
  for (uint64_t i = h >> slot_shift_;; i = (i + 1) & slot_mask_) {
    const uint64_t slot = slots_[i];
    if (slot == kEmpty) return kNone;
    if ((slot >> 32) == tag) {
      const auto id = static_cast<uint32_t>(slot);
      if (token_bytes(id) == bytes) return id;
    }
  }
}

std::vector<uint32_t> Vocab::find_merge_triples() const {
  std::vector<uint32_t> triples;
  for (uint32_t id = 0; id < size(); ++id) {
    const std::string_view t = token_bytes(id);
    for (size_t k = 1; k < t.size(); ++k) {
      const uint32_t l = find(t.substr(0, k));
      if (l == kNone) continue;
      const uint32_t r = find(t.substr(k));
      if (r == kNone) continue;
      triples.insert(triples.end(), {l, r, id});
    }
  }
  return triples;
}

std::vector<uint32_t> Vocab::sorted_triples(const std::vector<uint32_t>& found) {
  std::vector<uint64_t> hashes(found.size() / 3);
  for (size_t k = 0; k < hashes.size(); ++k) {
    hashes[k] = mix((uint64_t{found[3 * k]} << kIdBits) | found[3 * k + 1]);
  }
  std::vector<uint32_t> triples;
  triples.reserve(found.size());
  for (uint32_t k : order_by_top_bits(hashes)) {
    triples.insert(triples.end(), {found[3 * k], found[3 * k + 1], found[3 * k + 2]});
  }
  return triples;
}

void Vocab::build(const char* triples, size_t n_pairs) {
  static std::atomic<uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  const uint32_t n = size();
  if (n >= (1u << kIdBits) - 1) throw ParseError("vocabulary too large");
  max_len_ = 0;
  for (uint32_t id = 0; id < n; ++id) max_len_ = std::max(max_len_, token_bytes(id).size());

  // Both tables are filled in order of home slot (a counting sort on the top bits first), so the
  // inserts walk memory almost sequentially: random-order inserts into tables of several MB were
  // cache-miss bound and made loading o200k take hundreds of milliseconds.
  std::vector<uint64_t> hashes, keys;
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < n; ++id) {
    if (token_bytes(id).size() <= kShortMax) {
      ids.push_back(id);
      keys.push_back(short_key(token_bytes(id)));
      hashes.push_back(mix(keys.back()));
    }
  }
  const int short_bits = std::bit_width(uint64_t{ids.size()} * 3 / 2 + 1);
  short_.assign(size_t{1} << short_bits, ShortSlot{0, kNone});
  short_mask_ = short_.size() - 1;
  short_shift_ = 64 - short_bits;
  for (uint32_t k : order_by_top_bits(hashes)) {
    const uint64_t key = keys[k];
    uint64_t i = hashes[k] >> short_shift_;
    while (short_[i].key != 0) {
      if (short_[i].key == key) {
        throw ParseError("duplicate token bytes for ranks " + std::to_string(short_[i].id) +
                         " and " + std::to_string(ids[k]));
      }
      i = (i + 1) & short_mask_;
    }
    short_[i] = {key, ids[k]};
  }

  hashes.clear();
  ids.clear();
  for (uint32_t id = 0; id < n; ++id) {
    if (token_bytes(id).size() > kShortMax) {
      ids.push_back(id);
      hashes.push_back(hash_bytes(token_bytes(id)));
    }
  }
  const int slot_bits = std::bit_width(uint64_t{ids.size()} * 2 + 1);
  slots_.assign(size_t{1} << slot_bits, kEmpty);
  slot_mask_ = slots_.size() - 1;
  slot_shift_ = 64 - slot_bits;
  for (uint32_t k : order_by_top_bits(hashes)) {
    const uint32_t id = ids[k];
    const uint64_t h = hashes[k];
    uint64_t i = h >> slot_shift_;
    while (slots_[i] != kEmpty) {
      if (token_bytes(static_cast<uint32_t>(slots_[i])) == token_bytes(id)) {
        throw ParseError("duplicate token bytes for ranks " +
                         std::to_string(static_cast<uint32_t>(slots_[i])) + " and " +
                         std::to_string(id));
      }
      i = (i + 1) & slot_mask_;
    }
    slots_[i] = ((h >> 32) << 32) | id;
  }
  // The mid-length tokens again, keyed as CachedBpe keys pieces (find_mid). Duplicates were
  // rejected above.
  struct Mid {
    uint64_t k0, k1;
    uint32_t len, id;
  };
  std::vector<Mid> mids;
  hashes.clear();
  for (uint32_t id = 0; id < n; ++id) {
    const std::string_view t = token_bytes(id);
    if (t.size() < kMidMin || t.size() > kMidMax) continue;
    Mid m{0, 0, static_cast<uint32_t>(t.size()), id};
    std::memcpy(&m.k0, t.data(), 8);
    std::memcpy(&m.k1, t.data() + 8, t.size() - 8);
    mids.push_back(m);
    hashes.push_back(mid_hash(m.k0, m.k1, m.len));
  }
  const int mid_bits = std::bit_width(uint64_t{mids.size()} * 3 / 2 + 1);
  mid_.assign(size_t{1} << mid_bits, MidSlot{0, 0, 0});
  mid_mask_ = mid_.size() - 1;
  mid_shift_ = 64 - mid_bits;
  for (uint32_t k : order_by_top_bits(hashes)) {
    uint64_t i = hashes[k] >> mid_shift_;
    while (mid_[i].len_id != 0) i = (i + 1) & mid_mask_;
    mid_[i] = {mids[k].k0, mids[k].k1, mids[k].id | mids[k].len << 24};
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_tokens_[b] = find(std::string_view(&c, 1));
    if (byte_tokens_[b] == kNone) throw ParseError("vocabulary lacks the single byte " + std::to_string(b));
  }

  // may_merge's filter: a word per 8 pairs, 2..32768 words (256 KiB). o200k's 446k pairs set 35%
  // of its bits, so 12% of the pairs that do not merge pass it; cl100k's 233k 20% and 4%.
  const int filter_bits = std::clamp(static_cast<int>(std::bit_width(uint64_t{n_pairs} / 8)), 1, 15);
  pair_filter_.assign(size_t{1} << filter_bits, 0);
  filter_shift_ = 64 - filter_bits;
  const int pair_bits = std::bit_width(uint64_t{n_pairs} * 2 + 1);
  pairs_.assign(size_t{1} << pair_bits, kEmpty);
  pair_mask_ = pairs_.size() - 1;
  pair_shift_ = 64 - pair_bits;
  for (size_t k = 0; k < n_pairs; ++k) {
    uint32_t t[3];
    std::memcpy(t, triples + 12 * k, 12);
    if (t[0] >= n || t[1] >= n || t[2] >= n) throw ParseError("merge pair out of range");
    const uint64_t key = (uint64_t{t[0]} << kIdBits) | t[1];
    uint64_t i = mix(key) >> pair_shift_;
    while (pairs_[i] != kEmpty) i = (i + 1) & pair_mask_;
    pairs_[i] = (key << kIdBits) | t[2];
    const uint64_t h = key * 0xD6E8FEB86659FD93ull;  // as may_merge
    pair_filter_[h >> filter_shift_] |= (uint64_t{1} << ((h >> 32) & 63)) | (uint64_t{1} << ((h >> 38) & 63));
  }
  byte_pairs_.resize(size_t{1} << 16);
  for (size_t ab = 0; ab < byte_pairs_.size(); ++ab) {
    byte_pairs_[ab] = merge(byte_tokens_[ab >> 8], byte_tokens_[ab & 0xFF]);
  }
}

std::vector<std::pair<std::string, uint32_t>> parse_tiktoken_ranks(std::string_view data,
                                                                  std::string_view where) {
  std::vector<std::pair<std::string, uint32_t>> ranks;
  std::string bytes;
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < data.size()) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos) eol = data.size();
    std::string_view line = data.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    uint64_t rank = 0;
    const std::string_view num = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    bool ok = sp != std::string_view::npos && !num.empty() && num.size() < 10 &&
              b64_decode(line.substr(0, sp), bytes);
    for (char c : num) {
      ok = ok && c >= '0' && c <= '9';
      rank = rank * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || rank >= Vocab::kNone) {
      throw ParseError(std::string(where) + ":" + std::to_string(line_no) +
                       ": malformed vocabulary line");
    }
    ranks.emplace_back(bytes, static_cast<uint32_t>(rank));
  }
  return ranks;
}

Vocab Vocab::from_tiktoken_file(const std::string& path) {
  const auto ranks = parse_tiktoken_ranks(read_file(path), path);
  try {
    return from_ranks(ranks);
  } catch (const ParseError& e) {
    throw ParseError(path + ": " + e.what());
  }
}

Vocab Vocab::from_ranks(std::span<const std::pair<std::string, uint32_t>> ranks) {
  Vocab v;
  std::vector<uint32_t> start_of_rank(ranks.size(), kNone);
  std::vector<uint32_t> len_of_rank(ranks.size(), 0);
  for (const auto& [bytes, rank] : ranks) {
    if (rank >= ranks.size()) {
      throw ParseError("mergeable ranks must be 0..n-1; rank " + std::to_string(rank) +
                       " is out of range for " + std::to_string(ranks.size()) + " tokens");
    }
    if (start_of_rank[rank] != kNone) throw ParseError("duplicate rank " + std::to_string(rank));
    if (bytes.empty()) throw ParseError("rank " + std::to_string(rank) + " has empty bytes");
    if (v.blob_.size() + bytes.size() >= kNone) throw ParseError("vocabulary too large");
    start_of_rank[rank] = static_cast<uint32_t>(v.blob_.size());
    len_of_rank[rank] = static_cast<uint32_t>(bytes.size());
    v.blob_ += bytes;
  }
  v.finish(start_of_rank, len_of_rank, "");
  return v;
}

void Vocab::finish(const std::vector<uint32_t>& start_of_rank,
                   const std::vector<uint32_t>& len_of_rank, const std::string& where) {
  if (start_of_rank.empty()) throw ParseError(where + "empty vocabulary");
  if (start_of_rank.size() >= (1u << kIdBits) - 1) throw ParseError(where + "vocabulary too large");
  // Re-lay the blob in rank order so offsets are monotonic (files are normally sorted already).
  decltype(blob_) blob;
  blob.reserve(blob_.size());
  offsets_.clear();
  offsets_.reserve(start_of_rank.size() + 1);
  for (size_t r = 0; r < start_of_rank.size(); ++r) {
    if (start_of_rank[r] == kNone) throw ParseError(where + "missing rank " + std::to_string(r));
    offsets_.push_back(static_cast<uint32_t>(blob.size()));
    blob.append(blob_, start_of_rank[r], len_of_rank[r]);
  }
  offsets_.push_back(static_cast<uint32_t>(blob.size()));
  blob_ = std::move(blob);
  build(nullptr, 0);
  const std::vector<uint32_t> triples = sorted_triples(find_merge_triples());
  build(reinterpret_cast<const char*>(triples.data()), triples.size() / 3);
}

void Vocab::save_binary_file(const std::string& path) const {
  // Stored in the order build() inserts them best, so loading writes the table sequentially.
  const std::vector<uint32_t> triples = sorted_triples(find_merge_triples());
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw Error("cannot write " + path);
  const uint32_t header[4] = {size(), static_cast<uint32_t>(blob_.size()),
                              static_cast<uint32_t>(triples.size() / 3), 0};
  bool ok = std::fwrite(kMagic, 1, 8, f.get()) == 8 &&
            std::fwrite(header, 4, 4, f.get()) == 4 &&
            std::fwrite(offsets_.data(), 4, offsets_.size(), f.get()) == offsets_.size() &&
            std::fwrite(triples.data(), 4, triples.size(), f.get()) == triples.size() &&
            std::fwrite(blob_.data(), 1, blob_.size(), f.get()) == blob_.size();
  ok = std::fflush(f.get()) == 0 && ok;
  if (!ok) throw Error("cannot write " + path);
}

Vocab Vocab::from_binary_file(const std::string& path) {
  const MappedFile file(path);
  const std::string_view data = file.view();
  uint32_t header[4];
  if (data.size() < 24 || std::memcmp(data.data(), kMagic, 8) != 0) {
    throw ParseError(path + ": not an orroute vocabulary file");
  }
  std::memcpy(header, data.data() + 8, 16);
  const uint64_t n = header[0], blob = header[1], pairs = header[2];
  if (data.size() != 24 + 4 * (n + 1) + 12 * pairs + blob) throw ParseError(path + ": truncated");
  Vocab v;
  v.offsets_.resize(n + 1);
  std::memcpy(v.offsets_.data(), data.data() + 24, 4 * (n + 1));
  v.blob_.assign(data.substr(24 + 4 * (n + 1) + 12 * pairs, blob));
  for (uint64_t i = 0; i < n; ++i) {
    if (v.offsets_[i] > v.offsets_[i + 1]) throw ParseError(path + ": bad offsets");
  }
  if (v.offsets_[0] != 0 || v.offsets_[n] != blob) throw ParseError(path + ": bad offsets");
  v.build(data.data() + 24 + 4 * (n + 1), pairs);
  return v;
}

}  // namespace orroute

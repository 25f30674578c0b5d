#include "orroute/tokenizer/encoding.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "orroute/error.h"
#include "orroute/tokenizer/bpe.h"

namespace orroute {

Encoding::Encoding(std::string name, SplitPattern pattern, Vocab vocab,
                   std::vector<SpecialToken> specials)
    : name_(std::move(name)), pattern_(pattern), vocab_(std::move(vocab)), specials_(std::move(specials)) {
  n_vocab_ = vocab_.size();
  for (const SpecialToken& s : specials_) {
    n_vocab_ = std::max(n_vocab_, s.id + 1);
    if (s.text == "<|endoftext|>") eot_ = s.id;
  }
}

template <class Sink>
void Encoding::encode_ordinary_into(std::string_view text, Sink& sink) const {
  split_pieces(pattern_, text, [&](std::string_view piece) { sink.piece(vocab_, piece); });
}

template <class Sink>
void Encoding::encode_into(std::string_view text, const SpecialPolicy& policy, Sink& sink) const {
  // Disallowed special text is an error, naming the leftmost occurrence (as tiktoken's search).
  size_t first = std::string_view::npos;
  std::string_view found;
  for (const std::string& d : policy.disallowed) {
    if (d.empty()) continue;
    const size_t at = text.find(d);
    if (at < first || (at == first && at != std::string_view::npos && d.size() > found.size())) {
      first = at;
      found = d;
    }
  }
  if (first != std::string_view::npos) {
    throw InvalidArgument("Encountered text corresponding to disallowed special token '" +
                          std::string(found) +
                          "'.\nIf you want this text to be encoded as a special token, pass it "
                          "to `allowed_special`; to encode it as normal text, pass "
                          "`disallowed_special=()`.");
  }
  // Allowed special tokens split the text; each segment is pre-tokenized on its own.
  std::vector<const SpecialToken*> allowed;
  for (const SpecialToken& s : specials_) {
    if (std::find(policy.allowed.begin(), policy.allowed.end(), s.text) != policy.allowed.end()) {
      allowed.push_back(&s);
    }
  }
  if (allowed.empty()) {
    encode_ordinary_into(text, sink);
    return;
  }
  std::vector<size_t> next(allowed.size(), 0);  // cached next occurrence of each allowed special
  for (size_t k = 0; k < allowed.size(); ++k) next[k] = text.find(allowed[k]->text);
  size_t pos = 0;
  while (true) {
    size_t best = std::string_view::npos;
    const SpecialToken* hit = nullptr;
    for (size_t k = 0; k < allowed.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < pos) next[k] = text.find(allowed[k]->text, pos);
      if (next[k] < best || (next[k] == best && best != std::string_view::npos &&
                             allowed[k]->text.size() > hit->text.size())) {
        best = next[k];
        hit = allowed[k];
      }
    }
    if (!hit) {
      encode_ordinary_into(text.substr(pos), sink);
      return;
    }
    encode_ordinary_into(text.substr(pos, best - pos), sink);
    sink.special(hit->id);
    pos = best + hit->text.size();
  }
}

namespace {

struct VectorSink {
  std::vector<uint32_t>& out;
  void piece(const Vocab& v, std::string_view p) { bpe_encode(v, p, out); }
  void special(uint32_t id) { out.push_back(id); }
};

struct CountSink {
  size_t n = 0;
  void piece(const Vocab& v, std::string_view p) { n += bpe_count(v, p); }
  void special(uint32_t) { ++n; }
};

// Runs fn(i) for i in [0, n) on up to `threads` threads; rethrows the first exception.
template <class Fn>
void parallel_for(size_t n, unsigned threads, Fn&& fn) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, n));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> cursor{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    for (size_t i; (i = cursor.fetch_add(1, std::memory_order_relaxed)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<uint32_t> Encoding::encode_ordinary(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 4);
  VectorSink sink{out};
  encode_ordinary_into(text, sink);
  return out;
}

size_t Encoding::count_ordinary(std::string_view text) const {
  CountSink sink;
  encode_ordinary_into(text, sink);
  return sink.n;
}

std::vector<uint32_t> Encoding::encode(std::string_view text, const SpecialPolicy& policy) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 4);
  VectorSink sink{out};
  encode_into(text, policy, sink);
  return out;
}

size_t Encoding::count(std::string_view text, const SpecialPolicy& policy) const {
  CountSink sink;
  encode_into(text, policy, sink);
  return sink.n;
}

std::vector<std::vector<uint32_t>> Encoding::encode_batch(std::span<const std::string> texts,
                                                          const SpecialPolicy& policy,
                                                          unsigned threads) const {
  std::vector<std::vector<uint32_t>> out(texts.size());
  parallel_for(texts.size(), threads, [&](size_t i) { out[i] = encode(texts[i], policy); });
  return out;
}

std::vector<size_t> Encoding::count_batch(std::span<const std::string> texts,
                                          const SpecialPolicy& policy, unsigned threads) const {
  std::vector<size_t> out(texts.size());
  parallel_for(texts.size(), threads, [&](size_t i) { out[i] = count(texts[i], policy); });
  return out;
}

std::string_view Encoding::token_bytes(uint32_t token) const {
  if (token < vocab_.size()) return vocab_.token_bytes(token);
  for (const SpecialToken& s : specials_) {
    if (s.id == token) return s.text;
  }
  throw NotFound("token " + std::to_string(token) + " is not in encoding " + name_);
}

std::string Encoding::decode_bytes(std::span<const uint32_t> tokens) const {
  std::string out;
  out.reserve(tokens.size() * 4);
  for (uint32_t t : tokens) out += token_bytes(t);
  return out;
}

// ---- registry -------------------------------------------------------------------------------

namespace {

struct Spec {
  const char* name;
  SplitPattern pattern;
  std::vector<SpecialToken> specials;
};

const std::vector<Spec>& specs() {
  static const std::vector<Spec> s = {
      {"cl100k_base",
       SplitPattern::kCl100k,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base", SplitPattern::kO200k, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
  };
  return s;
}

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::string>& extra_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

// Directory of the shared object or executable that contains this code.
std::string own_binary_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_binary_dir), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::vector<std::string> search_dirs() {
  std::vector<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    dirs = extra_dirs();
  }
  if (const char* env = std::getenv("ORROUTE_VOCAB_DIR"); env && *env) dirs.emplace_back(env);
  if (std::string own = own_binary_dir(); !own.empty()) {
    dirs.push_back(own + "/data");
    dirs.push_back(own + "/vocab");
  }
#ifdef ORROUTE_BUILD_VOCAB_DIR
  dirs.emplace_back(ORROUTE_BUILD_VOCAB_DIR);
#endif
#ifdef ORROUTE_SOURCE_VOCAB_DIR
  dirs.emplace_back(ORROUTE_SOURCE_VOCAB_DIR);
#endif
  return dirs;
}

Vocab load_vocab(const std::string& name) {
  const std::vector<std::string> dirs = search_dirs();
  std::error_code ec;
  for (const std::string& d : dirs) {  // the compact form anywhere beats parsing text
    const std::string p = d + "/" + name + ".bin";
    if (std::filesystem::is_regular_file(p, ec)) return Vocab::from_binary_file(p);
  }
  for (const std::string& d : dirs) {
    const std::string p = d + "/" + name + ".tiktoken";
    if (std::filesystem::is_regular_file(p, ec)) return Vocab::from_tiktoken_file(p);
  }
  std::string where;
  for (const std::string& d : dirs) where += (where.empty() ? "" : ", ") + d;
  throw NotFound("no vocabulary file for encoding " + name + " in: " + where);
}

}  // namespace

std::vector<std::string> encoding_names() {
  std::vector<std::string> names;
  for (const Spec& s : specs()) names.emplace_back(s.name);
  return names;
}

void add_vocab_dir(std::string dir) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  extra_dirs().insert(extra_dirs().begin(), std::move(dir));
}

std::shared_ptr<const Encoding> get_encoding(std::string_view name) {
  static std::map<std::string, std::shared_ptr<const Encoding>, std::less<>> cache;
  const Spec* spec = nullptr;
  for (const Spec& s : specs()) {
    if (name == s.name) spec = &s;
  }
  if (!spec) throw NotFound("unknown encoding '" + std::string(name) + "'");
  std::unique_lock<std::mutex> lock(registry_mutex());
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  lock.unlock();
  // Load outside the lock (tens of ms); a concurrent loader of the same name may race, and the
  // first to finish wins, which is harmless for immutable data.
  auto enc = std::make_shared<const Encoding>(spec->name, spec->pattern, load_vocab(spec->name),
                                              spec->specials);
  lock.lock();
  return cache.emplace(std::string(name), std::move(enc)).first->second;
}

}  // namespace orroute

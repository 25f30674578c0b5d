// Why a snapshot: parsing the bundled 1 MB JSON is most of the time to a usable manager's catalog
// (~4.5 ms); copying the fields out of a flat buffer takes a fraction of it. The reader trusts
// nothing: every length and count is checked against the bytes left before anything is allocated.
#include "orroute/catalog/catalog_snapshot.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>
#include <filesystem>

#include "orroute/byte_io.h"
#include "orroute/error.h"

namespace orroute {
namespace {

constexpr char kMagic[8] = {'O', 'R', 'R', 'C', 'A', 'T', 'S', '1'};
constexpr uint32_t kByteOrderMark = 0x01020304;
// No model is encoded in fewer bytes (four length-prefixed strings, two i64, two prices, the
// optional-field flags, the capability bits): bounds the model count before reserving for it.
constexpr size_t kMinModelBytes = 64;

// The snapshot's own value kinds, over the shared byte layer (orroute/byte_io.h).
class Writer : public ByteWriter {
 public:
  void flag(bool v) { raw<uint8_t>(v ? 1 : 0); }
  void strs(const std::vector<std::string>& v) {
    raw<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const std::string& s : v) str(s);
  }
  void money(Money m) { raw<Money::Rep>(m.units()); }
  template <typename T, typename F>
  void opt(const std::optional<T>& v, F put) {
    flag(v.has_value());
    if (v) put(*v);
  }
  void opt_str(const std::optional<std::string>& v) { opt(v, [&](const std::string& s) { str(s); }); }
  void opt_i64(const std::optional<int64_t>& v) { opt(v, [&](int64_t x) { raw(x); }); }
  void opt_money(const std::optional<Money>& v) { opt(v, [&](Money x) { money(x); }); }
};

class Reader : public ByteReader {
 public:
  explicit Reader(std::string_view b) : ByteReader(b, "catalog snapshot") {}
  bool flag() {
    const uint8_t v = raw<uint8_t>();
    if (v > 1) fail("a flag is neither 0 nor 1");
    return v == 1;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v(count(sizeof(uint32_t)));
    for (std::string& s : v) s = str();
    return v;
  }
  Money money() { return Money::from_units(raw<Money::Rep>()); }
  template <typename F>
  auto opt(F get) -> std::optional<decltype(get())> {
    if (!flag()) return std::nullopt;
    return get();
  }
  std::optional<std::string> opt_str() { return opt([&] { return str(); }); }
  std::optional<int64_t> opt_i64() { return opt([&] { return raw<int64_t>(); }); }
  std::optional<Money> opt_money() { return opt([&] { return money(); }); }
};

// The price fields in one order, for both directions.
template <typename PriceSetRef, typename F>
void each_optional_price(PriceSetRef& p, F f) {
  f(p.request);
  f(p.image);
  f(p.web_search);
  f(p.internal_reasoning);
  f(p.input_cache_read);
  f(p.input_cache_write);
  f(p.input_cache_write_1h);
  f(p.audio);
  f(p.audio_output);
  f(p.image_output);
  f(p.image_token);
  f(p.input_audio_cache);
}

void put_prices(Writer& w, const PriceSet& p) {
  w.money(p.prompt);
  w.money(p.completion);
  each_optional_price(p, [&](const std::optional<Money>& m) { w.opt_money(m); });
}

PriceSet get_prices(Reader& r) {
  PriceSet p;
  p.prompt = r.money();
  p.completion = r.money();
  each_optional_price(p, [&](std::optional<Money>& m) { m = r.opt_money(); });
  return p;
}

void put_model(Writer& w, const ModelInfo& m) {
  w.str(m.id);
  w.str(m.canonical_slug);
  w.str(m.name);
  w.str(m.description);
  w.opt_str(m.hugging_face_id);
  w.raw(m.created);
  w.raw(m.context_length);
  w.opt_i64(m.max_completion_tokens);
  w.opt_i64(m.top_provider_context_length);
  w.flag(m.is_moderated);
  w.str(m.modality);
  w.strs(m.input_modalities);
  w.strs(m.output_modalities);
  w.str(m.tokenizer);
  w.opt_str(m.instruct_type);
  w.strs(m.supported_parameters);
  w.opt(m.reasoning, [&](const ReasoningInfo& ri) {
    w.flag(ri.mandatory);
    w.flag(ri.default_enabled);
    w.strs(ri.supported_efforts);
    w.opt_str(ri.default_effort);
    w.opt(ri.supports_max_tokens, [&](bool b) { w.flag(b); });
  });
  w.opt_str(m.expiration_date);
  w.opt_str(m.knowledge_cutoff);
  w.opt_i64(m.per_request_prompt_tokens);
  w.opt_i64(m.per_request_completion_tokens);
  put_prices(w, m.pricing.base);
  w.raw<uint32_t>(static_cast<uint32_t>(m.pricing.tiers.size()));
  for (const PriceTier& t : m.pricing.tiers) {
    w.opt_i64(t.min_prompt_tokens);
    w.opt(t.utc_start, [&](int32_t x) { w.raw(x); });
    w.opt(t.utc_end, [&](int32_t x) { w.raw(x); });
    put_prices(w, t.prices);
  }
  w.flag(m.pricing.dynamic);
  w.opt_str(m.pricing.discount);
  w.raw(m.capabilities);
}

ModelInfo get_model(Reader& r) {
  ModelInfo m;
  m.id = r.str();
  m.canonical_slug = r.str();
  m.name = r.str();
  m.description = r.str();
  m.hugging_face_id = r.opt_str();
  m.created = r.raw<int64_t>();
  m.context_length = r.raw<int64_t>();
  m.max_completion_tokens = r.opt_i64();
  m.top_provider_context_length = r.opt_i64();
  m.is_moderated = r.flag();
  m.modality = r.str();
  m.input_modalities = r.strs();
  m.output_modalities = r.strs();
  m.tokenizer = r.str();
  m.instruct_type = r.opt_str();
  m.supported_parameters = r.strs();
  if (!std::is_sorted(m.supported_parameters.begin(), m.supported_parameters.end())) {
    r.fail("model '" + m.id + "': supported_parameters not sorted");
  }
  m.reasoning = r.opt([&] {
    ReasoningInfo ri;
    ri.mandatory = r.flag();
    ri.default_enabled = r.flag();
    ri.supported_efforts = r.strs();
    ri.default_effort = r.opt_str();
    ri.supports_max_tokens = r.opt([&] { return r.flag(); });
    return ri;
  });
  m.expiration_date = r.opt_str();
  m.knowledge_cutoff = r.opt_str();
  m.per_request_prompt_tokens = r.opt_i64();
  m.per_request_completion_tokens = r.opt_i64();
  m.pricing.base = get_prices(r);
  m.pricing.tiers.resize(r.count(2 * sizeof(Money::Rep)));
  for (PriceTier& t : m.pricing.tiers) {
    t.min_prompt_tokens = r.opt_i64();
    t.utc_start = r.opt([&] { return r.raw<int32_t>(); });
    t.utc_end = r.opt([&] { return r.raw<int32_t>(); });
    t.prices = get_prices(r);
  }
  m.pricing.dynamic = r.flag();
  m.pricing.discount = r.opt_str();
  m.capabilities = r.raw<uint32_t>();
  return m;
}

// One sized read (a char-by-char istreambuf_iterator copy costs ~1 ms for the 1 MB JSON, as
// much as the rest of the snapshot load); a file that changes size meanwhile fails the read.
std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : -1;
  if (size < 0) throw InvalidArgument("cannot read '" + path + "'");
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.seekg(0) || !in.read(bytes.data(), size)) throw InvalidArgument("cannot read '" + path + "'");
  return bytes;
}

}  // namespace

uint64_t catalog_json_fingerprint(std::string_view text) {
  // Word at a time (memcpy: no misaligned read): each step, h -> (h ^ w) * odd -> xorshift, is a
  // bijection of h for a given word, so two texts differing in one word always differ here.
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0xCBF29CE484222325ull ^ (text.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < text.size()) std::memcpy(&tail, text.data() + i, text.size() - i);
  h = (h ^ tail) * kMul;
  return h ^ (h >> 32);
}

std::string write_catalog_snapshot(const ModelCatalog& catalog, uint64_t json_fingerprint) {
  Writer w;
  for (char c : kMagic) w.raw(c);
  w.raw(kCatalogSnapshotVersion);
  w.raw(kByteOrderMark);
  w.raw(json_fingerprint);
  w.raw<uint32_t>(static_cast<uint32_t>(catalog.size()));
  for (const ModelInfo& m : catalog.models()) put_model(w, m);
  w.strs(catalog.warnings());
  return w.take();
}

ModelCatalog read_catalog_snapshot(std::string_view bytes,
                                   std::optional<uint64_t> expected_json_fingerprint) {
  Reader r(bytes);
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    r.fail("not a catalog snapshot (bad magic)");
  }
  for (size_t i = 0; i < sizeof kMagic; ++i) r.raw<char>();
  if (const uint32_t v = r.raw<uint32_t>(); v != kCatalogSnapshotVersion) {
    r.fail("format version " + std::to_string(v) + ", this build reads " +
           std::to_string(kCatalogSnapshotVersion));
  }
  if (r.raw<uint32_t>() != kByteOrderMark) r.fail("written with another byte order");
  const uint64_t fingerprint = r.raw<uint64_t>();
  if (expected_json_fingerprint && *expected_json_fingerprint != fingerprint) {
    r.fail("made from another JSON (fingerprint " + std::to_string(fingerprint) + ", the JSON's is " +
           std::to_string(*expected_json_fingerprint) + ")");
  }
  ModelCatalog cat;
  const uint32_t n = r.count(kMinModelBytes);
  cat.models_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    ModelInfo m = get_model(r);
    if (m.id.empty() || !cat.index_.emplace(m.id, cat.models_.size()).second) {
      r.fail("an empty or duplicate model id '" + m.id + "'");
    }
    cat.models_.push_back(std::move(m));
  }
  cat.warnings_ = r.strs();
  if (!r.at_end()) r.fail("trailing bytes");
  return cat;
}

ModelCatalog load_bundled_catalog(const std::string& json_path, const std::string& snapshot_path) {
  std::error_code ec;
  std::string why;
  if (std::filesystem::exists(snapshot_path, ec)) {
    try {
      const uint64_t fingerprint = catalog_json_fingerprint(read_whole_file(json_path));
      return read_catalog_snapshot(read_whole_file(snapshot_path), fingerprint);
    } catch (const std::exception& e) {  // any failure: the JSON is the source of truth
      why = e.what();
    }
  }
  ModelCatalog cat = ModelCatalog::from_file(json_path);
  if (!why.empty()) {
    cat.warnings_.insert(cat.warnings_.begin(), "snapshot '" + snapshot_path + "' not used: " + why);
  }
  return cat;
}

}  // namespace orroute

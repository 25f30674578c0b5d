// The bundled catalog's binary snapshot: it loads exactly what the JSON gives, and a snapshot that
// is truncated, corrupt, of another version or of another JSON is refused (ParseError) or, through
// load_bundled_catalog, replaced by the JSON with a warning.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "orroute/catalog/catalog_snapshot.h"
#include "orroute/error.h"

using namespace orroute;

namespace {

const char* const kBundled = ORROUTE_SOURCE_DIR "/python/orroute/data/openrouter_models.json";
const char* const kAllModalities = ORROUTE_SOURCE_DIR "/tests/data/models_all_modalities.json";

void require_same(const ModelCatalog& a, const ModelCatalog& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a.models()[i].id);
    REQUIRE(a.models()[i] == b.models()[i]);
    REQUIRE(b.find(a.models()[i].id) == &b.models()[i]);
  }
  REQUIRE(a.warnings() == b.warnings());
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("orroute_snapshot_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(),
                                                                static_cast<std::streamsize>(bytes.size()));
}

// The snapshot the build tool writes for the JSON at `path`.
std::string snapshot_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return write_catalog_snapshot(ModelCatalog::from_json(text), catalog_json_fingerprint(text));
}

}  // namespace

TEST_CASE("a snapshot loads every model field and warning the JSON gives", "[catalog][snapshot]") {
  for (const char* path : {kBundled, kAllModalities}) {
    const ModelCatalog json = ModelCatalog::from_file(path);
    const std::string bytes = write_catalog_snapshot(json, std::filesystem::file_size(path));
    require_same(json, read_catalog_snapshot(bytes, std::filesystem::file_size(path)));
  }
  // warnings travel too: a catalog with skipped entries
  const ModelCatalog bad = ModelCatalog::from_json(
      R"({"data":[{"id":"a/b","pricing":{"prompt":"x","completion":"0"}},7,{"id":"c/d"}]})");
  REQUIRE(!bad.warnings().empty());
  require_same(bad, read_catalog_snapshot(write_catalog_snapshot(bad, 1)));
}

TEST_CASE("a truncated or extended snapshot is refused", "[catalog][snapshot]") {
  const ModelCatalog json = ModelCatalog::from_file(kAllModalities);
  const std::string bytes = write_catalog_snapshot(json, 0);
  for (size_t n = 0; n < bytes.size(); n += 1 + n / 64) {
    INFO(n);
    REQUIRE_THROWS_AS(read_catalog_snapshot(std::string_view(bytes).substr(0, n)), ParseError);
  }
  REQUIRE_THROWS_WITH(read_catalog_snapshot(bytes + "x"), Catch::Contains("trailing bytes"));
}

TEST_CASE("a snapshot of another version or another JSON is refused", "[catalog][snapshot]") {
  const ModelCatalog json = ModelCatalog::from_file(kAllModalities);
  std::string bytes = write_catalog_snapshot(json, 123);
  REQUIRE_THROWS_WITH(read_catalog_snapshot(bytes, 124), Catch::Contains("made from another JSON"));
  REQUIRE_NOTHROW(read_catalog_snapshot(bytes, 123));
  bytes[8] = static_cast<char>(kCatalogSnapshotVersion + 1);  // the version follows the magic
  REQUIRE_THROWS_WITH(read_catalog_snapshot(bytes), Catch::Contains("format version"));
  bytes[0] = 'X';
  REQUIRE_THROWS_WITH(read_catalog_snapshot(bytes), Catch::Contains("bad magic"));
}

TEST_CASE("random corruption of a snapshot never crashes", "[catalog][snapshot]") {
  const std::string bytes = write_catalog_snapshot(ModelCatalog::from_file(kAllModalities), 0);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s = bytes;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 4); ++e) {
      s[rng() % s.size()] = static_cast<char>(rng());
    }
    try {
      (void)read_catalog_snapshot(s);  // a changed string byte may still be a valid snapshot
    } catch (const ParseError&) {
    }
  }
}

TEST_CASE("load_bundled_catalog falls back to the JSON, saying why", "[catalog][snapshot]") {
  const std::string json_path = temp_path("models.json");
  const std::string snap_path = temp_path("models.snapshot");
  std::filesystem::copy_file(kAllModalities, json_path,
                             std::filesystem::copy_options::overwrite_existing);
  const ModelCatalog json = ModelCatalog::from_file(json_path);
  std::filesystem::remove(snap_path);

  SECTION("no snapshot: the JSON, without a warning") {
    require_same(json, load_bundled_catalog(json_path, snap_path));
  }
  SECTION("a valid snapshot is used") {
    write_file(snap_path, snapshot_of(json_path));
    require_same(json, load_bundled_catalog(json_path, snap_path));
  }
  SECTION("a corrupt or stale snapshot: the JSON, with a warning first") {
    const std::string good = snapshot_of(json_path);
    for (const std::string& bad :
         {good.substr(0, good.size() / 2), write_catalog_snapshot(json, 1), std::string("junk")}) {
      write_file(snap_path, bad);
      const ModelCatalog got = load_bundled_catalog(json_path, snap_path);
      REQUIRE(got.size() == json.size());
      REQUIRE(got.warnings().size() == json.warnings().size() + 1);
      REQUIRE_THAT(got.warnings().front(), Catch::StartsWith("snapshot '" + snap_path + "' not used: catalog snapshot: "));
    }
  }
  std::filesystem::remove(snap_path);
  std::filesystem::remove(json_path);
}

// A JSON edited in place to the same size (a price digit changed) is another catalog: its
// snapshot must not be used, or the engine prices calls from the old figures.
TEST_CASE("a snapshot of a same-size JSON with other prices is not used", "[catalog][snapshot]") {
  const std::string json_path = temp_path("same_size.json");
  const std::string snap_path = temp_path("same_size.snapshot");
  std::ifstream in(kAllModalities, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_file(json_path, text);
  write_file(snap_path, snapshot_of(json_path));
  const size_t at = text.find("\"prompt\": \"");
  REQUIRE(at != std::string::npos);
  char& digit = text[text.find_first_of("123456789", at)];
  digit = digit == '9' ? '8' : static_cast<char>(digit + 1);
  write_file(json_path, text);  // same size, a different prompt price
  const ModelCatalog edited = ModelCatalog::from_file(json_path);
  const ModelCatalog got = load_bundled_catalog(json_path, snap_path);
  REQUIRE(got.size() == edited.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(got.models()[i].id);
    REQUIRE(got.models()[i] == edited.models()[i]);
  }
  REQUIRE_THAT(got.warnings().front(), Catch::Contains("not used"));
  std::filesystem::remove(snap_path);
  std::filesystem::remove(json_path);
}

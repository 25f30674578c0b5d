// Build-time tool: parses the bundled catalog JSON and writes its binary snapshot
// (orroute/catalog/catalog_snapshot.h), which loads without JSON parsing.
// Usage: orroute_catalog_snapshot <in.json> <out.snapshot>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "orroute/catalog/catalog_snapshot.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <in.json> <out.snapshot>\n", argv[0]);
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error(std::string("cannot read ") + argv[1]);
    const orroute::ModelCatalog cat = orroute::ModelCatalog::from_json(text);
    const std::string bytes = orroute::write_catalog_snapshot(cat, orroute::catalog_json_fingerprint(text));
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) {
      std::fprintf(stderr, "%s: cannot write %s\n", argv[0], argv[2]);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}

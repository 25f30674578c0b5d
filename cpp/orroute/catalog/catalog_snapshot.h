// The bundled catalog in a compact binary form, written at build time from the bundled JSON and
// loaded without JSON parsing (~4x faster than from_file). Only for the bundled catalog: the live
// catalog from OpenRouter is always parsed from JSON by ModelCatalog::from_json.
//
// Layout (host byte order, checked): magic "ORRCATS1", u32 format version, u32 byte-order mark,
// u64 fingerprint of the JSON text it was made from (catalog_json_fingerprint), then the models and
// warnings, field by field. A snapshot holds exactly what ModelCatalog::from_json gave: the same
// models, fields and warnings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "orroute/catalog/catalog.h"

namespace orroute {

// Bumped whenever the layout or ModelInfo changes: an older snapshot is then refused.
// (2: the header records a fingerprint of the JSON's bytes, not its size.)
inline constexpr uint32_t kCatalogSnapshotVersion = 2;

// Identifies a JSON text by every byte: a hash of its 8-byte words (any single changed word always
// changes it) mixed with its size. Not a defence against a forger (who could write the snapshot
// too): it tells a snapshot of this JSON from one of an edited JSON, e.g. a price changed in place
// to the same size, which a size check took for the same file. Pure.
uint64_t catalog_json_fingerprint(std::string_view json_text);

// The snapshot bytes of `catalog`; `json_fingerprint` is catalog_json_fingerprint of the JSON text
// it was parsed from (read_catalog_snapshot can refuse a snapshot made from another text). Pure.
std::string write_catalog_snapshot(const ModelCatalog& catalog, uint64_t json_fingerprint);

// Loads a snapshot. Throws ParseError saying why if `bytes` is not a whole, well-formed snapshot
// of this version (bad magic, other version or byte order, truncated, trailing bytes, a count or
// flag out of range, unsorted parameters, a duplicate id), or if `expected_json_fingerprint` is
// given and differs from the recorded one (a snapshot of another JSON). Never reads out of bounds; allocates
// at most in proportion to `bytes`. Pure.
ModelCatalog read_catalog_snapshot(std::string_view bytes,
                                   std::optional<uint64_t> expected_json_fingerprint = std::nullopt);

// The bundled catalog: the snapshot at `snapshot_path` when it exists and is valid for the JSON at
// `json_path` (same fingerprint: the same bytes), else ModelCatalog::from_file(json_path), with a warning saying why the
// snapshot was not used (none when there is no snapshot file). Throws as from_file.
ModelCatalog load_bundled_catalog(const std::string& json_path, const std::string& snapshot_path);

}  // namespace orroute

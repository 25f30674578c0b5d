// TZif files made in memory for the time zone tests and the fuzz driver.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace orroute::test {

// A version 2 TZif file (RFC 8536) with no transitions, one local time type of `type_offset`
// seconds and `footer`: what zic writes for a zone whose rules never changed, and the smallest
// file whose footer decides every instant.
inline std::string tzif_with_footer(std::string_view footer, int32_t type_offset = 0) {
  auto be32 = [](uint32_t v) {
    std::string out;
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
    return out;
  };
  std::string header = "TZif2";
  header.append(15, '\0');
  for (uint32_t count : {0u, 0u, 0u, 0u, /*typecnt=*/1u, /*charcnt=*/2u}) header += be32(count);
  // the type: its offset, not DST, its abbreviation at 0; then the abbreviation "X"
  const std::string block = be32(static_cast<uint32_t>(type_offset)) + std::string("\0\0X\0", 4);
  return header + block + header + block + "\n" + std::string(footer) + "\n";
}

}  // namespace orroute::test

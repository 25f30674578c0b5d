// A prepared statement in use (binds, steps, reads), and the ledger's SQLite error.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "orroute/error.h"
#include "orroute/utf8.h"

namespace orroute::sqlite {

// Throws Error("ledger: <what>: <SQLite's message>").
[[noreturn]] void fail(sqlite3* db, const std::string& what);

// A prepared statement in use: binds, steps, reads; resets on destruction so it can be reused.
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // Empty strings are stored as NULL.
  Query& bind(int i, std::string_view v) { return text_or_null(i, v, SQLITE_TRANSIENT); }
  Query& bind_text(int i, std::string_view v) {  // '' stays ''
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // As bind and bind_text, without SQLite's copy of the text (a malloc, a copy and a free per
  // value): `v` must stay valid until this Query ends (it resets the statement and clears its
  // bindings). For the hot path's rows, whose strings outlive the statement's step. The first
  // on a statement fresh from Impl::q, whose parameters are all NULL (the Query before it
  // cleared them): an empty value is left NULL without a call (~60 instructions each).
  Query& bind_borrowed_fresh(int i, std::string_view v) {
    if (!v.empty()) sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Query& bind_text_borrowed(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Query& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Query& bind(const char* name, int64_t v) { return bind(index(name), v); }
  Query& bind(const char* name, std::string_view v) { return bind_text(index(name), v); }
  // true while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "step");
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  // Column `col` as valid UTF-8 ("" for NULL): a row written before upstream text was repaired on
  // the way in may hold bytes that are not UTF-8, and every reader (Python's str) needs text.
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    std::string out = p ? std::string(reinterpret_cast<const char*>(p),
                                      static_cast<size_t>(sqlite3_column_bytes(s_, col)))
                        : std::string();
    repair_utf8(out);
    return out;
  }

 private:
  Query& text_or_null(int i, std::string_view v, sqlite3_destructor_type how) {
    if (v.empty()) {
      sqlite3_bind_null(s_, i);
    } else {
      sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), how);
    }
    return *this;
  }
  int index(const char* name) {
    const int i = sqlite3_bind_parameter_index(s_, name);
    if (i == 0) throw Error(std::string("ledger: no SQL parameter ") + name);
    return i;
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// ---- processes ---------------------------------------------------------------------------------

}  // namespace orroute::sqlite

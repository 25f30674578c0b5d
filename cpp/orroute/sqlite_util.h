// Small SQLite helpers the stores outside the ledger share (response cache, feedback store): a
// prepared statement that finalizes itself, text in and out, and exec with a named error; and
// the process's SQLite set-up every connection of the core (the ledger's too) opens after.
#pragma once

#include <sqlite3.h>

#include <string>

#include "orroute/error.h"

namespace orroute {

// A prepared statement; `who` names the store in the error ("response cache: prepare: ...").
struct SqliteStmt {
  SqliteStmt(sqlite3* db, const char* sql, const char* who) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
      throw Error(std::string(who) + ": prepare: " + sqlite3_errmsg(db));
    }
  }
  ~SqliteStmt() { sqlite3_finalize(s); }
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  sqlite3_stmt* s = nullptr;
};

inline void sqlite_bind_text(SqliteStmt& st, int i, const std::string& v) {
  sqlite3_bind_text(st.s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// Column `col` as text ("" for NULL), embedded NULs kept.
inline std::string sqlite_column_text(SqliteStmt& st, int col) {
  const auto* p = sqlite3_column_text(st.s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st.s, col)))
           : std::string();
}

inline void sqlite_exec(sqlite3* db, const char* sql, const char* who) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(std::string(who) + ": " + msg);
  }
}

}  // namespace orroute

// A thin RAII layer over the SQLite C API (Debian's libsqlite3): connections opened with the
// settings dmeval relies on (WAL, busy timeout, foreign keys), prepared statements, and IMMEDIATE
// transactions that roll back unless committed. Errors are dmeval::Error naming the database file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace dmeval::db {

// How long a writer waits for another process's transaction: $DMEVAL_DB_BUSY_TIMEOUT_MS, else 30 s.
int default_busy_timeout_ms();

struct OpenOptions {
  bool read_only = false;
  int busy_timeout_ms = default_busy_timeout_ms();
};

class Connection;

class Statement {
 public:
  Statement(Connection& c, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // 1-based parameters, as SQLite numbers them.
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Statement& bind_null(int i);
  template <typename T>
  Statement& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // True while a row is available.
  bool step();
  // Runs to completion (INSERT/UPDATE/DDL).
  void run();
  void reset();

  int columns() const;
  bool is_null(int col) const;  // 0-based columns
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  std::string column_name(int col) const;
  int column_type(int col) const;  // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL

 private:
  Connection& conn_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class Connection {
 public:
  // Opens (creating it unless read-only) and checks that it is a readable SQLite database.
  static Connection open(const std::string& path, const OpenOptions& options = {});
  Connection(Connection&& o) noexcept;
  Connection& operator=(Connection&& o) noexcept;
  ~Connection();

  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  void exec(const std::string& sql);
  int64_t last_insert_id() const;
  int64_t user_version();
  // The error for a failed SQLite call: the file, what was being done and SQLite's words, with
  // advice for the usual causes (locked, read-only, corrupt).
  [[noreturn]] void raise(int rc, const std::string& doing) const;

 private:
  Connection() = default;
  sqlite3* db_ = nullptr;
  std::string path_;
  int busy_timeout_ms_ = 0;
};

// BEGIN IMMEDIATE (takes the write lock up front, so two writers never deadlock on an upgrade);
// rolled back on destruction unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Connection& c);
  ~Transaction();
  void commit();

 private:
  Connection& c_;
  bool done_ = false;
};

}  // namespace dmeval::db

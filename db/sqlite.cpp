#include "db/sqlite.h"

#include <sqlite3.h>

#include <cstdlib>
#include <utility>

#include "core/error.h"

namespace dmeval::db {

int default_busy_timeout_ms() {
  if (const char* env = std::getenv("DMEVAL_DB_BUSY_TIMEOUT_MS"); env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end && *end == 0 && v >= 0 && v <= 24L * 3600 * 1000) return static_cast<int>(v);
  }
  return 30000;
}

Connection Connection::open(const std::string& path, const OpenOptions& options) {
  Connection c;
  c.path_ = path;
  c.busy_timeout_ms_ = options.busy_timeout_ms;
  const int flags = options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &c.db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) c.raise(rc, "opening the results database");
  sqlite3_extended_result_codes(c.db_, 1);
  sqlite3_busy_timeout(c.db_, options.busy_timeout_ms);
  // Reading the schema is what detects a file that is not a database.
  c.exec("PRAGMA foreign_keys = ON");
  {
    Statement s(c, "SELECT count(*) FROM sqlite_master");
    s.step();
  }
  if (!options.read_only) {
    Statement s(c, "PRAGMA journal_mode = WAL");
    s.step();
    c.exec("PRAGMA synchronous = NORMAL");
  }
  return c;
}

Connection::Connection(Connection&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)), busy_timeout_ms_(o.busy_timeout_ms_) {}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(o.db_, nullptr);
    path_ = std::move(o.path_);
    busy_timeout_ms_ = o.busy_timeout_ms_;
  }
  return *this;
}

Connection::~Connection() {
  if (db_) sqlite3_close_v2(db_);
}

void Connection::raise(int rc, const std::string& doing) const {
  const char* msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string advice;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      advice = " (another process held the write lock for longer than the " +
               std::to_string(busy_timeout_ms_) +
               " ms busy timeout; retry, or use a separate --db for independent runs)";
      break;
    case SQLITE_READONLY:
      advice =
          " (the file or its folder is not writable, or it was opened read-only; dmeval needs to write "
          "the database and its -wal/-shm files next to it)";
      break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      advice =
          " (the file is not an SQLite database or is damaged; point --db at another file, or restore a "
          "copy)";
      break;
    case SQLITE_CANTOPEN: advice = " (check that the folder exists and is writable)"; break;
    case SQLITE_FULL: advice = " (disk full)"; break;
    default: break;
  }
  fail("{}: {}: {}{}", path_, doing, msg, advice);
}

void Connection::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) raise(rc, "executing '" + sql.substr(0, 60) + (sql.size() > 60 ? "...'" : "'"));
}

int64_t Connection::last_insert_id() const {
  return sqlite3_last_insert_rowid(db_);
}

int64_t Connection::user_version() {
  Statement s(*this, "PRAGMA user_version");
  s.step();
  return s.int64(0);
}

Statement::Statement(Connection& c, const std::string& sql) : conn_(c), sql_(sql) {
  int rc = sqlite3_prepare_v2(c.handle(), sql.c_str(), -1, &stmt_, nullptr);
  if (rc != SQLITE_OK) c.raise(rc, "preparing '" + sql.substr(0, 60) + "'");
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK) conn_.raise(rc, "binding a parameter");
  return *this;
}
Statement& Statement::bind(int i, double v) {
  int rc = sqlite3_bind_double(stmt_, i, v);
  if (rc != SQLITE_OK) conn_.raise(rc, "binding a parameter");
  return *this;
}
Statement& Statement::bind(int i, const std::string& v) {
  int rc = sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) conn_.raise(rc, "binding a parameter");
  return *this;
}
Statement& Statement::bind_null(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK) conn_.raise(rc, "binding a parameter");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  conn_.raise(rc, "running '" + sql_.substr(0, 60) + (sql_.size() > 60 ? "...'" : "'"));
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::columns() const {
  return sqlite3_column_count(stmt_);
}
bool Statement::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}
int64_t Statement::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}
double Statement::real(int col) const {
  return sqlite3_column_double(stmt_, col);
}
std::string Statement::text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col)) : std::string();
}
std::string Statement::column_name(int col) const {
  return sqlite3_column_name(stmt_, col);
}
int Statement::column_type(int col) const {
  return sqlite3_column_type(stmt_, col);
}

Transaction::Transaction(Connection& c) : c_(c) {
  c_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(c_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  c_.exec("COMMIT");
  done_ = true;
}

}  // namespace dmeval::db

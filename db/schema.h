// The results database schema, as an ordered list of migrations. PRAGMA user_version holds the
// version a file is at; opening a file runs the missing steps, each in its own transaction.
#pragma once

#include <cstdint>
#include <vector>

#include "db/sqlite.h"

namespace dmeval::db {

struct Migration {
  int64_t version;
  const char* description;
  const char* sql;
};

const std::vector<Migration>& migrations();
int64_t latest_schema_version();

// Brings the database to `target` (-1: the latest). A file written by a newer dmeval (higher
// user_version) is refused with an error naming both versions.
void migrate(Connection& c, int64_t target = -1);

}  // namespace dmeval::db

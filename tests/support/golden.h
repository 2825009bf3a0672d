// Access to the golden data set (DMEVAL_GOLDEN_DIR, default ../shared/golden next to the repo)
// and helpers that read expected values from its MANIFEST.md files, so golden tests take their
// cases from the data and pass on any data set laid out the same way.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace dmeval::test {

// The golden directory, or "" if it does not exist.
std::string golden_dir();
std::string golden_path(const std::string& relative);
// A path written relative to the shared/ folder that holds golden/ (as the golden JSON files write
// them: "data/Set5/HR/baby.png", or with a leading "shared/").
std::string shared_path(const std::string& relative);
std::string read_text(const std::string& path);

// The project's own golden data (made with ../shared/oracle and tests/oracle, described in its
// MANIFEST.md): tests/data/golden, or $DMEVAL_PROJECT_GOLDEN_DIR. Laid out like the shared set.
std::string project_golden_dir();
// Every golden root that exists: the shared set (golden_dir()) first, then the project's.
std::vector<std::string> golden_roots();
// Directories `<root>/<parent>/<name>` of every golden root that contain `marker` (e.g. all
// `generators/*` holding `variants.json`), sorted per root.
std::vector<std::string> golden_dirs_with(const std::string& parent, const std::string& marker);
// The first `<root>/<relative>` that exists over golden_roots(), or "".
std::string find_in_golden_roots(const std::string& relative);
// The golden UNet directory (generators/<dir>/ in any root) whose weights.pt has this SHA-256, or "".
std::string find_golden_unet(const std::string& weights_sha256);
// Files `<root>/<parent>/<prefix>*<suffix>` over golden_roots(), sorted per root.
std::vector<std::string> golden_files(const std::string& parent, const std::string& prefix,
                                      const std::string& suffix);

// Skips the current test with a clear message when the golden data is absent.
#define DMEVAL_REQUIRE_GOLDEN()                                                                   \
  do {                                                                                            \
    if (::dmeval::test::golden_dir().empty())                                                     \
      GTEST_SKIP() << "golden data not found: set DMEVAL_GOLDEN_DIR or provide ../shared/golden"; \
  } while (0)

// JSON as Python's json module writes it: bare NaN / Infinity / -Infinity become null.
std::string python_json_text(const std::string& text);

// Rows of every Markdown table in `md` whose header row's first cell equals `first_header`.
// Cells are trimmed; surrounding backticks are removed.
std::vector<std::vector<std::string>> markdown_table(const std::string& md, const std::string& first_header);

// The text of the section that starts with a heading containing `heading` (up to the next heading
// of the same or higher level).
std::string markdown_section(const std::string& md, const std::string& heading);

// First match of an ECMAScript regex in text; returns capture group `group` or nullopt.
std::optional<std::string> regex_find(const std::string& text, const std::string& pattern, int group = 1);
// Parses "23,885,486" or "1,113,955" as an integer.
long long parse_grouped_int(const std::string& s);
// Parses "[40, 2048]" / "(64,3,11,11)" into dimensions.
std::vector<int64_t> parse_dims(const std::string& s);

}  // namespace dmeval::test

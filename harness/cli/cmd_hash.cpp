// `dmeval hash FILE...`: SHA-256 (and MD5) of files, naming the known public files they match.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "core/hash.h"
#include "core/known_files.h"
#include "harness/cli/commands.h"

namespace dmeval::cli {

void add_hash_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("hash", "SHA-256 and MD5 of files; recognises known weights and datasets");
  auto files = std::make_shared<std::vector<std::string>>();
  cmd->add_option("files", *files, "files to hash")->required()->check(CLI::ExistingFile);
  auto* json = cmd->add_flag("--json", "machine-readable output");
  cmd->callback([files, json] {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& f : *files) {
      std::string sha = sha256_file(f), md5 = md5_file(f);
      const KnownFile* k = identify_known_file(sha, md5);
      if (*json) {
        out.push_back({{"file", f},
                       {"bytes", std::filesystem::file_size(f)},
                       {"sha256", sha},
                       {"md5", md5},
                       {"known_as", k ? k->name + ": " + k->description : ""}});
      } else {
        std::printf(
            "%s  %s\n  md5 %s\n  %s\n", sha.c_str(), f.c_str(), md5.c_str(),
            k ? ("known file: " + k->name + " (" + k->description + ")").c_str() : "not a known public file");
      }
    }
    if (*json) std::printf("%s\n", out.dump(2).c_str());
  });
}

}  // namespace dmeval::cli

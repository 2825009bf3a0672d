// Public files users supply (weights, checkpoints, datasets, reference statistics), recognised by
// checksum so every result can say exactly which file produced it (shared/data/known-files.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dmeval {

struct KnownFile {
  std::string name;         // canonical file name
  std::string description;  // what it is and who publishes it
  std::string sha256;       // empty if only MD5 is published
  std::string md5;          // empty if only SHA-256 is published
  std::string url;          // where users normally get it (empty if not stable)
  // Only a SHA-256 prefix is published (torch.hub names: "alexnet-owt-7be5be79.pth"); used when sha256
  // is empty.
  std::string sha256_prefix = {};
  int64_t size_bytes = -1;  // the published size (-1: not published)
  // Nothing published identifies it by checksum (the LDM model zoo): name, size and URL only.
  bool has_checksum() const { return !sha256.empty() || !md5.empty() || !sha256_prefix.empty(); }
};

const std::vector<KnownFile>& known_files();
const KnownFile* find_known_file_by_name(const std::string& name);
// Identifies a file by its digests (either may be empty); entries without a checksum never match.
const KnownFile* identify_known_file(const std::string& sha256, const std::string& md5);

}  // namespace dmeval

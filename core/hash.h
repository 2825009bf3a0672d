// Cryptographic digests (OpenSSL's libcrypto) for provenance and weight checks.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace dmeval {

// Lower-case hex digests of a whole file, read in 1 MiB blocks.
std::string sha256_file(const std::string& path);
std::string md5_file(const std::string& path);
// Lower-case hex digest of a buffer.
std::string sha256_hex(const void* data, size_t n);
// The digest of a set of files: SHA-256 of the listing "<file name>\t<its SHA-256>\n" in the given
// order (a folder or a data set made of several files; names count, directories do not).
std::string sha256_of_files(const std::vector<std::string>& files);

}  // namespace dmeval

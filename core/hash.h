// Cryptographic digests (OpenSSL's libcrypto) for provenance and weight checks.
#pragma once

#include <cstddef>
#include <string>

namespace dmeval {

// Lower-case hex digests of a whole file, read in 1 MiB blocks.
std::string sha256_file(const std::string& path);
std::string md5_file(const std::string& path);
// Lower-case hex digest of a buffer.
std::string sha256_hex(const void* data, size_t n);

}  // namespace dmeval

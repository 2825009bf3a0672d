#include "core/hash.h"

#include <openssl/evp.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "core/byte_source.h"
#include "core/error.h"

namespace dmeval {

namespace {
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string to_hex(const unsigned char* d, unsigned n) {
  static const char* kHex = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = kHex[d[i] >> 4];
    s[2 * i + 1] = kHex[d[i] & 15];
  }
  return s;
}

std::string digest_file(const std::string& path, const EVP_MD* md) {
  FileSource f(path);
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) fail("{}: digest init failed", path);
  std::vector<unsigned char> buf(1 << 20);
  for (uint64_t off = 0; off < f.size();) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), f.size() - off));
    f.read_at(off, buf.data(), n);
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
    off += n;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  return to_hex(out, len);
}
}  // namespace

std::string sha256_file(const std::string& path) {
  return digest_file(path, EVP_sha256());
}
std::string md5_file(const std::string& path) {
  return digest_file(path, EVP_md5());
}

std::string sha256_of_files(const std::vector<std::string>& files) {
  std::string listing;
  for (const auto& f : files)
    listing += std::filesystem::path(f).filename().string() + "\t" + sha256_file(f) + "\n";
  return sha256_hex(listing.data(), listing.size());
}

std::string sha256_hex(const void* data, size_t n) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data, n, out, &len, EVP_sha256(), nullptr) != 1) fail("sha256 failed");
  return to_hex(out, len);
}

}  // namespace dmeval

#include "harness/sampling/chunk_ledger.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace dmeval {

namespace fs = std::filesystem;

namespace {
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::string to_hex(const std::vector<uint8_t>& b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s.push_back(kDigits[c >> 4]);
    s.push_back(kDigits[c & 15]);
  }
  return s;
}

std::vector<uint8_t> from_hex(const std::string& s, const std::string& where) {
  DMEVAL_CHECK(s.size() % 2 == 0, "{}: bad state field", where);
  auto v = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    fail("{}: bad state field", where);
  };
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(v(s[2 * i]) * 16 + v(s[2 * i + 1]));
  return out;
}
}  // namespace

ChunkLedger::ChunkLedger(std::string dir, nlohmann::ordered_json identity) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_ + "/chunks", ec);
  if (ec) fail("{}: cannot create the run's record folder: {}", dir_, ec.message());
  const std::string run = dir_ + "/run.json";
  if (fs::exists(run)) {
    nlohmann::ordered_json saved;
    try {
      saved = nlohmann::ordered_json::parse(read_file(run));
    } catch (const std::exception& e) {
      fail("{}: unreadable run record ({}); remove the folder to start over", run, e.what());
    }
    if (saved != identity) {
      std::vector<std::string> diff;
      for (const auto& [k, v] : identity.items())
        if (!saved.contains(k) || saved[k] != v)
          diff.push_back(
              fmt::format("{}: {} now, {} before", k, v.dump(), saved.contains(k) ? saved[k].dump() : "-"));
      for (const auto& [k, v] : saved.items())
        if (!identity.contains(k)) diff.push_back(fmt::format("{}: - now, {} before", k, v.dump()));
      std::string list;
      for (const auto& d : diff) list += "\n  " + d;
      fail(
          "{}: this folder holds a different run (its outputs would not be those of this command); use "
          "another "
          "output folder or remove it. Differences:{}",
          dir_, list);
    }
  } else {
    write_atomic(run, identity.dump(1) + "\n");
  }
}

ChunkLedger::~ChunkLedger() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void ChunkLedger::lock(const std::string& name) {
  const std::string path = dir_ + "/" + name + ".lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail("{}: cannot create the lock file", path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    fail("{}: another process is already running this part of the run ({}); wait for it or stop it", dir_,
         name);
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) == 0 && ::write(lock_fd_, pid.data(), pid.size()) < 0) {
    // the pid is informational only
  }
}

nlohmann::ordered_json ChunkLedger::read_identity(const std::string& dir) {
  const std::string run = dir + "/run.json";
  DMEVAL_CHECK(fs::exists(run), "{}: no run record here (not a dmeval run folder?)", dir);
  try {
    return nlohmann::ordered_json::parse(read_file(run));
  } catch (const std::exception& e) {
    fail("{}: unreadable run record ({})", run, e.what());
  }
}

std::vector<int64_t> ChunkLedger::done_chunks() const {
  std::vector<int64_t> out;
  for (const auto& e : fs::directory_iterator(dir_ + "/chunks")) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".json" || name.size() != 11) continue;
    try {
      out.push_back(std::stoll(name.substr(0, 6)));
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ChunkLedger::import_record(const std::string& from_dir, int64_t chunk) {
  const std::string src = fmt::format("{}/chunks/{:06d}.json", from_dir, chunk);
  write_atomic(chunk_path(chunk), read_file(src));
}

std::string ChunkLedger::chunk_path(int64_t chunk) const {
  return fmt::format("{}/chunks/{:06d}.json", dir_, chunk);
}

bool ChunkLedger::done(int64_t chunk) const {
  return fs::exists(chunk_path(chunk));
}

int64_t ChunkLedger::done_count(int64_t num_chunks) const {
  int64_t n = 0;
  for (int64_t k = 0; k < num_chunks; ++k) n += done(k);
  return n;
}

void ChunkLedger::mark_done(const ChunkRange& c, const std::vector<uint8_t>& state,
                            nlohmann::ordered_json details) {
  nlohmann::ordered_json j;
  j["chunk"] = c.index;
  j["first"] = c.first;
  j["count"] = c.count;
  if (!state.empty()) j["producer_state"] = to_hex(state);
  j["details"] = std::move(details);
  write_atomic(chunk_path(c.index), j.dump() + "\n");
}

nlohmann::ordered_json ChunkLedger::chunk_record(int64_t chunk) const {
  const std::string p = chunk_path(chunk);
  try {
    return nlohmann::ordered_json::parse(read_file(p));
  } catch (const std::exception& e) {
    fail("{}: unreadable chunk record ({}); delete it to redo the chunk", p, e.what());
  }
}

std::vector<uint8_t> ChunkLedger::state_after(int64_t chunk) const {
  auto j = chunk_record(chunk);
  if (!j.contains("producer_state")) return {};
  return from_hex(j["producer_state"].get<std::string>(), chunk_path(chunk));
}

}  // namespace dmeval

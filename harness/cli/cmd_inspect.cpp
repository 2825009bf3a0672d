// `dmeval inspect FILE`: what is inside a checkpoint (torch.save legacy/zip, safetensors), a NumPy
// .npy/.npz or an image, before using it: names, dtypes, shapes, bytes; with --read, every tensor's
// data is read and checked (truncation, NaN/Inf).
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <unordered_set>

#include "core/byte_source.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image.h"
#include "core/known_files.h"
#include "core/npy.h"
#include "core/zip_archive.h"
#include "harness/cli/commands.h"

namespace dmeval::cli {

namespace {

struct InspectOptions {
  std::string file;
  bool json = false;
  bool read = false;
  bool no_hash = false;
  bool opaque = false;
  int max_depth = 64;
};

enum class FileKind { kCheckpoint, kNpy, kNpz, kImage };

FileKind sniff(const std::string& path) {
  FileSource f(path);
  auto head = f.read_vector(0, std::min<uint64_t>(16, f.size()));
  auto starts = [&](const char* s, size_t n) {
    return head.size() >= n && std::equal(s, s + n, reinterpret_cast<const char*>(head.data()));
  };
  if (starts("\x93NUMPY", 6)) return FileKind::kNpy;
  if (starts("PK\x03\x04", 4)) {
    ZipReader z = ZipReader::open_file(path);
    for (size_t i = 0; i < z.size(); ++i) {
      std::string n = z.entry_name(i);
      if (n.size() >= 8 && n.compare(n.size() - 8, 8, "data.pkl") == 0) return FileKind::kCheckpoint;
    }
    return FileKind::kNpz;
  }
  if (starts("\x89PNG", 4) || starts("\xff\xd8\xff", 3) || starts("BM", 2) || starts("RIFF", 4) ||
      starts("II*\0", 4) || starts("MM\0*", 4) || starts("P5", 2) || starts("P6", 2))
    return FileKind::kImage;
  return FileKind::kCheckpoint;
}

// NaN/Inf count of a floating tensor (0 for other dtypes).
int64_t count_nonfinite(const TensorData& t) {
  int64_t bad = 0, n = t.numel();
  if (t.dtype == DType::kFloat32) {
    for (int64_t i = 0; i < n; ++i) bad += !std::isfinite(t.data<float>()[i]);
  } else if (t.dtype == DType::kFloat64) {
    for (int64_t i = 0; i < n; ++i) bad += !std::isfinite(t.data<double>()[i]);
  } else if (t.dtype == DType::kFloat16 || t.dtype == DType::kBFloat16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = t.data<uint16_t>()[i];
      bool inf_nan = t.dtype == DType::kFloat16 ? (h & 0x7c00) == 0x7c00 : (h & 0x7f80) == 0x7f80;
      bad += inf_nan;
    }
  }
  return bad;
}

std::string human_bytes(uint64_t b) {
  if (b < 10000) return fmt::format("{} B", b);
  if (b < 10'000'000) return fmt::format("{:.1f} KB", b / 1e3);
  if (b < 10'000'000'000ULL) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.1f} GB", b / 1e9);
}

int inspect_checkpoint(const InspectOptions& o, nlohmann::ordered_json& j) {
  CheckpointOptions co;
  co.opaque_objects = o.opaque;
  Checkpoint ck = Checkpoint::open(o.file, co);
  const PickleDoc& doc = ck.doc();
  auto entries = ck.tensors();
  uint64_t total_bytes = 0;
  int64_t total_values = 0;
  for (const auto& e : entries) {
    int64_t n = checked_numel(ck.shape(e.value));
    total_values += n;
    total_bytes += static_cast<uint64_t>(n) * dtype_size(ck.dtype(e.value));
  }
  j["format"] = checkpoint_format_name(ck.format());
  j["tensor_count"] = entries.size();
  j["value_count"] = total_values;
  j["tensor_bytes"] = total_bytes;
  if (!o.json) {
    std::printf("format: %s\ntensors: %zu, %lld values, %s\n\n", checkpoint_format_name(ck.format()),
                entries.size(), static_cast<long long>(total_values), human_bytes(total_bytes).c_str());
  }

  // Tree (text) or flat list (JSON).
  std::unordered_set<ValueId> on_path;
  std::function<void(ValueId, const std::string&, int)> print = [&](ValueId id, const std::string& label,
                                                                    int depth) {
    const Value& v = doc.at(id);
    std::string indent(static_cast<size_t>(2 * depth), ' ');
    if (v.kind == ValueKind::kTensor) {
      const TensorRef& t = doc.tensor(v);
      const StorageRef& s = doc.storages[t.storage];
      std::string problem = ck.storage_problem(t.storage);
      std::printf("%s%s: %s %s%s\n", indent.c_str(), label.c_str(), dtype_name(s.dtype),
                  shape_str(t.sizes).c_str(), problem.empty() ? "" : "  (data missing)");
      return;
    }
    bool container = v.kind == ValueKind::kDict || v.kind == ValueKind::kList || v.kind == ValueKind::kTuple;
    std::printf("%s%s%s%s\n", indent.c_str(), label.c_str(), label.empty() ? "" : ": ",
                value_summary(doc, id).c_str());
    if (!container || depth >= o.max_depth || on_path.count(id)) return;
    on_path.insert(id);
    if (v.kind == ValueKind::kDict) {
      for (size_t k = 0; k + 1 < v.items.size(); k += 2) {
        const Value& key = doc.at(v.items[k]);
        std::string ks = key.kind == ValueKind::kString ? key.s : value_summary(doc, v.items[k]);
        print(v.items[k + 1], ks, depth + 1);
      }
    } else {
      for (size_t k = 0; k < v.items.size(); ++k) print(v.items[k], std::to_string(k), depth + 1);
    }
    on_path.erase(id);
  };
  if (!o.json) print(ck.root(), "", 0);

  int missing = 0, nonfinite_tensors = 0;
  std::string first_problem;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& e : entries) {
    const TensorRef& t = doc.tensor(doc.at(e.value));
    std::string problem = ck.storage_problem(t.storage);
    nlohmann::ordered_json row = {
        {"path", e.path},       {"dtype", dtype_name(ck.dtype(e.value))}, {"shape", t.sizes},
        {"strides", t.strides}, {"storage", doc.storages[t.storage].key}, {"storage_offset", t.offset}};
    if (o.read && problem.empty()) {
      try {
        TensorData d = ck.read(e.value);
        int64_t bad = count_nonfinite(d);
        row["nonfinite"] = bad;
        if (bad) ++nonfinite_tensors;
      } catch (const Error& ex) {
        problem = ex.what();
      }
    }
    if (!problem.empty()) {
      ++missing;
      if (first_problem.empty()) first_problem = problem;
      row["problem"] = problem;
    }
    list.push_back(row);
  }
  j["tensors"] = list;
  j["tensors_with_missing_data"] = missing;
  if (!o.json) {
    if (missing)
      std::printf("\n%d of %zu tensors cannot be read; first: %s\n", missing, entries.size(),
                  first_problem.c_str());
    if (o.read && nonfinite_tensors) std::printf("%d tensors contain NaN or Inf values\n", nonfinite_tensors);
    if (o.read && !missing && !nonfinite_tensors)
      std::printf("\nall %zu tensors read; all values finite\n", entries.size());
  }
  return missing || nonfinite_tensors ? 1 : 0;
}

void describe_array(const std::string& name, const TensorData& t, nlohmann::ordered_json& list, bool json) {
  list.push_back({{"name", name},
                  {"dtype", dtype_name(t.dtype)},
                  {"shape", t.shape},
                  {"bytes", t.bytes.size()},
                  {"nonfinite", count_nonfinite(t)}});
  if (!json)
    std::printf("%s: %s %s (%s)%s\n", name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str(),
                human_bytes(t.bytes.size()).c_str(), count_nonfinite(t) ? "  contains NaN/Inf" : "");
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd =
      app.add_subcommand("inspect", "Show what a checkpoint, safetensors, .npy/.npz or image file holds");
  cmd->add_option("file", o->file, "file to inspect")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->add_flag("--read", o->read, "read every tensor's data (finds truncation, NaN/Inf)");
  cmd->add_flag("--no-hash", o->no_hash, "skip the SHA-256 of the file");
  cmd->add_flag("--opaque-objects", o->opaque,
                "keep objects of unknown classes as inert records instead of rejecting the file");
  cmd->add_option("--max-depth", o->max_depth, "deepest tree level printed")->check(CLI::NonNegativeNumber);
  cmd->callback([o] {
    nlohmann::ordered_json j;
    j["file"] = o->file;
    j["bytes"] = FileSource(o->file).size();
    if (!o->no_hash) {
      std::string sha = sha256_file(o->file);
      j["sha256"] = sha;
      const KnownFile* k = identify_known_file(sha, "");
      if (k) j["known_as"] = k->name;
    }
    if (!o->json) {
      std::printf("file: %s (%s)\n", o->file.c_str(), human_bytes(j["bytes"].get<uint64_t>()).c_str());
      if (j.contains("sha256"))
        std::printf("sha256: %s%s\n", j["sha256"].get<std::string>().c_str(),
                    j.contains("known_as") ? ("  (" + j["known_as"].get<std::string>() + ")").c_str() : "");
    }
    int rc = 0;
    switch (sniff(o->file)) {
      case FileKind::kCheckpoint: rc = inspect_checkpoint(*o, j); break;
      case FileKind::kNpy: {
        j["format"] = "npy";
        if (!o->json) std::printf("format: npy\n");
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        describe_array("array", read_npy_file(o->file), list, o->json);
        j["arrays"] = list;
        break;
      }
      case FileKind::kNpz: {
        j["format"] = "npz";
        NpzReader z = NpzReader::open(o->file);
        if (!o->json) std::printf("format: npz, %zu arrays\n", z.names().size());
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto& n : z.names()) describe_array(n, z.read(n), list, o->json);
        j["arrays"] = list;
        break;
      }
      case FileKind::kImage: {
        Image img = decode_image_file(o->file);
        j["format"] = "image";
        j["width"] = img.width;
        j["height"] = img.height;
        if (!o->json) std::printf("format: image, %dx%d (decoded to RGB)\n", img.width, img.height);
        break;
      }
    }
    if (o->json) std::printf("%s\n", j.dump(2).c_str());
    if (rc)
      throw Error(fmt::format("{}: some tensors could not be read or are not finite (see above)", o->file));
  });
}

}  // namespace dmeval::cli

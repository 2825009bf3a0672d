#include "core/image_sinks.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/npy.h"
#include "core/zip_archive.h"

namespace dmeval {

namespace fs = std::filesystem;

PngFolderSink::PngFolderSink(std::string dir, int digits, int level)
    : dir_(std::move(dir)), digits_(digits), level_(level) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("{}: cannot create the output folder: {}", dir_, ec.message());
}

int PngFolderSink::digits_for(int64_t total) {
  int d = 1;
  for (int64_t v = std::max<int64_t>(total - 1, 1); v >= 10; v /= 10) ++d;
  return std::max(d, 6);
}

std::string PngFolderSink::file_name(int64_t index) const {
  return fmt::format("{:0{}d}.png", index, digits_);
}

void PngFolderSink::consume(const ImageBatch& batch) {
  for (size_t i = 0; i < batch.images.size(); ++i)
    write_png(dir_ + "/" + file_name(batch.first_index + static_cast<int64_t>(i)), batch.images[i], level_);
}

ChunkedArraySink::ChunkedArraySink(Kind kind, std::string out_path, std::string parts_dir, int64_t total)
    : kind_(kind), out_(std::move(out_path)), parts_(std::move(parts_dir)), total_(total) {
  std::error_code ec;
  fs::create_directories(parts_, ec);
  if (ec) fail("{}: cannot create the folder for partial outputs: {}", parts_, ec.message());
}

std::string ChunkedArraySink::part_path(int64_t chunk) const {
  return fmt::format("{}/part-{:06d}.npy", parts_, chunk);
}

void ChunkedArraySink::begin_chunk(const ChunkRange& chunk) {
  chunk_ = chunk;
  buffer_.clear();
  seen_ = 0;
}

void ChunkedArraySink::consume(const ImageBatch& batch) {
  DMEVAL_CHECK(batch.first_index == chunk_.first + seen_,
               "{}: batch starting at image {} out of order (expected {})", out_, batch.first_index,
               chunk_.first + seen_);
  std::vector<int64_t> item;
  if (kind_ == Kind::kImagesNpz) {
    for (const Image& im : batch.images) {
      item = {im.height, im.width, 3};
      if (item_shape_.empty()) item_shape_ = item;
      DMEVAL_CHECK(item == item_shape_, "{}: image {} is {}x{}, the batch file holds {}x{} images", out_,
                   batch.first_index, im.width, im.height, item_shape_[1], item_shape_[0]);
      buffer_.insert(buffer_.end(), im.pixels.begin(), im.pixels.end());
    }
    seen_ += static_cast<int64_t>(batch.images.size());
  } else {
    DMEVAL_CHECK(batch.raw.dtype == DType::kFloat32 && batch.raw.shape.size() == 4,
                 "{}: the producer delivered no float samples", out_);
    item.assign(batch.raw.shape.begin() + 1, batch.raw.shape.end());
    if (item_shape_.empty()) item_shape_ = item;
    DMEVAL_CHECK(item == item_shape_, "{}: samples of shape {} where {} were written before", out_,
                 shape_str(item), shape_str(item_shape_));
    buffer_.insert(buffer_.end(), batch.raw.bytes.begin(), batch.raw.bytes.end());
    seen_ += batch.raw.shape[0];
  }
}

void ChunkedArraySink::commit_chunk(const ChunkRange& chunk) {
  DMEVAL_CHECK(seen_ == chunk.count, "{}: chunk {} got {} of its {} images", out_, chunk.index, seen_,
               chunk.count);
  TensorData t;
  t.dtype = kind_ == Kind::kImagesNpz ? DType::kUInt8 : DType::kFloat32;
  t.shape = {chunk.count};
  t.shape.insert(t.shape.end(), item_shape_.begin(), item_shape_.end());
  t.bytes = std::move(buffer_);
  write_npy(part_path(chunk.index), t);
  buffer_.clear();
}

void ChunkedArraySink::finish() {
  // Parts in chunk order must cover images 0 .. total-1 exactly.
  std::vector<NpyFileInfo> infos;
  std::vector<std::string> paths;
  int64_t covered = 0;
  for (int64_t k = 0; covered < total_; ++k) {
    const std::string p = part_path(k);
    DMEVAL_CHECK(fs::exists(p), "{}: cannot assemble: the part of chunk {} ({}) is missing", out_, k, p);
    NpyFileInfo info = read_npy_info(p);
    DMEVAL_CHECK(!info.shape.empty(), "{}: bad part {}", out_, p);
    if (infos.empty()) item_shape_.assign(info.shape.begin() + 1, info.shape.end());
    DMEVAL_CHECK(std::vector<int64_t>(info.shape.begin() + 1, info.shape.end()) == item_shape_ &&
                     info.dtype == (kind_ == Kind::kImagesNpz ? DType::kUInt8 : DType::kFloat32),
                 "{}: part {} holds {} {}, unlike the others", out_, p, dtype_name(info.dtype),
                 shape_str(info.shape));
    covered += info.shape[0];
    infos.push_back(info);
    paths.push_back(p);
  }
  DMEVAL_CHECK(covered == total_, "{}: the parts hold {} images, the run {}", out_, covered, total_);
  std::vector<int64_t> shape = {total_};
  shape.insert(shape.end(), item_shape_.begin(), item_shape_.end());
  const DType dtype = kind_ == Kind::kImagesNpz ? DType::kUInt8 : DType::kFloat32;

  // The whole array as one .npy, streamed from the parts.
  const std::string npy_path = kind_ == Kind::kRawNpy ? out_ : out_ + ".arr_0.npy.part";
  {
    AtomicFile f(npy_path);
    std::vector<uint8_t> header = encode_npy_header(dtype, shape);
    f.write(header.data(), header.size());
    std::vector<char> buf(1 << 20);
    for (size_t i = 0; i < paths.size(); ++i) {
      std::ifstream in(paths[i], std::ios::binary);
      in.seekg(static_cast<std::streamoff>(infos[i].data_offset));
      uint64_t left = infos[i].data_bytes;
      while (left > 0) {
        const auto n = static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size()));
        in.read(buf.data(), n);
        DMEVAL_CHECK(in.gcount() == n, "{}: read error", paths[i]);
        f.write(buf.data(), static_cast<size_t>(n));
        left -= static_cast<uint64_t>(n);
      }
    }
    f.commit();
  }
  if (kind_ == Kind::kImagesNpz) {
    ZipWriter z(out_);
    z.add_file("arr_0.npy", npy_path, ZipCompression::kStore);  // np.savez: stored, not compressed
    z.finish();
    std::remove(npy_path.c_str());
  }
  for (const auto& p : paths) std::remove(p.c_str());
  std::error_code ec;
  fs::remove(parts_, ec);  // only if empty
}

}  // namespace dmeval

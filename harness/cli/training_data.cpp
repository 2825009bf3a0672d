#include "harness/cli/training_data.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/image.h"
#include "core/image_folder.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/shapes_dataset.h"

namespace dmeval::cli {

TrainingData load_training_data(const std::string& spec, int64_t size) {
  TrainingData d;
  if (is_shapes_spec(spec)) {
    const ShapesSpec s = parse_shapes_spec(spec, "--data");
    const int64_t n = s.n;
    ShapesOptions so;
    so.seed = s.seed;
    so.size = static_cast<int>(size);
    d.images = torch::empty({n, 3, size, size}, torch::kUInt8);
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int l = 0;
      Image im = render_shape_image(so, i, &l);
      d.images[i] =
          torch::from_blob(im.pixels.data(), {size, size, 3}, torch::kUInt8).permute({2, 0, 1}).clone();
      labels[static_cast<size_t>(i)] = l;
    }
    d.labels = torch::tensor(labels, torch::kLong);
    return d;
  }
  if (std::filesystem::is_directory(spec)) {
    const std::vector<std::string> files = list_images(spec);
    DMEVAL_CHECK(!files.empty(), "{}: no images in the folder", spec);
    d.images = torch::empty({static_cast<int64_t>(files.size()), 3, size, size}, torch::kUInt8);
    for (size_t i = 0; i < files.size(); ++i) {
      Image im = decode_image_file(files[i]);
      DMEVAL_CHECK(im.height == size && im.width == size, "{}: the image is {}x{}, the model's are {}x{}",
                   files[i], im.width, im.height, size, size);
      d.images[static_cast<int64_t>(i)] =
          torch::from_blob(im.pixels.data(), {size, size, 3}, torch::kUInt8).permute({2, 0, 1}).clone();
    }
    return d;
  }
  DMEVAL_CHECK(std::filesystem::is_regular_file(spec),
               "training data '{}': not shapes:N[:SEED], an .npz file or an image folder", spec);
  NpzReader z = NpzReader::open(spec);
  torch::Tensor a = to_torch(z.read("arr_0"));
  DMEVAL_CHECK(a.dim() == 4 && a.size(3) == 3 && a.scalar_type() == torch::kUInt8,
               "{}: arr_0 must be N x H x W x 3 uint8", spec);
  DMEVAL_CHECK(a.size(1) == size && a.size(2) == size, "{}: images are {}x{}, the model's are {}x{}", spec,
               a.size(1), a.size(2), size, size);
  d.images = a.permute({0, 3, 1, 2}).contiguous();
  if (z.contains("arr_1")) {
    d.labels = to_torch(z.read("arr_1")).to(torch::kLong).reshape({-1});
    DMEVAL_CHECK(d.labels.size(0) == a.size(0), "{}: arr_1 holds {} labels for {} images", spec,
                 d.labels.size(0), a.size(0));
  }
  return d;
}

}  // namespace dmeval::cli

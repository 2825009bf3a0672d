// `dmeval shapes`: writes the procedural `shapes` data set of the embedded profile (exactly N images,
// deterministic per image, chunked and resumable like `dmeval sample`) as a PNG folder or an
// ADM-style .npz, with the class of every image in labels.json.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/image_sinks.h"
#include "generators/shapes_dataset.h"
#include "harness/cli/commands.h"
#include "harness/sampling/chunk_runner.h"

namespace dmeval::cli {

namespace fs = std::filesystem;

void add_shapes_command(CLI::App& app) {
  struct Opts {
    std::string out, format = "png", shard;
    int64_t n = 10000, seed = 0, chunk = 1024, batch = 64;
    int size = 32;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("shapes", "write the procedural shapes data set (the embedded profile's data)");
  cmd->add_option("--samples", o->n, "number of images")->capture_default_str();
  cmd->add_option("--n", o->n, "same as --samples (the name of earlier versions)")->group("");
  cmd->add_option("--seed", o->seed, "data set seed (image i depends only on seed and i)")
      ->capture_default_str();
  cmd->add_option("--size", o->size, "image side in pixels")->capture_default_str();
  cmd->add_option("--out", o->out, "output folder")->required();
  cmd->add_option("--format", o->format, "png (a file per image) or npz (samples_NxHxWx3.npz, arr_0)")
      ->check(CLI::IsMember({"png", "npz"}))
      ->capture_default_str();
  cmd->add_option("--chunk", o->chunk, "images per resumable chunk")->capture_default_str();
  cmd->add_option("--shard", o->shard, "K/N: run every N-th chunk starting at K");
  cmd->add_flag("--quiet", o->quiet, "no progress output");
  cmd->callback([o] {
    DMEVAL_CHECK(o->n >= 1, "--n {} must be positive", o->n);
    ShapesOptions so;
    so.seed = static_cast<uint64_t>(o->seed);
    so.size = o->size;
    ShapesProducer producer(so);
    nlohmann::ordered_json id;
    id["command"] = "shapes";
    id["data"] = producer.describe();
    id["n"] = o->n;
    id["format"] = o->format;
    ChunkPlan plan;
    plan.total = o->n;
    plan.chunk_size = round_chunk_size(o->chunk, o->batch);
    id["chunk_size"] = plan.chunk_size;
    if (!o->shard.empty()) plan.shard = parse_shard(o->shard);
    fs::create_directories(o->out);
    const std::string record = o->out + "/.dmeval";
    ChunkLedger ledger(record, id);
    std::unique_ptr<ImageSink> sink;
    if (o->format == "png")
      sink = std::make_unique<PngFolderSink>(o->out, PngFolderSink::digits_for(o->n), 6);
    else
      sink = std::make_unique<ChunkedArraySink>(
          ChunkedArraySink::Kind::kImagesNpz,
          fmt::format("{}/samples_{}x{}x{}x3.npz", o->out, o->n, o->size, o->size), record + "/parts-npz",
          o->n);
    ChunkRunOptions co;
    co.batch = o->batch;
    co.progress = !o->quiet;
    ChunkRunResult r = run_chunks(producer, plan, ledger, {sink.get()}, co);
    if (r.complete) {  // labels are cheap: recomputed, not chunked
      nlohmann::ordered_json labels;
      labels["data"] = producer.describe();
      labels["classes"] = shape_class_names();
      std::vector<int> l(static_cast<size_t>(o->n));
      for (int64_t i = 0; i < o->n; ++i) render_shape_image(so, i, &l[static_cast<size_t>(i)]);
      labels["labels"] = l;
      AtomicFile f(o->out + "/labels.json");
      const std::string text = labels.dump() + "\n";
      f.write(text.data(), text.size());
      f.commit();
    }
    std::printf("%s: %lld of %lld chunks done (%lld now), %.1f images/s%s\n", o->out.c_str(),
                static_cast<long long>(r.chunks_done), static_cast<long long>(r.chunks_total),
                static_cast<long long>(r.chunks_run), r.images_per_second, r.complete ? ", complete" : "");
  });
}

}  // namespace dmeval::cli

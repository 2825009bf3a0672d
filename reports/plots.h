// Plots as PNG through PLplot (Debian's libplplot, cairo driver): FID vs model size with the Pareto
// front, a metric vs weight bit-width per method, latency per method; and labeled sample grids.
#pragma once

#include <string>
#include <vector>

#include "core/image.h"
#include "reports/result_set.h"

namespace dmeval::reports {

struct LatencyBar {
  std::string label;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
};

// False when this dmeval was built without PLplot (DMEVAL_PLOTS=OFF): the plot functions then throw
// an error saying so, and sample grids have no caption strip.
bool plots_available();

// Each returns false (and writes nothing) when the results hold no point to plot.
// `fid_metric`: "fid", or a network's variant such as "fid[shapes-net]".
bool plot_fid_vs_size(const std::vector<RunResult>& results, const std::string& png_path,
                      const std::string& fid_metric = "fid");
bool plot_metric_vs_bits(const std::vector<RunResult>& results, const std::string& metric,
                         const std::string& png_path);
bool plot_latency(const std::vector<LatencyBar>& bars, const std::string& png_path);
// The training loss per logged step of every trained run (BinaryDM and its baselines), one line each,
// loss on a log axis.
bool plot_training_curves(const std::vector<RunResult>& results, const std::string& png_path);

// The first images of a folder in a grid with a caption rendered above it (e.g. "TinyDM W4A8").
Image sample_grid(const std::vector<Image>& images, int columns, const std::string& caption);
// Nearest-neighbour enlargement by an integer factor (small samples made visible); factor <= 1: a copy.
Image zoom_nearest(const Image& image, int factor);
// Images one under another, left-aligned on white, `gap` white rows between them.
Image stack_vertically(const std::vector<Image>& parts, int gap);

// The Pareto front of (x lower better, y lower better) points: indices, by increasing x.
std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace dmeval::reports

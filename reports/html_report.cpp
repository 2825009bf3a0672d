#include "reports/html_report.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dmeval::reports {

namespace {
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the figure for the HTML report", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void figures(std::string& out, const std::vector<HtmlFigure>& figs, const char* cls) {
  for (const auto& f : figs)
    out += std::string("<figure class=\"") + cls + "\"><img alt=\"" + html_escape(f.caption) +
           "\" src=\"data:image/png;base64," + base64(read_bytes(f.png_path)) + "\"><figcaption>" +
           html_escape(f.caption) + "</figcaption></figure>\n";
}

constexpr const char* kStyle = R"(<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { text-align: center; color: #999; }
tr.group-start td { border-top: 2px solid #888; }
caption { font-weight: bold; text-align: left; }
.footnotes { font-size: 0.85em; color: #555; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; }
tr.REGRESSED td, tr.INCOMPARABLE td, tr.MISSING td { background: #fdd; }
tr.improved td { background: #dfd; }
</style>
)";

// After loading, the page records how many of its images decoded (checked by the browser test).
constexpr const char* kLoadCheck = R"(<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; ++i) if (imgs[i].complete && imgs[i].naturalWidth > 0) ++ok;
  document.body.setAttribute('data-images-total', imgs.length);
  document.body.setAttribute('data-images-loaded', ok);
});
</script>
)";
}  // namespace

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string render_html_report(const HtmlReport& r) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
                    html_escape(r.title) + "</title>\n" + kStyle + kLoadCheck + "</head>\n<body>\n<h1>" +
                    html_escape(r.title) + "</h1>\n";
  if (!r.subtitle.empty()) out += "<p class=\"provenance\">" + html_escape(r.subtitle) + "</p>\n";
  if (r.regression) out += render_regress(*r.regression, "html");
  if (!r.tables.empty()) out += "<h2>Results</h2>\n" + render_tables(r.tables, "html");
  if (!r.plots.empty()) {
    out += "<h2>Plots</h2>\n";
    figures(out, r.plots, "plot");
  }
  if (!r.grids.empty()) {
    out += "<h2>Samples</h2>\n";
    figures(out, r.grids, "grid");
  }
  return out + "</body></html>\n";
}

}  // namespace dmeval::reports

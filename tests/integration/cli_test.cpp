// The dmeval binary end to end: version, help, inspect and hash on real files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <thread>

#include "core/checkpoint.h"
#include "harness/cli/commands.h"
#include "tests/support/golden.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

TEST(Cli, VersionReportsThreadsAndLibtorch) {
  RunResult r = run_dmeval("version --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_FALSE(j["libtorch"].get<std::string>().empty());
  // The default is $DMEVAL_THREADS when set (ctest sets it), else one thread per hardware thread.
  const char* env = std::getenv("DMEVAL_THREADS");
  const int expected = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(j["intra_op_threads"].get<int>(), expected);
  EXPECT_TRUE(j.contains("cuda_available"));
  RunResult t = run_dmeval("--threads 1 version --json");
  EXPECT_EQ(nlohmann::json::parse(t.output)["intra_op_threads"].get<int>(), 1);
}

TEST(Cli, HelpListsExactlyTheRegisteredCommands) {
  RunResult r = run_dmeval("--help");
  ASSERT_EQ(r.exit_code, 0);
  for (const auto& c : cli::command_registry())
    EXPECT_NE(r.output.find(std::string("  ") + c.name + " "), std::string::npos) << c.name;
  RunResult bad = run_dmeval("no-such-command");
  EXPECT_NE(bad.exit_code, 0);
}

TEST(Cli, InspectRejectsCodeExecutingPickles) {
  TempDir dir;
  std::string evil = PickleBuilder()
                         .proto()
                         .long1(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
                         .stop()
                         .bytes() +
                     PickleBuilder().proto().integer(1001).stop().bytes() +
                     PickleBuilder().proto().empty_dict().stop().bytes() +
                     PickleBuilder()
                         .proto()
                         .global("os", "system")
                         .mark()
                         .str("touch " + dir.file("pwned"))
                         .tuple()
                         .reduce()
                         .stop()
                         .bytes();
  RunResult r = run_dmeval("inspect " + dir.write("evil.pth", evil));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("os.system"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("evil.pth"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("pwned")));
}

TEST(Cli, InspectAndHashOnFilesItWrote) {
  TempDir dir;
  std::string bytes = legacy_torch_file({{"model.w", "1", 0, {2, 2}, {1, 2}}}, {{"1", {1, 2, 3, 4}}});
  std::string path = dir.write("m.pth", bytes);
  RunResult r = run_dmeval("inspect --json --read " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["format"], "torch.save legacy");
  EXPECT_EQ(j["tensors"][0]["path"], "model.w");
  EXPECT_EQ(j["tensors"][0]["strides"], nlohmann::json::array({1, 2}));
  RunResult h = run_dmeval("hash --json " + path);
  ASSERT_EQ(h.exit_code, 0) << h.output;
  EXPECT_EQ(nlohmann::json::parse(h.output)[0]["sha256"].get<std::string>().size(), 64u);
  RunResult missing = run_dmeval("inspect " + dir.file("nope.pth"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("nope.pth"), std::string::npos);
}

TEST(GoldenInceptionCli, InspectTruncatedRealHeader) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string file = golden_path("pt_inception-2015-12-05-truncated-header.pth");
  auto entries =
      regex_find(markdown_section(read_text(golden_path("inception/MANIFEST.md")), "inception-random.pth"),
                 "\\(([\\d,]+) entries");
  ASSERT_TRUE(entries);
  RunResult r = run_dmeval("inspect --json " + file, /*stderr=*/false);
  auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["tensor_count"].get<long long>(), parse_grouped_int(*entries));
  for (const auto& t : j["tensors"]) {
    EXPECT_FALSE(t["path"].get<std::string>().empty());
    EXPECT_TRUE(t["shape"].is_array());
  }
  EXPECT_GT(j["tensors_with_missing_data"].get<int>(), 0);
  RunResult text = run_dmeval("inspect --read " + file);
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.output.find("truncated"), std::string::npos);
  EXPECT_NE(text.output.find("Mixed_7c.branch_pool.conv.weight: float32 [192, 2048, 1, 1]"),
            std::string::npos)
      << "every entry is listed with its shape";
}

}  // namespace
}  // namespace dmeval

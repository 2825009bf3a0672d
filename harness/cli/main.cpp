// dmeval: evaluation and benchmarking of compressed diffusion models.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/runtime.h"
#include "harness/cli/commands.h"
#include "harness/cli/invocation.h"

int main(int argc, char** argv) {
  dmeval::cli::set_invocation(argc, argv);
  CLI::App app{"dmeval: exact, fast evaluation of compressed diffusion models"};
  app.require_subcommand(1);
  app.fallthrough();
  int threads = 0;
  app.add_option("--threads", threads,
                 "intra-op threads for libtorch (default: DMEVAL_THREADS, else all cores)")
      ->check(CLI::PositiveNumber);
  for (const auto& cmd : dmeval::cli::command_registry()) cmd.add(app);
  app.parse_complete_callback(
      [&] { dmeval::configure_threads(threads > 0 ? threads : dmeval::default_thread_count()); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const dmeval::cli::ExitCode& e) {
    return e.code;
  } catch (const dmeval::Error& e) {
    std::fprintf(stderr, "dmeval: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dmeval: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}

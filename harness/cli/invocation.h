// The exact command line of this process (recorded with every run in the results database).
#pragma once

#include <string>

namespace dmeval::cli {

void set_invocation(int argc, char** argv);
// Arguments joined with spaces; arguments with spaces or quotes are single-quoted (shell style).
const std::string& invocation();

}  // namespace dmeval::cli

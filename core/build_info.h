// Facts about this build, filled in at build time (cmake/build_info.cpp.in).
#pragma once

namespace dmeval {
const char* build_version();       // project version, e.g. "0.1.0"
const char* build_git_revision();  // short git hash, "-dirty" when the tree had changes
const char* build_type();          // CMake build type
const char* build_compiler();      // compiler id and version
}  // namespace dmeval

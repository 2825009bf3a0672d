# Writes core/build_info.h values (version, git revision, build flags) at configure time and
# refreshes the git revision at build time so `dmeval version` never reports a stale commit.
set(DMEVAL_BUILD_INFO_IN ${CMAKE_CURRENT_LIST_DIR}/build_info.cpp.in)
set(DMEVAL_BUILD_INFO_OUT ${CMAKE_BINARY_DIR}/generated/build_info.cpp)
add_custom_target(dmeval_build_info
  COMMAND ${CMAKE_COMMAND}
    -DSRC=${DMEVAL_BUILD_INFO_IN} -DDST=${DMEVAL_BUILD_INFO_OUT}
    -DGIT_DIR=${CMAKE_SOURCE_DIR}
    -DVERSION=${PROJECT_VERSION} -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
    -DCXX_ID=${CMAKE_CXX_COMPILER_ID}-${CMAKE_CXX_COMPILER_VERSION}
    -P ${CMAKE_CURRENT_LIST_DIR}/WriteBuildInfo.cmake
  BYPRODUCTS ${DMEVAL_BUILD_INFO_OUT}
  COMMENT "Refreshing build info (git revision)")

# Script mode: fill build_info.cpp.in; only rewrite the file when its content changes.
execute_process(COMMAND git -C ${GIT_DIR} rev-parse --short=12 HEAD
  OUTPUT_VARIABLE GIT_REV OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR GIT_REV STREQUAL "")
  set(GIT_REV "unknown")
else()
  execute_process(COMMAND git -C ${GIT_DIR} status --porcelain --untracked-files=no
    OUTPUT_VARIABLE DIRTY OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT DIRTY STREQUAL "")
    string(APPEND GIT_REV "-dirty")
  endif()
endif()
configure_file(${SRC} ${DST}.tmp @ONLY)
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${DST}.tmp ${DST})

# OpenCV's core, imgcodecs and imgproc. Debian ships OpenCV's CMake package files only in the large
# libopencv-dev meta package; dmeval installs just libopencv-core-dev and libopencv-imgcodecs-dev
# (headers and libraries), so when the CMake package is absent the three modules are found directly
# and defined as the same imported targets. Sets OpenCV_FOUND and OpenCV_INCLUDE_DIRS.
find_package(OpenCV QUIET COMPONENTS core imgcodecs imgproc)
if(NOT OpenCV_FOUND)
  find_path(DMEVAL_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4)
  set(OpenCV_FOUND TRUE)
  foreach(m core imgcodecs imgproc)
    find_library(DMEVAL_OPENCV_${m} opencv_${m})
    if(NOT DMEVAL_OPENCV_${m} OR NOT DMEVAL_OPENCV_INCLUDE)
      set(OpenCV_FOUND FALSE)
    endif()
  endforeach()
  if(OpenCV_FOUND)
    set(OpenCV_INCLUDE_DIRS ${DMEVAL_OPENCV_INCLUDE})
    foreach(m core imgcodecs imgproc)
      if(NOT TARGET opencv_${m})
        add_library(opencv_${m} UNKNOWN IMPORTED)
        set_target_properties(opencv_${m} PROPERTIES IMPORTED_LOCATION ${DMEVAL_OPENCV_${m}}
                                                     INTERFACE_INCLUDE_DIRECTORIES ${DMEVAL_OPENCV_INCLUDE})
      endif()
    endforeach()
    message(STATUS "dmeval: OpenCV modules found directly in ${DMEVAL_OPENCV_INCLUDE}")
  endif()
endif()

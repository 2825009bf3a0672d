# All third-party dependencies come from Debian packages (scripts/install-deps.sh).
# A CUDA-enabled libtorch (e.g. the one in a PyTorch 2.x wheel) is picked up with
#   -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(PNG REQUIRED)
# libzip via pkg-config: Debian's libzip CMake config also demands the zipcmp/ziptool programs.
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
# ddim-style YAML model configs.
find_package(yaml-cpp REQUIRED)
# OpenCV decodes the non-PNG image formats (JPEG, BMP, TIFF, WebP, PGM/PPM). Optional so that a
# minimal build (e.g. on a GPU machine with carried packages) still reads PNG through libpng.
include(DmevalOpenCV)
option(DMEVAL_OPENCV "Decode JPEG/BMP/TIFF/WebP through OpenCV" ${OpenCV_FOUND})

# libtorch: the CMake config of the Debian package lives in /usr/lib/<triplet>/cmake/Torch.
find_package(Torch REQUIRED)
# Debian's TorchConfig puts -D_GLIBCXX_USE_CXX11_ABI into TORCH_CXX_FLAGS; honour it everywhere.
if(TORCH_CXX_FLAGS)
  string(APPEND CMAKE_CXX_FLAGS " ${TORCH_CXX_FLAGS}")
endif()

# CUDA-specific code is built only when libtorch itself was built with CUDA.
set(DMEVAL_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES)
  set(DMEVAL_TORCH_HAS_CUDA ON)
endif()
option(DMEVAL_CUDA "Build CUDA-specific code (on when libtorch has CUDA)" ${DMEVAL_TORCH_HAS_CUDA})
message(STATUS "dmeval: libtorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}; CUDA code: ${DMEVAL_CUDA}")

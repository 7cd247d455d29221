# Debian packages (scripts/setup.sh installs them): OpenBLAS, LAPACKE, cJSON, PCRE2, bzip2,
# OpenSSL's libcrypto (sha256), OpenMP. Everything is gathered in one interface target.
find_package(PkgConfig REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(BZip2 REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
find_library(LAPACKE_LIB lapacke REQUIRED)
find_path(LAPACKE_INCLUDE lapacke.h PATHS /usr/include /usr/include/openblas REQUIRED)
find_library(CJSON_LIB cjson REQUIRED)
find_path(CJSON_INCLUDE cjson/cJSON.h REQUIRED)
find_library(MATH_LIB m REQUIRED)

add_library(harp_deps INTERFACE)
target_include_directories(harp_deps INTERFACE ${LAPACKE_INCLUDE} ${CJSON_INCLUDE})
target_link_libraries(harp_deps INTERFACE PkgConfig::OPENBLAS PkgConfig::PCRE2 ${LAPACKE_LIB}
  ${CJSON_LIB} BZip2::BZip2 OpenSSL::Crypto OpenMP::OpenMP_C ${MATH_LIB})
target_compile_definitions(harp_deps INTERFACE PCRE2_CODE_UNIT_WIDTH=8)
foreach(d OpenBLAS LAPACKE cJSON PCRE2 BZip2 OpenSSL OpenMP)
  message(STATUS "harp: dependency ${d} found")
endforeach()

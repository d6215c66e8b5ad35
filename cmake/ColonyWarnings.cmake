# Project-wide warning and sanitizer flags, applied through an interface target
# so third-party code (generated protobuf sources) can opt out.
add_library(colony_warnings INTERFACE)
# (clang, used for the fuzz build, has no -Wshadow=local)
target_compile_options(colony_warnings INTERFACE -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
  -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(COLONY_WERROR)
  target_compile_options(colony_warnings INTERFACE -Werror)
endif()
# GCC 12 at -O3 reports -Wrestrict inside libstdc++ for `"?" + std::to_string(n)`
# (GCC bug 105651, a false positive fixed in GCC 13); Release builds would fail on it.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(colony_warnings INTERFACE -Wno-restrict)
endif()

if(COLONY_SANITIZE)
  string(REPLACE "," ";" _san_list "${COLONY_SANITIZE}")
  foreach(_san IN LISTS _san_list)
    if(NOT _san MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "COLONY_SANITIZE: unknown sanitizer '${_san}' (address, undefined, thread)")
    endif()
  endforeach()
  add_compile_options(-fsanitize=${COLONY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${COLONY_SANITIZE})
endif()

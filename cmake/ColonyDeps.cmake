# Every dependency is a Debian 12 package (see `make deps`). CAF ships no CMake
# config in Debian, so it is wrapped in imported targets here.
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(spdlog REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
# Lua 5.4 for tenant plugins (adapters/src/lua: the sandbox)
pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
find_package(OpenSSL REQUIRED)
find_package(Boost 1.74 REQUIRED)

find_library(CAF_CORE_LIB caf_core REQUIRED)
find_library(CAF_IO_LIB caf_io REQUIRED)
add_library(caf::core UNKNOWN IMPORTED)
set_target_properties(caf::core PROPERTIES IMPORTED_LOCATION ${CAF_CORE_LIB}
  INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(caf::io UNKNOWN IMPORTED)
set_target_properties(caf::io PROPERTIES IMPORTED_LOCATION ${CAF_IO_LIB}
  INTERFACE_LINK_LIBRARIES caf::core)

# The node's allocator. glibc malloc took ~28% of colonyd's CPU under a GET
# load (buffers allocated on an Asio thread are freed on a CAF worker and the
# other way round); jemalloc's thread caches make that cheap (measured in
# docs/performance.md). Sanitizer and fuzz builds keep the C library's
# malloc, which ASan replaces with its own.
if(COLONY_SANITIZE OR COLONY_FUZZ)
  set(_colony_jemalloc_default OFF)
else()
  set(_colony_jemalloc_default ON)
endif()
option(COLONY_JEMALLOC "Link colonyd and the benchmark with jemalloc" ${_colony_jemalloc_default})
add_library(colony_allocator INTERFACE)
if(COLONY_JEMALLOC)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
  target_link_libraries(colony_allocator INTERFACE PkgConfig::JEMALLOC)
  target_compile_definitions(colony_allocator INTERFACE COLONY_JEMALLOC=1)
endif()

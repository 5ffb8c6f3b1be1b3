# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json)
find_package(OpenSSL REQUIRED)
find_package(PostgreSQL REQUIRED)
find_package(PkgConfig REQUIRED)
# yaml-cpp 0.7 (libyaml-cpp-dev) ships a CMake config with the imported target yaml-cpp.
find_package(yaml-cpp 0.7 REQUIRED CONFIG)
# libpqxx 6.4 ships only a pkg-config file, and that file omits -lpq.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx>=6.4)

add_library(preflight_pg_deps INTERFACE)
target_link_libraries(preflight_pg_deps INTERFACE PkgConfig::PQXX PostgreSQL::PostgreSQL)
# Debian's libpqxx config header lacks this, so std::optional parameters would not compile.
target_compile_definitions(preflight_pg_deps INTERFACE PQXX_HAVE_OPTIONAL)

# Asio: header-only; one compiled Boost.JSON.
add_library(preflight_asio_deps INTERFACE)
target_link_libraries(preflight_asio_deps INTERFACE Boost::headers Boost::json Threads::Threads)
target_compile_definitions(preflight_asio_deps INTERFACE BOOST_ASIO_NO_DEPRECATED)

install(TARGETS preflight_pg_deps preflight_asio_deps EXPORT preflightTargets)

#pragma once
// Absolute paths of this checkout and of its build, for the tests that start a script or a binary. They are
// compiled into one small generated unit (tests/CMakeLists.txt writes source_paths.cpp), never passed as -D values:
// a path on the command line differs from one clone to the next, so the compiler cache (cmake/PreflightCcache.cmake)
// could not reuse the large unit that carried it.

namespace preflight::test {

/// The repository root (where scripts/, examples/ and fuzz/ are).
extern const char* const source_dir;

/// The built preflightd; empty when the server is not built (PREFLIGHT_BUILD_SERVER=OFF).
extern const char* const preflightd_path;

}  // namespace preflight::test

# Unity builds: CMake compiles each target's sources in batches, one generated unit #including several .cpp files,
# so the Boost (Asio, Beast, JSON) and GoogleTest headers, and the templates every file instantiates from them, are
# compiled once per batch instead of once per file. docs/development.md has the measured cost of each way.
#
#   PREFLIGHT_UNITY_BUILD       ON (default when preflight is the top-level project) / OFF: one unit per file
#   PREFLIGHT_UNITY_BATCH_SIZE  how many .cpp files a unit holds at most (default 8)
#
# What this asks of the code: names in anonymous namespaces are unique within a target (two files of one target may
# not both define a helper `foo()`), and a file whose compile definitions differ from its target's is compiled alone
# (CMake leaves such files out of the batches by itself). -Wno-subobject-linkage: see PreflightWarnings.cmake.
include_guard(GLOBAL)

option(PREFLIGHT_UNITY_BUILD "Compile each target's sources in batches (unity build)" ON)
set(PREFLIGHT_UNITY_BATCH_SIZE 8 CACHE STRING "Source files per unity unit")
if(PREFLIGHT_UNITY_BUILD)
    set(CMAKE_UNITY_BUILD ON)
    set(CMAKE_UNITY_BUILD_BATCH_SIZE ${PREFLIGHT_UNITY_BATCH_SIZE})
endif()

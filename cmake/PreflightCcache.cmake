# Compiles through ccache (Debian's ccache, installed by scripts/setup.sh) when it is installed, so that a rebuild,
# another build directory or a fresh clone in another folder reuses the objects already compiled on this machine.
# docs/development.md ("The compiler cache") says how it works, how to look at it and how to clear it.
#
#   PREFLIGHT_CCACHE      ON (default) / OFF; also read from the environment on the first configure
#   PREFLIGHT_CCACHE_DIR  where the cache lives (default: ccache's own, ~/.cache/ccache); shared by every clone
#   PREFLIGHT_CCACHE_SIZE the bound on its size (default 5G); ccache evicts the oldest entries beyond it
#
# Settings passed to every compile (through the launcher, so a hand-run `cmake --build` uses them too):
#   base_dir = the repository root: absolute paths under it are rewritten as relative ones before hashing, so two
#              clones in different folders produce the same key (build directories inside the clone, as every
#              script puts them);
#   hash_dir = false: the compile's working directory is not part of the key (it only feeds DW_AT_comp_dir);
#   depend_mode: a miss runs the compiler once, never the preprocessor as well (Ninja already asks for -MD).
# A -D value holding an absolute path (PREFLIGHT_SOURCE_DIR, ...) still differs between clones: such values live in
# small generated files (tests/support/source_paths.cpp.in), never on the command line of a large translation unit.
# Does nothing when the caller set CMAKE_CXX_COMPILER_LAUNCHER itself.
include_guard(GLOBAL)

set(preflight_ccache_default ON)
if(DEFINED ENV{PREFLIGHT_CCACHE})
    set(preflight_ccache_default $ENV{PREFLIGHT_CCACHE})
endif()
option(PREFLIGHT_CCACHE "Compile through ccache when it is installed" ${preflight_ccache_default})
set(PREFLIGHT_CCACHE_DIR "$ENV{PREFLIGHT_CCACHE_DIR}" CACHE PATH "ccache directory (empty: ccache's default)")
set(PREFLIGHT_CCACHE_SIZE "5G" CACHE STRING "Upper bound on the ccache directory's size")

if(PREFLIGHT_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
    find_program(PREFLIGHT_CCACHE_PROGRAM ccache)
    if(PREFLIGHT_CCACHE_PROGRAM)
        get_filename_component(preflight_repo_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
        set(preflight_ccache_env CCACHE_BASEDIR=${preflight_repo_root} CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
                                 CCACHE_MAXSIZE=${PREFLIGHT_CCACHE_SIZE}
        )
        if(PREFLIGHT_CCACHE_DIR)
            list(APPEND preflight_ccache_env CCACHE_DIR=${PREFLIGHT_CCACHE_DIR})
        endif()
        set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env ${preflight_ccache_env} ${PREFLIGHT_CCACHE_PROGRAM})
        message(STATUS "preflight: compiling through ccache (${PREFLIGHT_CCACHE_PROGRAM}, max ${PREFLIGHT_CCACHE_SIZE})")
    else()
        message(STATUS "preflight: ccache not found, compiling without a cache (scripts/setup.sh installs it)")
    endif()
endif()

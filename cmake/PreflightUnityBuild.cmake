# Unity builds: each target's .cpp files are compiled in batches, one generated unit #including several of them,
# so the Boost (Asio, Beast, JSON) and GoogleTest headers, and the templates every file instantiates from them, are
# compiled once per batch instead of once per file. docs/development.md has the measured cost of each way.
#
#   PREFLIGHT_UNITY_BUILD       ON (default when preflight is the top-level project) / OFF: one unit per file
#   PREFLIGHT_UNITY_BATCH_SIZE  how many .cpp files a unit holds at most (default 8)
#
# Not CMake's own UNITY_BUILD: CMake 3.25 writes absolute #include paths into its unity files, so the same unit
# differs from one clone to the next and the compiler cache (PreflightCcache.cmake) never reuses it. These units
# include their files by a path relative to the unit, identical in every clone whose build directory sits at the
# same place inside it (as the scripts put them: build/<kind>).
#
# What this asks of the code: names in anonymous namespaces are unique within a target (two files of one target may
# not both define a helper `foo()`). A file with compile definitions or options of its own, or one generated into
# the build tree (its text may hold this clone's paths), is compiled alone. -Wno-subobject-linkage: see
# PreflightWarnings.cmake.
include_guard(GLOBAL)

option(PREFLIGHT_UNITY_BUILD "Compile each target's sources in batches (unity build)" ON)
set(PREFLIGHT_UNITY_BATCH_SIZE 8 CACHE STRING "Source files per unity unit")
if(NOT PREFLIGHT_UNITY_BATCH_SIZE MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "PREFLIGHT_UNITY_BATCH_SIZE='${PREFLIGHT_UNITY_BATCH_SIZE}': a positive number of files")
endif()

# preflight_unity_target(<target>): replaces the target's batchable .cpp sources by generated unity units.
function(preflight_unity_target target)
    get_target_property(sources ${target} SOURCES)
    get_target_property(src_dir ${target} SOURCE_DIR)
    get_target_property(bin_dir ${target} BINARY_DIR)
    set(batch "")
    set(kept "")
    foreach(s IN LISTS sources)
        get_filename_component(path "${s}" ABSOLUTE BASE_DIR "${src_dir}")
        get_source_file_property(defs "${path}" TARGET_DIRECTORY ${target} COMPILE_DEFINITIONS)
        get_source_file_property(opts "${path}" TARGET_DIRECTORY ${target} COMPILE_OPTIONS)
        string(FIND "${path}" "${CMAKE_BINARY_DIR}/" in_build)
        if(path MATCHES "\\.cpp$" AND NOT defs AND NOT opts AND NOT in_build EQUAL 0)
            list(APPEND batch "${path}")
        else()
            list(APPEND kept "${s}")
        endif()
    endforeach()
    list(LENGTH batch n)
    if(n LESS 2)
        return()
    endif()
    set(unit_dir "${bin_dir}/unity")
    set(units "")
    set(i 0)
    foreach(path IN LISTS batch)
        math(EXPR unit "${i} / ${PREFLIGHT_UNITY_BATCH_SIZE}")
        set(unit_file "${unit_dir}/${target}_${unit}.cpp")
        if(NOT unit_file IN_LIST units)
            list(APPEND units "${unit_file}")
            set(text_${unit} "")
        endif()
        file(RELATIVE_PATH rel "${unit_dir}" "${path}")
        string(APPEND text_${unit} "#include \"${rel}\"\n")
        math(EXPR i "${i} + 1")
    endforeach()
    set(unit 0)
    foreach(unit_file IN LISTS units)
        file(CONFIGURE OUTPUT "${unit_file}" CONTENT "${text_${unit}}" @ONLY)
        math(EXPR unit "${unit} + 1")
    endforeach()
    list(APPEND kept ${units})
    set_property(TARGET ${target} PROPERTY SOURCES "${kept}")
endfunction()

# preflight_unity_all(<dir>): every compiled target defined in <dir> and below (called once, at the end of the
# top-level CMakeLists.txt, when every target has all its sources and their properties).
function(preflight_unity_all dir)
    if(NOT PREFLIGHT_UNITY_BUILD)
        return()
    endif()
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t IN LISTS targets)
        get_target_property(type ${t} TYPE)
        if(type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
            preflight_unity_target(${t})
        endif()
    endforeach()
    get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
    foreach(d IN LISTS subdirs)
        preflight_unity_all("${d}")
    endforeach()
endfunction()

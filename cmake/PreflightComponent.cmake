# preflight_add_component(<name> SOURCES ... [DEPS ...])
# Creates preflight_<name> with the alias preflight::<name>, public headers in <name>/include, and installs it.
function(preflight_add_component name)
    cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
    set(target preflight_${name})
    if(ARG_SOURCES)
        add_library(${target} ${ARG_SOURCES})
        target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE $<BUILD_INTERFACE:preflight_warnings>)
        target_include_directories(
            ${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
            PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src
        )
        set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    else()
        add_library(${target} INTERFACE)
        target_link_libraries(${target} INTERFACE ${ARG_DEPS})
        target_include_directories(
            ${target} INTERFACE $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
        )
    endif()
    add_library(preflight::${name} ALIAS ${target})
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
    install(TARGETS ${target} EXPORT preflightTargets)
    install(DIRECTORY include/ DESTINATION include)
endfunction()

include(CMakePackageConfigHelpers)
set(PREFLIGHT_CMAKE_DIR lib/cmake/preflight)
install(EXPORT preflightTargets NAMESPACE preflight:: DESTINATION ${PREFLIGHT_CMAKE_DIR})
configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/preflightConfig.cmake.in ${PROJECT_BINARY_DIR}/preflightConfig.cmake
    INSTALL_DESTINATION ${PREFLIGHT_CMAKE_DIR}
)
write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/preflightConfigVersion.cmake COMPATIBILITY SameMinorVersion
)
install(FILES ${PROJECT_BINARY_DIR}/preflightConfig.cmake ${PROJECT_BINARY_DIR}/preflightConfigVersion.cmake
        DESTINATION ${PREFLIGHT_CMAKE_DIR}
)

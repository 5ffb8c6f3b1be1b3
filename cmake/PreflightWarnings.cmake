add_library(preflight_warnings INTERFACE)
target_compile_options(preflight_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow)
if(PREFLIGHT_UNITY_BUILD)
    # In a unity build the .cpp files of a batch are #included into one unit, so g++ takes a type of one of them
    # that holds an anonymous-namespace member (or a coroutine frame) for a header type: a false ODR warning.
    target_compile_options(preflight_warnings INTERFACE -Wno-subobject-linkage)
endif()
if(PREFLIGHT_WERROR)
    target_compile_options(preflight_warnings INTERFACE -Werror)
endif()

if(PREFLIGHT_SANITIZE)
    if(NOT PREFLIGHT_SANITIZE MATCHES "^(address,undefined|address|undefined|thread)$")
        message(FATAL_ERROR "PREFLIGHT_SANITIZE='${PREFLIGHT_SANITIZE}': use 'address,undefined' or 'thread'")
    endif()
    add_compile_options(-fsanitize=${PREFLIGHT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${PREFLIGHT_SANITIZE})
    # g++ 12 at -O1 with sanitizers reports Asio's coroutine frame operator delete as mismatched (a false positive).
    # It also reports std::optional members as maybe-uninitialized at -O1 with sanitizers (false positives).
    add_compile_options(-Wno-mismatched-new-delete -Wno-maybe-uninitialized)
    if(PREFLIGHT_SANITIZE STREQUAL "thread")
        # g++ 12 warns that TSan does not model Asio's atomic_thread_fence; that is not a finding.
        add_compile_options(-Wno-tsan)
    endif()
endif()
install(TARGETS preflight_warnings EXPORT preflightTargets)

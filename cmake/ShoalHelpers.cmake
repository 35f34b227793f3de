# Helper functions shared by every folder.
#
#   shoal_library(NAME [SRCS ...] [DEPS ...] [PUBLIC_DEPS ...])
#       One library per folder (DESIGN.md §2). Without SRCS it is an INTERFACE target,
#       so a folder can exist before its code does.
#   shoal_test(NAME SRCS ... LABELS unit|priv|e2e|vm|slow [DEPS ...] [TIMEOUT s])
#       A GoogleTest executable; each TEST() becomes one ctest test with the labels.
#   shoal_benchmark(NAME SRCS ... [DEPS ...])
#       A Google Benchmark executable under bench/.
#   shoal_executable(NAME SRCS ... [DEPS ...])

set(SHOAL_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(SHOAL_WERROR)
  list(APPEND SHOAL_WARNINGS -Werror)
endif()

if(SHOAL_SANITIZE)
  if(SHOAL_SANITIZE STREQUAL "thread")
    set(_shoal_san -fsanitize=thread)
  elseif(SHOAL_SANITIZE MATCHES "^(address|undefined|address,undefined|undefined,address)$")
    set(_shoal_san -fsanitize=${SHOAL_SANITIZE} -fno-sanitize-recover=undefined)
  else()
    message(FATAL_ERROR "SHOAL_SANITIZE must be 'address,undefined', 'address', 'undefined' "
                        "or 'thread', got '${SHOAL_SANITIZE}'")
  endif()
  add_compile_options(${_shoal_san} -fno-omit-frame-pointer)
  add_link_options(${_shoal_san})
endif()

set(SHOAL_VALID_LABELS unit priv e2e vm slow)

function(shoal_apply_defaults target)
  target_compile_options(${target} PRIVATE ${SHOAL_WARNINGS})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()

function(shoal_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  if(ARG_SRCS)
    add_library(${name} STATIC ${ARG_SRCS})
    shoal_apply_defaults(${name})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_PUBLIC_DEPS} ${ARG_DEPS})
  endif()
endfunction()

function(shoal_executable name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  shoal_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

function(shoal_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "shoal_test(${name}): LABELS is required (${SHOAL_VALID_LABELS})")
  endif()
  foreach(label IN LISTS ARG_LABELS)
    if(NOT label IN_LIST SHOAL_VALID_LABELS)
      message(FATAL_ERROR "shoal_test(${name}): unknown label '${label}'")
    endif()
  endforeach()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SRCS})
  shoal_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock shoal_test_main)
  # PRE_TEST: list the tests when ctest runs, not at build time (faster builds, and a
  # priv test binary never runs during a non-root build).
  # Tests that touch the real kernel or a lab run one at a time.
  set(_serial FALSE)
  foreach(label IN ITEMS priv e2e vm)
    if(label IN_LIST ARG_LABELS)
      set(_serial TRUE)
    endif()
  endforeach()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL ${_serial})
endfunction()

# Adds every direct subfolder of `parent` that has a CMakeLists.txt (sorted), so areas such as
# manager/raft or bench/runtime own their file and never edit a shared list.
function(shoal_add_subdirs parent)
  file(GLOB _entries LIST_DIRECTORIES true CONFIGURE_DEPENDS ${parent}/*)
  list(SORT _entries)
  foreach(d IN LISTS _entries)
    if(IS_DIRECTORY ${d} AND EXISTS ${d}/CMakeLists.txt)
      add_subdirectory(${d})
    endif()
  endforeach()
endfunction()

function(shoal_benchmark name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  shoal_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark benchmark::benchmark_main)
endfunction()

# The VM lab's CMake interface (DESIGN.md §3, §8): tests that need a kernel this machine lacks
# (IPVS, pure cgroup v2, ESP) run inside Debian's kernel under qemu.
#
#   shoal_vm_test(NAME
#     BINARY target...      | SCRIPT file.sh        what runs inside the VM (exactly one of them)
#     [FILTER "gtest filter"]   passed as --gtest_filter to every BINARY
#     [ARGS arg...]             extra arguments to every BINARY / to the SCRIPT
#     [TARGETS target...]       more project executables to put on PATH in the VM (e.g. shoal)
#     [HOST_PATHS target|file...]  executables/files put at the SAME absolute path as on the
#                               build host (for tests with build paths compiled in)
#     [ALLOW_SKIP]              let gtest skips pass (by default a skip inside the VM fails:
#                               the lab exists to provide what tests would skip for)
#     [PROGRAMS name...]        more host programs to put in the VM (found in PATH at build time)
#     [MODULES name...]         more kernel modules to load (besides tests/vm/modules.list)
#     [VMS n]                   boot n VMs (1..3) on a private network; default 1
#     [TIMEOUT s])              hard limit for boot + test; default 240
#
# Each call becomes one ctest test NAME with label `vm` that boots the VM(s) and runs NAME
# inside. Every BINARY is started as `<binary> --gtest_filter=<FILTER> <ARGS>` one after the
# other and all must exit 0 without skipping a test; a SCRIPT runs under `sh -e` (dash, with busybox applets) with ARGS
# (see init for the environment it sees: SHOAL_VM_NODE, SHOAL_VM_NODES, SHOAL_VM_PEERS). Call
# it from tests/vm/<area>/CMakeLists.txt (included automatically); targets may be defined
# anywhere.
# All tests share one image (built once per ctest run by the `vm_image` fixture, cached by
# content hash); run one with `ctest --test-dir build -R <NAME> --output-on-failure`.

set(SHOAL_VM_SRC ${CMAKE_CURRENT_LIST_DIR})
set(SHOAL_VM_BIN ${PROJECT_BINARY_DIR}/tests/vm)
# Host programs every VM gets (tests drive them as a user would).
set(SHOAL_VM_DEFAULT_PROGRAMS ip ss ipvsadm nft conntrack)

function(_shoal_vm_add kind)
  string(JOIN "\t" line ${kind} ${ARGN})
  set_property(GLOBAL APPEND PROPERTY SHOAL_VM_MANIFEST_LINES "${line}")
endfunction()

function(shoal_vm_test name)
  cmake_parse_arguments(ARG "ALLOW_SKIP" "SCRIPT;FILTER;VMS;TIMEOUT"
                        "BINARY;ARGS;TARGETS;HOST_PATHS;PROGRAMS;MODULES" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "shoal_vm_test(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT name MATCHES "^[A-Za-z0-9_.-]+$")
    message(FATAL_ERROR "shoal_vm_test(${name}): name may use letters, digits, _ . - only")
  endif()
  if((ARG_BINARY AND ARG_SCRIPT) OR (NOT ARG_BINARY AND NOT ARG_SCRIPT))
    message(FATAL_ERROR "shoal_vm_test(${name}): give exactly one of BINARY or SCRIPT")
  endif()
  if(NOT ARG_VMS)
    set(ARG_VMS 1)
  endif()
  if(NOT ARG_VMS MATCHES "^[123]$")
    message(FATAL_ERROR "shoal_vm_test(${name}): VMS must be 1, 2 or 3, got '${ARG_VMS}'")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 240)
  endif()
  foreach(arg IN LISTS ARG_ARGS ARG_FILTER)
    if(arg MATCHES "['\t\n]")
      message(FATAL_ERROR "shoal_vm_test(${name}): quotes, tabs and newlines are not allowed "
                          "in FILTER/ARGS ('${arg}')")
    endif()
  endforeach()
  set(args "")
  foreach(arg IN LISTS ARG_ARGS)
    string(APPEND args " '${arg}'")
  endforeach()

  foreach(tgt IN LISTS ARG_BINARY ARG_TARGETS)
    _shoal_vm_add(bin "$<TARGET_FILE:${tgt}>")
  endforeach()
  foreach(item IN LISTS ARG_HOST_PATHS)
    if(TARGET ${item})
      _shoal_vm_add(bin "$<TARGET_FILE:${item}>" "$<TARGET_FILE:${item}>")
    else()
      cmake_path(ABSOLUTE_PATH item BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
      _shoal_vm_add(file ${item} ${item})
    endif()
  endforeach()
  foreach(prog IN LISTS ARG_PROGRAMS)
    _shoal_vm_add(prog ${prog})
  endforeach()
  foreach(mod IN LISTS ARG_MODULES)
    _shoal_vm_add(module ${mod})
  endforeach()

  if(ARG_SCRIPT)
    cmake_path(ABSOLUTE_PATH ARG_SCRIPT BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
    if(NOT EXISTS ${ARG_SCRIPT})
      message(FATAL_ERROR "shoal_vm_test(${name}): SCRIPT ${ARG_SCRIPT} does not exist")
    endif()
    _shoal_vm_add(file ${ARG_SCRIPT} /opt/shoal/checks/${name}.sh)
    set(command "exec sh -e /opt/shoal/checks/${name}.sh${args}")
  else()
    set(filter "")
    if(ARG_FILTER)
      set(filter " '--gtest_filter=${ARG_FILTER}'")
    endif()
    set(runner "shoal-vm-gtest")
    if(ARG_ALLOW_SKIP)
      set(runner "shoal-vm-gtest --allow-skip")
    endif()
    set(steps "")
    foreach(tgt IN LISTS ARG_BINARY)
      list(APPEND steps "${runner} /opt/shoal/bin/$<TARGET_FILE_NAME:${tgt}>${filter}${args}")
    endforeach()
    string(JOIN " && " command ${steps})
  endif()
  _shoal_vm_add(test ${name} "${command}")

  add_test(NAME ${name}
    COMMAND ${SHOAL_VM_SRC}/run-vm --image-env ${SHOAL_VM_BIN}/image/image.env --run ${name}
            --vms ${ARG_VMS} --timeout ${ARG_TIMEOUT} --log-dir ${SHOAL_VM_BIN}/logs)
  math(EXPR ctest_timeout "${ARG_TIMEOUT} + 30")
  set_tests_properties(${name} PROPERTIES
    LABELS vm RUN_SERIAL TRUE TIMEOUT ${ctest_timeout} SKIP_RETURN_CODE 77
    FIXTURES_REQUIRED shoal_vm_image)
endfunction()

# Called once after every shoal_vm_test: writes the manifest and adds the image-building
# fixture test that every VM test requires.
function(shoal_vm_finalize)
  foreach(prog IN LISTS SHOAL_VM_DEFAULT_PROGRAMS)
    _shoal_vm_add(prog ${prog})
  endforeach()
  get_property(lines GLOBAL PROPERTY SHOAL_VM_MANIFEST_LINES)
  list(REMOVE_DUPLICATES lines)
  list(JOIN lines "\n" content)
  file(GENERATE OUTPUT ${SHOAL_VM_BIN}/manifest.tsv CONTENT "${content}\n")
  add_test(NAME vm_image
    COMMAND ${SHOAL_VM_SRC}/build-image --manifest ${SHOAL_VM_BIN}/manifest.tsv
            --out ${SHOAL_VM_BIN}/image --skip-without-qemu)
  set_tests_properties(vm_image PROPERTIES
    LABELS vm RUN_SERIAL TRUE TIMEOUT 900 FIXTURES_SETUP shoal_vm_image)
endfunction()

# The CPU kernel variants: one OBJECT library per variant (its folder's sources, its flags), and a generated
# registry (lowbit_variants.inc, read by csrc/cpu/kernels/isa.cpp) holding each one's name, parent, CPUID test
# and table filler. Adding a variant is one lowbit_add_variant() call in CMakeLists.txt plus its folder.

set(LOWBIT_GENERATED_DIR "${CMAKE_BINARY_DIR}/generated")
set(LOWBIT_VARIANT_OBJECTS "")
set(LOWBIT_VARIANT_TARGETS "")
set(_LOWBIT_REGISTRY "")
set(_LOWBIT_DECLS "")
set(_LOWBIT_EMULATED "")
# Options every kernel file is built with (-ffp-contract=off: variants must round alike where tests demand
# bit-equality; FMA is written out where it is wanted).
set(LOWBIT_KERNEL_OPTIONS -O3 -ffp-contract=off -fno-math-errno -Wall -Wextra)

# Flags of an emulated build: SIMDe implements the variant's intrinsics with AVX2, which every x86-64 machine
# this project runs on has; the emulated variant therefore needs AVX2/FMA/F16C to run.
set(_LOWBIT_EMU_FEATURES avx2 fma f16c)
# -Wno-psabi: SIMDe passes its 64-byte vector types by value, which GCC notes would differ from a zmm ABI.
# -O1: SIMDe's portable code inlined into every unrolled register tile made one file take a minute at -O3
# (three under the sanitizers); the emulated tests run in seconds either way, and are never timed.
set(_LOWBIT_EMU_FLAGS -mavx2 -mfma -mf16c -Wno-psabi -O1)

# SIMDe's headers: LOWBIT_SIMDE_INCLUDE, or where PyPI's cmeel-simde puts them in the Python environment that
# runs the build (<purelib>/cmeel.prefix/include).
if(LOWBIT_EMULATED_ISAS AND NOT EXISTS "${LOWBIT_SIMDE_INCLUDE}/simde/x86/avx512.h")
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
                    OUTPUT_VARIABLE _purelib OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(LOWBIT_SIMDE_INCLUDE "${_purelib}/cmeel.prefix/include" CACHE PATH "" FORCE)
  endif()
endif()

function(_lowbit_variant_object name id parent_id features flags sources emulated opt_in)
  set(target lowbit_kernels_${id})
  add_library(${target} OBJECT ${sources})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/csrc)
  # LOWBIT_VARIANT_NS: the namespace the variant's sources put their kernels in (differs between a variant and
  # its emulated twin, so the two builds of one source never share a symbol); LOWBIT_VARIANT_FILL: its filler.
  target_compile_definitions(${target} PRIVATE LOWBIT_VARIANT_NS=${id} LOWBIT_VARIANT_FILL=fill_kernels_${id})
  target_compile_options(${target} PRIVATE ${LOWBIT_KERNEL_OPTIONS} ${flags})
  if(emulated)
    if(NOT EXISTS "${LOWBIT_SIMDE_INCLUDE}/simde/x86/avx512.h")
      message(FATAL_ERROR "LOWBIT_EMULATED_ISAS needs SIMDe: set LOWBIT_SIMDE_INCLUDE to the directory holding "
                          "simde/x86/avx512.h (pip install cmeel-simde; it is <site-packages>/cmeel.prefix/include)")
    endif()
    target_include_directories(${target} SYSTEM PRIVATE ${LOWBIT_SIMDE_INCLUDE})
    target_compile_definitions(${target} PRIVATE LOWBIT_SIMDE=1)
  endif()
  set(test "true")
  foreach(f ${features})
    set(test "${test} && __builtin_cpu_supports(\"${f}\")")
  endforeach()
  if(parent_id STREQUAL "")
    set(parent "nullptr")
  else()
    set(parent "\"${parent_id}\"")
  endif()
  string(REPLACE "_emu" "-emu" display "${id}")
  string(REPLACE "_emu" "-emu" parent "${parent}")
  # newest first: the registry lists the best variant first
  set(_LOWBIT_REGISTRY "    {\"${display}\", ${parent}, ${emulated}, ${opt_in}, [] { return ${test}; }, fill_kernels_${id}},\n${_LOWBIT_REGISTRY}" PARENT_SCOPE)
  set(_LOWBIT_DECLS "${_LOWBIT_DECLS}void fill_kernels_${id}(KernelTable&);\n" PARENT_SCOPE)
  set(LOWBIT_VARIANT_OBJECTS ${LOWBIT_VARIANT_OBJECTS} $<TARGET_OBJECTS:${target}> PARENT_SCOPE)
  set(LOWBIT_VARIANT_TARGETS ${LOWBIT_VARIANT_TARGETS} ${target} PARENT_SCOPE)
endfunction()

function(lowbit_add_variant name)
  cmake_parse_arguments(V "EMULATE;OPT_IN" "PARENT" "FEATURES;FLAGS;SOURCES" ${ARGN})
  if(NOT V_SOURCES)
    message(FATAL_ERROR "lowbit_add_variant(${name}): no SOURCES")
  endif()
  get_property(known GLOBAL PROPERTY LOWBIT_VARIANT_NAMES)
  if(V_PARENT AND NOT V_PARENT IN_LIST known)
    message(FATAL_ERROR "lowbit_add_variant(${name}): PARENT ${V_PARENT} is not a variant added before it "
                        "(known: ${known})")
  endif()
  # an emulated twin inherits from its parent's twin, or from the native parent itself, which must then run
  # wherever the emulation does (on the emulation's features alone)
  get_property(emulate_declared GLOBAL PROPERTY LOWBIT_EMULATE_VARIANTS)
  if(V_EMULATE AND V_PARENT AND NOT V_PARENT IN_LIST emulate_declared)
    get_property(parent_features GLOBAL PROPERTY LOWBIT_VARIANT_${V_PARENT}_FEATURES)
    foreach(f ${parent_features})
      if(NOT f IN_LIST _LOWBIT_EMU_FEATURES)
        message(FATAL_ERROR "lowbit_add_variant(${name} EMULATE): its parent ${V_PARENT} needs ${f}, which the "
                            "emulated build does not assume (${_LOWBIT_EMU_FEATURES}); make ${V_PARENT} EMULATE too")
      endif()
    endforeach()
  endif()
  set_property(GLOBAL APPEND PROPERTY LOWBIT_VARIANT_NAMES ${name})
  if(V_EMULATE)
    set_property(GLOBAL APPEND PROPERTY LOWBIT_EMULATE_VARIANTS ${name})
  endif()
  set_property(GLOBAL PROPERTY LOWBIT_VARIANT_${name}_FEATURES ${V_FEATURES})
  # OPT_IN: never chosen from CPUID, only by LOWBIT_CPU_ISA=<name> (a variant not yet verified on hardware)
  if(V_OPT_IN)
    set(opt_in true)
  else()
    set(opt_in false)
  endif()
  _lowbit_variant_object(${name} ${name} "${V_PARENT}" "${V_FEATURES}" "${V_FLAGS}" "${V_SOURCES}" false ${opt_in})
  set(emulated ${_LOWBIT_EMULATED})
  if(V_EMULATE AND LOWBIT_EMULATED_ISAS)
    # the twin's parent is the parent's twin when there is one, else the (native) parent itself
    set(parent_emu "${V_PARENT}")
    if("${V_PARENT}" IN_LIST _LOWBIT_EMULATED)
      set(parent_emu "${V_PARENT}_emu")
    endif()
    _lowbit_variant_object(${name} ${name}_emu "${parent_emu}" "${_LOWBIT_EMU_FEATURES}" "${_LOWBIT_EMU_FLAGS}"
                           "${V_SOURCES}" true ${opt_in})
    list(APPEND emulated ${name})
  endif()
  set(_LOWBIT_EMULATED ${emulated} PARENT_SCOPE)
  set(_LOWBIT_REGISTRY "${_LOWBIT_REGISTRY}" PARENT_SCOPE)
  set(_LOWBIT_DECLS "${_LOWBIT_DECLS}" PARENT_SCOPE)
  set(LOWBIT_VARIANT_OBJECTS ${LOWBIT_VARIANT_OBJECTS} PARENT_SCOPE)
  set(LOWBIT_VARIANT_TARGETS ${LOWBIT_VARIANT_TARGETS} PARENT_SCOPE)
endfunction()

function(lowbit_write_variant_registry)
  file(MAKE_DIRECTORY ${LOWBIT_GENERATED_DIR})
  set(text "// Generated by cmake/variants.cmake from the lowbit_add_variant() calls in CMakeLists.txt. Do not edit.\n")
  string(APPEND text "namespace lowbit::cpu {\n${_LOWBIT_DECLS}}  // namespace lowbit::cpu\n\n")
  string(APPEND text "#define LOWBIT_VARIANT_LIST \\\n")
  string(REPLACE "\n" " \\\n" rows "${_LOWBIT_REGISTRY}")
  string(APPEND text "${rows}\n")
  file(CONFIGURE OUTPUT ${LOWBIT_GENERATED_DIR}/lowbit_variants.inc CONTENT "${text}" @ONLY)
endfunction()

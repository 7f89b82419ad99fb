# Installs the built project into a scratch prefix, then configures, builds
# and runs examples/consumer against it with find_package(conv1d).
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE result)
if(result)
  message(FATAL_ERROR "cmake --install failed")
endif()
# The consumer uses the library's compiler: a static library built by clang
# needs clang's OpenMP runtime, which GCC does not link.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/build
                -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
                -DCMAKE_CXX_COMPILER=${CXX_COMPILER} RESULT_VARIABLE result)
if(result)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE result)
if(result)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE result)
if(result)
  message(FATAL_ERROR "the consumer failed")
endif()
if(NOT EXISTS ${prefix}/bin/conv1d AND BUILD_TOOLS)
  message(FATAL_ERROR "the conv1d program was not installed")
endif()

# The streaming example needs libsndfile; build and check it where it is installed.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(SNDFILE QUIET sndfile)
endif()
if(SNDFILE_FOUND)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/wavenet_stream
                  -B ${WORK_DIR}/wavenet -DCMAKE_PREFIX_PATH=${prefix}
                  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} RESULT_VARIABLE result)
  if(result)
    message(FATAL_ERROR "configuring examples/wavenet_stream failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/wavenet RESULT_VARIABLE result)
  if(result)
    message(FATAL_ERROR "building examples/wavenet_stream failed")
  endif()
  # --check: the streamed output must equal the offline forward.
  execute_process(COMMAND ${WORK_DIR}/wavenet/wavenet_stream --check
                  WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result)
  if(result)
    message(FATAL_ERROR "examples/wavenet_stream --check failed")
  endif()
else()
  message(STATUS "libsndfile not found: examples/wavenet_stream not built")
endif()

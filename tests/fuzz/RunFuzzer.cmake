# cmake -DFUZZER=exe -DCORPUS=dir -DDICT=file -DWORK=dir -DTIME=seconds -P RunFuzzer.cmake
# Fuzzes over a fresh copy of CORPUS (the source tree is never written); fails on any crash.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()
set(args -max_total_time=${TIME} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
         -artifact_prefix=${WORK}/artifacts/)
if(EXISTS ${DICT})
  list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB crashes ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); reproducers: ${crashes}")
endif()

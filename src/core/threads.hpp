// The one parallel loop of the library. Tasks are independent and each
// writes its own outputs, so results never depend on the thread count.
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace conv1d::core {

// Threads meant by "0 = all available".
inline int resolve_threads(int requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

// Calls body(task) for task in [0, tasks) on up to `threads` threads.
template <class Body>
void parallel_for(int64_t tasks, int threads, const Body& body) {
#ifdef _OPENMP
  if (threads > 1 && tasks > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t task = 0; task < tasks; ++task) body(task);
    return;
  }
#else
  (void)threads;
#endif
  for (int64_t task = 0; task < tasks; ++task) body(task);
}

}  // namespace conv1d::core

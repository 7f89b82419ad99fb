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

// Threads worth waking for work the cost model rates `seconds` on one
// thread. Starting and joining a parallel loop costs a few microseconds
// (more when a thread has gone to sleep): t threads pay when seconds / t +
// kParallelLoopSeconds < seconds. Each thread gets twice that, as the model
// reads small layers up to 3x slow (one output of a 64 -> 128 layer: 15
// us, ~4 us run; halving the margin ran WaveNet's streaming pushes 2x
// slower) as well as 2x quick (768 depthwise channels, K = 15, 100
// samples, once rated 14 us, ran 27 us on one thread and 19 on two). A streaming
// push of 64 -> 128 channels, K = 2, took 5.6 us on two threads against
// 1.1 us on one.
inline constexpr double kParallelLoopSeconds = 5e-6;
inline constexpr double kSecondsPerThread = 2 * kParallelLoopSeconds;
inline int threads_for_work(double seconds, int threads) {
  const double worth = seconds / kSecondsPerThread;
  if (!(worth < threads)) return threads;  // also NaN
  return worth < 2 ? 1 : static_cast<int>(worth);
}

// Calls body(task) for task in [0, tasks) on up to `threads` threads; on
// the calling thread alone inside another parallel loop (a stream runs
// plans side by side), whatever OpenMP's nesting setting.
template <class Body>
void parallel_for(int64_t tasks, int threads, const Body& body) {
#ifdef _OPENMP
  if (threads > 1 && tasks > 1 && !omp_in_parallel()) {
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

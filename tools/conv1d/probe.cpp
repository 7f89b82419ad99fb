#include "probe.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace conv1d::cli {

namespace {

using Clock = std::chrono::steady_clock;

// 12 independent accumulators in named registers cover FMA latency (4
// cycles) x 2 ports with slack, so the loop is throughput bound. (An array
// of accumulators ends up in memory at -O2, and equal starting values let
// the compiler merge the chains into one.) Returns FLOPs done.
#define CONV1D_FMA12(fma, V)                                                              \
  V a0 = x, a1 = a0 + x, a2 = a1 + x, a3 = a2 + x, a4 = a3 + x, a5 = a4 + x, a6 = a5 + x, \
    a7 = a6 + x, a8 = a7 + x, a9 = a8 + x, a10 = a9 + x, a11 = a10 + x;                   \
  for (long it = 0; it < iterations; ++it) {                                              \
    a0 = fma(a0, m, c);                                                                   \
    a1 = fma(a1, m, c);                                                                   \
    a2 = fma(a2, m, c);                                                                   \
    a3 = fma(a3, m, c);                                                                   \
    a4 = fma(a4, m, c);                                                                   \
    a5 = fma(a5, m, c);                                                                   \
    a6 = fma(a6, m, c);                                                                   \
    a7 = fma(a7, m, c);                                                                   \
    a8 = fma(a8, m, c);                                                                   \
    a9 = fma(a9, m, c);                                                                   \
    a10 = fma(a10, m, c);                                                                 \
    a11 = fma(a11, m, c);                                                                 \
  }                                                                                       \
  x = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;

__attribute__((target("avx512f"))) double fma_loop_avx512(long iterations, float* sink) {
  __m512 x = _mm512_set1_ps(1.0f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  CONV1D_FMA12(_mm512_fmadd_ps, __m512)
  float lanes[16];
  _mm512_storeu_ps(lanes, x);
  *sink = lanes[0];
  return static_cast<double>(iterations) * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iterations, float* sink) {
  __m256 x = _mm256_set1_ps(1.0f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  CONV1D_FMA12(_mm256_fmadd_ps, __m256)
  float lanes[8];
  _mm256_storeu_ps(lanes, x);
  *sink = lanes[0];
  return static_cast<double>(iterations) * 12 * 8 * 2;
}
#undef CONV1D_FMA12

// Work per second of `threads` workers that start together: the clock
// starts when the last one is running (the others spin until then), since
// waking an idle virtual CPU can take longer than the work (timed from
// thread creation, two threads read ~256 instead of ~420 GFLOP/s here), and
// stops when the last one finishes, which also counts the time slicing of
// more threads than cores.
template <class Work>
double run_on_threads(int threads, const Work& work) {
  std::vector<double> amounts(static_cast<size_t>(threads));
  std::vector<Clock::time_point> ends(static_cast<size_t>(threads));
  std::atomic<int> arrived{0};
  Clock::time_point start;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      if (arrived.fetch_add(1) + 1 == threads) start = Clock::now();
      // Yielding: with more threads than cores the last ones must get a core.
      while (arrived.load() < threads) std::this_thread::yield();
      amounts[static_cast<size_t>(t)] = work();
      ends[static_cast<size_t>(t)] = Clock::now();
    });
  }
  for (auto& worker : workers) worker.join();
  double total = 0;
  for (double amount : amounts) total += amount;
  const Clock::time_point end = *std::max_element(ends.begin(), ends.end());
  return total / std::chrono::duration<double>(end - start).count();
}

}  // namespace

MachinePeak measure_peak(int threads) {
  MachinePeak peak;
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  peak.isa = avx512 ? "avx512" : avx2 ? "avx2" : "none";
  // Best of several short runs: the machine may be shared and noisy, and a
  // neighbour can hold one of its cores for hundreds of milliseconds (two
  // threads read 208-276 instead of ~420 GFLOP/s here when the rounds ran
  // back to back). Many short FMA rounds (~7 ms each) spread over ~1.5 s,
  // fewer of the slower copies.
  constexpr int kFmaRounds = 32;
  constexpr auto kFmaPause = std::chrono::milliseconds(40);
  constexpr int kCopyRounds = 5;
  for (int round = 0; round < kFmaRounds; ++round) {
    if (round > 0) std::this_thread::sleep_for(kFmaPause);
    const double flops_per_s = run_on_threads(threads, [&] {
      float local = 0;
      const double flops = avx512 ? fma_loop_avx512(4'000'000, &local)
                           : avx2 ? fma_loop_avx2(4'000'000, &local)
                                  : 0.0;
      volatile float keep = local;  // the FMA results must not be optimised away
      (void)keep;
      return flops;
    });
    peak.gflops = std::max(peak.gflops, flops_per_s * 1e-9);
  }
  // Streaming copy of 64 MiB per thread: far beyond any cache.
  constexpr size_t kFloats = size_t{16} << 20;
  std::vector<std::vector<float>> sources(static_cast<size_t>(threads)),
      destinations(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    sources[static_cast<size_t>(t)].assign(kFloats, 1.0f);
    destinations[static_cast<size_t>(t)].assign(kFloats, 0.0f);
  }
  for (int round = 0; round < kCopyRounds; ++round) {
    int next_thread = 0;
    std::mutex next_mutex;
    const double bytes_per_s = run_on_threads(threads, [&] {
      size_t t = 0;
      {
        std::lock_guard lock(next_mutex);
        t = static_cast<size_t>(next_thread++);
      }
      std::memcpy(destinations[t].data(), sources[t].data(), kFloats * sizeof(float));
      // A copy reads and writes every byte.
      return 2.0 * static_cast<double>(kFloats * sizeof(float));
    });
    peak.gigabytes_per_s = std::max(peak.gigabytes_per_s, bytes_per_s * 1e-9);
  }
  return peak;
}

}  // namespace conv1d::cli

// What this machine can do at best, measured at the start of a benchmark so
// results can be reported as a fraction of it.
#pragma once

namespace conv1d::cli {

struct MachinePeak {
  double gflops = 0;           // float32 FMA throughput, all probe threads together
  double gigabytes_per_s = 0;  // streaming read+write bandwidth from DRAM
  const char* isa = "";        // which FMA width the probe used
};

// Runs a short FMA loop and a streaming copy on `threads` threads (~0.3 s).
MachinePeak measure_peak(int threads);

}  // namespace conv1d::cli

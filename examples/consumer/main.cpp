// Smallest use of the library: a layer with PyTorch's default
// initialisation, applied to a batch of two sequences.
#include <conv1d/layer.hpp>

#include <cstdio>

int main() {
  conv1d::ConvParams params;
  params.in_channels = 4;
  params.out_channels = 8;
  params.kernel_size = 3;
  params.padding = conv1d::Padding::same();
  const conv1d::Conv1d layer(params, conv1d::DType::f32, /*seed=*/1);

  conv1d::Tensor input(conv1d::DType::f32, {2, 4, 100});
  for (int64_t i = 0; i < input.numel(); ++i) input.data<float>()[i] = 0.01f * float(i % 7);
  const conv1d::Tensor output = layer.forward(input);

  std::printf("output shape (%lld, %lld, %lld) via %s\n", (long long)output.shape()[0],
              (long long)output.shape()[1], (long long)output.shape()[2],
              std::string(layer.plan_for(2, 100, conv1d::Layout::ncl).algorithm()).c_str());
  return output.shape() == std::vector<int64_t>{2, 8, 100} ? 0 : 1;
}

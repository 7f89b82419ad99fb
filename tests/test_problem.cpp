// Shape math, padding resolution, validation messages and the descriptor.
#include <gtest/gtest.h>

#include <conv1d/conv1d.hpp>
#include <string>

namespace conv1d {
namespace {

ConvParams params(int64_t in, int64_t out, int64_t kernel) {
  ConvParams p;
  p.in_channels = in;
  p.out_channels = out;
  p.kernel_size = kernel;
  return p;
}

// Runs `action`, expects an Error whose message contains every fragment.
template <class Action>
void expect_error(Action action, std::initializer_list<std::string> fragments) {
  try {
    action();
    FAIL() << "expected conv1d::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message '" << message << "' lacks '" << fragment << "'";
    }
  }
}

TEST(OutLength, MatchesPyTorchFormula) {
  struct Case {
    int64_t length, kernel, stride, dilation, left, right, expected;
  };
  const Case cases[] = {
      {10, 3, 1, 1, 0, 0, 8},        {10, 3, 1, 1, 1, 1, 10},     {10, 3, 2, 1, 1, 1, 5},
      {11, 3, 2, 1, 1, 1, 6},        {10, 3, 1, 2, 0, 0, 6},      {10, 3, 3, 2, 2, 1, 3},
      {16000, 10, 5, 1, 0, 0, 3199}, {3000, 3, 2, 1, 1, 1, 1500}, {1, 1, 1, 1, 0, 0, 1},
      {5, 5, 7, 1, 0, 0, 1},         {4, 3, 1, 1, 0, 2, 4},
  };
  for (const Case& c : cases) {
    Problem p;
    p.length = c.length;
    p.kernel_size = c.kernel;
    p.stride = c.stride;
    p.dilation = c.dilation;
    p.pad_left = c.left;
    p.pad_right = c.right;
    EXPECT_EQ(p.out_length(), c.expected) << p.to_string();
  }
}

TEST(Padding, SameSplitsLikePyTorch) {
  // (kernel, dilation) -> (left, right); the odd element goes right.
  struct Case {
    int64_t kernel, dilation, left, right;
  };
  const Case cases[] = {{4, 1, 1, 2}, {2, 1, 0, 1}, {4, 2, 3, 3},   {3, 3, 3, 3},
                        {6, 1, 2, 3}, {1, 1, 0, 0}, {31, 1, 15, 15}};
  for (const Case& c : cases) {
    const auto lr = Padding::same().resolve(c.kernel, 1, c.dilation);
    EXPECT_EQ(lr[0], c.left) << "K=" << c.kernel << " d=" << c.dilation;
    EXPECT_EQ(lr[1], c.right) << "K=" << c.kernel << " d=" << c.dilation;
  }
}

TEST(Padding, SameKeepsLength) {
  for (int64_t kernel = 1; kernel <= 8; ++kernel) {
    for (int64_t dilation = 1; dilation <= 3; ++dilation) {
      auto p = params(2, 3, kernel);
      p.dilation = dilation;
      p.padding = Padding::same();
      EXPECT_EQ(Problem::make(p, 1, 37).out_length(), 37);
    }
  }
}

TEST(Padding, ValidCausalAndExplicit) {
  EXPECT_EQ(Padding::valid().resolve(5, 2, 3), (std::array<int64_t, 2>{0, 0}));
  EXPECT_EQ(Padding::causal().resolve(4, 1, 1), (std::array<int64_t, 2>{3, 0}));
  EXPECT_EQ(Padding::causal().resolve(3, 2, 5), (std::array<int64_t, 2>{10, 0}));
  EXPECT_EQ(Padding::symmetric(2).resolve(3, 1, 1), (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(Padding::asymmetric(1, 4).resolve(3, 1, 1), (std::array<int64_t, 2>{1, 4}));
}

TEST(Padding, ParsesEveryForm) {
  EXPECT_EQ(Padding::parse("3").left, 3);
  EXPECT_EQ(Padding::parse("3").right, 3);
  EXPECT_EQ(Padding::parse("1,2").left, 1);
  EXPECT_EQ(Padding::parse("1,2").right, 2);
  EXPECT_EQ(Padding::parse("same").kind, Padding::Kind::same);
  EXPECT_EQ(Padding::parse("valid").kind, Padding::Kind::valid);
  EXPECT_EQ(Padding::parse("causal").kind, Padding::Kind::causal);
  expect_error([] { Padding::parse("full"); }, {"padding", "'full'"});
  expect_error([] { Padding::parse("1,"); }, {"padding"});
  expect_error([] { Padding::parse(""); }, {"padding"});
  EXPECT_EQ(Padding::parse("1,2").to_string(), "1,2");
  EXPECT_EQ(Padding::parse("same").to_string(), "same");
}

TEST(Validation, NamesTheBadParameter) {
  EXPECT_NO_THROW(Problem::make(params(4, 4, 3), 1, 10).validate());
  auto groups = params(64, 64, 3);
  groups.groups = 3;
  expect_error([&] { groups.validate(); }, {"groups=3", "in_channels=64"});
  auto out_groups = params(6, 8, 3);
  out_groups.groups = 3;
  expect_error([&] { out_groups.validate(); }, {"groups=3", "out_channels=8"});
  auto zero_groups = params(4, 4, 3);
  zero_groups.groups = 0;
  expect_error([&] { zero_groups.validate(); }, {"groups", "positive", "groups=0"});
  auto stride = params(4, 4, 3);
  stride.stride = 0;
  expect_error([&] { stride.validate(); }, {"stride", "stride=0"});
  auto dilation = params(4, 4, 3);
  dilation.dilation = -1;
  expect_error([&] { dilation.validate(); }, {"dilation", "dilation=-1"});
  expect_error([] { params(4, 4, 0).validate(); }, {"kernel_size", "kernel_size=0"});
  auto same = params(4, 4, 3);
  same.stride = 2;
  same.padding = Padding::same();
  expect_error([&] { same.validate(); }, {"padding='same'", "strided", "stride=2"});
  auto negative = params(4, 4, 3);
  negative.padding = Padding::asymmetric(-1, 0);
  expect_error([&] { negative.validate(); }, {"padding", "non-negative", "-1"});
}

TEST(Validation, KernelWiderThanPaddedInput) {
  auto p = params(2, 2, 5);
  p.padding = Padding::symmetric(1);
  expect_error([&] { Problem::make(p, 1, 2); }, {"kernel is wider", "padded input length 4", "5"});
  p.dilation = 2;
  expect_error([&] { Problem::make(p, 1, 6); }, {"9"});
  EXPECT_EQ(Problem::make(p, 1, 7).out_length(), 1);
}

TEST(Validation, PaddingModeLimits) {
  auto p = params(2, 2, 3);
  p.padding = Padding::symmetric(4);
  p.padding_mode = PaddingMode::reflect;
  expect_error([&] { Problem::make(p, 1, 4); }, {"reflect", "(4, 4)", "input length 4"});
  EXPECT_NO_THROW(Problem::make(p, 1, 5));
  p.padding_mode = PaddingMode::circular;
  EXPECT_NO_THROW(Problem::make(p, 1, 4));
  expect_error([&] { Problem::make(p, 1, 3); }, {"circular", "more than once"});
  p.padding_mode = PaddingMode::replicate;
  EXPECT_NO_THROW(Problem::make(p, 1, 1));
}

TEST(Validation, EmptyBatchIsFineButEmptyLengthIsNot) {
  EXPECT_NO_THROW(Problem::make(params(3, 4, 3), 0, 10));
  expect_error([] { Problem::make(params(3, 4, 1), 1, 0); }, {"input length", "positive"});
  expect_error([] { Problem::make(params(3, 4, 1), -1, 4); }, {"batch", "-1"});
}

TEST(Validation, OverflowingSizesAreRejected) {
  const int64_t huge = int64_t{1} << 62;
  expect_error([&] { Problem::make(params(4, 4, 3), huge, 100); }, {"too large"});
  expect_error([&] { Problem::make(params(huge, 2, 1), 1, 100); }, {"too large"});
  auto dilated = params(1, 1, 3);
  dilated.dilation = huge;
  expect_error([&] { Problem::make(dilated, 1, 100); }, {"too large"});
}

TEST(Flops, CountsMultiplyAddsTwice) {
  auto p = params(8, 16, 3);
  p.groups = 2;
  const Problem problem = Problem::make(p, 2, 10);  // L_out = 8
  EXPECT_DOUBLE_EQ(problem.flops(), 2.0 * 2 * 16 * 8 * 4 * 3);
}

TEST(Descriptor, RoundTrips) {
  auto p = params(16, 32, 5);
  p.stride = 2;
  p.dilation = 3;
  p.groups = 4;
  p.padding = Padding::asymmetric(1, 6);
  p.padding_mode = PaddingMode::reflect;
  p.bias = false;
  const Problem problem = Problem::make(p, 3, 100, DType::f64, Layout::nlc);
  EXPECT_EQ(problem.to_string(), "mb3ic16oc32iw100kw5sw2dl3pl1pr6g4_reflect_nobias_nlc_f64");
  EXPECT_EQ(Problem::parse(problem.to_string()), problem);
  const Problem plain = Problem::make(params(2, 3, 3), 1, 9);
  EXPECT_EQ(plain.to_string(), "mb1ic2oc3iw9kw3sw1dl1pl0pr0g1");
  EXPECT_EQ(Problem::parse(plain.to_string()), plain);
}

TEST(Descriptor, RejectsGarbage) {
  expect_error([] { Problem::parse("mb1ic2oc3iw9"); }, {"missing 'kw'"});
  expect_error([] { Problem::parse("mb1ic2oc3iw9kw3zz4"); }, {"unknown key 'zz'"});
  expect_error([] { Problem::parse("mb1ic2oc3iw9kw3_fancy"); }, {"unknown suffix"});
  expect_error([] { Problem::parse("mb1ic2ic2oc3iw9kw3"); }, {"twice"});
  expect_error([] { Problem::parse("mb1ic4oc3iw9kw3g2"); }, {"groups=2"});
}

TEST(Names, ParseAndPrint) {
  EXPECT_EQ(parse_padding_mode("circular"), PaddingMode::circular);
  expect_error([] { parse_padding_mode("mirror"); }, {"padding_mode", "'mirror'"});
  EXPECT_EQ(parse_layout("nlc"), Layout::nlc);
  expect_error([] { parse_layout("nhwc"); }, {"layout"});
  EXPECT_EQ(parse_dtype("float64"), DType::f64);
  expect_error([] { parse_dtype("int8"); }, {"dtype"});
}

}  // namespace
}  // namespace conv1d

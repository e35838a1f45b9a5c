// The gated activation tanh(a) * sigmoid(b) of the Gated PixelCNN (chainrule/gated_tanh.py), and
// its backward, as one pass over the pre-activations. Rows are positions: pre (R, 2C) holds a in
// its first C columns and b in the last C, the output (R, C). torch.compile's fused version of
// the same arithmetic costs about 1.5x this (its sigmoid: ATen's exact exp and a division each),
// and eager PyTorch runs it as several passes; the two gates of a layer are the largest
// elementwise cost of a Gated PixelCNN training step.
//
// Arithmetic (the Python twin `gated_tanh.reference` is the specification, to rounding):
//   forward   tanh(a) sigmoid(b) = (1 - e^-2a) / ((1 + e^-2a)(1 + e^-b)): two exponentials and one
//             division. -2a is clamped to [-20, 20], where tanh is +-1 in float, so that e^-2a
//             stays finite; the denominator overflows only where the value is below 1e-30 in
//             magnitude (the result is then 0). NaN in a or b gives NaN.
//   backward  with t = tanh(a) = 2 sigmoid(2a) - 1 and s = sigmoid(b):
//             da = g s (1 - t^2),  db = g t s (1 - s).
// bfloat16 rows are widened to float a block at a time and the results rounded back (nearest
// even), so both precisions compute in float.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <vector>

namespace {

using VecF = at::vec::Vectorized<float>;

//: rows widened to float together (bfloat16): enough to amortise the conversions' loop overhead
constexpr int64_t kRowsPerBlock = 8;

// exp_u20 clamps its input, which turns NaN into a number: the callers put NaN back
inline VecF sigmoid(const VecF& x) {
  return VecF::blendv((VecF(1.f) + x.neg().exp_u20()).reciprocal(), x, x.isnan());
}

inline void forward_row(const float* pre, float* out, int64_t ch) {
  const int64_t vs = VecF::size();
  const VecF one(1.f), lo(-20.f), hi(20.f), minus_two(-2.f);
  for (int64_t k = 0; k < ch; k += vs) {
    const int64_t n = std::min(vs, ch - k);
    const auto a = VecF::loadu(pre + k, n), b = VecF::loadu(pre + ch + k, n);
    const auto ea = at::vec::clamp(a * minus_two, lo, hi).exp_u20();
    const auto eb = b.neg().exp_u20();
    const auto y = (one - ea) / ((one + ea) * (one + eb));
    VecF::blendv(y, a + b, a.isnan() | b.isnan()).store(out + k, n);
  }
}

inline void backward_row(const float* grad, const float* pre, float* dpre, int64_t ch) {
  const int64_t vs = VecF::size();
  const VecF one(1.f), two(2.f);
  for (int64_t k = 0; k < ch; k += vs) {
    const int64_t n = std::min(vs, ch - k);
    const auto a = VecF::loadu(pre + k, n), b = VecF::loadu(pre + ch + k, n), g = VecF::loadu(grad + k, n);
    const auto t = sigmoid(a * two) * two - one;
    const auto s = sigmoid(b);
    const auto gs = g * s;
    (gs * (one - t * t)).store(dpre + k, n);
    (gs * t * (one - s)).store(dpre + ch + k, n);
  }
}

// Calls fn(first_row, rows, ptrs_in_float...) over blocks of rows in parallel: float tensors'
// own memory, other dtypes through float buffers (inputs widened before, outputs rounded after).
template <typename T, typename Fn>
void for_float_blocks(int64_t rows, const std::vector<const T*>& ins, const std::vector<int64_t>& in_width,
                      T* out, int64_t out_width, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(kRowsPerBlock, 4096 / std::max<int64_t>(out_width, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) {
      std::vector<const float*> p(ins.size());
      for (size_t i = 0; i < ins.size(); ++i) p[i] = ins[i] + begin * in_width[i];
      fn(end - begin, p, out + begin * out_width);
    } else {
      std::vector<std::vector<float>> bufs(ins.size());
      for (size_t i = 0; i < ins.size(); ++i) bufs[i].resize(kRowsPerBlock * in_width[i]);
      std::vector<float> ob(kRowsPerBlock * out_width);
      std::vector<const float*> p(ins.size());
      for (int64_t r = begin; r < end; r += kRowsPerBlock) {
        const int64_t nr = std::min(kRowsPerBlock, end - r);
        for (size_t i = 0; i < ins.size(); ++i) {
          at::vec::convert(ins[i] + r * in_width[i], bufs[i].data(), nr * in_width[i]);
          p[i] = bufs[i].data();
        }
        fn(nr, p, ob.data());
        at::vec::convert(ob.data(), out + r * out_width, nr * out_width);
      }
    }
  });
}

void check_rows(const at::Tensor& t, const char* name, int64_t width) {
  TORCH_CHECK(t.dim() == 2 && t.size(1) == width, name, " must be (rows, ", width, "), got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16, name,
              " must be float32 or bfloat16, got ", t.scalar_type());
}

// fn(value of the element type) for the two dtypes `check_rows` admits
template <typename Fn>
void dispatch(at::ScalarType type, Fn&& fn) {
  if (type == at::kFloat) {
    fn(float{});
  } else {
    fn(c10::BFloat16{});
  }
}

at::Tensor gated_tanh_forward(const at::Tensor& pre) {
  TORCH_CHECK(pre.dim() == 2 && pre.size(1) % 2 == 0, "pre must be (rows, 2 C), got ", pre.sizes());
  const int64_t ch = pre.size(1) / 2, rows = pre.size(0);
  check_rows(pre, "pre", 2 * ch);
  auto out = at::empty({rows, ch}, pre.options());
  dispatch(pre.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    for_float_blocks<scalar_t>(rows, {pre.data_ptr<scalar_t>()}, {2 * ch}, out.data_ptr<scalar_t>(), ch,
                               [&](int64_t n, const std::vector<const float*>& p, float* o) {
                                 for (int64_t r = 0; r < n; ++r) forward_row(p[0] + r * 2 * ch, o + r * ch, ch);
                               });
  });
  return out;
}

at::Tensor gated_tanh_backward(const at::Tensor& grad, const at::Tensor& pre) {
  TORCH_CHECK(pre.dim() == 2 && pre.size(1) % 2 == 0, "pre must be (rows, 2 C), got ", pre.sizes());
  const int64_t ch = pre.size(1) / 2, rows = pre.size(0);
  check_rows(pre, "pre", 2 * ch);
  check_rows(grad, "grad", ch);
  TORCH_CHECK(grad.size(0) == rows && grad.scalar_type() == pre.scalar_type(), "grad must be (", rows, ", ", ch,
              ") of pre's dtype, got ", grad.sizes(), " ", grad.scalar_type());
  auto dpre = at::empty_like(pre);
  dispatch(pre.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    for_float_blocks<scalar_t>(
        rows, {grad.data_ptr<scalar_t>(), pre.data_ptr<scalar_t>()}, {ch, 2 * ch}, dpre.data_ptr<scalar_t>(),
        2 * ch, [&](int64_t n, const std::vector<const float*>& p, float* d) {
          for (int64_t r = 0; r < n; ++r) backward_row(p[0] + r * ch, p[1] + r * 2 * ch, d + r * 2 * ch, ch);
        });
  });
  return dpre;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(chainrule_native, m) {
  m.def("gated_tanh_forward(Tensor pre) -> Tensor");
  m.def("gated_tanh_backward(Tensor grad, Tensor pre) -> Tensor");
  m.impl("gated_tanh_forward", c10::DispatchKey::CPU, &gated_tanh_forward);
  m.impl("gated_tanh_backward", c10::DispatchKey::CPU, &gated_tanh_backward);
}

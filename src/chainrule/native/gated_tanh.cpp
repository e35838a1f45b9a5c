// The gated activation tanh(a) * sigmoid(b) of the Gated PixelCNN (chainrule/gated_tanh.py), and
// its backward, as one pass over the pre-activations. Rows are positions: pre (R, 2C) holds a in
// its first C columns and b in the last C, the output (R, C); the padded variants take channels-last
// (B, 2C, H, W) maps and write into a zero-padded (B, C, H', W') one. torch.compile's fused version of
// the same arithmetic costs about 1.5x this (its sigmoid: ATen's exact exp and a division each),
// and eager PyTorch runs it as several passes; the two gates of a layer are the largest
// elementwise cost of a Gated PixelCNN training step.
//
// Arithmetic (the Python twin `gated_tanh.reference` is the specification, to rounding):
//   forward   tanh(a) sigmoid(b) = t s with t = (1 - e^-2a) / (1 + e^-2a) and s = 1 / (1 + e^-b):
//             two exponentials and two divisions. -2a is clamped to [-20, 20], where tanh is +-1
//             in float, so that e^-2a stays finite. NaN in a or b gives NaN.
//   backward  with t = tanh(a) and s = sigmoid(b), the slopes of the output are
//             s (1 - t^2) in a and t s (1 - s) in b: the training forward (`_with_slopes`) writes
//             them beside the output, in the pre-activations' layout and dtype, and the backward
//             multiplies the output's gradient by them (da = g s (1 - t^2), db = g t s (1 - s)).
//             The backward is then one memory pass, where recomputing t and s from the
//             pre-activations cost as much as the forward again; the slopes take the memory the
//             saved pre-activations took. A NaN in a or b gives NaN slopes.
// bfloat16 values are widened to float in registers and the results rounded back (nearest even),
// so both precisions compute in float.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>

namespace {

using VecF = at::vec::Vectorized<float>;

// n <= VecF::size() values of a row as a float vector (bfloat16: widened in registers)
inline VecF load_floats(const float* p, int64_t n) { return VecF::loadu(p, n); }

inline VecF load_floats(const c10::BFloat16* p, int64_t n) {
  return std::get<0>(at::vec::convert_to_float<c10::BFloat16>(at::vec::Vectorized<c10::BFloat16>::loadu(p, n)));
}

// the first n values of a float vector into a row (bfloat16: rounded to nearest even)
inline void store_floats(const VecF& v, float* p, int64_t n) { v.store(p, n); }

inline void store_floats(const VecF& v, c10::BFloat16* p, int64_t n) {
  at::vec::convert_from_float<c10::BFloat16>(v, VecF(0.f)).store(p, n);
}

// the gate of one row, and with kSlopes its slopes (2 ch) in a and b, for the backward; both
// variants compute the output alike, so training and evaluation give the same values
template <bool kSlopes, typename T>
inline void forward_row(const T* pre, T* out, T* slopes, int64_t ch) {
  const int64_t vs = VecF::size();
  const VecF one(1.f), lo(-20.f), hi(20.f), minus_two(-2.f);
  for (int64_t k = 0; k < ch; k += vs) {
    const int64_t n = std::min(vs, ch - k);
    const auto a = load_floats(pre + k, n), b = load_floats(pre + ch + k, n);
    const auto ea = at::vec::clamp(a * minus_two, lo, hi).exp_u20();
    const auto t = (one - ea) / (one + ea);
    const auto s = (one + b.neg().exp_u20()).reciprocal();
    const auto nan = a.isnan() | b.isnan();
    const auto y = VecF::blendv(t * s, a + b, nan);
    store_floats(y, out + k, n);
    if constexpr (kSlopes) {
      store_floats(VecF::blendv(s * (one - t * t), a + b, nan), slopes + k, n);
      store_floats(y * (one - s), slopes + ch + k, n);
    }
  }
}

// the pre-activations' gradient of one row: the output's times each half's slope
template <typename T>
inline void backward_row(const T* grad, const T* slopes, T* dpre, int64_t ch) {
  const int64_t vs = VecF::size();
  for (int64_t k = 0; k < ch; k += vs) {
    const int64_t n = std::min(vs, ch - k);
    const auto g = load_floats(grad + k, n);
    store_floats(g * load_floats(slopes + k, n), dpre + k, n);
    store_floats(g * load_floats(slopes + ch + k, n), dpre + ch + k, n);
  }
}

// the gate of n pixels' pre-activations (n, 2 ch) into (n, ch), and with `slopes` their slopes
// (n, 2 ch) for the backward
template <typename T>
void forward_pixels(const T* pre, T* out, T* slopes, int64_t n, int64_t ch) {
  if (slopes == nullptr) {
    for (int64_t r = 0; r < n; ++r) forward_row<false>(pre + r * 2 * ch, out + r * ch, slopes, ch);
  } else {
    for (int64_t r = 0; r < n; ++r) forward_row<true>(pre + r * 2 * ch, out + r * ch, slopes + r * 2 * ch, ch);
  }
}

// the gradient (n, 2 ch) of n pixels' pre-activations from the output's (n, ch) and the slopes
template <typename T>
void backward_pixels(const T* grad, const T* slopes, T* dpre, int64_t n, int64_t ch) {
  for (int64_t r = 0; r < n; ++r) backward_row(grad + r * ch, slopes + r * 2 * ch, dpre + r * 2 * ch, ch);
}

//: rows per parallel chunk: a few thousand values, so that small calls stay on one thread
int64_t grain(int64_t width) { return std::max<int64_t>(8, 4096 / std::max<int64_t>(width, 1)); }

void check_cpu_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16, name,
              " must be float32 or bfloat16, got ", t.scalar_type());
}

void check_rows(const at::Tensor& t, const char* name, int64_t width) {
  TORCH_CHECK(t.dim() == 2 && t.size(1) == width, name, " must be (rows, ", width, "), got ", t.sizes());
  check_cpu_float(t, name);
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// fn(value of the element type) for the two dtypes `check_cpu_float` admits
template <typename Fn>
void dispatch(at::ScalarType type, Fn&& fn) {
  if (type == at::kFloat) {
    fn(float{});
  } else {
    fn(c10::BFloat16{});
  }
}

// the gate (rows, C) of pre (rows, 2 C), and with `with_slopes` the slopes (rows, 2 C) the backward takes
std::tuple<at::Tensor, at::Tensor> forward_rows(const at::Tensor& pre, bool with_slopes) {
  TORCH_CHECK(pre.dim() == 2 && pre.size(1) % 2 == 0, "pre must be (rows, 2 C), got ", pre.sizes());
  const int64_t ch = pre.size(1) / 2, rows = pre.size(0);
  check_rows(pre, "pre", 2 * ch);
  auto out = at::empty({rows, ch}, pre.options());
  auto slopes = with_slopes ? at::empty_like(pre) : at::Tensor();
  dispatch(pre.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = pre.data_ptr<T>();
    T* o = out.data_ptr<T>();
    T* sl = with_slopes ? slopes.data_ptr<T>() : nullptr;
    at::parallel_for(0, rows, grain(ch), [&](int64_t begin, int64_t end) {
      forward_pixels(p + begin * 2 * ch, o + begin * ch, sl ? sl + begin * 2 * ch : nullptr, end - begin, ch);
    });
  });
  return {out, slopes};
}

at::Tensor gated_tanh_forward(const at::Tensor& pre) { return std::get<0>(forward_rows(pre, false)); }

std::tuple<at::Tensor, at::Tensor> gated_tanh_forward_with_slopes(const at::Tensor& pre) {
  return forward_rows(pre, true);
}

at::Tensor gated_tanh_backward(const at::Tensor& grad, const at::Tensor& slopes) {
  TORCH_CHECK(slopes.dim() == 2 && slopes.size(1) % 2 == 0, "slopes must be (rows, 2 C), got ", slopes.sizes());
  const int64_t ch = slopes.size(1) / 2, rows = slopes.size(0);
  check_rows(slopes, "slopes", 2 * ch);
  check_rows(grad, "grad", ch);
  TORCH_CHECK(grad.size(0) == rows && grad.scalar_type() == slopes.scalar_type(), "grad must be (", rows, ", ", ch,
              ") of the slopes' dtype, got ", grad.sizes(), " ", grad.scalar_type());
  auto dpre = at::empty_like(slopes);
  dispatch(slopes.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T *g = grad.data_ptr<T>(), *sl = slopes.data_ptr<T>();
    T* d = dpre.data_ptr<T>();
    at::parallel_for(0, rows, grain(2 * ch), [&](int64_t begin, int64_t end) {
      backward_pixels(g + begin * ch, sl + begin * 2 * ch, d + begin * 2 * ch, end - begin, ch);
    });
  });
  return dpre;
}

// -- padded: the Gated PixelCNN's vertical stack feeds the next layer's convolution, whose input
// is the gated map zero-padded (F.pad); writing the gate into the padded map saves that copy, and
// the backward reads the padded map's gradient (the convolution's) in place.

// maps are (B, C, H, W) in channels-last memory, that is (B, H, W, C) rows of channels
void check_maps(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 4, name, " must be a (B, C, H, W) map, got ", t.sizes());
  check_cpu_float(t, name);
  TORCH_CHECK(t.is_contiguous(at::MemoryFormat::ChannelsLast), name, " must be channels-last");
}

// pre (B, 2 C, H, W) -> (B, C, top + H + bottom, left + W + right), zero outside; with
// `with_slopes` also the slopes (B, 2 C, H, W, channels-last) the backward takes
std::tuple<at::Tensor, at::Tensor> forward_maps(const at::Tensor& pre, int64_t top, int64_t bottom, int64_t left,
                                                int64_t right, bool with_slopes) {
  check_maps(pre, "pre");
  TORCH_CHECK(pre.size(1) % 2 == 0, "pre must have an even number of channels, got ", pre.size(1));
  TORCH_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pads must be >= 0");
  const int64_t batch = pre.size(0), ch = pre.size(1) / 2, height = pre.size(2), width = pre.size(3);
  const int64_t out_h = top + height + bottom, out_w = left + width + right;
  auto out = at::empty({batch, ch, out_h, out_w}, pre.options().memory_format(at::MemoryFormat::ChannelsLast));
  auto slopes = with_slopes ? at::empty_like(pre, at::MemoryFormat::ChannelsLast) : at::Tensor();
  dispatch(pre.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = pre.data_ptr<T>();
    T* o = out.data_ptr<T>();
    T* sl = with_slopes ? slopes.data_ptr<T>() : nullptr;
    at::parallel_for(0, batch * out_h, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        T* line = o + row * out_w * ch;
        const int64_t i = row % out_h - top;
        if (i < 0 || i >= height) {
          std::memset(line, 0, out_w * ch * sizeof(T));
          continue;
        }
        std::memset(line, 0, left * ch * sizeof(T));
        std::memset(line + (left + width) * ch, 0, right * ch * sizeof(T));
        const int64_t first = ((row / out_h) * height + i) * width * 2 * ch;  // the row's first value in pre
        forward_pixels(p + first, line + left * ch, sl ? sl + first : nullptr, width, ch);
      }
    });
  });
  return {out, slopes};
}

at::Tensor gated_tanh_forward_padded(const at::Tensor& pre, int64_t top, int64_t bottom, int64_t left,
                                     int64_t right) {
  return std::get<0>(forward_maps(pre, top, bottom, left, right, false));
}

std::tuple<at::Tensor, at::Tensor> gated_tanh_forward_padded_with_slopes(const at::Tensor& pre, int64_t top,
                                                                         int64_t bottom, int64_t left, int64_t right) {
  return forward_maps(pre, top, bottom, left, right, true);
}

// the gradient (B, 2 C, H, W) of pre from the padded output's (B, C, H', W'), read in place
at::Tensor gated_tanh_backward_padded(const at::Tensor& grad, const at::Tensor& slopes, int64_t top,
                                      int64_t left) {
  check_maps(slopes, "slopes");
  check_maps(grad, "grad");
  const int64_t batch = slopes.size(0), ch = slopes.size(1) / 2, height = slopes.size(2), width = slopes.size(3);
  TORCH_CHECK(slopes.size(1) % 2 == 0 && top >= 0 && left >= 0 && grad.size(0) == batch && grad.size(1) == ch &&
                  grad.size(2) >= top + height && grad.size(3) >= left + width &&
                  grad.scalar_type() == slopes.scalar_type(),
              "grad must be the padded output's shape and dtype, got ", grad.sizes(), " ", grad.scalar_type());
  const int64_t out_h = grad.size(2), out_w = grad.size(3);
  auto dpre = at::empty_like(slopes, at::MemoryFormat::ChannelsLast);
  dispatch(slopes.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T *g = grad.data_ptr<T>(), *sl = slopes.data_ptr<T>();
    T* d = dpre.data_ptr<T>();
    at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / height, i = row % height;
        const T* g_line = g + ((b * out_h + top + i) * out_w + left) * ch;
        backward_pixels(g_line, sl + row * width * 2 * ch, d + row * width * 2 * ch, width, ch);
      }
    });
  });
  return dpre;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(chainrule_native, m) {
  m.def("gated_tanh_forward(Tensor pre) -> Tensor");
  m.def("gated_tanh_forward_with_slopes(Tensor pre) -> (Tensor, Tensor)");
  m.def("gated_tanh_backward(Tensor grad, Tensor slopes) -> Tensor");
  m.def("gated_tanh_forward_padded(Tensor pre, int top, int bottom, int left, int right) -> Tensor");
  m.def(
      "gated_tanh_forward_padded_with_slopes(Tensor pre, int top, int bottom, int left, int right) -> (Tensor, "
      "Tensor)");
  m.def("gated_tanh_backward_padded(Tensor grad, Tensor slopes, int top, int left) -> Tensor");
  m.impl("gated_tanh_forward", c10::DispatchKey::CPU, &gated_tanh_forward);
  m.impl("gated_tanh_forward_with_slopes", c10::DispatchKey::CPU, &gated_tanh_forward_with_slopes);
  m.impl("gated_tanh_backward", c10::DispatchKey::CPU, &gated_tanh_backward);
  m.impl("gated_tanh_forward_padded", c10::DispatchKey::CPU, &gated_tanh_forward_padded);
  m.impl("gated_tanh_forward_padded_with_slopes", c10::DispatchKey::CPU, &gated_tanh_forward_padded_with_slopes);
  m.impl("gated_tanh_backward_padded", c10::DispatchKey::CPU, &gated_tanh_backward_padded);
}

// One step of the PixelRNN LSTM scans (chainrule/models/lstm_scan.py) as a single pass over the
// step's positions: the cell's dozen elementwise kernels, each a pass over the step's arrays
// through strided views, become one loop that reads each position's pre-activations once and
// keeps everything in registers. The arithmetic is that of the Python cell it replaces
// (`lstm_cell_step.cell_forward` / `cell_backward`, the specification and fallback): tanh as
// 2 sigmoid(2x) - 1, sigmoid as 1 / (1 + exp(-x)).
//
// Shapes: rows are positions, (G, R, ·) with G independent recurrences (directions); the inner
// (R, ·) block of every tensor is contiguous, G may be strided. Rows [lo, hi) carry the cell
// state c_prev[g, src + r - lo] from the step before; the others start from
// a zero state (and get no forget-gate gradient).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include "lstm_cell.h"

#include <optional>
#include <vector>

namespace {

template <typename T>
using Vec = at::vec::Vectorized<T>;

// sigmoid for input known to hold no NaN
template <typename T>
inline Vec<T> plain_sigmoid(const Vec<T>& x) {
  return (Vec<T>(T(1)) + x.neg().exp_u20()).reciprocal();
}

// exp_u20 (ATen's inline exp, as its softmax uses) clamps its input first, which turns NaN into a
// large number: NaN is put back, so that a NaN pre-activation gives NaN states (and a non-finite
// loss that training skips) as torch.sigmoid does
template <typename T>
inline Vec<T> sigmoid(const Vec<T>& x) {
  return Vec<T>::blendv(plain_sigmoid<T>(x), x, x.isnan());
}

// n values of `src` (any floating dtype) into the cell's precision; bfloat16 by its bits (exact),
// in a loop the compiler vectorises
template <typename In, typename T>
inline void widen(const In* src, T* dst, int64_t n) {
  if constexpr (std::is_same_v<In, c10::BFloat16> && std::is_same_v<T, float>) {
    const auto* bits = reinterpret_cast<const uint16_t*>(src);
    auto* out = reinterpret_cast<uint32_t*>(dst);
    for (int64_t k = 0; k < n; ++k) out[k] = static_cast<uint32_t>(bits[k]) << 16;
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<T>(src[k]);
  }
}

// dst[k] += src[k], in a loop the compiler vectorises
template <typename T>
inline void add_into(const T* src, T* dst, int64_t n) {
  for (int64_t k = 0; k < n; ++k) dst[k] += src[k];
}

// n cell values into the output's dtype, rounded to nearest even (ATen's vectorised conversion)
template <typename Out, typename T>
inline void narrow(const T* src, Out* dst, int64_t n) {
  if constexpr (std::is_same_v<Out, T>) {
    std::memcpy(dst, src, n * sizeof(T));
  } else if constexpr (std::is_same_v<Out, c10::BFloat16> && std::is_same_v<T, float>) {
    at::vec::convert(src, dst, n);
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<Out>(src[k]);
  }
}

void check_rows(const at::Tensor& t, const char* name, int64_t groups, int64_t rows, int64_t width) {
  TORCH_CHECK(t.dim() == 3 && t.size(0) == groups && t.size(1) == rows && t.size(2) == width, name,
              " must be (", groups, ", ", rows, ", ", width, "), got ", t.sizes());
  TORCH_CHECK(t.stride(2) == 1 && t.stride(1) == width, name, ": each group's rows must be contiguous");
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
}

// Whether any of the n values is NaN (one vector compare per 16 values)
template <typename T>
inline bool any_nan(const T* x, int64_t n) {
  const int64_t vs = Vec<T>::size();
  int64_t k = 0;
  for (; k + vs <= n; k += vs) {
    const auto v = Vec<T>::loadu(x + k);
    if ((v != v).zero_mask() != (1 << vs) - 1) return true;
  }
  for (; k < n; ++k) {
    if (x[k] != x[k]) return true;
  }
  return false;
}

// One row of the forward cell: ch channels of pre-activations [o, f, i, g] (already in the cell's
// precision) and the carried cell state (or none) → the gate activations, c, tanh(c) and h.
// kNaN: the NaN-preserving sigmoid, needed only for rows that hold a NaN (see `sigmoid`), which
// the caller checks once per row (the blends cost 10 % of the cell's time).
template <typename T, bool kNaN>
inline void forward_row(const T* pre, const T* before, int64_t ch, T* a, T* cr, T* tr, T* hr) {
  const int64_t vs = Vec<T>::size();
  const auto sig = [](const Vec<T>& x) { return kNaN ? sigmoid<T>(x) : plain_sigmoid<T>(x); };
  const auto tanh2 = [&](const Vec<T>& x) { return sig(x * Vec<T>(T(2))) * Vec<T>(T(2)) - Vec<T>(T(1)); };
  // k values from u: whole vectors first (plain loads and stores), then the tail
  const auto span = [&](int64_t u, int64_t k) {
    auto o = sig(Vec<T>::loadu(pre + u, k));
    auto f = sig(Vec<T>::loadu(pre + ch + u, k));
    auto i = sig(Vec<T>::loadu(pre + 2 * ch + u, k));
    auto gg = tanh2(Vec<T>::loadu(pre + 3 * ch + u, k));
    auto cell = i * gg;
    if (before) cell = at::vec::fmadd(f, Vec<T>::loadu(before + u, k), cell);
    auto t = tanh2(cell);
    o.store(a + u, k);
    f.store(a + ch + u, k);
    i.store(a + 2 * ch + u, k);
    gg.store(a + 3 * ch + u, k);
    cell.store(cr + u, k);
    t.store(tr + u, k);
    (o * t).store(hr + u, k);
  };
  int64_t u = 0;
  for (; u + vs <= ch; u += vs) span(u, vs);
  if (u < ch) span(u, ch - u);
}

// Rows (g, r) for n in [begin, end) of a (groups, rows) grid, without a division per row: the
// tensors' strides are read once, not per row (TensorBase::stride is an out-of-line call)
template <typename Body>
inline void for_rows(int64_t begin, int64_t end, int64_t rows, const Body& body) {
  int64_t g = begin / rows, r = begin % rows;
  for (int64_t n = begin; n < end; ++n, ++r) {
    if (r == rows) r = 0, ++g;
    body(g, r);
  }
}

template <typename In, typename T>
void forward_kernel(const at::Tensor& gates, const at::Tensor& c_prev, int64_t lo, int64_t hi, int64_t src,
                    at::Tensor& act, at::Tensor& c, at::Tensor& tc, at::Tensor& h, const at::Tensor& bias) {
  const int64_t groups = gates.size(0), rows = gates.size(1), ch = c.size(2);
  const int64_t g_stride = gates.stride(0), a_stride = act.stride(0), c_stride = c.stride(0);
  const int64_t t_stride = tc.stride(0), h_stride = h.stride(0), p_stride = c_prev.defined() ? c_prev.stride(0) : 0;
  const In* gp = gates.data_ptr<In>();
  const T* cpp = c_prev.defined() ? c_prev.data_ptr<T>() : nullptr;
  const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t b_stride = bias.defined() ? bias.stride(0) : 0;
  T *ap = act.data_ptr<T>(), *cp = c.data_ptr<T>(), *tp = tc.data_ptr<T>(), *hp = h.data_ptr<T>();
  at::parallel_for(0, groups * rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> pre(4 * ch);
    for_rows(begin, end, rows, [&](int64_t g, int64_t r) {
      widen(gp + g * g_stride + r * 4 * ch, pre.data(), 4 * ch);
      if (bp) add_into(bp + g * b_stride, pre.data(), 4 * ch);
      const bool carried = cpp != nullptr && r >= lo && r < hi;
      const T* before = carried ? cpp + g * p_stride + (src + r - lo) * ch : nullptr;
      T* a = ap + g * a_stride + r * 4 * ch;
      T* cr = cp + g * c_stride + r * ch;
      T* tr = tp + g * t_stride + r * ch;
      T* hr = hp + g * h_stride + r * ch;
      if (any_nan(pre.data(), 4 * ch) || (before && any_nan(before, ch))) {
        forward_row<T, true>(pre.data(), before, ch, a, cr, tr, hr);
      } else {
        forward_row<T, false>(pre.data(), before, ch, a, cr, tr, hr);
      }
    });
  });
}

template <typename Out, typename T>
void backward_kernel(const at::Tensor& dh, const at::Tensor& dc, const at::Tensor& act, const at::Tensor& tc,
                     const at::Tensor& c_prev, int64_t lo, int64_t hi, int64_t src, at::Tensor& dpre,
                     at::Tensor& dc_prev) {
  const int64_t groups = act.size(0), rows = act.size(1), ch = tc.size(2);
  const int64_t vs = Vec<T>::size();
  const T *dhp = dh.data_ptr<T>(), *dcp = dc.data_ptr<T>(), *ap = act.data_ptr<T>(), *tp = tc.data_ptr<T>();
  const T* cpp = c_prev.defined() ? c_prev.data_ptr<T>() : nullptr;
  T* dcpp = dc_prev.defined() ? dc_prev.data_ptr<T>() : nullptr;
  Out* dp = dpre.data_ptr<Out>();
  const int64_t a_stride = act.stride(0), dh_stride = dh.stride(0), dc_stride = dc.stride(0), t_stride = tc.stride(0);
  const int64_t p_stride = cpp ? c_prev.stride(0) : 0, dp_stride = dcpp ? dc_prev.stride(0) : 0;
  const int64_t out_stride = dpre.stride(0);
  const Vec<T> one(T(1)), zero(T(0));
  at::parallel_for(0, groups * rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> grad(4 * ch);
    for_rows(begin, end, rows, [&](int64_t g, int64_t r) {
      const T* a = ap + g * a_stride + r * 4 * ch;
      const T* dhr = dhp + g * dh_stride + r * ch;
      const T* dcr = dcp + g * dc_stride + r * ch;
      const T* tr = tp + g * t_stride + r * ch;
      const bool carried = cpp != nullptr && r >= lo && r < hi;
      const int64_t back = src + r - lo;
      const T* before = carried ? cpp + g * p_stride + back * ch : nullptr;
      T* dcb = carried && dcpp ? dcpp + g * dp_stride + back * ch : nullptr;
      for (int64_t u = 0; u < ch; u += vs) {
        const int64_t k = std::min(vs, ch - u);
        auto o = Vec<T>::loadu(a + u, k), f = Vec<T>::loadu(a + ch + u, k);
        auto i = Vec<T>::loadu(a + 2 * ch + u, k), gg = Vec<T>::loadu(a + 3 * ch + u, k);
        auto t = Vec<T>::loadu(tr + u, k), d = Vec<T>::loadu(dhr + u, k);
        auto dcell = at::vec::fmadd(d * o, one - t * t, Vec<T>::loadu(dcr + u, k));
        (d * t * o * (one - o)).store(grad.data() + u, k);
        auto df = carried ? dcell * Vec<T>::loadu(before + u, k) * f * (one - f) : zero;
        df.store(grad.data() + ch + u, k);
        (dcell * gg * i * (one - i)).store(grad.data() + 2 * ch + u, k);
        (dcell * i * (one - gg * gg)).store(grad.data() + 3 * ch + u, k);
        if (dcb) (dcell * f).store(dcb + u, k);
      }
      narrow(grad.data(), dp + g * out_stride + r * 4 * ch, 4 * ch);
    });
  });
}

// A carried state (G, R', ch) whose rows src .. src + hi - lo the rows lo .. hi of a step read
void check_carried(const at::Tensor& t, const char* name, int64_t groups, int64_t rows, int64_t ch,
                   at::ScalarType cell, int64_t lo, int64_t hi, int64_t src) {
  TORCH_CHECK(t.dim() == 3 && t.size(0) == groups && t.size(2) == ch, name, " must be (", groups, ", rows, ", ch,
              "), got ", t.sizes());
  TORCH_CHECK(t.stride(2) == 1 && t.stride(1) == ch && t.device().is_cpu() && t.scalar_type() == cell, name,
              ": each group's rows contiguous, on the CPU, in ", cell);
  TORCH_CHECK(lo >= 0 && lo <= hi && hi <= rows && src >= 0 && src + hi - lo <= t.size(1), "bad carry range");
}

}  // namespace

namespace chainrule_native {

at::ScalarType cell_type(at::ScalarType t) {
  return (t == at::kBFloat16 || t == at::kHalf) ? at::kFloat : t;
}

void lstm_cell_forward(const at::Tensor& gates, const std::optional<at::Tensor>& c_prev, int64_t lo, int64_t hi,
                       int64_t src, at::Tensor act, at::Tensor c, at::Tensor tc, at::Tensor h,
                       const std::optional<at::Tensor>& bias) {
  const int64_t groups = gates.size(0), rows = gates.size(1), ch = c.size(2);
  check_rows(gates, "gates", groups, rows, 4 * ch);
  check_rows(act, "act", groups, rows, 4 * ch);
  for (auto* t : {&c, &tc, &h}) check_rows(*t, "state", groups, rows, ch);
  const auto cell = cell_type(gates.scalar_type());
  for (auto* t : {&act, &c, &tc, &h}) TORCH_CHECK(t->scalar_type() == cell, "outputs must be ", cell);
  at::Tensor before = c_prev.has_value() ? *c_prev : at::Tensor();
  if (before.defined()) check_carried(before, "c_prev", groups, rows, ch, cell, lo, hi, src);
  const at::Tensor added = bias.has_value() ? *bias : at::Tensor();
  if (added.defined()) {
    TORCH_CHECK(added.dim() == 2 && added.size(0) == groups && added.size(1) == 4 * ch && added.stride(1) == 1 &&
                    added.scalar_type() == cell && added.device().is_cpu(),
                "bias must be (", groups, ", ", 4 * ch, ") in ", cell, " with contiguous rows, got ", added.sizes());
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gates.scalar_type(), "lstm_cell_forward", [&] {
    using In = scalar_t;
    if (cell == at::kDouble) {
      forward_kernel<In, double>(gates, before, lo, hi, src, act, c, tc, h, added);
    } else {
      forward_kernel<In, float>(gates, before, lo, hi, src, act, c, tc, h, added);
    }
  });
}

void lstm_cell_backward(const at::Tensor& dh, const at::Tensor& dc, const at::Tensor& act, const at::Tensor& tc,
                        const std::optional<at::Tensor>& c_prev, int64_t lo, int64_t hi, int64_t src, at::Tensor dpre,
                        std::optional<at::Tensor> dc_prev) {
  const int64_t groups = act.size(0), rows = act.size(1), ch = tc.size(2);
  check_rows(act, "act", groups, rows, 4 * ch);
  check_rows(dpre, "dpre", groups, rows, 4 * ch);
  for (auto* t : {&dh, &dc, &tc}) check_rows(*t, "state", groups, rows, ch);
  const auto cell = act.scalar_type();
  TORCH_CHECK(cell == at::kFloat || cell == at::kDouble, "the cell runs in float32 or float64");
  for (auto* t : {&dh, &dc, &tc}) TORCH_CHECK(t->scalar_type() == cell, "cell tensors must be ", cell);
  at::Tensor before = c_prev.has_value() ? *c_prev : at::Tensor();
  at::Tensor carried = dc_prev.has_value() ? *dc_prev : at::Tensor();
  if (before.defined()) check_carried(before, "c_prev", groups, rows, ch, cell, lo, hi, src);
  if (carried.defined()) check_carried(carried, "dc_prev", groups, rows, ch, cell, lo, hi, src);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dpre.scalar_type(), "lstm_cell_backward", [&] {
    using Out = scalar_t;
    if (cell == at::kDouble) {
      backward_kernel<Out, double>(dh, dc, act, tc, before, lo, hi, src, dpre, carried);
    } else {
      backward_kernel<Out, float>(dh, dc, act, tc, before, lo, hi, src, dpre, carried);
    }
  });
}

}  // namespace chainrule_native

TORCH_LIBRARY(chainrule_native, m) {
  m.def(
      "lstm_cell_forward(Tensor gates, Tensor? c_prev, int lo, int hi, int src, Tensor(a!) act, Tensor(b!) c, "
      "Tensor(c!) tc, Tensor(d!) h) -> ()",
      [](const at::Tensor& gates, const std::optional<at::Tensor>& c_prev, int64_t lo, int64_t hi, int64_t src,
         at::Tensor act, at::Tensor c, at::Tensor tc,
         at::Tensor h) { chainrule_native::lstm_cell_forward(gates, c_prev, lo, hi, src, act, c, tc, h); });
  m.def(
      "lstm_cell_backward(Tensor dh, Tensor dc, Tensor act, Tensor tc, Tensor? c_prev, int lo, int hi, int src, "
      "Tensor(a!) dpre, Tensor(b!)? dc_prev) -> ()",
      &chainrule_native::lstm_cell_backward);
}

// The chunked LSTM scan's loops (chainrule/models/lstm_scan.py, ChunkedLSTMScan): the Diagonal
// BiLSTM's recurrence over packed positions, step by step, with the cell of lstm_cell.cpp.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <array>
#include <cstring>
#include <iterator>
#include <optional>
#include <type_traits>
#include <vector>

#include "lstm_cell.h"

namespace {

using chainrule_native::cell_type;
using chainrule_native::lstm_cell_backward;
using chainrule_native::lstm_cell_forward;

// The same loop as lstm_scan.chunked_forward / chunked_backward, without Python's cost per step
// (Diagonal BiLSTM training step, bf16, batch 64: 1.09-1.12x). `plan` is lstm_scan.flat_plan's
// encoding of chunk_plan: per step start, end, the number of taps, (tap, lo, hi, src) per tap, then has_carry,
// lo, hi, src (positions; rows are positions times the batch).
struct Step {
  int64_t start, end;
  std::vector<std::array<int64_t, 4>> taps;
  bool carry;
  int64_t lo, hi, src;
};

// `taps`: the buffer's taps (K). The plan is checked to be what the loops assume, since they
// address rows directly and prepare each step's rows just before use: consecutive steps covering
// the positions [0, N), whose copies (taps, carry) read the step before.
std::vector<Step> decode(at::IntArrayRef plan, int64_t n_all, int64_t taps) {
  std::vector<Step> steps;
  const auto need = [&](size_t k, size_t n) { TORCH_CHECK(k + n <= plan.size(), "truncated scan plan"); };
  int64_t before_start = 0, before_end = 0;
  // a copy of positions [lo, hi) of this step from positions src .. of the step before
  const auto inside = [&](const Step& s, int64_t lo, int64_t hi, int64_t src) {
    return s.start <= lo && lo <= hi && hi <= s.end && before_start <= src && src + hi - lo <= before_end;
  };
  for (size_t k = 0; k < plan.size();) {
    need(k, 3);
    Step s{plan[k], plan[k + 1], {}, false, 0, 0, 0};
    const int64_t n_taps = plan[k + 2];
    TORCH_CHECK(s.start == before_end && s.start < s.end && s.end <= n_all && n_taps >= 0, "bad scan plan step");
    k += 3;
    need(k, 4 * n_taps + 4);
    for (int64_t t = 0; t < n_taps; ++t, k += 4) {
      const int64_t tap = plan[k], lo = plan[k + 1], hi = plan[k + 2], src = plan[k + 3];
      TORCH_CHECK(0 <= tap && tap < taps && inside(s, lo, hi, src), "bad scan plan tap");
      s.taps.push_back({tap, lo, hi, src});
    }
    s.carry = plan[k] != 0;
    s.lo = plan[k + 1], s.hi = plan[k + 2], s.src = plan[k + 3];
    TORCH_CHECK(!s.carry || inside(s, s.lo, s.hi, s.src), "bad scan plan carry");
    k += 4;
    before_start = s.start, before_end = s.end;
    steps.push_back(std::move(s));
  }
  TORCH_CHECK(before_end == n_all, "the scan plan must cover all ", n_all, " positions");
  return steps;
}

// (G, n, B, X) positions [start, end) of a (G, N, B, X) tensor as rows (G, n B, X)
at::Tensor rows_of(const at::Tensor& t, int64_t start, int64_t end) {
  return t.narrow(1, start, end - start).flatten(1, 2);
}

// `n` rows of `width` values of a contiguous (G, N, B, X) tensor's group `gs`, from its row `r0`
// (rows are positions times the batch) and column `c0`, into group `gd` of another, at row `q0` and
// column `d0`, converted to its dtype, or with `add` added to what it holds (then float or
// double). One plain loop: ATen's copy_ / add_ with a dtype conversion over such strided views
// cost about 20 us each, several hundred times a training step (Diagonal BiLSTM).
void move_rows(const at::Tensor& src, int64_t gs, int64_t r0, int64_t c0, const at::Tensor& dst, int64_t gd,
               int64_t q0, int64_t d0, int64_t n, int64_t width, bool add) {
  const int64_t sw = src.size(-1), dw = dst.size(-1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, src.scalar_type(), "move_rows", [&] {
    using S = scalar_t;
    const S* from = src.data_ptr<S>() + gs * src.stride(0) + r0 * sw + c0;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dst.scalar_type(), "move_rows", [&] {
      using D = scalar_t;
      D* to = dst.data_ptr<D>() + gd * dst.stride(0) + q0 * dw + d0;
      if (!add) {
        if constexpr (std::is_same_v<S, D>) {
          for (int64_t r = 0; r < n; ++r) std::memcpy(to + r * dw, from + r * sw, width * sizeof(S));
        } else {
          for (int64_t r = 0; r < n; ++r) at::vec::convert(from + r * sw, to + r * dw, width);
        }
        return;
      }
      if constexpr (std::is_same_v<D, float> || std::is_same_v<D, double>) {
        std::vector<D> row(width);
        for (int64_t r = 0; r < n; ++r) {
          at::vec::convert(from + r * sw, row.data(), width);
          D* out = to + r * dw;
          for (int64_t k = 0; k < width; ++k) out[k] += row[k];
        }
      } else {
        TORCH_CHECK(false, "move_rows adds into float or double rows only");
      }
    });
  });
}

// The taps K of the scan's weight w (G, in + K ch, 4 ch) (`in` input columns, then K neighbours'
// states of ch channels), checked against G, in and ch
int64_t taps_of(const at::Tensor& w, int64_t groups, int64_t in, int64_t ch) {
  TORCH_CHECK(w.dim() == 3 && w.size(0) == groups && w.size(1) >= in && (w.size(1) - in) % ch == 0 &&
                  w.size(2) == 4 * ch,
              "w must be (G, in + K ch, 4 ch) with G = ", groups, ", in = ", in, ", ch = ", ch, ", got ", w.sizes());
  return (w.size(1) - in) / ch;
}

// Per column, the sum of n rows of group g of a contiguous (G, N, B, X) tensor from row r0 (rows:
// positions times the batch), added to acc (X doubles): the bias gradient, step by step, from the
// rows just written (in cache), where a sum over the whole gradient afterwards reads it again.
// Half precisions are summed in float32 within the step (at most a few thousand rows), then
// added to acc.
void add_column_sums(const at::Tensor& t, int64_t g, int64_t r0, int64_t n, double* acc) {
  const int64_t width = t.size(-1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, t.scalar_type(), "add_column_sums", [&] {
    using S = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const scalar_t* from = t.data_ptr<scalar_t>() + g * t.stride(0) + r0 * width;
    std::vector<S> row(width), sum(width, S(0));
    for (int64_t r = 0; r < n; ++r) {
      at::vec::convert(from + r * width, row.data(), width);
      for (int64_t k = 0; k < width; ++k) sum[k] += row[k];
    }
    for (int64_t k = 0; k < width; ++k) acc[k] += sum[k];
  });
}

// Zeros columns [c0, c0 + width) of rows [r0, r0 + n) of group g of a contiguous (G, N, B, X)
// tensor (rows: positions times the batch): each step's rows just before the loop writes them,
// where they are in cache, rather than the whole tensor up front.
void zero_rows(const at::Tensor& t, int64_t g, int64_t r0, int64_t n, int64_t c0 = 0, int64_t width = -1) {
  const int64_t x = t.size(-1), size = t.element_size();
  if (width < 0) width = x;
  auto* base = static_cast<char*>(t.data_ptr()) + (g * t.stride(0) + r0 * x + c0) * size;
  if (c0 == 0 && width == x) {
    std::memset(base, 0, n * x * size);
    return;
  }
  for (int64_t r = 0; r < n; ++r) std::memset(base + r * x * size, 0, width * size);
}

// Runs body(g0, g1) over the recurrences [g0, g1). With `parallel` and as many threads as
// recurrences (2 threads, the Diagonal BiLSTM's 2 directions) each thread runs one recurrence's
// whole loop (the operations inside a parallel region run on their calling thread), where
// otherwise every small operation of every step is shared between the threads and waits at its
// end for both: Diagonal BiLSTM training step, batch 64 and 256, 2 threads, 1.03-1.11x in bf16
// and 1.03x in fp32 (in-process A/B, 2026-12-07). The worker threads take the caller's
// thread-local state (grad and inference mode, dispatch keys); the caller passes `parallel` false
// while a Python dispatch mode (such as torch.utils.flop_counter) or the profiler is on, which
// need the caller's thread. Otherwise the recurrences run one after the other, each loop on its
// own as on a thread: the same operations, so the same numbers either way (tests/test_native.py;
// a matmul over both recurrences at once may round differently from one over each).
template <typename Body>
void by_recurrence(int64_t groups, bool parallel, const Body& body) {
  const int threads = at::get_num_threads();
  if (parallel && groups > 1 && threads > 1 && threads <= groups && !at::in_parallel_region()) {
    const at::ThreadLocalState state;
    at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
      at::ThreadLocalStateGuard guard(state);
      body(g0, g1);
    });
  } else {
    for (int64_t g = 0; g < groups; ++g) body(g, g + 1);
  }
}

// Per step: the rows [x | the neighbours' states (zero where none)] of its positions (`bufs`,
// kept for the weight gradient), times w, through the cell, which adds the bias in its own
// precision (a baddbmm would copy the broadcast bias into every step's result first).
std::vector<at::Tensor> chunked_lstm_forward(const at::Tensor& x_all, const at::Tensor& w_all,
                                             const std::optional<at::Tensor>& bias_all, at::IntArrayRef plan,
                                             bool parallel) {
  TORCH_CHECK(x_all.dim() == 4 && x_all.is_contiguous(), "x must be a contiguous (G, N, B, in), got ",
              x_all.sizes());
  TORCH_CHECK(w_all.dim() == 3 && w_all.size(2) >= 4 && w_all.size(2) % 4 == 0 &&
                  w_all.scalar_type() == x_all.scalar_type(),
              "w must be (G, in + K ch, 4 ch) in x's dtype, got ", w_all.sizes(), " ", w_all.scalar_type());
  const int64_t groups = x_all.size(0), n_all = x_all.size(1), b = x_all.size(2), in = x_all.size(3);
  const int64_t four = w_all.size(2), ch = four / 4;
  const int64_t taps = taps_of(w_all, groups, in, ch), width = in + taps * ch;
  if (bias_all) {
    TORCH_CHECK(bias_all->sizes() == at::IntArrayRef({groups, four}) &&
                    bias_all->scalar_type() == x_all.scalar_type(),
                "bias must be (G, 4 ch) in x's dtype, got ", bias_all->sizes());
  }
  auto like = x_all.options().dtype(cell_type(x_all.scalar_type()));
  auto bufs_all = at::empty({groups, n_all, b, width}, x_all.options());  // filled step by step
  auto acts_all = at::empty({groups, n_all, b, four}, like);
  auto cs_all = at::empty({groups, n_all, b, ch}, like), tcs_all = at::empty_like(cs_all);
  auto hs_all = at::empty_like(cs_all);
  const auto steps = decode(plan, n_all, taps);
  const auto bias_cell = bias_all ? bias_all->to(like.dtype()).contiguous() : at::Tensor();
  by_recurrence(groups, parallel, [&](int64_t g0, int64_t g1) {
    auto part = [&](const at::Tensor& t) { return t.narrow(0, g0, g1 - g0); };
    auto w = part(w_all), bufs = part(bufs_all), acts = part(acts_all);
    auto cs = part(cs_all), tcs = part(tcs_all), hs = part(hs_all);
    const auto bias = bias_cell.defined() ? std::optional<at::Tensor>(part(bias_cell)) : std::nullopt;
    const auto all_cs = cs.flatten(1, 2);
    for (const auto& s : steps) {
      const int64_t rows = (s.end - s.start) * b;
      for (int64_t g = g0; g < g1; ++g) {
        if (in > 0) move_rows(x_all, g, s.start * b, 0, bufs_all, g, s.start * b, 0, rows, in, false);
        zero_rows(bufs_all, g, s.start * b, rows, in, taps * ch);  // where the step before has no state
        for (const auto& [tap, lo, hi, src] : s.taps) {
          move_rows(hs_all, g, src * b, 0, bufs_all, g, lo * b, in + tap * ch, (hi - lo) * b, ch, false);
        }
      }
      const auto step_rows = rows_of(bufs, s.start, s.end);
      lstm_cell_forward(at::bmm(step_rows, w), s.carry ? std::optional<at::Tensor>(all_cs) : std::nullopt,
                        (s.lo - s.start) * b, (s.hi - s.start) * b, s.src * b, rows_of(acts, s.start, s.end),
                        rows_of(cs, s.start, s.end), rows_of(tcs, s.start, s.end), rows_of(hs, s.start, s.end),
                        bias);
    }
  });
  return {hs_all, bufs_all, acts_all, cs_all, tcs_all};
}

// The gradients of the gates' pre-activations (G, N, B, 4 ch) and of x (G, N, B, in), both in
// w's dtype, and of the bias (G, 4 ch, float64), for `inputs` = in columns of x.
std::vector<at::Tensor> chunked_lstm_backward(const at::Tensor& dhs_all, const at::Tensor& acts_all,
                                              const at::Tensor& cs_all, const at::Tensor& tcs_all,
                                              const at::Tensor& w_all, int64_t inputs, at::IntArrayRef plan,
                                              bool parallel) {
  TORCH_CHECK(acts_all.dim() == 4 && tcs_all.dim() == 4 && acts_all.size(3) == 4 * tcs_all.size(3),
              "acts (G, N, B, 4 ch) and tcs (G, N, B, ch) expected");
  const int64_t groups = acts_all.size(0), n_all = acts_all.size(1), b = acts_all.size(2), ch = tcs_all.size(3);
  const int64_t four = 4 * ch;
  TORCH_CHECK(dhs_all.sizes() == tcs_all.sizes() && cs_all.sizes() == tcs_all.sizes() &&
                  tcs_all.size(0) == groups && tcs_all.size(1) == n_all && tcs_all.size(2) == b,
              "dhs, cs and tcs must be (G, N, B, ch) like acts, got ", dhs_all.sizes(), ", ", cs_all.sizes(), ", ",
              tcs_all.sizes());
  TORCH_CHECK(inputs >= 0, "inputs must be >= 0");
  const auto steps = decode(plan, n_all, taps_of(w_all, groups, inputs, ch));
  auto dpre_all = at::empty(acts_all.sizes(), acts_all.options().dtype(w_all.scalar_type()));
  auto dx_all = at::empty({groups, n_all, b, inputs}, dpre_all.options());
  auto dbias_all = at::zeros({groups, four}, acts_all.options().dtype(at::kDouble));
  // dh: the upstream gradient in the cell's precision plus what the step after adds; dc: what the
  // step after carries back (zero elsewhere). Each step's rows are prepared (`prepare`) just before
  // the step after writes into them, and the last step's before the loop.
  const auto dhs = dhs_all.contiguous();
  auto dh_all = at::empty(cs_all.sizes(), cs_all.options()), dc_all = at::empty_like(cs_all);
  by_recurrence(groups, parallel, [&](int64_t g0, int64_t g1) {
    auto part = [&](const at::Tensor& t) { return t.narrow(0, g0, g1 - g0); };
    auto acts = part(acts_all), cs = part(cs_all), tcs = part(tcs_all), dpre = part(dpre_all);
    auto dh = part(dh_all), dc = part(dc_all), wt = part(w_all).transpose(1, 2).contiguous();
    const auto all_cs = cs.flatten(1, 2), all_dc = dc.flatten(1, 2);
    const auto prepare = [&](const Step& s) {
      const int64_t rows = (s.end - s.start) * b;
      for (int64_t g = g0; g < g1; ++g) {
        move_rows(dhs, g, s.start * b, 0, dh_all, g, s.start * b, 0, rows, ch, false);
        zero_rows(dc_all, g, s.start * b, rows);
      }
    };
    if (!steps.empty()) prepare(steps.back());
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
      const auto& s = *it;
      const int64_t rows = (s.end - s.start) * b;
      if (std::next(it) != steps.rend()) prepare(*std::next(it));  // the step before, which this one writes into
      auto carried = s.carry ? std::optional<at::Tensor>(all_cs) : std::nullopt;
      auto carried_grad = s.carry ? std::optional<at::Tensor>(all_dc) : std::nullopt;
      lstm_cell_backward(rows_of(dh, s.start, s.end), rows_of(dc, s.start, s.end), rows_of(acts, s.start, s.end),
                         rows_of(tcs, s.start, s.end), carried, (s.lo - s.start) * b, (s.hi - s.start) * b,
                         s.src * b, rows_of(dpre, s.start, s.end), carried_grad);
      for (int64_t g = g0; g < g1; ++g) {
        add_column_sums(dpre_all, g, s.start * b, rows, dbias_all.data_ptr<double>() + g * four);
      }
      if (s.taps.empty() && inputs == 0) continue;
      const auto dbuf = at::bmm(rows_of(dpre, s.start, s.end), wt).view({g1 - g0, s.end - s.start, b, -1});
      for (int64_t g = g0; g < g1; ++g) {
        if (inputs > 0) move_rows(dbuf, g - g0, 0, 0, dx_all, g, s.start * b, 0, rows, inputs, false);
        for (const auto& [tap, lo, hi, src] : s.taps) {
          move_rows(dbuf, g - g0, (lo - s.start) * b, inputs + tap * ch, dh_all, g, src * b, 0, (hi - lo) * b, ch,
                    true);
        }
      }
    }
  });
  return {dpre_all, dx_all, dbias_all};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(chainrule_native, m) {
  m.def("chunked_lstm_forward(Tensor x, Tensor w, Tensor? bias, int[] plan, bool parallel) -> Tensor[]",
        &chunked_lstm_forward);
  m.def(
      "chunked_lstm_backward(Tensor dhs, Tensor acts, Tensor cs, Tensor tcs, Tensor w, int inputs, int[] plan, "
      "bool parallel) -> Tensor[]",
      &chunked_lstm_backward);
}

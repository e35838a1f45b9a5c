// The LSTM cell step of lstm_cell.cpp, for the scan loops of chunked_scan.cpp (the registered
// operators' C++ entry points; shapes and arithmetic are described in lstm_cell.cpp).
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace chainrule_native {

// the precision a cell runs in for pre-activations of dtype t: float32 for half precisions
at::ScalarType cell_type(at::ScalarType t);

// `bias` (G, 4 ch, in the cell's precision), if given, is added to the (widened) pre-activations
void lstm_cell_forward(const at::Tensor& gates, const std::optional<at::Tensor>& c_prev, int64_t lo, int64_t hi,
                       int64_t src, at::Tensor act, at::Tensor c, at::Tensor tc, at::Tensor h,
                       const std::optional<at::Tensor>& bias = std::nullopt);

void lstm_cell_backward(const at::Tensor& dh, const at::Tensor& dc, const at::Tensor& act, const at::Tensor& tc,
                        const std::optional<at::Tensor>& c_prev, int64_t lo, int64_t hi, int64_t src, at::Tensor dpre,
                        std::optional<at::Tensor> dc_prev);

}  // namespace chainrule_native

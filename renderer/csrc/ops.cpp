// Torch operators (namespace recon_splat) around the plain C++ kernels. Only light ATen headers
// are included so that the whole extension compiles in seconds. renderer/_cpu.py wraps these in
// torch.autograd.Function classes.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <tuple>
#include <utility>
#include <vector>

#include "splat_cpu.h"

namespace recon_splat {
namespace {

using at::Tensor;

void check(const Tensor& t, at::ScalarType dtype, int64_t dim, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == dtype, name, " has dtype ", t.scalar_type(), ", expected ", dtype);
  TORCH_CHECK(t.dim() == dim, name, " must have ", dim, " dimensions, got ", t.dim());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

std::tuple<Tensor, Tensor, Tensor, Tensor> project_fwd(const Tensor& means, const Tensor& quats, const Tensor& scales,
                                                       const Tensor& opacities, const Tensor& w2c, const Tensor& K,
                                                       int64_t width, int64_t height, double eps2d, double near_plane,
                                                       double far_plane) {
  const auto dt = means.scalar_type();
  check(means, dt, 2, "means"), check(quats, dt, 2, "quats"), check(scales, dt, 2, "scales");
  check(opacities, dt, 1, "opacities"), check(w2c, dt, 3, "w2c"), check(K, dt, 3, "K");
  const ProjectShape sh{w2c.size(0), means.size(0), width, height, eps2d, near_plane, far_plane};
  const auto opt = means.options();
  Tensor means2d = at::empty({sh.C, sh.N, 2}, opt), conics = at::empty({sh.C, sh.N, 3}, opt);
  Tensor depths = at::empty({sh.C, sh.N}, opt), radii = at::empty({sh.C, sh.N, 2}, opt.dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(dt, "project_fwd", [&] {
    project_forward<scalar_t>(sh, means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
                              opacities.data_ptr<scalar_t>(), w2c.data_ptr<scalar_t>(), K.data_ptr<scalar_t>(),
                              means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(),
                              radii.data_ptr<int32_t>());
  });
  return {means2d, conics, depths, radii};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> project_bwd(const Tensor& means, const Tensor& quats, const Tensor& scales,
                                                       const Tensor& w2c, const Tensor& K, const Tensor& radii,
                                                       int64_t width, int64_t height, double eps2d,
                                                       const Tensor& g_means2d, const Tensor& g_conics,
                                                       const Tensor& g_depths, bool w2c_grad) {
  const auto dt = means.scalar_type();
  check(g_means2d, dt, 3, "g_means2d"), check(g_conics, dt, 3, "g_conics"), check(g_depths, dt, 2, "g_depths");
  check(radii, at::kInt, 3, "radii");
  const ProjectShape sh{w2c.size(0), means.size(0), width, height, eps2d, 0.0, 0.0};
  Tensor g_means = at::empty_like(means), g_quats = at::empty_like(quats), g_scales = at::empty_like(scales);
  Tensor g_w2c = w2c_grad ? at::empty_like(w2c) : at::empty({0}, w2c.options());
  AT_DISPATCH_FLOATING_TYPES(dt, "project_bwd", [&] {
    project_backward<scalar_t>(sh, means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
                               w2c.data_ptr<scalar_t>(), K.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(),
                               g_means2d.data_ptr<scalar_t>(), g_conics.data_ptr<scalar_t>(),
                               g_depths.data_ptr<scalar_t>(), g_means.data_ptr<scalar_t>(), g_quats.data_ptr<scalar_t>(),
                               g_scales.data_ptr<scalar_t>(), w2c_grad ? g_w2c.data_ptr<scalar_t>() : nullptr);
  });
  return {g_means, g_quats, g_scales, g_w2c};
}

// A tensor that takes over the buffer's storage (no copy).
template <typename T>
Tensor own(Buffer<T>&& b, at::ScalarType dtype) {
  auto* holder = new Buffer<T>(std::move(b));
  return at::from_blob(holder->data(), {holder->size}, [holder](void*) { delete holder; },
                       at::TensorOptions().dtype(dtype));
}

// The binning travels from the forward to the backward pass as these tensors, in this order.
template <typename S>
std::vector<Tensor> binning_tensors(Binning<S>&& b, at::ScalarType dt) {
  return {own(std::move(b.geo), dt),           own(std::move(b.box), at::kInt),
          own(std::move(b.pair_start), at::kLong), own(std::move(b.tile_offsets), at::kLong),
          own(std::move(b.tile_gauss), at::kInt),  own(std::move(b.tile_slots), at::kLong)};
}

template <typename S>
BinView<S> binning_view(at::TensorList t, const Tensor& values) {
  TORCH_CHECK(t.size() == 6, "binning must hold 6 tensors");
  BinView<S> v;
  v.n_pairs = t[4].numel(), v.geo = t[0].data_ptr<S>(), v.vals = values.data_ptr<S>();
  v.box = t[1].data_ptr<int32_t>(), v.pair_start = t[2].data_ptr<int64_t>();
  v.tile_offsets = t[3].data_ptr<int64_t>(), v.tile_gauss = t[4].data_ptr<int32_t>();
  v.tile_slots = t[5].data_ptr<int64_t>();
  return v;
}

std::tuple<Tensor, Tensor, Tensor, Tensor, std::vector<Tensor>> rasterize_fwd(
    const Tensor& means2d, const Tensor& conics, const Tensor& opacities, const Tensor& values, const Tensor& radii,
    const Tensor& depths, int64_t width, int64_t height, int64_t tile) {
  const auto dt = values.scalar_type();
  check(means2d, dt, 3, "means2d"), check(conics, dt, 3, "conics"), check(opacities, dt, 2, "opacities");
  check(values, dt, 3, "values"), check(radii, at::kInt, 3, "radii"), check(depths, dt, 2, "depths");
  TORCH_CHECK(tile >= 1 && tile <= 64, "tile size must be in 1..64, got ", tile);
  TORCH_CHECK(values.size(0) * values.size(1) < (int64_t(1) << 31), "at most 2^31 camera-Gaussian pairs");
  const RasterShape sh{values.size(0), values.size(1), values.size(2), width, height, tile};
  const auto opt = values.options();
  Tensor image = at::empty({sh.C, height, width, sh.D}, opt), alpha = at::empty({sh.C, height, width, 1}, opt);
  Tensor final_T = at::empty({sh.C, height, width}, opt);
  Tensor n_contrib = at::empty({sh.C, height, width}, opt.dtype(at::kInt));
  std::vector<Tensor> binning;
  AT_DISPATCH_FLOATING_TYPES(dt, "rasterize_fwd", [&] {
    Binning<scalar_t> b;
    bin_gaussians<scalar_t>(sh, means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                            opacities.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(), depths.data_ptr<scalar_t>(), b);
    rasterize_forward<scalar_t>(sh, b.view(values.data_ptr<scalar_t>()), image.data_ptr<scalar_t>(), alpha.data_ptr<scalar_t>(),
                                final_T.data_ptr<scalar_t>(), n_contrib.data_ptr<int32_t>());
    binning = binning_tensors(std::move(b), dt);
  });
  return {image, alpha, final_T, n_contrib, binning};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> rasterize_bwd(at::TensorList binning, const Tensor& values,
                                                         const Tensor& final_T,
                                                         const Tensor& n_contrib, const Tensor& g_image,
                                                         const std::optional<Tensor>& g_alpha, int64_t tile) {
  const auto dt = g_image.scalar_type();
  check(g_image, dt, 4, "g_image"), check(final_T, dt, 3, "final_T"), check(n_contrib, at::kInt, 3, "n_contrib");
  check(values, dt, 3, "values");
  if (g_alpha) check(*g_alpha, dt, 4, "g_alpha");
  const RasterShape sh{values.size(0), values.size(1), values.size(2), g_image.size(2), g_image.size(1), tile};
  const auto opt = g_image.options();
  Tensor g_means2d = at::empty({sh.C, sh.N, 2}, opt), g_conics = at::empty({sh.C, sh.N, 3}, opt);
  Tensor g_opacities = at::empty({sh.C, sh.N}, opt), g_values = at::empty({sh.C, sh.N, sh.D}, opt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rasterize_bwd", [&] {
    rasterize_backward<scalar_t>(sh, binning_view<scalar_t>(binning, values), final_T.data_ptr<scalar_t>(),
                                 n_contrib.data_ptr<int32_t>(), g_image.data_ptr<scalar_t>(),
                                 g_alpha ? g_alpha->data_ptr<scalar_t>() : nullptr, g_means2d.data_ptr<scalar_t>(),
                                 g_conics.data_ptr<scalar_t>(), g_opacities.data_ptr<scalar_t>(),
                                 g_values.data_ptr<scalar_t>());
  });
  return {g_means2d, g_conics, g_opacities, g_values};
}

}  // namespace
}  // namespace recon_splat

TORCH_LIBRARY(recon_splat, m) {
  using namespace recon_splat;
  m.def("project_fwd(Tensor means, Tensor quats, Tensor scales, Tensor opacities, Tensor w2c, Tensor K, int width, "
        "int height, float eps2d, float near_plane, float far_plane) -> (Tensor, Tensor, Tensor, Tensor)",
        &project_fwd);
  m.def("project_bwd(Tensor means, Tensor quats, Tensor scales, Tensor w2c, Tensor K, Tensor radii, int width, "
        "int height, float eps2d, Tensor g_means2d, Tensor g_conics, Tensor g_depths, bool w2c_grad) "
        "-> (Tensor, Tensor, Tensor, Tensor)",
        &project_bwd);
  m.def("rasterize_fwd(Tensor means2d, Tensor conics, Tensor opacities, Tensor values, Tensor radii, Tensor depths, "
        "int width, int height, int tile) -> (Tensor, Tensor, Tensor, Tensor, Tensor[])",
        &rasterize_fwd);
  m.def("rasterize_bwd(Tensor[] binning, Tensor values, Tensor final_T, Tensor n_contrib, Tensor g_image, "
        "Tensor? g_alpha, int tile) -> (Tensor, Tensor, Tensor, Tensor)",
        &rasterize_bwd);
}

// Compiled CPU Gaussian splatting: the fast path of renderer/_torch_impl.py (its pure-torch twin).
//
// Plain C++ on raw pointers (no torch headers, so these files compile in seconds); ops.cpp wraps
// them as torch operators. Every function is a template over the scalar type S (float, double).
// Conventions are those of _torch_impl.py: OpenCV cameras, w2c [C,4,4], K [C,3,3] in pixels,
// quaternions wxyz, pixel centres at +0.5, conics (a, b, c) of the inverse 2D covariance
// [[a, b], [b, c]], and sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with dx = pixel - mean.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace recon_splat {

// gsplat's constants, as in _torch_impl.py.
constexpr double kAlphaThreshold = 1.0 / 255.0;  // alpha <= this is skipped
constexpr double kMaxAlpha = 0.999;               // alpha is clamped to this
constexpr double kTransmittanceMin = 1e-4;        // a pixel stops before T would reach <= this
constexpr double kBoxExtend = 3.33;               // box half-extent cap, in standard deviations
// Below these sizes a loop runs on one thread: opening a parallel region costs more than it saves,
// and on a loaded machine a team can stall for a scheduler tick (a gradcheck makes thousands of calls).
constexpr int64_t kParallelGaussians = 8192;  // per-Gaussian loops (projection, packing, reduction)
constexpr int64_t kParallelPairs = 2048;      // (tile, Gaussian) pairs of the rasterizer
constexpr int kGeo = 6;                           // packed attributes per Gaussian (BinView::geo)

// ---- projection (project.cpp) ---------------------------------------------------------------

struct ProjectShape {
  int64_t C, N;       // cameras, Gaussians
  int64_t W, H;       // image size in pixels
  double eps2d;       // low-pass added to the 2D covariance, pixels^2
  double near_plane, far_plane;
};

// means [N,3], quats [N,4] (wxyz, any norm), scales [N,3], opacities [N], w2c [C,4,4], K [C,3,3]
// -> means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] (0 = culled).
template <typename S>
void project_forward(const ProjectShape& sh, const S* means, const S* quats, const S* scales, const S* opacities,
                     const S* w2c, const S* K, S* means2d, S* conics, S* depths, int32_t* radii);

// Gradients of project_forward's differentiable outputs back to means, quats, scales and (when
// grad_w2c is not null) w2c. Culled (radii 0) Gaussians get no gradient. Outputs are overwritten.
template <typename S>
void project_backward(const ProjectShape& sh, const S* means, const S* quats, const S* scales, const S* w2c,
                      const S* K, const int32_t* radii, const S* g_means2d, const S* g_conics, const S* g_depths,
                      S* g_means, S* g_quats, S* g_scales, S* g_w2c);

// ---- rasterization (rasterize.cpp) ----------------------------------------------------------

struct RasterShape {
  int64_t C, N, D;  // cameras, Gaussians per camera, channels to composite
  int64_t W, H;     // image size
  int64_t tile;     // tile edge in pixels
  int64_t tiles_x() const { return (W + tile - 1) / tile; }
  int64_t tiles_y() const { return (H + tile - 1) / tile; }
  int64_t n_tiles() const { return C * tiles_x() * tiles_y(); }
};

// Visible Gaussians binned into tiles, each tile's list front to back (depth-sorted per camera,
// stable in the Gaussian index). Per-Gaussian arrays are indexed by the flat index cn = c * N + n
// (entries of culled Gaussians are left unset). BinView reads it; Binning owns it (ops.cpp hands
// its buffers to tensors without copying).
template <typename S>
struct BinView {
  int64_t n_pairs = 0;                    // M, the number of (tile, Gaussian) pairs
  const S* geo = nullptr;                 // [C*N, 6] mean x, mean y, conic a, b, c, opacity
  const S* vals = nullptr;                // [C*N, D] values to composite (the caller's tensor)
  const int32_t* box = nullptr;           // [C*N, 4] inclusive pixel box x0, x1, y0, y1 (centres inside)
  const int64_t* pair_start = nullptr;    // [C*N + 1] first Gaussian-major pair slot of each Gaussian
  const int64_t* tile_offsets = nullptr;  // [n_tiles + 1] start of each tile's list (the tiles the box covers)
  const int32_t* tile_gauss = nullptr;    // [M] flat Gaussian index cn, each tile's run front to back
  const int64_t* tile_slots = nullptr;    // [M] Gaussian-major slot of each pair (the backward's scratch)
};

// A buffer that is not zero-filled on allocation (the binning writes every entry it reads).
template <typename T>
struct Buffer {
  std::unique_ptr<T[]> ptr;
  int64_t size = 0;
  void allocate(int64_t n) { ptr.reset(new T[n > 0 ? n : 1]), size = n; }
  T* data() const { return ptr.get(); }
  T& operator[](int64_t i) const { return ptr[i]; }
};

template <typename S>
struct Binning {
  Buffer<S> geo;
  Buffer<int32_t> box;
  Buffer<int64_t> pair_start, tile_offsets, tile_slots;
  Buffer<int32_t> tile_gauss;
  BinView<S> view(const S* vals) const {
    BinView<S> v;
    v.n_pairs = tile_gauss.size, v.geo = geo.data(), v.vals = vals, v.box = box.data();
    v.pair_start = pair_start.data(), v.tile_offsets = tile_offsets.data();
    v.tile_gauss = tile_gauss.data(), v.tile_slots = tile_slots.data();
    return v;
  }
};

// means2d [C,N,2], conics [C,N,3], opacities [C,N], radii [C,N,2], depths [C,N].
template <typename S>
void bin_gaussians(const RasterShape& sh, const S* means2d, const S* conics, const S* opacities, const int32_t* radii,
                   const S* depths, Binning<S>& out);

// Front-to-back compositing -> image [C,H,W,D], alpha [C,H,W], and for the backward pass the
// final transmittance [C,H,W] and the count of list entries up to the last contributor [C,H,W].
template <typename S>
void rasterize_forward(const RasterShape& sh, const BinView<S>& bin, S* image, S* alpha, S* final_T,
                       int32_t* n_contrib);

// Back-to-front gradients (the 3DGS algorithm) from g_image [C,H,W,D] and g_alpha [C,H,W] (may be
// null) to g_means2d [C,N,2], g_conics [C,N,3], g_opacities [C,N], g_values [C,N,D] (all written).
template <typename S>
void rasterize_backward(const RasterShape& sh, const BinView<S>& bin, const S* final_T, const int32_t* n_contrib,
                        const S* g_image, const S* g_alpha, S* g_means2d, S* g_conics, S* g_opacities,
                        S* g_values);

}  // namespace recon_splat

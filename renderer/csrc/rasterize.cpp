// Tile rasterizer, forward (front to back, early termination) and backward (back to front from the
// saved final transmittance, the 3DGS algorithm). Threads take whole tiles; inside a tile each
// Gaussian visits only the rows and columns of its box, and each row is one SIMD loop.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "splat_cpu.h"

// 64-byte double vectors are passed by value between inlined helpers; the ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace recon_splat {
namespace {

// Pixels are processed in chunks of V = 8 along a row, as GCC/Clang vector types: explicit SIMD
// without intrinsics (AVX2/AVX-512 on x86, NEON on ARM, plain code elsewhere). A tile's pixel state
// is stored with a padded row stride so that a chunk may run past the tile's right edge (those
// lanes are masked).
constexpr int V = 8;

template <typename S>
struct Vec;
template <>
struct Vec<float> {
  typedef float S8 __attribute__((vector_size(32)));
  typedef int32_t I8 __attribute__((vector_size(32)));  // masks and counters of the same width
};
template <>
struct Vec<double> {
  typedef double S8 __attribute__((vector_size(64)));
  typedef int64_t I8 __attribute__((vector_size(64)));
};
template <typename S>
using S8 = typename Vec<S>::S8;
template <typename S>
using I8 = typename Vec<S>::I8;
template <typename S>
using Int = std::remove_reference_t<decltype(I8<S>{}[0])>;  // int32_t for float, int64_t for double

template <typename T, typename E>
inline T load8(const E* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T, typename E>
inline void store8(E* p, const T& v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T, typename E>
inline T splat(E x) {
  return T{} + x;
}
template <typename S>
inline S8<S> lanes() {
  return S8<S>{0, 1, 2, 3, 4, 5, 6, 7};
}
template <typename S>
inline Int<S> sum_lanes(I8<S> v) {
  Int<S> s = 0;
  for (int i = 0; i < V; ++i) s += v[i];
  return s;
}

// exp on [-80, 0]: Cephes' expf polynomial (about 1 ulp), 2^n built from the exponent bits.
inline S8<float> exp_neg(S8<float> x) {
  const S8<float> magic = splat<S8<float>>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const S8<float> fn_biased = x * 1.44269504088896341f + magic;
  const S8<float> fn = fn_biased - magic;
  const S8<float> r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;
  S8<float> p = splat<S8<float>>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const I8<float> e = (((I8<float>)fn_biased - (I8<float>)magic) + 127) << 23;  // vector casts keep the bits
  return p * (S8<float>)e;
}
inline S8<double> exp_neg(S8<double> x) {  // doubles (tests, gradcheck): exact std::exp per lane
  S8<double> out;
  for (int i = 0; i < V; ++i) out[i] = std::exp(x[i]);
  return out;
}

template <typename S>
struct Consts {
  const S thr = S(kAlphaThreshold), t_min = S(kTransmittanceMin), max_alpha = S(kMaxAlpha);
};

struct Layout {
  int64_t ts, rs, P;  // tile edge, row stride, pixels per tile with padding
  explicit Layout(int64_t tile) : ts(tile), rs((tile + 2 * V - 2) / V * V), P(rs * tile) {}
};

struct Tile {
  int64_t c, x0, y0, w, h;  // camera, first pixel, size (clipped to the image)
};

inline Tile tile_of(const RasterShape& sh, int64_t t) {
  const int64_t per_cam = sh.tiles_x() * sh.tiles_y(), local = t % per_cam;
  Tile tl;
  tl.c = t / per_cam;
  tl.x0 = (local % sh.tiles_x()) * sh.tile, tl.y0 = (local / sh.tiles_x()) * sh.tile;
  tl.w = std::min(sh.tile, sh.W - tl.x0), tl.h = std::min(sh.tile, sh.H - tl.y0);
  return tl;
}

// The part of a Gaussian's pixel box inside the tile, tile-relative and inclusive; empty when x1 < x0.
struct Span {
  int64_t x0, x1, y0, y1;
};
inline Span clip_box(const int32_t* b, const Tile& tl) {
  return {std::max<int64_t>(b[0], tl.x0) - tl.x0, std::min<int64_t>(b[1], tl.x0 + tl.w - 1) - tl.x0,
          std::max<int64_t>(b[2], tl.y0) - tl.y0, std::min<int64_t>(b[3], tl.y0 + tl.h - 1) - tl.y0};
}

// One Gaussian on one pixel row: -sigma = base - dx (ha dx + bdy).
template <typename S>
struct Row {
  S u, ha, bdy, base, o;
  Row(const S* g, S dy) : u(g[0]), ha(S(0.5) * g[2]), bdy(g[3] * dy), base(S(-0.5) * g[4] * dy * dy), o(g[5]) {}
  S8<S> dx(S px) const { return (lanes<S>() + px) - u; }  // pixel centres px, px + 1, ... minus the mean
  S8<S> neg_sigma(S8<S> dx) const { return base - dx * (ha * dx + bdy); }
};

// alpha = o exp(-sigma) before the clamp to 0.999 (exp's argument kept in its valid range).
template <typename S>
inline S8<S> raw_alpha(const Row<S>& q, S8<S> dx) {
  const S8<S> ns = q.neg_sigma(dx), lo = splat<S8<S>>(S(-80));
  return q.o * exp_neg(ns < lo ? lo : ns);
}

// Forward, one chunk of V pixels at T, live, ncon, acc (n of them inside the box); returns the
// number of pixels this Gaussian finished (transmittance would have fallen to <= 1e-4).
template <typename S>
inline Int<S> forward_chunk(const Row<S>& q, S px, int64_t n, S* T, S* live, Int<S>* ncon, S* acc, int64_t P,
                            const S* val, int64_t D, Int<S> k1, const Consts<S>& K) {
  using F = S8<S>;
  using M = I8<S>;
  const F zero = splat<F>(S(0));
  const F raw = raw_alpha(q, q.dx(px)), alpha = raw > K.max_alpha ? splat<F>(K.max_alpha) : raw;
  const F Ti = load8<F>(T), Tn = Ti * (S(1) - alpha), lv = load8<F>(live);
  const M use = (lanes<S>() < S(n)) & (alpha > K.thr) & (lv != S(0));
  const M fin = use & (Tn <= K.t_min), con = use & ~fin;
  const F w = con ? alpha * Ti : zero;
  store8(T, con ? Tn : Ti);
  store8(live, fin ? zero : lv);
  store8(ncon, con ? splat<M>(k1) : load8<M>(ncon));
  for (int64_t d = 0; d < D; ++d) store8(acc + d * P, load8<F>(acc + d * P) + w * val[d]);
  return -sum_lanes<S>(fin);
}

template <typename S>
void forward_tile(const RasterShape& sh, const BinView<S>& bin, int64_t t, S* image, S* alpha_out, S* final_T,
                  int32_t* n_contrib, S* buf, Int<S>* ncon) {
  const Tile tl = tile_of(sh, t);
  const Layout L(sh.tile);
  const int64_t P = L.P, D = sh.D;
  S *T = buf, *live = buf + P, *acc = buf + 2 * P;  // acc: [D, P]
  std::fill(T, T + P, S(1)), std::fill(live, live + P, S(1)), std::fill(acc, acc + D * P, S(0));
  std::fill(ncon, ncon + P, 0);
  const Consts<S> K;
  int64_t n_live = tl.w * tl.h;
  const int64_t start = bin.tile_offsets[t], end = bin.tile_offsets[t + 1];
  for (int64_t k = start; k < end && n_live > 0; ++k) {
    const int64_t r = bin.tile_gauss[k];
    const Span sp = clip_box(bin.box + 4 * r, tl);
    if (sp.x1 < sp.x0 || sp.y1 < sp.y0) continue;
    const S* g = bin.geo + kGeo * r;
    const S* val = bin.vals + D * r;
    for (int64_t y = sp.y0; y <= sp.y1; ++y) {
      const Row<S> q(g, S(tl.y0 + y) + S(0.5) - g[1]);
      for (int64_t x = sp.x0; x <= sp.x1; x += V) {
        const int64_t o = y * L.rs + x;
        n_live -= forward_chunk(q, S(tl.x0 + x) + S(0.5), sp.x1 - x + 1, T + o, live + o, ncon + o, acc + o, P, val,
                                D, Int<S>(k - start + 1), K);
      }
    }
  }
  for (int64_t y = 0; y < tl.h; ++y)
    for (int64_t x = 0; x < tl.w; ++x) {
      const int64_t p = y * L.rs + x, pix = (tl.c * sh.H + tl.y0 + y) * sh.W + tl.x0 + x;
      for (int64_t d = 0; d < D; ++d) image[pix * D + d] = acc[d * P + p];
      alpha_out[pix] = S(1) - T[p];
      final_T[pix] = T[p];
      n_contrib[pix] = int32_t(ncon[p]);
    }
}

}  // namespace

template <typename S>
void rasterize_forward(const RasterShape& sh, const BinView<S>& bin, S* image, S* alpha, S* final_T,
                       int32_t* n_contrib) {
  const int64_t P = Layout(sh.tile).P, n_tiles = sh.n_tiles();
#pragma omp parallel if (bin.n_pairs >= kParallelPairs)
  {
    std::vector<S> buf((2 + sh.D) * P);
    std::vector<Int<S>> ncon(P);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_tiles; ++t)
      forward_tile(sh, bin, t, image, alpha, final_T, n_contrib, buf.data(), ncon.data());
  }
}

namespace {

// Per-tile pixel state of the backward pass, [P] arrays ([D, P] for channels).
template <typename S>
struct BackState {
  int64_t P, D;
  S *T, *S_behind, *Sa, *g, *ga;  // transmittance, sums behind (D channels, alpha), pixel grads
  const Int<S>* ncon;
  S8<S> acc_geo[6];  // per-lane gradient sums of the current Gaussian: mean x, y, conic a, b, c, log o
  S8<S>* acc_val;    // [D] the same for its values
};

// Backward, one chunk of V pixels at tile-relative offset o (n of them inside the box): walks
// the pixels one Gaussian further back and accumulates that Gaussian's per-lane gradients.
template <typename S>
inline void backward_chunk(const Row<S>& q, const S* g, S px, S dy, int64_t n, int64_t o, Int<S> k, const S* val,
                           BackState<S>& st, const Consts<S>& K) {
  using F = S8<S>;
  using M = I8<S>;
  const F zero = splat<F>(S(0));
  const F dx = q.dx(px), raw = raw_alpha(q, dx), alpha = raw > K.max_alpha ? splat<F>(K.max_alpha) : raw;
  const M use = (lanes<S>() < S(n)) & (load8<M>(st.ncon + o) > k) & (alpha > K.thr);
  const F inv = use ? S(1) / (S(1) - alpha) : zero;  // 0 where unused: such lanes change nothing
  const F T_after = load8<F>(st.T + o), Ti = T_after * inv, w = alpha * Ti;  // T before this Gaussian
  store8(st.T + o, use ? Ti : T_after);
  const F Sa = load8<F>(st.Sa + o);
  F dal = load8<F>(st.ga + o) * (Ti - Sa * inv);  // the alpha output: a channel of ones
  store8(st.Sa + o, Sa + w);
  for (int64_t d = 0; d < st.D; ++d) {
    S* Sd = st.S_behind + d * st.P + o;
    const F Sb = load8<F>(Sd), gd = load8<F>(st.g + d * st.P + o);
    dal += gd * (Ti * val[d] - Sb * inv);
    st.acc_val[d] += w * gd;
    store8(Sd, Sb + w * val[d]);
  }
  // d loss / d log(alpha); no gradient where alpha was clamped at 0.999
  const F dla = raw > K.max_alpha ? zero : dal * alpha;
  const S a = g[2], b = g[3], c = g[4];
  st.acc_geo[0] += dla * (a * dx + b * dy), st.acc_geo[1] += dla * (b * dx + c * dy);
  st.acc_geo[2] -= S(0.5) * dla * dx * dx, st.acc_geo[3] -= dla * dx * dy, st.acc_geo[4] -= S(0.5) * dla * dy * dy;
  st.acc_geo[5] += dla;
}

template <typename S>
inline S sum_lanes_f(S8<S> v) {
  S s = 0;
  for (int i = 0; i < V; ++i) s += v[i];
  return s;
}

template <typename S>
void backward_tile(const RasterShape& sh, const BinView<S>& bin, int64_t t, const S* final_T, const int32_t* n_contrib,
                   const S* g_image, const S* g_alpha, S* pair_grads, S* buf, S8<S>* acc_val, Int<S>* ncon) {
  const Tile tl = tile_of(sh, t);
  const Layout L(sh.tile);
  const int64_t P = L.P, D = sh.D, G = 6 + D;
  BackState<S> st;
  st.P = P, st.D = D, st.ncon = ncon, st.acc_val = acc_val;
  st.T = buf, st.Sa = buf + P, st.ga = buf + 2 * P, st.S_behind = buf + 3 * P, st.g = buf + (3 + D) * P;
  std::fill(buf, buf + (3 + 2 * D) * P, S(0));
  std::fill(ncon, ncon + P, 0);
  int32_t k_max = 0;
  for (int64_t y = 0; y < tl.h; ++y)
    for (int64_t x = 0; x < tl.w; ++x) {
      const int64_t p = y * L.rs + x, pix = (tl.c * sh.H + tl.y0 + y) * sh.W + tl.x0 + x;
      st.T[p] = final_T[pix], ncon[p] = n_contrib[pix], k_max = std::max(k_max, n_contrib[pix]);
      st.ga[p] = g_alpha ? g_alpha[pix] : S(0);
      for (int64_t d = 0; d < D; ++d) st.g[d * P + p] = g_image[pix * D + d];
    }
  const Consts<S> K;
  const int64_t start = bin.tile_offsets[t], end = bin.tile_offsets[t + 1];
  for (int64_t k = start + k_max; k < end; ++k) std::fill_n(pair_grads + bin.tile_slots[k] * G, G, S(0));
  for (int64_t k = start + k_max - 1; k >= start; --k) {
    const int64_t r = bin.tile_gauss[k];
    S* grad = pair_grads + bin.tile_slots[k] * G;
    std::fill_n(grad, G, S(0));
    const Span sp = clip_box(bin.box + 4 * r, tl);
    if (sp.x1 < sp.x0 || sp.y1 < sp.y0) continue;
    const S* g = bin.geo + kGeo * r;
    for (auto& a : st.acc_geo) a = splat<S8<S>>(S(0));
    for (int64_t d = 0; d < D; ++d) acc_val[d] = splat<S8<S>>(S(0));
    for (int64_t y = sp.y0; y <= sp.y1; ++y) {
      const S dy = S(tl.y0 + y) + S(0.5) - g[1];
      const Row<S> q(g, dy);
      for (int64_t x = sp.x0; x <= sp.x1; x += V)
        backward_chunk(q, g, S(tl.x0 + x) + S(0.5), dy, sp.x1 - x + 1, y * L.rs + x, Int<S>(k - start),
                       bin.vals + D * r, st, K);
    }
    for (int j = 0; j < 6; ++j) grad[j] = sum_lanes_f<S>(st.acc_geo[j]);
    for (int64_t d = 0; d < D; ++d) grad[6 + d] = sum_lanes_f<S>(acc_val[d]);
  }
}

}  // namespace

template <typename S>
void rasterize_backward(const RasterShape& sh, const BinView<S>& bin, const S* final_T, const int32_t* n_contrib,
                        const S* g_image, const S* g_alpha, S* g_means2d, S* g_conics, S* g_opacities,
                        S* g_values) {
  const int64_t P = Layout(sh.tile).P, D = sh.D, G = 6 + D, n_tiles = sh.n_tiles();
  Buffer<S> pair_grads;
  pair_grads.allocate(bin.n_pairs * G);  // Gaussian-major: a Gaussian's tiles are contiguous
#pragma omp parallel if (bin.n_pairs >= kParallelPairs)
  {
    std::vector<S> buf((3 + 2 * D) * P);
    std::vector<S8<S>> acc_val(std::max<int64_t>(D, 1));
    std::vector<Int<S>> ncon(P);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_tiles; ++t)
      backward_tile(sh, bin, t, final_T, n_contrib, g_image, g_alpha, pair_grads.data(), buf.data(), acc_val.data(),
                    ncon.data());
  }
  const int64_t CN = sh.C * sh.N;
#pragma omp parallel for schedule(static) if (CN >= kParallelGaussians)
  for (int64_t cn = 0; cn < CN; ++cn) {
    S sum[6] = {0, 0, 0, 0, 0, 0};
    S* gv = g_values + cn * D;
    std::fill_n(gv, D, S(0));
    for (int64_t s = bin.pair_start[cn]; s < bin.pair_start[cn + 1]; ++s) {
      const S* pg = pair_grads.data() + s * G;
      for (int j = 0; j < 6; ++j) sum[j] += pg[j];
      for (int64_t d = 0; d < D; ++d) gv[d] += pg[6 + d];
    }
    g_means2d[2 * cn] = sum[0], g_means2d[2 * cn + 1] = sum[1];
    g_conics[3 * cn] = sum[2], g_conics[3 * cn + 1] = sum[3], g_conics[3 * cn + 2] = sum[4];
    // d log(o) / d o = 1 / o (culled Gaussians have no pairs and get 0)
    g_opacities[cn] = bin.pair_start[cn + 1] > bin.pair_start[cn] ? sum[5] / bin.geo[kGeo * cn + 5] : S(0);
  }
}

#define RECON_INSTANTIATE(S)                                                                                    \
  template void rasterize_forward<S>(const RasterShape&, const BinView<S>&, S*, S*, S*, int32_t*);             \
  template void rasterize_backward<S>(const RasterShape&, const BinView<S>&, const S*, const int32_t*, const S*, \
                                      const S*, S*, S*, S*, S*);
RECON_INSTANTIATE(float)
RECON_INSTANTIATE(double)
#undef RECON_INSTANTIATE

}  // namespace recon_splat

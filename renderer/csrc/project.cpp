// EWA projection, forward and hand-written backward: the maths of _torch_impl.project, one
// (camera, Gaussian) pair at a time, threads over Gaussians.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "splat_cpu.h"

namespace recon_splat {
namespace {

// Everything the forward computes for one (camera, Gaussian) pair; the backward recomputes it.
template <typename S>
struct Pair {
  S R[9], t[3];             // world-to-camera rotation (row-major) and translation
  S fx, fy, cx, cy;
  S qn[4], qnorm;           // normalised quaternion wxyz and the norm it was divided by
  S Rq[9], M[9], RM[9];     // quaternion rotation, M = Rq diag(s), RM = R M (row-major)
  S x, y, z;                // camera-space mean
  S ratio_x, ratio_y;       // clamped x / z, y / z
  bool clamp_x, clamp_y;    // true when the clamp was active (no gradient through x / z)
  S T0[3], T1[3];           // rows of J R M
  S c00, c01, c11, det;     // low-passed 2D covariance and its (clamped) determinant
  bool det_clamped;
};

template <typename S>
void load_camera(Pair<S>& p, const S* w2c, const S* K) {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) p.R[3 * i + j] = w2c[4 * i + j];
    p.t[i] = w2c[4 * i + 3];
  }
  p.fx = K[0], p.fy = K[4], p.cx = K[2], p.cy = K[5];
}

template <typename S>
void quat_to_rot(const S* q, S* R) {
  const S w = q[0], x = q[1], y = q[2], z = q[3];
  R[0] = 1 - 2 * (y * y + z * z), R[1] = 2 * (x * y - w * z), R[2] = 2 * (x * z + w * y);
  R[3] = 2 * (x * y + w * z), R[4] = 1 - 2 * (x * x + z * z), R[5] = 2 * (y * z - w * x);
  R[6] = 2 * (x * z - w * y), R[7] = 2 * (y * z + w * x), R[8] = 1 - 2 * (x * x + y * y);
}

// The Gaussian's own part (independent of the camera): normalised quaternion, Rq and M.
template <typename S>
void load_gaussian(Pair<S>& p, const S* quat, const S* scale) {
  const S n2 = quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3];
  p.qnorm = std::max(std::sqrt(n2), S(1e-12));  // torch.nn.functional.normalize
  for (int i = 0; i < 4; ++i) p.qn[i] = quat[i] / p.qnorm;
  quat_to_rot(p.qn, p.Rq);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) p.M[3 * i + j] = p.Rq[3 * i + j] * scale[j];
}

template <typename S>
void compute_pair(Pair<S>& p, const S* mean, int64_t W, int64_t H, double eps2d) {
  const S* R = p.R;
  p.x = R[0] * mean[0] + R[1] * mean[1] + R[2] * mean[2] + p.t[0];
  p.y = R[3] * mean[0] + R[4] * mean[1] + R[5] * mean[2] + p.t[1];
  p.z = R[6] * mean[0] + R[7] * mean[1] + R[8] * mean[2] + p.t[2];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      p.RM[3 * i + j] = R[3 * i] * p.M[j] + R[3 * i + 1] * p.M[3 + j] + R[3 * i + 2] * p.M[6 + j];
  // gsplat's Jacobian clamp: the linearisation point stays within 1.3x the field of view.
  const S tan_fovx = S(0.5) * S(W) / p.fx, tan_fovy = S(0.5) * S(H) / p.fy;
  const S lim_x_pos = (S(W) - p.cx) / p.fx + S(0.3) * tan_fovx, lim_x_neg = p.cx / p.fx + S(0.3) * tan_fovx;
  const S lim_y_pos = (S(H) - p.cy) / p.fy + S(0.3) * tan_fovy, lim_y_neg = p.cy / p.fy + S(0.3) * tan_fovy;
  const S rx = p.x / p.z, ry = p.y / p.z;
  p.ratio_x = std::min(std::max(rx, -lim_x_neg), lim_x_pos);
  p.ratio_y = std::min(std::max(ry, -lim_y_neg), lim_y_pos);
  p.clamp_x = !(rx >= -lim_x_neg && rx <= lim_x_pos);  // torch's clamp passes gradient on [min, max]
  p.clamp_y = !(ry >= -lim_y_neg && ry <= lim_y_pos);
  const S tx = p.z * p.ratio_x, ty = p.z * p.ratio_y;
  const S a0 = p.fx / p.z, b0 = p.fx * tx / (p.z * p.z), a1 = p.fy / p.z, b1 = p.fy * ty / (p.z * p.z);
  for (int j = 0; j < 3; ++j) {
    p.T0[j] = a0 * p.RM[j] - b0 * p.RM[6 + j];
    p.T1[j] = a1 * p.RM[3 + j] - b1 * p.RM[6 + j];
  }
  const S cov00 = p.T0[0] * p.T0[0] + p.T0[1] * p.T0[1] + p.T0[2] * p.T0[2];
  const S cov01 = p.T0[0] * p.T1[0] + p.T0[1] * p.T1[1] + p.T0[2] * p.T1[2];
  const S cov11 = p.T1[0] * p.T1[0] + p.T1[1] * p.T1[1] + p.T1[2] * p.T1[2];
  p.c00 = cov00 + S(eps2d), p.c11 = cov11 + S(eps2d), p.c01 = cov01;
  const S det = p.c00 * p.c11 - p.c01 * p.c01;
  p.det_clamped = !(det >= S(1e-10));
  p.det = std::isnan(det) ? det : std::max(det, S(1e-10));
}

template <typename S>
S nan_to_num_clamped(S v) {  // torch: nan_to_num(0) then clamp(0, 2^20)
  if (std::isnan(v)) return 0;
  return std::min(std::max(v, S(0)), S(1 << 20));
}

template <typename S>
void write_pair(const Pair<S>& p, S opacity, const ProjectShape& sh, S* means2d, S* conics, S* depth,
                int32_t* radii) {
  const S u = p.fx * p.x / p.z + p.cx, v = p.fy * p.y / p.z + p.cy;
  means2d[0] = u, means2d[1] = v;
  conics[0] = p.c11 / p.det, conics[1] = -p.c01 / p.det, conics[2] = p.c00 / p.det;
  *depth = p.z;
  const S thr = S(kAlphaThreshold);
  bool valid = p.det > 0 && p.z > S(sh.near_plane) && p.z < S(sh.far_plane) && opacity >= thr;
  const S extend = std::min(std::sqrt(S(2) * std::log(std::max(opacity, thr) / thr)), S(kBoxExtend));
  const S rx = std::ceil(extend * std::sqrt(std::max(p.c00, S(0))));
  const S ry = std::ceil(extend * std::sqrt(std::max(p.c11, S(0))));
  const bool inside = (u + rx > 0) && (u - rx < S(sh.W)) && (v + ry > 0) && (v - ry < S(sh.H));
  valid = valid && inside && (rx > 0 || ry > 0) && std::isfinite(u) && std::isfinite(v);
  radii[0] = valid ? static_cast<int32_t>(nan_to_num_clamped(rx)) : 0;
  radii[1] = valid ? static_cast<int32_t>(nan_to_num_clamped(ry)) : 0;
}

}  // namespace

template <typename S>
void project_forward(const ProjectShape& sh, const S* means, const S* quats, const S* scales, const S* opacities,
                     const S* w2c, const S* K, S* means2d, S* conics, S* depths, int32_t* radii) {
  const int64_t C = sh.C, N = sh.N;
#pragma omp parallel for schedule(static) if (C * N >= kParallelGaussians)
  for (int64_t n = 0; n < N; ++n) {
    Pair<S> p;
    load_gaussian(p, quats + 4 * n, scales + 3 * n);
    for (int64_t c = 0; c < C; ++c) {
      load_camera(p, w2c + 16 * c, K + 9 * c);
      compute_pair(p, means + 3 * n, sh.W, sh.H, sh.eps2d);
      const int64_t cn = c * N + n;
      write_pair(p, opacities[n], sh, means2d + 2 * cn, conics + 3 * cn, depths + cn, radii + 2 * cn);
    }
  }
}

namespace {

// d(loss)/d(camera-space mean) and d(loss)/d(RM) of one pair from the gradients of its outputs.
template <typename S>
void pair_backward(const Pair<S>& p, const S* g_m2d, const S* g_con, S g_depth, S* gp, S* gRM) {
  // conic = (c11, -c01, c00) / det, det = c00 c11 - c01^2 (no gradient through a clamped det)
  const S inv = 1 / p.det;
  const S gdet = p.det_clamped ? S(0) : -(g_con[0] * p.c11 - g_con[1] * p.c01 + g_con[2] * p.c00) * inv * inv;
  const S gc00 = g_con[2] * inv + gdet * p.c11;
  const S gc11 = g_con[0] * inv + gdet * p.c00;
  const S gc01 = -g_con[1] * inv - 2 * gdet * p.c01;
  S gT0[3], gT1[3];
  for (int j = 0; j < 3; ++j) {
    gT0[j] = 2 * gc00 * p.T0[j] + gc01 * p.T1[j];
    gT1[j] = 2 * gc11 * p.T1[j] + gc01 * p.T0[j];
  }
  const S z = p.z, iz = 1 / z, iz2 = iz * iz;
  const S a0 = p.fx * iz, b0 = p.fx * p.ratio_x * iz, a1 = p.fy * iz, b1 = p.fy * p.ratio_y * iz;
  S ga0 = 0, gb0 = 0, ga1 = 0, gb1 = 0;
  for (int j = 0; j < 3; ++j) {
    gRM[j] = a0 * gT0[j];
    gRM[3 + j] = a1 * gT1[j];
    gRM[6 + j] = -b0 * gT0[j] - b1 * gT1[j];
    ga0 += gT0[j] * p.RM[j], gb0 -= gT0[j] * p.RM[6 + j];
    ga1 += gT1[j] * p.RM[3 + j], gb1 -= gT1[j] * p.RM[6 + j];
  }
  // a = f / z; b = f * ratio / z with ratio = clamp(x / z)
  S gx = 0, gy = 0, gz = g_depth;
  gz += -p.fx * iz2 * ga0 - p.fy * iz2 * ga1;
  gz += -p.fx * p.ratio_x * iz2 * gb0 - p.fy * p.ratio_y * iz2 * gb1;
  const S gr0 = p.fx * iz * gb0, gr1 = p.fy * iz * gb1;
  if (!p.clamp_x) gx += gr0 * iz, gz -= gr0 * p.x * iz2;
  if (!p.clamp_y) gy += gr1 * iz, gz -= gr1 * p.y * iz2;
  // means2d = (fx x / z + cx, fy y / z + cy)
  gx += g_m2d[0] * p.fx * iz, gz -= g_m2d[0] * p.fx * p.x * iz2;
  gy += g_m2d[1] * p.fy * iz, gz -= g_m2d[1] * p.fy * p.y * iz2;
  gp[0] = gx, gp[1] = gy, gp[2] = gz;
}

// d(loss)/d(unnormalised quaternion) from d(loss)/d(Rq), through the normalisation.
template <typename S>
void quat_backward(const Pair<S>& p, const S* gR, S* gq) {
  const S w = p.qn[0], x = p.qn[1], y = p.qn[2], z = p.qn[3];
  S g[4];
  g[0] = 2 * (-z * gR[1] + y * gR[2] + z * gR[3] - x * gR[5] - y * gR[6] + x * gR[7]);
  g[1] = 2 * (y * gR[1] + z * gR[2] + y * gR[3] - 2 * x * gR[4] - w * gR[5] + z * gR[6] + w * gR[7] - 2 * x * gR[8]);
  g[2] = 2 * (-2 * y * gR[0] + x * gR[1] + w * gR[2] + x * gR[3] + z * gR[5] - w * gR[6] + z * gR[7] - 2 * y * gR[8]);
  g[3] = 2 * (-2 * z * gR[0] - w * gR[1] + x * gR[2] + w * gR[3] - 2 * z * gR[4] + y * gR[5] + x * gR[6] + y * gR[7]);
  const S dot = g[0] * w + g[1] * x + g[2] * y + g[3] * z;
  const bool tiny = p.qnorm <= S(1e-12);  // normalize divides by the clamped norm there
  for (int i = 0; i < 4; ++i) gq[i] = tiny ? g[i] / p.qnorm : (g[i] - p.qn[i] * dot) / p.qnorm;
}

}  // namespace

template <typename S>
void project_backward(const ProjectShape& sh, const S* means, const S* quats, const S* scales, const S* w2c,
                      const S* K, const int32_t* radii, const S* g_means2d, const S* g_conics, const S* g_depths,
                      S* g_means, S* g_quats, S* g_scales, S* g_w2c) {
  const int64_t C = sh.C, N = sh.N;
  const int n_threads = C * N >= kParallelGaussians ? omp_get_max_threads() : 1;
  std::vector<double> cam_acc(static_cast<size_t>(n_threads) * C * 12, 0.0);  // per thread: dR (9), dt (3)
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    double* acc = cam_acc.data() + static_cast<size_t>(omp_get_thread_num()) * C * 12;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      Pair<S> p;
      load_gaussian(p, quats + 4 * n, scales + 3 * n);
      const S* m = means + 3 * n;
      S gm[3] = {0, 0, 0}, gM[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t c = 0; c < C; ++c) {
        const int64_t cn = c * N + n;
        if (radii[2 * cn] <= 0 || radii[2 * cn + 1] <= 0) continue;
        load_camera(p, w2c + 16 * c, K + 9 * c);
        compute_pair(p, m, sh.W, sh.H, sh.eps2d);
        S gp[3], gRM[9];
        pair_backward(p, g_means2d + 2 * cn, g_conics + 3 * cn, g_depths[cn], gp, gRM);
        // p = R mean + t and RM = R M: gradients to the mean, M and (optionally) the camera.
        for (int k = 0; k < 3; ++k) {
          gm[k] += p.R[k] * gp[0] + p.R[3 + k] * gp[1] + p.R[6 + k] * gp[2];
          for (int j = 0; j < 3; ++j) gM[3 * k + j] += p.R[k] * gRM[j] + p.R[3 + k] * gRM[3 + j] + p.R[6 + k] * gRM[6 + j];
        }
        if (g_w2c == nullptr) continue;
        double* a = acc + 12 * c;
        for (int i = 0; i < 3; ++i) {
          for (int k = 0; k < 3; ++k) {
            a[3 * i + k] += double(gp[i]) * m[k];
            for (int j = 0; j < 3; ++j) a[3 * i + k] += double(gRM[3 * i + j]) * p.M[3 * k + j];
          }
          a[9 + i] += gp[i];
        }
      }
      const S* s = scales + 3 * n;
      S gRq[9];
      for (int k = 0; k < 3; ++k)
        for (int j = 0; j < 3; ++j) gRq[3 * k + j] = gM[3 * k + j] * s[j];
      for (int j = 0; j < 3; ++j) g_scales[3 * n + j] = gM[j] * p.Rq[j] + gM[3 + j] * p.Rq[3 + j] + gM[6 + j] * p.Rq[6 + j];
      for (int k = 0; k < 3; ++k) g_means[3 * n + k] = gm[k];
      quat_backward(p, gRq, g_quats + 4 * n);
    }
  }
  if (g_w2c == nullptr) return;
  for (int64_t c = 0; c < C; ++c) {
    S* out = g_w2c + 16 * c;
    std::fill(out, out + 16, S(0));
    for (int th = 0; th < n_threads; ++th) {
      const double* a = cam_acc.data() + (static_cast<size_t>(th) * C + c) * 12;
      for (int i = 0; i < 3; ++i) {
        for (int k = 0; k < 3; ++k) out[4 * i + k] += S(a[3 * i + k]);
        out[4 * i + 3] += S(a[9 + i]);
      }
    }
  }
}

#define RECON_INSTANTIATE(S)                                                                                   \
  template void project_forward<S>(const ProjectShape&, const S*, const S*, const S*, const S*, const S*,     \
                                   const S*, S*, S*, S*, int32_t*);                                            \
  template void project_backward<S>(const ProjectShape&, const S*, const S*, const S*, const S*, const S*,    \
                                    const int32_t*, const S*, const S*, const S*, S*, S*, S*, S*);
RECON_INSTANTIATE(float)
RECON_INSTANTIATE(double)
#undef RECON_INSTANTIATE

}  // namespace recon_splat

// Depth sort and tile binning of the visible Gaussians (see BinView in splat_cpu.h).
//
// Per-Gaussian data stays in index order (sequential, parallel passes); only the tile lists are
// in depth order. Steps: pack attributes and pixel boxes; number the pair slots
// Gaussian-major; sort each camera's visible Gaussians by depth (stable radix sort); counting-sort
// the (tile, Gaussian) pairs into tiles, walking Gaussians front to back.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "splat_cpu.h"

namespace recon_splat {
namespace {

// Order-preserving unsigned key of a float / double (negative values flip all bits).
inline uint32_t sort_key(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline uint64_t sort_key(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

// Stable LSD radix sort of idx by key (8-bit digits; digits shared by all keys are skipped).
template <typename K>
void radix_sort(std::vector<K>& key, std::vector<int32_t>& idx) {
  const size_t n = key.size();
  std::vector<K> key2(n);
  std::vector<int32_t> idx2(n);
  for (int shift = 0; shift < int(8 * sizeof(K)); shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; ++i) ++count[((key[i] >> shift) & 0xff) + 1];
    if (n == 0 || count[((key[0] >> shift) & 0xff) + 1] == n) continue;
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (size_t i = 0; i < n; ++i) {
      const size_t pos = count[(key[i] >> shift) & 0xff]++;
      key2[pos] = key[i];
      idx2[pos] = idx[i];
    }
    key.swap(key2);
    idx.swap(idx2);
  }
}

// Visible Gaussians of every camera, front to back, as flat indices c * N + n.
template <typename S>
std::vector<int32_t> sorted_visible(const RasterShape& sh, const int64_t* pair_start, const S* depths) {
  using K = std::conditional_t<std::is_same_v<S, float>, uint32_t, uint64_t>;
  const int64_t C = sh.C, N = sh.N;
  std::vector<std::vector<int32_t>> per_cam(C);
#pragma omp parallel for schedule(dynamic, 1) if (C > 1 && C * N >= kParallelGaussians)
  for (int64_t c = 0; c < C; ++c) {
    std::vector<int32_t> idx;
    std::vector<K> key;
    for (int64_t cn = c * N; cn < (c + 1) * N; ++cn) {
      if (pair_start[cn + 1] > pair_start[cn]) {
        idx.push_back(int32_t(cn));
        key.push_back(sort_key(depths[cn]));
      }
    }
    radix_sort(key, idx);
    per_cam[c].swap(idx);
  }
  std::vector<int32_t> out;
  for (auto& v : per_cam) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// Per Gaussian: packed attributes, pixel box and the tiles it covers; pair_start[cn + 1] = their number.
template <typename S>
void pack(const RasterShape& sh, const S* means2d, const S* conics, const S* opacities, const int32_t* radii,
          Binning<S>& out, Buffer<int32_t>& rect) {
  const int64_t CN = sh.C * sh.N;
  const int32_t ts = int32_t(sh.tile);
  out.geo.allocate(CN * kGeo), out.box.allocate(CN * 4), out.pair_start.allocate(CN + 1), rect.allocate(CN * 4);
  out.pair_start[0] = 0;
#pragma omp parallel for schedule(static) if (CN >= kParallelGaussians)
  for (int64_t cn = 0; cn < CN; ++cn) {
    out.pair_start[cn + 1] = 0;
    if (radii[2 * cn] <= 0 || radii[2 * cn + 1] <= 0) continue;
    const S u = means2d[2 * cn], v = means2d[2 * cn + 1];
    const S rx = S(radii[2 * cn]), ry = S(radii[2 * cn + 1]);
    // Pixels whose centre (x + 0.5) lies within [u - rx, u + rx] x [v - ry, v + ry]: the box holds
    // the whole alpha >= 1/255 ellipse, so no other pixel can receive this Gaussian.
    int32_t* b = out.box.data() + 4 * cn;
    b[0] = int32_t(std::max<S>(std::ceil(u - rx - S(0.5)), 0));
    b[1] = int32_t(std::min<S>(std::floor(u + rx - S(0.5)), S(sh.W - 1)));
    b[2] = int32_t(std::max<S>(std::ceil(v - ry - S(0.5)), 0));
    b[3] = int32_t(std::min<S>(std::floor(v + ry - S(0.5)), S(sh.H - 1)));
    if (b[1] < b[0] || b[3] < b[2]) continue;  // no pixel centre inside: invisible
    S* g = out.geo.data() + kGeo * cn;
    g[0] = u, g[1] = v, g[2] = conics[3 * cn], g[3] = conics[3 * cn + 1], g[4] = conics[3 * cn + 2];
    g[5] = opacities[cn];
    int32_t* t = rect.data() + 4 * cn;  // the tiles the box covers, inclusive
    t[0] = b[0] / ts, t[1] = b[1] / ts, t[2] = b[2] / ts, t[3] = b[3] / ts;
    out.pair_start[cn + 1] = int64_t(t[1] - t[0] + 1) * (t[3] - t[2] + 1);
  }
  for (int64_t cn = 0; cn < CN; ++cn) out.pair_start[cn + 1] += out.pair_start[cn];
}

// Counting sort of the (tile, Gaussian) pairs by tile. The depth-sorted Gaussians are split into
// contiguous chunks, one per thread, so that every tile's run stays front to back.
template <typename S>
void fill_tiles(const RasterShape& sh, const std::vector<int32_t>& order, const Buffer<int32_t>& rect,
                Binning<S>& out) {
  const int64_t R = static_cast<int64_t>(order.size()), n_tiles = sh.n_tiles();
  const int64_t tiles_x = sh.tiles_x(), per_cam = sh.tiles_x() * sh.tiles_y();
  const int n_chunks = R >= kParallelGaussians ? std::max(1, omp_get_max_threads()) : 1;
  // What the two passes need, gathered once into depth order (the only random access).
  struct Item {
    int32_t t[4];
    int64_t base, slot;  // the camera's first tile, the Gaussian's first pair slot
  };
  std::vector<Item> items(R);
#pragma omp parallel for schedule(static) if (n_chunks > 1)
  for (int64_t r = 0; r < R; ++r) {
    const int64_t cn = order[r];
    std::memcpy(items[r].t, rect.data() + 4 * cn, sizeof items[r].t);
    items[r].base = (cn / sh.N) * per_cam, items[r].slot = out.pair_start[cn];
  }
  std::vector<int64_t> counts(static_cast<size_t>(n_chunks) * n_tiles, 0);
#pragma omp parallel for schedule(static, 1) if (n_chunks > 1)
  for (int ch = 0; ch < n_chunks; ++ch) {
    int64_t* cnt = counts.data() + static_cast<size_t>(ch) * n_tiles;
    for (int64_t r = R * ch / n_chunks; r < R * (ch + 1) / n_chunks; ++r) {
      const Item& it = items[r];
      for (int64_t ty = it.t[2]; ty <= it.t[3]; ++ty)
        for (int64_t tx = it.t[0]; tx <= it.t[1]; ++tx) ++cnt[it.base + ty * tiles_x + tx];
    }
  }
  out.tile_offsets.allocate(n_tiles + 1);
  int64_t pos = 0;
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    out.tile_offsets[tile] = pos;
    for (int ch = 0; ch < n_chunks; ++ch) {
      int64_t& c = counts[static_cast<size_t>(ch) * n_tiles + tile];
      const int64_t n = c;
      c = pos, pos += n;  // counts now hold each chunk's write position
    }
  }
  out.tile_offsets[n_tiles] = pos;
  out.tile_gauss.allocate(pos), out.tile_slots.allocate(pos);
#pragma omp parallel for schedule(static, 1) if (n_chunks > 1)
  for (int ch = 0; ch < n_chunks; ++ch) {
    int64_t* at = counts.data() + static_cast<size_t>(ch) * n_tiles;
    for (int64_t r = R * ch / n_chunks; r < R * (ch + 1) / n_chunks; ++r) {
      const Item& it = items[r];
      int64_t slot = it.slot;
      for (int64_t ty = it.t[2]; ty <= it.t[3]; ++ty)
        for (int64_t tx = it.t[0]; tx <= it.t[1]; ++tx) {
          const int64_t p = at[it.base + ty * tiles_x + tx]++;
          out.tile_gauss[p] = order[r];
          out.tile_slots[p] = slot++;
        }
    }
  }
}

}  // namespace

template <typename S>
void bin_gaussians(const RasterShape& sh, const S* means2d, const S* conics, const S* opacities, const int32_t* radii,
                   const S* depths, Binning<S>& out) {
  Buffer<int32_t> rect;
  pack(sh, means2d, conics, opacities, radii, out, rect);
  const std::vector<int32_t> order = sorted_visible(sh, out.pair_start.data(), depths);
  fill_tiles(sh, order, rect, out);
}

template void bin_gaussians<float>(const RasterShape&, const float*, const float*, const float*, const int32_t*,
                                   const float*, Binning<float>&);
template void bin_gaussians<double>(const RasterShape&, const double*, const double*, const double*, const int32_t*,
                                    const double*, Binning<double>&);

}  // namespace recon_splat

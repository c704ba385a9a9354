// Fused CPU kernel of the two-body embedding descriptor (lam.model.repinit) for frozen models.
//
// One pass per centre atom over its neighbour edges (grouped by centre, CSR offsets), eight edges
// at a time, instead of eager operators over [atoms, slots, channels] tensors:
//
//   s = sw(d) / d,  R = [s, s x/d, s y/d, s z/d] / std            environment row (d = |r|)
//   h_0 = tanh(a R_0 + c_i + n_j),  h_k = skip(h_{k-1}) + dt_k tanh(W_k h_{k-1} + b_k),  G = h_last
//   T = R^T G / nsel,  D = T^T T[:, :axis]
//
// The forward keeps every edge's activations for the backward, which writes dE/dr of every edge.
// The formulas and symbols are those of lam/model/two_body_inference.py (the same function in
// torch); tests compare both with autograd.

// Only the ATen and op-registration headers (not torch/extension.h with pybind11 and the C++
// frontend): the first-use build takes about 18 s instead of 52.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace {

struct Layer {
  const void* weight;    // [out, in], row-major
  const void* bias;      // [out]
  const void* timestep;  // [out] or nullptr
  int64_t in, out;
  bool residual;
};

// Edges are processed in tiles of LANES edges of one centre: every per-edge quantity is a GCC
// vector of LANES values (one lane per edge), so every operation below is explicit SIMD across
// edges; a matrix-vector product per edge does not vectorise well. Lanes past the centre's last
// edge get sw = 0 and a zero environment row, so they add nothing and their gradient is not written.
constexpr int LANES = 8;

template <typename T>
struct Simd {
  typedef T V __attribute__((vector_size(LANES * sizeof(T))));
};

template <typename T>
inline void tanh_lanes(typename Simd<T>::V* v, int64_t width) {
  // tanh = 1 - 2 / (exp(2x) + 1) over a plain array: GCC calls libmvec's vector exp; std::tanh
  // has no vector version
  T* x = reinterpret_cast<T*>(v);
  for (int64_t k = 0; k < width * LANES; ++k) {
    const T e = std::exp(std::min(T(2) * x[k], T(80)));
    x[k] = T(1) - T(2) / (e + T(1));
  }
}

template <typename T>
struct Params {
  const T* vectors;          // [E, 3]
  const int64_t* offsets;    // [N + 1]
  const int64_t* neighbours; // [E]
  const T* centre_bias;      // [N, w0]: centre-type projection + bias
  const T* neighbour_proj;   // [N, w0]: neighbour-type projection of every atom
  const T* env_scale;        // [N, 4]
  const T* radial_weight;    // [w0]
  std::vector<Layer> layers;
  int64_t w0, width_m, axis;
  T smooth_start, cutoff, inv_nsel;
};

// One tile: geometry of up to LANES edges of centre i, and where its activations live. The
// forward writes every tile's activations [h_0, (y_k, out_k)...] into one buffer that the backward
// reads back, so the backward evaluates no exp.
template <typename T>
struct Tile {
  using V = typename Simd<T>::V;
  int64_t count = 0;
  V r[3], inv_d, sw, dsw, env[4];
  std::vector<int64_t> offset;  // start of each activation in a tile's block, in vectors
  int64_t block = 0;            // vectors per tile
  V* base = nullptr;

  explicit Tile(const Params<T>& p) {
    offset.push_back(0);
    block = p.w0;
    for (const Layer& L : p.layers) {
      offset.push_back(block);
      offset.push_back(block + L.out);
      block += 2 * L.out;
    }
  }

  V* act(size_t k) const { return base + offset[k]; }
  V* last() const { return act(offset.size() - 1); }

  void geometry(const Params<T>& p, int64_t i, int64_t e0, int64_t e1) {
    count = std::min<int64_t>(LANES, e1 - e0);
    V pad{};
    for (int l = 0; l < LANES; ++l) {
      const T* v = p.vectors + 3 * (e0 + std::min<int64_t>(l, count - 1));
      for (int c = 0; c < 3; ++c) r[c][l] = v[c];
      pad[l] = l < count ? T(1) : T(0);
    }
    const V d2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    V d;
    for (int l = 0; l < LANES; ++l) d[l] = std::sqrt(d2[l]);
    inv_d = T(1) / d;
    const T width = p.cutoff - p.smooth_start;
    V u = (d - p.smooth_start) / width;  // edges beyond the cutoff get u = 1: sw = dsw = 0
    u = u < T(0) ? V{} : u;
    u = u > T(1) ? V{} + T(1) : u;
    const V u2 = u * u;
    sw = pad * (u2 * u * (T(-6) * u2 + T(15) * u - T(10)) + T(1));
    dsw = pad * (T(-30) / width) * u2 * (u - T(1)) * (u - T(1));  // zero outside the shell
    const V s = sw * inv_d, q = s * inv_d;
    const T* scale = p.env_scale + 4 * i;
    env[0] = s / scale[0];
    for (int c = 0; c < 3; ++c) env[c + 1] = q * r[c] / scale[c + 1];
  }

  void activations(const Params<T>& p, int64_t i, int64_t e0) {
    // h_0 = tanh(a R_0 + c_i + n_j)
    V* h = act(0);
    const T* cb = p.centre_bias + p.w0 * i;
    for (int64_t k = 0; k < p.w0; ++k) h[k] = cb[k] + p.radial_weight[k] * env[0];
    for (int l = 0; l < LANES; ++l) {
      const T* nb = p.neighbour_proj + p.w0 * p.neighbours[e0 + std::min<int64_t>(l, count - 1)];
      for (int64_t k = 0; k < p.w0; ++k) h[k][l] += nb[k];
    }
    tanh_lanes<T>(h, p.w0);
    for (size_t n = 0; n < p.layers.size(); ++n) {
      const Layer& L = p.layers[n];
      const V* x = act(2 * n);
      V* y = act(2 * n + 1);
      V* out = act(2 * n + 2);
      const T* W = static_cast<const T*>(L.weight);
      const T* b = static_cast<const T*>(L.bias);
      // blocks of BLOCK outputs: independent accumulators hide the FMA latency that one
      // running sum per output would wait on
      constexpr int BLOCK = 8;
      int64_t o = 0;
      for (; o + BLOCK <= L.out; o += BLOCK) {
        V acc[BLOCK];
        for (int j = 0; j < BLOCK; ++j) acc[j] = V{} + b[o + j];
        for (int64_t k = 0; k < L.in; ++k) {
          const V xk = x[k];
          for (int j = 0; j < BLOCK; ++j) acc[j] += W[(o + j) * L.in + k] * xk;
        }
        for (int j = 0; j < BLOCK; ++j) y[o + j] = acc[j];
      }
      for (; o < L.out; ++o) {
        V acc = V{} + b[o];
        for (int64_t k = 0; k < L.in; ++k) acc += W[o * L.in + k] * x[k];
        y[o] = acc;
      }
      tanh_lanes<T>(y, L.out);
      const T* dt = static_cast<const T*>(L.timestep);
      for (int64_t o = 0; o < L.out; ++o) {
        out[o] = dt ? dt[o] * y[o] : y[o];
        if (L.residual) out[o] += x[o % L.in];  // width kept: + x; doubled: + [x, x]
      }
    }
  }
};

// First tile of every centre: centre i's edges fill ceil(count_i / LANES) tiles. [N + 1]
std::vector<int64_t> tile_offsets(const int64_t* offsets, int64_t n_atoms) {
  std::vector<int64_t> tiles(n_atoms + 1, 0);
  for (int64_t i = 0; i < n_atoms; ++i)
    tiles[i + 1] = tiles[i] + (offsets[i + 1] - offsets[i] + LANES - 1) / LANES;
  return tiles;
}

template <typename T>
void forward_kernel(const Params<T>& p, int64_t n_atoms, const std::vector<int64_t>& tiles, T* moments,
                    T* invariant, T* activations) {
  using V = typename Simd<T>::V;
  const int64_t M = p.width_m, A = p.axis;
  at::parallel_for(0, n_atoms, 8, [&](int64_t begin, int64_t end) {
    Tile<T> tile(p);
    std::vector<V> acc(4 * M);
    for (int64_t i = begin; i < end; ++i) {
      std::fill(acc.begin(), acc.end(), V{});
      int64_t t = tiles[i];
      for (int64_t e0 = p.offsets[i]; e0 < p.offsets[i + 1]; e0 += LANES, ++t) {
        tile.base = reinterpret_cast<V*>(activations) + t * tile.block;
        tile.geometry(p, i, e0, p.offsets[i + 1]);
        tile.activations(p, i, e0);
        const V* G = tile.last();
        for (int c = 0; c < 4; ++c)
          for (int64_t m = 0; m < M; ++m) acc[c * M + m] += tile.env[c] * G[m];
      }
      T* Ti = moments + 4 * M * i;  // T [4, M]
      for (int64_t k = 0; k < 4 * M; ++k) {
        T sum = 0;
        for (int l = 0; l < LANES; ++l) sum += acc[k][l];
        Ti[k] = sum * p.inv_nsel;
      }
      T* Di = invariant + M * A * i;  // D [M, axis]
      for (int64_t m = 0; m < M; ++m)
        for (int64_t a = 0; a < A; ++a) {
          T sum = 0;
          for (int c = 0; c < 4; ++c) sum += Ti[c * M + m] * Ti[c * M + a];
          Di[m * A + a] = sum;
        }
    }
  });
}

template <typename T>
void backward_kernel(const Params<T>& p, int64_t n_atoms, const std::vector<int64_t>& tiles,
                     const T* moments, const T* grad_invariant, const T* activations, T* grad_vectors) {
  using V = typename Simd<T>::V;
  const int64_t M = p.width_m, A = p.axis;
  at::parallel_for(0, n_atoms, 8, [&](int64_t begin, int64_t end) {
    Tile<T> tile(p);
    std::vector<V> grad_block(tile.block);  // dE/d(activation), a tile's layout
    Tile<T> grads(p);
    grads.base = grad_block.data();
    std::vector<T> gT(4 * M);
    for (int64_t i = begin; i < end; ++i) {
      const T* Ti = moments + 4 * M * i;
      const T* gD = grad_invariant + M * A * i;
      // D_ma = sum_c T_cm T_ca: gT_cm = sum_a gD_ma T_ca (+ sum_k gD_km T_ck for m < axis), / nsel
      for (int c = 0; c < 4; ++c)
        for (int64_t m = 0; m < M; ++m) {
          T sum = 0;
          for (int64_t a = 0; a < A; ++a) sum += gD[m * A + a] * Ti[c * M + a];
          if (m < A)
            for (int64_t k = 0; k < M; ++k) sum += gD[k * A + m] * Ti[c * M + k];
          gT[c * M + m] = sum * p.inv_nsel;
        }
      const T* scale = p.env_scale + 4 * i;
      int64_t t = tiles[i];
      for (int64_t e0 = p.offsets[i]; e0 < p.offsets[i + 1]; e0 += LANES, ++t) {
        tile.base = const_cast<V*>(reinterpret_cast<const V*>(activations)) + t * tile.block;
        tile.geometry(p, i, e0, p.offsets[i + 1]);
        const V* G = tile.last();
        V genv[4] = {V{}, V{}, V{}, V{}};
        for (int64_t m = 0; m < M; ++m)  // four independent running sums
          for (int c = 0; c < 4; ++c) genv[c] += gT[c * M + m] * G[m];
        V* gout = grads.last();  // dE/dG = sum_c R_c gT_c
        for (int64_t m = 0; m < M; ++m)
          gout[m] = gT[m] * tile.env[0] + gT[M + m] * tile.env[1] + gT[2 * M + m] * tile.env[2] +
                    gT[3 * M + m] * tile.env[3];
        for (int64_t n = static_cast<int64_t>(p.layers.size()) - 1; n >= 0; --n) {
          const Layer& L = p.layers[n];
          const V* y = tile.act(2 * n + 1);
          const V* go = grads.act(2 * n + 2);
          V* gz = grads.act(2 * n + 1);
          V* gx = grads.act(2 * n);
          const T* dt = static_cast<const T*>(L.timestep);
          for (int64_t o = 0; o < L.out; ++o) gz[o] = (dt ? dt[o] * go[o] : go[o]) * (T(1) - y[o] * y[o]);
          for (int64_t k = 0; k < L.in; ++k) gx[k] = V{};
          if (L.residual)
            for (int64_t o = 0; o < L.out; ++o) gx[o % L.in] += go[o];
          const T* W = static_cast<const T*>(L.weight);
          for (int64_t o = 0; o < L.out; ++o) {
            const T* w = W + o * L.in;
            const V z = gz[o];
            for (int64_t k = 0; k < L.in; ++k) gx[k] += w[k] * z;
          }
        }
        const V* h0 = tile.act(0);
        const V* gh0 = grads.act(0);
        for (int64_t k = 0; k < p.w0; ++k) genv[0] += p.radial_weight[k] * gh0[k] * (T(1) - h0[k] * h0[k]);
        // raw = [s, q r] with s = sw/d, q = sw/d^2: chain rule through d = |r|
        const V radial_grad = genv[0] / scale[0];
        V angular_grad[3];
        for (int c = 0; c < 3; ++c) angular_grad[c] = genv[c + 1] / scale[c + 1];
        const V dot = angular_grad[0] * tile.r[0] + angular_grad[1] * tile.r[1] + angular_grad[2] * tile.r[2];
        const V inv = tile.inv_d, sw = tile.sw, q = sw * inv * inv;
        const V ds_dd = (tile.dsw - sw * inv) * inv;
        const V dq_dd = (tile.dsw - T(2) * sw * inv) * inv * inv;
        const V along = (radial_grad * ds_dd + dot * dq_dd) * inv;
        V grad[3];
        for (int c = 0; c < 3; ++c) grad[c] = angular_grad[c] * q + along * tile.r[c];
        for (int l = 0; l < tile.count; ++l)
          for (int c = 0; c < 3; ++c) grad_vectors[3 * (e0 + l) + c] = grad[c][l];
      }
    }
  });
}

template <typename T>
Params<T> make_params(const at::Tensor& vectors, const at::Tensor& offsets, const at::Tensor& neighbours,
                      const at::Tensor& centre_bias, const at::Tensor& neighbour_proj,
                      const at::Tensor& env_scale, const at::Tensor& radial_weight,
                      const std::vector<at::Tensor>& weights, const std::vector<at::Tensor>& biases,
                      const std::vector<at::Tensor>& timesteps, const std::vector<int64_t>& residual,
                      double smooth_start, double cutoff, double n_slots_norm, int64_t axis) {
  Params<T> p;
  p.vectors = vectors.data_ptr<T>();
  p.offsets = offsets.data_ptr<int64_t>();
  p.neighbours = neighbours.data_ptr<int64_t>();
  p.centre_bias = centre_bias.data_ptr<T>();
  p.neighbour_proj = neighbour_proj.data_ptr<T>();
  p.env_scale = env_scale.data_ptr<T>();
  p.radial_weight = radial_weight.data_ptr<T>();
  p.w0 = radial_weight.size(0);
  int64_t width = p.w0;
  for (size_t l = 0; l < weights.size(); ++l) {
    TORCH_CHECK(weights[l].size(1) == width, "two-body kernel: layer ", l, " input width mismatch");
    Layer L{weights[l].data_ptr<T>(), biases[l].data_ptr<T>(),
            timesteps[l].numel() ? timesteps[l].data_ptr<T>() : nullptr, weights[l].size(1),
            weights[l].size(0), residual[l] != 0};
    p.layers.push_back(L);
    width = L.out;
  }
  p.width_m = width;
  p.axis = axis;
  p.smooth_start = static_cast<T>(smooth_start);
  p.cutoff = static_cast<T>(cutoff);
  p.inv_nsel = static_cast<T>(1.0 / n_slots_norm);
  return p;
}

}  // namespace

// Returns (D [N, M * axis], T [N, 4, M], the activations of every tile for the backward).
std::vector<at::Tensor> two_body_forward(
    at::Tensor vectors, at::Tensor offsets, at::Tensor neighbours, at::Tensor centre_bias,
    at::Tensor neighbour_proj, at::Tensor env_scale, at::Tensor radial_weight,
    std::vector<at::Tensor> weights, std::vector<at::Tensor> biases, std::vector<at::Tensor> timesteps,
    std::vector<int64_t> residual, double smooth_start, double cutoff, double n_slots_norm, int64_t axis) {
  const int64_t n_atoms = offsets.size(0) - 1;
  const int64_t M = weights.empty() ? radial_weight.size(0) : weights.back().size(0);
  auto moments = at::empty({n_atoms, 4, M}, vectors.options());
  auto invariant = at::empty({n_atoms, M * axis}, vectors.options());
  const auto tiles = tile_offsets(offsets.data_ptr<int64_t>(), n_atoms);
  int64_t block = radial_weight.size(0);
  for (const auto& w : weights) block += 2 * w.size(0);
  // torch's CPU allocator aligns to 64 bytes, as GCC's vector types (32 or 64 bytes here) need
  auto activations = at::empty({tiles.back() * block * LANES}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "two_body_forward", [&] {
    auto p = make_params<scalar_t>(vectors, offsets, neighbours, centre_bias, neighbour_proj, env_scale,
                                   radial_weight, weights, biases, timesteps, residual, smooth_start,
                                   cutoff, n_slots_norm, axis);
    forward_kernel(p, n_atoms, tiles, moments.data_ptr<scalar_t>(), invariant.data_ptr<scalar_t>(),
                   activations.data_ptr<scalar_t>());
  });
  return {invariant, moments, activations};
}

// Returns dE/dr of every edge, [E, 3].
at::Tensor two_body_backward(
    at::Tensor grad_invariant, at::Tensor moments, at::Tensor activations, at::Tensor vectors, at::Tensor offsets,
    at::Tensor neighbours, at::Tensor centre_bias, at::Tensor neighbour_proj, at::Tensor env_scale,
    at::Tensor radial_weight, std::vector<at::Tensor> weights, std::vector<at::Tensor> biases,
    std::vector<at::Tensor> timesteps, std::vector<int64_t> residual, double smooth_start, double cutoff,
    double n_slots_norm, int64_t axis) {
  const int64_t n_atoms = offsets.size(0) - 1;
  auto grad_vectors = at::empty_like(vectors);
  const auto tiles = tile_offsets(offsets.data_ptr<int64_t>(), n_atoms);
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "two_body_backward", [&] {
    auto p = make_params<scalar_t>(vectors, offsets, neighbours, centre_bias, neighbour_proj, env_scale,
                                   radial_weight, weights, biases, timesteps, residual, smooth_start,
                                   cutoff, n_slots_norm, axis);
    backward_kernel(p, n_atoms, tiles, moments.data_ptr<scalar_t>(), grad_invariant.data_ptr<scalar_t>(),
                    activations.data_ptr<scalar_t>(), grad_vectors.data_ptr<scalar_t>());
  });
  return grad_vectors;
}

// torch.ops.lam_two_body.forward / backward
TORCH_LIBRARY(lam_two_body, m) {
  m.def("forward", &two_body_forward);
  m.def("backward", &two_body_backward);
}

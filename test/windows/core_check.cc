// Correctness of the native core without Node, for a Windows build (scripts/build-windows.sh
// cross-compiles it with mingw-w64; scripts/test-windows.sh runs it under wine). Any OS runs it.
//   - every weight dtype on every ISA the CPU offers, against an fp64 reference written here
//     (routing and SwiGLU experts in double from the master weights; for mxfp4 and fp8 from the
//     stored values, the packer's own rows unpacked), odd sizes, random inputs, poisoned workspaces;
//   - the router's ids and weights against the same reference;
//   - a token alone equals it in a batch bit for bit;
//   - an offloaded layer (expert file in a temporary folder, and a scratch file removed while
//     open) equals the resident one bit for bit;
//   - the file layer (runtime/file_io.h): positional writes and reads, truncate, sync, atomic
//     replace of an existing file, a directory refused as one, removal;
//   - available/total memory and the degraded features (huge pages) as info() reports them.
// Last line: "N passed, M failed"; exit status 1 on any failure.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "layer/moe_layer.h"
#include "runtime/environment.h"
#include "runtime/file_io.h"
#include "runtime/memory_info.h"
#include "weights/packed_matrix.h"
#include "weights/weight_source.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

using namespace moecap;

namespace {

int passed = 0, failed = 0;
void check(const std::string& name, bool ok, const std::string& detail = "") {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL %s%s%s\n", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  }
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = d(g);
    while (x == 0.0f);  // never zeros
  }
  return v;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// fp64 reference: softmax over router logits, top-k (lowest id first on ties), renormalised;
// output = Σ weight · down(silu(gate·x) ⊙ up·x).
struct Reference {
  std::vector<int> ids;
  std::vector<double> weights, output;
};

Reference reference(const LayerConfig& c, const WeightSource& w, const std::vector<float>& x, int T) {
  const int H = c.hidden, F = c.intermediate, E = c.experts, k = c.top_k;
  auto rows = [&](Matrix m, int e, int n, int cols) {
    std::vector<float> r(size_t(n) * cols);
    for (int i = 0; i < n; ++i) w.row(m, e, i, cols, r.data() + size_t(i) * cols);
    return r;
  };
  const std::vector<float> router = rows(Matrix::Router, 0, E, H);
  Reference r;
  r.ids.resize(size_t(T) * k);
  r.weights.resize(size_t(T) * k);
  r.output.assign(size_t(T) * H, 0.0);
  std::vector<std::vector<float>> gate(E), up(E), down(E);
  for (int e = 0; e < E; ++e) {
    gate[e] = rows(Matrix::Gate, e, F, H);
    up[e] = rows(Matrix::Up, e, F, H);
    down[e] = rows(Matrix::Down, e, H, F);
  }
  for (int t = 0; t < T; ++t) {
    const float* xt = x.data() + size_t(t) * H;
    std::vector<double> p(E);
    double mx = -1e300, sum = 0;
    for (int e = 0; e < E; ++e) {
      double d = 0;
      for (int h = 0; h < H; ++h) d += double(xt[h]) * router[size_t(e) * H + h];
      p[e] = d;
      mx = std::max(mx, d);
    }
    for (double& v : p) sum += (v = std::exp(v - mx));
    for (double& v : p) v /= sum;
    std::vector<int> order(E);
    for (int e = 0; e < E; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double kept = 0;
    for (int j = 0; j < k; ++j) kept += p[order[j]];
    for (int j = 0; j < k; ++j) {
      const int e = order[j];
      const double wt = p[e] / kept;
      r.ids[size_t(t) * k + j] = e;
      r.weights[size_t(t) * k + j] = wt;
      std::vector<double> hmid(F);
      for (int f = 0; f < F; ++f) {
        double g = 0, u = 0;
        for (int h = 0; h < H; ++h) {
          g += double(xt[h]) * gate[e][size_t(f) * H + h];
          u += double(xt[h]) * up[e][size_t(f) * H + h];
        }
        hmid[f] = g / (1.0 + std::exp(-g)) * u;
      }
      for (int h = 0; h < H; ++h) {
        double o = 0;
        for (int f = 0; f < F; ++f) o += hmid[f] * down[e][size_t(h) * F + f];
        r.output[size_t(t) * H + h] += wt * o;
      }
    }
  }
  return r;
}

// The values a layer of `dtype` stores for the expert matrices of `inner`: each row packed alone
// (the formats' scales are per row and block, so alone = in its matrix) and unpacked; the router
// and the other matrices as they are. The fp64 reference of these is that of the stored values.
class StoredValues : public WeightSource {
 public:
  StoredValues(std::shared_ptr<const WeightSource> inner, DType dtype) : inner_(std::move(inner)), dtype_(dtype) {}
  void row(Matrix m, int expert, int row, int cols, float* out) const override {
    inner_->row(m, expert, row, cols, out);
    if (m != Matrix::Gate && m != Matrix::Up && m != Matrix::Down) return;
    std::vector<float> master(out, out + cols);
    PackedMatrix packed;
    const LaneSource lane0 = [&](int, int lane, float* v) {
      if (lane != 0) return false;  // the other 31 lanes: zero padding
      std::copy(master.begin(), master.end(), v);
      return true;
    };
    pack_matrix(packed, dtype_, cols, 1, lane0, nullptr);
    unpack_lane(packed, 0, 0, out);
  }
  uint64_t fingerprint() const override { return inner_->fingerprint(); }

 private:
  std::shared_ptr<const WeightSource> inner_;
  DType dtype_;
};

// The weights the reference reads for a layer of `dt` built from `w`.
std::shared_ptr<const WeightSource> reference_weights(std::shared_ptr<const WeightSource> w, DType dt) {
  if (dt == DType::MXFP4 || dt == DType::FP8) return std::make_shared<StoredValues>(std::move(w), dt);
  return w;
}

LayerConfig config(int H, int F, int E, int k, DType dt) {
  LayerConfig c;
  c.hidden = H;
  c.intermediate = F;
  c.experts = E;
  c.top_k = k;
  c.dtype = dt;
  c.threads = 2;
  c.poison = true;
  return c;
}

// Relative L2 bounds pooled over the tokens of one shape (as test/kernels/kernels_dtypes.test.ts;
// mxfp4 and fp8 against their stored values as test/arm64/correctness.js).
double bound(DType d) {
  switch (d) {
    case DType::F32: return 7e-7;
    case DType::BF16: return 9e-3;
    case DType::I8: return 2e-2;
    case DType::I4: return 1.5e-1;
    case DType::MXFP4: return 2e-2;
    case DType::FP8: return 1e-6;
  }
  return 0;
}

// Every weight dtype, for the loops below.
constexpr DType kAllDTypes[] = {DType::F32, DType::BF16, DType::I8, DType::I4, DType::MXFP4, DType::FP8};

void kernels_against_reference(const char* isa, DType dt, int H, int F, int E, int k) {
  const LayerConfig c = config(H, F, E, k, dt);
  auto w = std::make_shared<SeededWeights>(uint64_t(5 + H));
  MoeLayer layer(c, w, isa);
  const std::shared_ptr<const WeightSource> stored = reference_weights(w, dt);
  const std::string tag = std::string(isa) + " " + dtype_name(dt) + " H=" + std::to_string(H);
  check(tag + ": isa", std::strcmp(layer.isa(), isa) == 0, layer.isa());
  double d2 = 0, r2 = 0;
  for (int T : {1, 5, 33}) {
    const std::vector<float> x = gaussian(size_t(T) * H, uint32_t(1000 + T + H));
    ForwardResult out;
    layer.forward(x.data(), T, out);
    const Reference ref = reference(c, *stored, x, T);
    for (size_t i = 0; i < ref.output.size(); ++i) {
      d2 += (out.output[i] - ref.output[i]) * (out.output[i] - ref.output[i]);
      r2 += ref.output[i] * ref.output[i];
    }
  }
  const double err = std::sqrt(d2 / r2);
  char msg[64];
  std::snprintf(msg, sizeof msg, "rel L2 %.2e, bound %.1e", err, bound(dt));
  check(tag + ": " + msg, err < bound(dt) && err > 0, msg);
}

void router_against_reference() {
  const LayerConfig c = config(61, 16, 9, 3, DType::F32);
  auto w = std::make_shared<SeededWeights>(11);
  MoeLayer layer(c, w, "auto");
  const int T = 13;
  const std::vector<float> x = gaussian(size_t(T) * c.hidden, 77);
  ForwardResult out;
  layer.route(x.data(), T, out);
  const Reference ref = reference(c, *w, x, T);
  double worst = 0;
  bool ids = true;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    ids = ids && out.ids[i] == ref.ids[i];
    worst = std::max(worst, std::fabs(out.weights[i] - ref.weights[i]) / ref.weights[i]);
  }
  check("router softmax: ids = fp64 reference", ids);
  check("router softmax: weights rel err < 1e-5", worst < 1e-5, std::to_string(worst));
}

void alone_equals_batch(DType dt) {
  const LayerConfig c = config(72, 40, 7, 3, dt);
  auto w = std::make_shared<SeededWeights>(21);
  MoeLayer layer(c, w, "auto");
  const int T = 9;
  const std::vector<float> x = gaussian(size_t(T) * c.hidden, 300);
  ForwardResult batch, again;
  layer.forward(x.data(), T, batch);
  layer.forward(x.data(), T, again);
  bool same = bitwise_equal(batch.output, again.output);
  for (int t = 0; t < T; ++t) {
    ForwardResult one;
    layer.forward(x.data() + size_t(t) * c.hidden, 1, one);
    same =
        same && std::memcmp(one.output.data(), batch.output.data() + size_t(t) * c.hidden, 4 * size_t(c.hidden)) == 0;
  }
  check(std::string("alone = batch bitwise (") + dtype_name(dt) + ", " + layer.isa() + ")", same);
}

std::string temp_folder() {
  const std::string base = read_environment().tmpdir;
  return base + "/moecap-core-check-" + std::to_string(process_id());
}

void offload_equals_resident(DType dt, const std::string& folder) {
  LayerConfig c = config(72, 40, 8, 2, dt);
  c.poison = false;
  auto w = std::make_shared<SeededWeights>(31);
  MoeLayer resident(c, w, "auto");
  OffloadConfig named, scratch;
  named.enabled = scratch.enabled = true;
  named.capacity_experts = scratch.capacity_experts = 2;
  named.path = folder + "/experts-" + dtype_name(dt) + ".bin";
  MoeLayer from_new(c, w, "auto", named);        // writes the file
  MoeLayer from_existing(c, w, "auto", named);   // validates and reads it
  MoeLayer from_scratch(c, w, "auto", scratch);  // a scratch file, removed while open
  bool same = true;
  for (int pass = 0; pass < 3; ++pass) {
    const std::vector<float> x = gaussian(size_t(9) * c.hidden, uint32_t(500 + pass));
    ForwardResult a, b, e, s;
    resident.forward(x.data(), 9, a);
    from_new.forward(x.data(), 9, b);
    from_existing.forward(x.data(), 9, e);
    from_scratch.forward(x.data(), 9, s);
    same = same && bitwise_equal(a.output, b.output) && bitwise_equal(a.output, e.output) &&
           bitwise_equal(a.output, s.output);
  }
  check(std::string("offload ") + dtype_name(dt) + ": bitwise = resident (new, existing and scratch file)", same);
  check(std::string("offload ") + dtype_name(dt) + ": the file exists", path_exists(named.path));
}

void file_io_round_trip(const std::string& folder) {
  const std::string a = folder + "/a.bin", b = folder + "/b.bin";
  std::vector<uint8_t> data(3 * 4096 + 123);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 131 + 7);
  int fd = create_exclusive(a);
  check("create_exclusive", fd >= 0);
  check("create_exclusive refuses an existing file", create_exclusive(a) < 0 && errno == EEXIST);
  // Written back to front at offsets, so positional writes (not a file position) place them.
  bool wrote = true;
  for (size_t block = (data.size() + 4095) / 4096; block-- > 0;) {
    const size_t off = block * 4096, n = std::min<size_t>(4096, data.size() - off);
    wrote = wrote && write_at(fd, data.data() + off, n, off) == int64_t(n);
  }
  check("write_at at offsets", wrote);
  check("truncate_file grows",
        truncate_file(fd, data.size() + 100) == 0 && file_size(fd) == int64_t(data.size() + 100));
  check("sync_file", sync_file(fd) == 0 && sync_file_data(fd) == 0);
  check("close_file", close_file(fd) == 0);
  fd = create_scratch(b);  // an existing target the replace must overwrite
  check("create_scratch", fd >= 0 && write_at(fd, "old", 3, 0) == 3 && close_file(fd) == 0);
  check("replace_file over an existing file", replace_file(a, b) == 0 && !path_exists(a) && path_exists(b));
  const char* kind = nullptr;
  uint64_t size = 0;
  fd = open_regular_read(b, &kind, &size);
  check("open_regular_read", fd >= 0 && size == data.size() + 100, std::to_string(size));
  std::vector<uint8_t> back(data.size());
  int64_t got = 0;
  for (size_t off = 0; off < back.size(); off += size_t(got)) {
    got = read_at(fd, back.data() + off, std::min<size_t>(5000, back.size() - off), off);
    if (got <= 0) break;
  }
  check("read_at reads back what write_at wrote", back == data);
  uint8_t tail[200];
  check("read_at stops at the end of the file",
        read_at(fd, tail, sizeof tail, data.size()) == 100 && read_at(fd, tail, sizeof tail, data.size() + 100) == 0);
  check("remove_file while open", remove_file(b) == 0);
  check("read_at after removal",
        read_at(fd, back.data(), 16, 0) == 16 && std::memcmp(back.data(), data.data(), 16) == 0);
  close_file(fd);
  check("removed", !path_exists(b));
  kind = nullptr;
  check("open_regular_read names a directory",
        open_regular_read(folder, &kind, &size) == -2 && kind && std::string(kind) == "a directory",
        kind ? kind : "(none)");
  check("open_read of a missing file: ENOENT", open_read(folder + "/missing") < 0 && errno == ENOENT);
}

void platform_info() {
  const uint64_t total = total_memory_bytes(), avail = available_memory_bytes();
  check("total memory > 0", total > 0);
  check("available memory in (0, total]", avail > 0 && avail <= total,
        format_bytes(double(avail)) + " of " + format_bytes(double(total)));
  const LayerConfig c = config(40, 24, 4, 2, DType::F32);
  MoeLayer layer(c, std::make_shared<SeededWeights>(3), "auto");
  const LayerInfo info = layer.info();
  std::printf("isa %s (supported: %s), threads %d, pinned %s, huge pages %s, memory %s available of %s\n",
              info.isa.c_str(), supported_isas_text().c_str(), info.threads,
              info.pinned_threads.value_or(false) ? "yes" : "no", info.huge_pages.value_or(false) ? "yes" : "no",
              format_bytes(double(avail)).c_str(), format_bytes(double(total)).c_str());
#if !defined(__linux__)
  check("huge pages reported as not asked off Linux", info.huge_pages.has_value() && !*info.huge_pages);
  check("threads reported as not pinned off Linux", info.pinned_threads.has_value() && !*info.pinned_threads);
#endif
}

}  // namespace

// Runs the checks, then removes the temporary folder (failures are printed as they come).
int main() {
  try {
    const char* isas[4];
    const int n = supported_isas(isas);
    for (int i = 0; i < n; ++i)
      for (DType dt : kAllDTypes) {
        kernels_against_reference(isas[i], dt, 72, 40, 7, 3);
        kernels_against_reference(isas[i], dt, 100, 48, 5, 2);
        // A partial second fp8 block (161 = 128 + 33) and 4 mxfp4 blocks of the down rows (99).
        if (dt == DType::MXFP4 || dt == DType::FP8) kernels_against_reference(isas[i], dt, 161, 99, 4, 2);
      }
    router_against_reference();
    for (DType dt : kAllDTypes) alone_equals_batch(dt);
    const std::string folder = temp_folder();
#if defined(_WIN32)
    const bool made = CreateDirectoryA(folder.c_str(), nullptr) != 0;
#else
    const bool made = mkdir(folder.c_str(), 0700) == 0;
#endif
    check("temporary folder " + folder, made);
    if (made) {
      for (DType dt : kAllDTypes) offload_equals_resident(dt, folder);
      for (DType dt : kAllDTypes) remove_file(folder + "/experts-" + dtype_name(dt) + ".bin");
      file_io_round_trip(folder);
#if defined(_WIN32)
      RemoveDirectoryA(folder.c_str());
#else
      rmdir(folder.c_str());
#endif
    }
    platform_info();
  } catch (const std::exception& e) {
    check("no exception", false, e.what());
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

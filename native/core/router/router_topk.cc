#include "router/router_topk.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moecap {

// Phi-3.5-MoE's sparsemixer at inference (no jitter noise; the straight-through gradient terms
// are training only). `out` marks excluded experts with −inf in `l` (a copy of the logits).
template <class R>
void sparsemixer_t(const RouterParams& p, const R* logits, R* l, int32_t* ids, R* weights) {
  const int E = p.experts;
  const R neg_inf = -std::numeric_limits<R>::infinity();
  const R eps2 = R(2) * R(p.jitter_eps);
  for (int e = 0; e < E; ++e) l[e] = logits[e];
  for (int j = 0; j < 2; ++j) {
    int best = -1;
    for (int e = 0; e < E; ++e)
      if (l[e] != neg_inf && (best < 0 || l[e] > l[best])) best = e;
    if (best < 0) best = j == 0 ? 0 : (ids[0] == 0 ? 1 : 0);  // only with non-finite logits
    const R m = l[best];
    // The mask compares the original logits with m (the modelling code's `scores`); factor =
    // max(|l_e|, m). A NaN ratio (0/0) does not mask, as torch's comparison.
    R sum = 0;
    for (int e = 0; e < E; ++e) {
      if (l[e] == neg_inf) continue;
      const R factor = std::max(std::fabs(logits[e]), m);
      if ((m - logits[e]) / factor > eps2) continue;
      sum += std::exp(l[e] - m);
    }
    ids[j] = best;
    weights[j] = R(1) / sum;  // exp(m − m) = 1 over the unmasked sum
    l[best] = neg_inf;
  }
}

template <class R>
void route_token_t(const RouterParams& p, const R* logits, R* scratch, int32_t* ids, R* weights) {
  const int E = p.experts;
  R* scores = scratch;
  R* sel = scratch + E;
  if (p.scoring == Scoring::SparseMixer) {
    sparsemixer_t(p, logits, scratch, ids, weights);
    if (p.scaling != 1.0f)
      for (int j = 0; j < 2; ++j) weights[j] *= R(p.scaling);
    return;
  }
  if (p.scoring == Scoring::Softmax) {
    R m = logits[0];
    for (int e = 1; e < E; ++e) m = logits[e] > m ? logits[e] : m;
    R sum = 0;
    for (int e = 0; e < E; ++e) sum += (scores[e] = std::exp(logits[e] - m));
    const R inv = R(1) / sum;
    for (int e = 0; e < E; ++e) scores[e] *= inv;
  } else {
    for (int e = 0; e < E; ++e) scores[e] = R(1) / (R(1) + std::exp(-logits[e]));
  }
  for (int e = 0; e < E; ++e) sel[e] = p.bias ? scores[e] + p.bias[e] : scores[e];

  const R neg_inf = -std::numeric_limits<R>::infinity();
  if (p.group_count > 0) {
    const int G = p.group_count, gs = E / G;
    R* gscore = scratch + 2 * E;
    R* keep = gscore + G;
    for (int g = 0; g < G; ++g) {
      // The two largest selection scores in the group (the one, for groups of one).
      R a = neg_inf, b = neg_inf;
      for (int e = g * gs; e < (g + 1) * gs; ++e) {
        R v = sel[e];
        if (v > a) {
          b = a;
          a = v;
        } else if (v > b) b = v;
      }
      gscore[g] = p.group_score == GroupScore::Max || gs < 2 ? a : a + b;
      keep[g] = 0;
    }
    // Keep the best `group_keep` groups (lower index wins ties); experts of the others score 0.0
    // and stay selectable, exactly as the modelling code's masked_fill(~mask, 0.0).
    for (int round = 0; round < p.group_keep; ++round) {
      int best = -1;
      for (int g = 0; g < G; ++g)
        if (!keep[g] && (best < 0 || gscore[g] > gscore[best])) best = g;
      keep[best] = 1;
    }
    for (int e = 0; e < E; ++e)
      if (!keep[e / gs]) sel[e] = R(0);
  }

  // -inf marks an expert already taken (selection scores are finite, or NaN from NaN logits).
  R sum = 0;
  for (int j = 0; j < p.top_k; ++j) {
    int best = -1;
    for (int e = 0; e < E; ++e)
      if (sel[e] != neg_inf && (best < 0 || sel[e] > sel[best])) best = e;
    if (best < 0) {  // only reachable with non-finite logits: take the lowest unused index
      for (int e = 0; e < E && best < 0; ++e) {
        bool used = false;
        for (int i = 0; i < j; ++i) used |= ids[i] == e;
        if (!used) best = e;
      }
    }
    ids[j] = best;
    weights[j] = scores[best];
    sum += scores[best];
    sel[best] = neg_inf;
  }
  if (p.renormalize) {
    const R denom = sum + R(1e-20);
    for (int j = 0; j < p.top_k; ++j) weights[j] /= denom;
  }
  if (p.scaling != 1.0f)
    for (int j = 0; j < p.top_k; ++j) weights[j] *= R(p.scaling);
}

void route_token(const RouterParams& p, const float* logits, float* scratch, int32_t* ids, float* weights) {
  route_token_t<float>(p, logits, scratch, ids, weights);
}
void route_token(const RouterParams& p, const double* logits, double* scratch, int32_t* ids, double* weights) {
  route_token_t<double>(p, logits, scratch, ids, weights);
}

}  // namespace moecap

// NAB v1.1 scorer. Mirrors the benchmark's sweep: per-row weights are fixed by the labels, so
// the best corpus-wide threshold is found exactly by visiting rows in decreasing score order.
#include "edgelm/anomaly/nab_scorer.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace edgelm::anomaly {

double nab_scaled_sigmoid(double y) {
  if (y >= 3.0) return -1.0;
  return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0;
}

size_t nab_probationary_rows(size_t rows) {
  // min(floor(0.15 n), 0.15 * 5000): row i is scored when i >= this value.
  return std::min<size_t>(static_cast<size_t>(std::floor(0.15 * static_cast<double>(rows))), 750);
}

namespace {

struct WindowRows {
  size_t left = 0, right = 0;  // inclusive row indices
  bool empty = true;
};

// Rows of each window the way NAB finds them: the first row whose timestamp equals the edge
// (NAB's files repeat a few timestamps and step back once; the first occurrence wins). Edges
// between rows fall back to the first row after the start and the last row before the end.
std::vector<WindowRows> window_rows(const ScoredSeries& s) {
  std::vector<WindowRows> out;
  const auto& t = s.timestamp_ms;
  auto first_equal = [&](int64_t v) {
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == v) return static_cast<long>(i);
    return -1L;
  };
  for (const auto& w : s.windows) {
    WindowRows r;
    long lo = first_equal(w.start_ms), hi = first_equal(w.end_ms);
    if (lo < 0)
      for (size_t i = 0; i < t.size() && lo < 0; ++i)
        if (t[i] > w.start_ms) lo = static_cast<long>(i);
    if (hi < 0)
      for (size_t i = t.size(); i-- > 0 && hi < 0;)
        if (t[i] < w.end_ms) hi = static_cast<long>(i);
    if (lo >= 0 && hi >= lo) {
      r.left = static_cast<size_t>(lo);
      r.right = static_cast<size_t>(hi);
      r.empty = false;
    }
    out.push_back(r);
  }
  return out;
}

struct ProfileWeights {
  double tp_scale, fp_scale, fn_cost;
  explicit ProfileWeights(const NabProfile& p)
      : tp_scale(p.a_tp / nab_scaled_sigmoid(-1.0)), fp_scale(p.a_fp), fn_cost(p.a_fn) {}
};

// Which windows of a file have at least one scored row (others are neither missed nor found).
std::vector<bool> scored_windows(const ScoredSeries& s, const std::vector<RowWeight>& rows) {
  std::vector<bool> scored(s.windows.size(), false);
  for (const auto& r : rows)
    if (r.scored && r.window >= 0) scored[static_cast<size_t>(r.window)] = true;
  return scored;
}

}  // namespace

std::vector<RowWeight> nab_row_weights(const ScoredSeries& s) {
  const size_t n = s.timestamp_ms.size();
  const size_t probation = nab_probationary_rows(n);
  std::vector<WindowRows> wins = window_rows(s);
  // Windows in time order; NAB's labels are sorted and never overlap.
  std::vector<int> order(wins.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return wins[a].left < wins[b].left; });

  std::vector<RowWeight> out(n);
  size_t next = 0;  // position in `order`
  int current = -1;
  bool have_prev = false;
  size_t prev_right = 0;
  double prev_width = 0;
  while (next < order.size() && wins[order[next]].empty) ++next;
  for (size_t i = 0; i < n; ++i) {
    if (current < 0 && next < order.size() && wins[order[next]].left == i) current = order[next++];
    RowWeight& r = out[i];
    r.scored = i >= probation;
    if (current >= 0) {
      const WindowRows& w = wins[current];
      const double width = static_cast<double>(w.right - w.left + 1);
      r.window = current;
      r.unweighted = nab_scaled_sigmoid(-static_cast<double>(w.right - i + 1) / width);
      if (i == w.right) {
        have_prev = true;
        prev_right = i;
        prev_width = width;
        current = -1;
        while (next < order.size() && wins[order[next]].empty) ++next;
      }
    } else if (!have_prev || prev_width <= 1.0) {
      r.unweighted = -1.0;
    } else {
      r.unweighted = nab_scaled_sigmoid(static_cast<double>(i - prev_right) / (prev_width - 1.0));
    }
  }
  return out;
}

CorpusScore score_corpus_at(std::span<const ScoredSeries> corpus, const NabProfile& profile,
                            double threshold) {
  const ProfileWeights pw(profile);
  CorpusScore out;
  out.profile = profile;
  out.threshold = threshold;
  std::map<std::string, GroupScore> groups;
  for (const auto& s : corpus) {
    const auto rows = nab_row_weights(s);
    const auto scored = scored_windows(s, rows);
    FileScore f{s.name, s.category};
    f.windows = static_cast<int>(s.windows.size());
    std::vector<double> best(s.windows.size(), -2.0);  // -2: not detected
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!rows[i].scored || !(static_cast<double>(s.score[i]) >= threshold)) continue;
      if (rows[i].window < 0) {
        f.raw += pw.fp_scale * rows[i].unweighted;
        ++f.fp;
      } else {
        double& b = best[static_cast<size_t>(rows[i].window)];
        b = std::max(b, rows[i].unweighted);
      }
    }
    GroupScore& g = groups[s.category];
    g.name = s.category;
    for (size_t w = 0; w < best.size(); ++w) {
      g.perfect_raw += profile.a_tp;
      if (!scored[w]) continue;
      g.null_raw -= pw.fn_cost;
      if (best[w] > -2.0) {
        f.raw += pw.tp_scale * best[w];
        ++f.tp;
      } else {
        f.raw -= pw.fn_cost;
        ++f.fn;
      }
    }
    g.raw += f.raw;
    g.windows += f.windows;
    g.detected += f.tp;
    g.fp += f.fp;
    out.files.push_back(f);
  }
  for (auto& [name, g] : groups) {
    if (g.perfect_raw > g.null_raw) g.normalized = 100.0 * (g.raw - g.null_raw) / (g.perfect_raw - g.null_raw);
    out.raw += g.raw;
    out.null_raw += g.null_raw;
    out.perfect_raw += g.perfect_raw;
    out.categories.push_back(g);
  }
  if (out.perfect_raw > out.null_raw)
    out.normalized = 100.0 * (out.raw - out.null_raw) / (out.perfect_raw - out.null_raw);
  return out;
}

HeldOutScore leave_one_category_out(std::span<const std::vector<ScoredSeries>> candidates, const NabProfile& profile) {
  HeldOutScore out;
  if (candidates.empty()) return out;
  for (const auto& s : candidates[0])
    if (std::find(out.categories.begin(), out.categories.end(), s.category) == out.categories.end())
      out.categories.push_back(s.category);
  double raw = 0, null_raw = 0, perfect_raw = 0;
  for (const auto& held : out.categories) {
    size_t best = 0;
    double best_score = -1e300, best_threshold = 0;
    for (size_t c = 0; c < candidates.size(); ++c) {
      std::vector<ScoredSeries> rest;
      for (const auto& s : candidates[c])
        if (s.category != held) rest.push_back(s);
      const CorpusScore sc = score_corpus(rest, profile);
      if (!(sc.normalized > best_score)) continue;
      best_score = sc.normalized, best = c;
      // Every threshold between the chosen score and the next lower one scores the same on
      // these categories; the middle of that interval is the one least tied to them.
      float lower = 0.0f;
      for (const auto& s : rest)
        for (float v : s.score)
          if (v < sc.threshold && v > lower) lower = v;
      best_threshold = sc.threshold > 1.0 ? sc.threshold : 0.5 * (sc.threshold + lower);
    }
    std::vector<ScoredSeries> kept;
    for (const auto& s : candidates[best])
      if (s.category == held) kept.push_back(s);
    const CorpusScore sc = score_corpus_at(kept, profile, best_threshold);
    raw += sc.raw, null_raw += sc.null_raw, perfect_raw += sc.perfect_raw;
    out.chosen.push_back(best);
    out.thresholds.push_back(best_threshold);
  }
  out.normalized = perfect_raw > null_raw ? 100.0 * (raw - null_raw) / (perfect_raw - null_raw) : 0.0;
  return out;
}

CorpusScore score_corpus(std::span<const ScoredSeries> corpus, const NabProfile& profile) {
  const ProfileWeights pw(profile);
  struct Row {
    float score;
    int window;  // corpus-wide window id, -1 for a false-positive row
    double unweighted;
  };
  std::vector<Row> rows;
  std::vector<double> best;  // per corpus-wide window id: best TP weight so far (-2 = none)
  for (const auto& s : corpus) {
    const auto weights = nab_row_weights(s);
    const auto scored = scored_windows(s, weights);
    std::vector<int> id(s.windows.size(), -1);
    for (size_t w = 0; w < s.windows.size(); ++w)
      if (scored[w]) id[w] = static_cast<int>(best.size()), best.push_back(-2.0);
    for (size_t i = 0; i < weights.size(); ++i) {
      if (!weights[i].scored) continue;
      int w = weights[i].window < 0 ? -1 : id[static_cast<size_t>(weights[i].window)];
      rows.push_back({s.score[i], w, weights[i].unweighted});
    }
  }
  // Highest scores first: lowering the threshold past a score turns its rows into detections.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.score > b.score; });
  double tp_sum = 0, fp_sum = 0;
  size_t detected = 0;
  const size_t windows = best.size();
  auto total = [&] {
    return pw.tp_scale * tp_sum + pw.fp_scale * fp_sum - pw.fn_cost * static_cast<double>(windows - detected);
  };
  double best_total = total();
  double best_threshold = 1.1;  // above every score: nothing fires
  for (size_t i = 0; i < rows.size();) {
    const float level = rows[i].score;
    for (; i < rows.size() && rows[i].score == level; ++i) {
      const Row& r = rows[i];
      if (r.window < 0) {
        fp_sum += r.unweighted;
      } else if (best[static_cast<size_t>(r.window)] < -1.5) {
        best[static_cast<size_t>(r.window)] = r.unweighted;
        tp_sum += r.unweighted;
        ++detected;
      } else if (r.unweighted > best[static_cast<size_t>(r.window)]) {
        tp_sum += r.unweighted - best[static_cast<size_t>(r.window)];
        best[static_cast<size_t>(r.window)] = r.unweighted;
      }
    }
    const double t = total();
    if (t > best_total) best_total = t, best_threshold = level;
  }
  return score_corpus_at(corpus, profile, best_threshold);
}

}  // namespace edgelm::anomaly

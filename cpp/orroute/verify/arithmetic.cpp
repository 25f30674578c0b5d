#include "orroute/verify/arithmetic.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace orroute {

namespace {

// Parentheses nest at most this deep in an expression we evaluate (the parser recurses).
constexpr int kMaxDepth = 32;
// Calculations checked per solution: bounds the work on a hostile, very long reply.
constexpr int32_t kMaxCalculations = 2000;

// Maps the Unicode and LaTeX operators models write to ASCII, so the scanner sees one alphabet.
std::string normalise(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    static constexpr std::pair<std::string_view, char> kSymbols[] = {
        {"\xC3\x97", '*'},     {"\xC3\xB7", '/'}, {"\xE2\x88\x92", '-'},  // × ÷ −
        {"\xE2\x8B\x85", '*'}, {"\\times", '*'},  {"\\cdot", '*'}, {"\\div", '/'}};
    const auto rest = in.substr(i);
    bool mapped = false;
    for (const auto& [symbol, ascii] : kSymbols) {
      if (rest.starts_with(symbol)) {
        out += ascii;
        i += symbol.size() - 1;
        mapped = true;
        break;
      }
    }
    if (!mapped) out += in[i];
  }
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// True if s[i] is a thousands separator: a ',' between a digit and exactly three digits.
bool thousands_comma(std::string_view s, size_t i) {
  return s[i] == ',' && i > 0 && is_digit(s[i - 1]) && i + 3 < s.size() && is_digit(s[i + 1]) &&
         is_digit(s[i + 2]) && is_digit(s[i + 3]) && (i + 4 == s.size() || !is_digit(s[i + 4]));
}

// Characters an arithmetic expression may contain (x/X: multiplication between numbers).
bool expression_char(char c) {
  return is_digit(c) || c == ' ' || c == '\t' || c == '.' || c == ',' || c == '+' || c == '-' ||
         c == '*' || c == '/' || c == '(' || c == ')' || c == '$' || c == '%' || c == 'x' ||
         c == 'X';
}

// Recursive-descent evaluator over one candidate expression; `ok` turns false on anything it does
// not understand, and the caller then skips the calculation.
class Evaluator {
 public:
  explicit Evaluator(std::string_view s) : s_(s) {}

  // The value when the whole text is one expression; sets decimals_ for a plain number.
  bool evaluate(double* value) {
    skip();
    *value = expr();
    skip();
    return ok_ && pos_ == s_.size() && std::isfinite(*value);
  }
  int operators() const { return operators_; }
  int decimals() const { return decimals_; }
  int numbers() const { return numbers_; }

 private:
  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '$')) ++pos_;
  }
  bool peek(char c) {
    skip();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  double expr() {
    double v = term();
    while (ok_ && (peek('+') || peek('-'))) {
      const char op = s_[pos_++];
      ++operators_;
      const double r = term();
      v = op == '+' ? v + r : v - r;
    }
    return v;
  }
  double term() {
    double v = unary();
    while (ok_ && (peek('*') || peek('/') || peek('x') || peek('X'))) {
      const char op = s_[pos_++];
      ++operators_;
      const double r = unary();
      v = op == '/' ? v / r : v * r;
    }
    return v;
  }
  double unary() {
    if (peek('-')) {
      ++pos_;
      return -unary();
    }
    double v = primary();
    if (ok_ && peek('%')) {
      ++pos_;
      v /= 100.0;
    }
    return v;
  }
  double primary() {
    if (peek('(')) {
      if (++depth_ > kMaxDepth) return fail();
      ++pos_;
      const double v = expr();
      if (!peek(')')) return fail();
      ++pos_;
      --depth_;
      return v;
    }
    return number();
  }
  double number() {
    skip();
    std::string digits;
    const size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (is_digit(c)) {
        digits += c;
        ++pos_;
      } else if (pos_ > start && thousands_comma(s_, pos_)) {
        ++pos_;  // thousands separator
      } else {
        break;
      }
    }
    decimals_ = 0;
    if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
      digits += s_[pos_++];
      while (pos_ < s_.size() && is_digit(s_[pos_])) {
        digits += s_[pos_++];
        ++decimals_;
      }
    }
    if (digits.empty() || digits.size() > 30) return fail();
    ++numbers_;
    return std::strtod(digits.c_str(), nullptr);
  }
  double fail() {
    ok_ = false;
    return 0.0;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  int operators_ = 0;
  int numbers_ = 0;
  int decimals_ = 0;
  bool ok_ = true;
};

std::string_view trim(std::string_view s, std::string_view junk = " \t") {
  const auto b = s.find_first_not_of(junk);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(junk) - b + 1);
}

// The left side of a calculation ending at `eq`: the run of expression characters before it, cut
// after a comma that is not a thousands separator, starting at a number, '(' or '-'.
std::string_view left_side(std::string_view s, size_t eq) {
  size_t b = eq;
  while (b > 0 && expression_char(s[b - 1])) --b;
  std::string_view left = s.substr(b, eq - b);
  for (size_t i = left.size(); i-- > 0;) {
    if (left[i] == ',' && !thousands_comma(left, i)) {
      left = left.substr(i + 1);
      break;
    }
  }
  const size_t start = left.find_first_of("0123456789($-.");
  return start == std::string_view::npos ? std::string_view{} : trim(left.substr(start));
}

std::string_view right_side(std::string_view s, size_t eq) {
  size_t e = eq + 1;
  while (e < s.size() && expression_char(s[e])) ++e;
  std::string_view right = trim(s.substr(eq + 1, e - eq - 1), " \t.,");
  // "= 13, so" / "= 3 x" : a trailing operator or separator is prose, not part of the result
  while (!right.empty() && std::string_view("+-*/xX(,").find(right.back()) != std::string_view::npos) {
    right = trim(right.substr(0, right.size() - 1), " \t.,");
  }
  return right;
}

std::string canonical(double v) {
  char buf[64];
  if (std::abs(v) < 1e15 && std::floor(v) == v) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  std::string s(buf);
  return s == "-0" ? "0" : s;
}

struct Checker {
  CalculationCheck out;
  std::vector<double> results;  // stated results of the checked calculations, in text order

  void check(std::string_view left, std::string_view right) {
    if (left.empty() || right.empty() || out.checked >= kMaxCalculations) return;
    Evaluator l(left);
    double lv = 0;
    if (!l.evaluate(&lv) || l.operators() == 0 || l.numbers() < 2) return;
    Evaluator r(right);
    double rv = 0;
    if (!r.evaluate(&rv)) return;
    ++out.checked;
    results.push_back(rv);
    // A stated result with d decimals is read as rounded to d decimals (3.33 for 10/3).
    const double tolerance = (r.operators() == 0 ? 0.5 * std::pow(10.0, -r.decimals()) : 0.0) +
                             1e-9 * std::max(1.0, std::abs(lv));
    if (std::abs(lv - rv) > tolerance) {
      if (out.wrong++ == 0) {
        out.first_wrong = clip_for_reason(std::string(left) + " = " + std::string(right), 80);
      }
    }
  }
};

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// The first number in `s` (with "$", thousands commas, a leading '-'), if any within `limit` bytes.
bool first_number(std::string_view s, size_t limit, FinalAnswer* out) {
  for (size_t i = 0; i < std::min(s.size(), limit); ++i) {
    if (!is_digit(s[i])) continue;
    size_t b = i;
    size_t e = i;
    while (e < s.size() && (is_digit(s[e]) || (s[e] == ',' && e + 1 < s.size() && is_digit(s[e + 1])) ||
                            (s[e] == '.' && e + 1 < s.size() && is_digit(s[e + 1])))) {
      ++e;
    }
    std::string digits;
    for (size_t k = b; k < e; ++k) {
      if (s[k] != ',') digits += s[k];
    }
    if (digits.size() > 30) return false;
    double v = std::strtod(digits.c_str(), nullptr);
    size_t m = b;
    while (m > 0 && s[m - 1] == '$') --m;
    if (m > 0 && s[m - 1] == '-' && (m < 2 || !is_digit(s[m - 2]))) v = -v;
    out->found = true;
    out->value = v;
    out->text = canonical(v);
    return true;
  }
  return false;
}

}  // namespace

FinalAnswer final_answer(std::string_view text) {
  FinalAnswer best;
  static constexpr std::string_view kMarkers[] = {"####", "answer is", "answer:", "\\boxed{"};
  size_t marker_end = std::string_view::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    for (const auto m : kMarkers) {
      if (starts_with_ci(text.substr(i), m)) marker_end = i + m.size();  // the last marker wins
    }
  }
  if (marker_end != std::string_view::npos) {
    FinalAnswer marked;
    if (first_number(text.substr(marker_end), 80, &marked)) {
      marked.marked = true;
      return marked;
    }
  }
  // no marker: the last number of the text
  size_t end = text.size();
  while (end > 0 && !is_digit(text[end - 1])) --end;
  size_t b = end;
  while (b > 0 && (is_digit(text[b - 1]) || text[b - 1] == ',' || text[b - 1] == '.')) --b;
  while (b < end && !is_digit(text[b])) ++b;
  if (end == 0 || !first_number(text.substr(b), 64, &best)) return best;
  size_t m = b;
  while (m > 0 && text[m - 1] == '$') --m;
  if (m > 0 && text[m - 1] == '-' && (m < 2 || !is_digit(text[m - 2]))) {
    best.value = -best.value;
    best.text = canonical(best.value);
  }
  return best;
}

CalculationCheck check_calculations(std::string_view solution) {
  const std::string text = normalise(solution);
  Checker checker;
  // GSM8K-style annotations "<<a*b=c>>" are calculations of their own; the prose around them is
  // checked without them ("$<<9*2=18>>18" reads "$18").
  std::string prose;
  prose.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t open = text.find("<<", i);
    const size_t close = open == std::string::npos ? std::string::npos : text.find(">>", open + 2);
    if (close == std::string::npos) {
      prose.append(text, i, std::string::npos);
      break;
    }
    prose.append(text, i, open - i);
    const std::string_view inner(text.data() + open + 2, close - open - 2);
    if (const size_t eq = inner.rfind('='); eq != std::string_view::npos) {
      checker.check(trim(inner.substr(0, eq)), trim(inner.substr(eq + 1)));
    }
    i = close + 2;
  }
  const std::string_view s = prose;
  for (size_t eq = s.find('='); eq != std::string_view::npos; eq = s.find('=', eq + 1)) {
    const bool comparison = (eq > 0 && std::string_view("<>!=").find(s[eq - 1]) != std::string_view::npos) ||
                            (eq + 1 < s.size() && s[eq + 1] == '=');
    if (comparison) continue;
    checker.check(left_side(s, eq), right_side(s, eq));
  }
  checker.out.final_answer = final_answer(solution);
  const FinalAnswer& fin = checker.out.final_answer;
  auto same = [&](double r) { return std::abs(r - fin.value) <= 1e-9 * std::max(1.0, std::abs(r)); };
  if (fin.found && !checker.results.empty()) {
    checker.out.final_is_last_result = same(checker.results.back());
    checker.out.final_in_results =
        std::any_of(checker.results.begin(), checker.results.end(), same);
  }
  return checker.out;
}

Verdict arithmetic_verdict(const CalculationCheck& check, bool require_final) {
  if (check.wrong > 0) {
    Verdict v = Verdict::fail(std::to_string(check.wrong) + " of " + std::to_string(check.checked) +
                              " calculations wrong, first: " + check.first_wrong);
    return v;
  }
  if (require_final && !check.final_answer.found) return Verdict::fail("no final numeric answer");
  if (check.checked == 0) return Verdict::abstain("no calculation to check");
  return Verdict::pass(std::to_string(check.checked) + " calculations check out");
}

}  // namespace orroute

// SPDX-License-Identifier: GPL-2.0-only
#include "bisect/search.h"

#include <set>

namespace probegate::bisect {

std::string_view class_name(Class c) {
  switch (c) {
  case Class::same:
    return "same";
  case Class::differs:
    return "differs";
  case Class::untestable:
    return "untestable";
  }
  return "?";
}

Answer search(size_t n, const Oracle& oracle, const std::map<size_t, Step>& known) {
  Answer answer;
  std::set<size_t> untestable;
  std::string reference;
  auto decide = [&](size_t i) -> Class {
    Step step;
    if (auto it = known.find(i); it != known.end())
      step = it->second;
    else
      step = oracle(i, reference);
    step.index = i;
    if (step.cls != Class::untestable)
      step.cls = i == 0 || step.verdict == reference ? Class::same : Class::differs;
    if (i == 0 && step.cls == Class::same)
      reference = step.verdict;
    if (step.cls == Class::untestable)
      untestable.insert(i);
    if (step.disagreed)
      answer.certain = false;
    answer.steps.push_back(step);
    return step.cls;
  };

  if (n == 0 || decide(0) == Class::untestable) {
    answer.kind = Answer::Kind::first_untestable;
    answer.certain = false;
    return answer;
  }
  // The far end: the last testable item.
  size_t lo = 0;
  size_t hi = n - 1;
  for (;; --hi) {
    if (hi == 0) {
      answer.kind = Answer::Kind::no_change;
      answer.certain = false;
      answer.skipped.assign(untestable.begin(), untestable.end());
      return answer;
    }
    const Class c = decide(hi);
    if (c == Class::same) {
      answer.kind = Answer::Kind::no_change;
      answer.last_same = hi;
      answer.skipped.assign(untestable.begin(), untestable.end());
      if (!answer.skipped.empty())
        answer.certain = false;
      return answer;
    }
    if (c == Class::differs)
      break;
  }
  // Invariant: items[lo] is like items[0], items[hi] differs.
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    std::optional<Class> found;
    size_t at = mid;
    // The nearest testable item to the middle, strictly between lo and hi.
    for (size_t offset = 0; !found && offset < hi - lo; ++offset) {
      for (const size_t candidate : {mid + offset, mid - offset}) {
        if (found || candidate <= lo || candidate >= hi || untestable.contains(candidate))
          continue;
        const Class c = decide(candidate);
        if (c != Class::untestable) {
          found = c;
          at = candidate;
        }
      }
    }
    if (!found) { // everything between is untestable
      answer.kind = Answer::Kind::ambiguous;
      answer.certain = false;
      break;
    }
    (*found == Class::same ? lo : hi) = at;
  }
  if (answer.kind != Answer::Kind::ambiguous)
    answer.kind = Answer::Kind::found;
  answer.last_same = lo;
  answer.first = hi;
  answer.skipped.assign(untestable.begin(), untestable.end());
  return answer;
}

} // namespace probegate::bisect

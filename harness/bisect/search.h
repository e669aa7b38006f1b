// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace probegate::bisect {

// What one step (one kernel, or one parameter value) showed.
enum class Class {
  same,      // the same verdict as the first item
  differs,   // another verdict: the change being looked for
  untestable // build failure, infrastructure error, knob missing: skipped like git's 125
};

struct Step {
  size_t index = 0;  // position in the ordered list
  std::string label; // the kernel ref or "udev_timeout=7"
  Class cls = Class::untestable;
  std::string verdict;           // pass, fail, ... of the step's repeats combined
  std::string why;               // the failed checks or the skip reason
  int runs = 0;                  // repeats run
  int differing = 0;             // repeats whose verdict differs from the first item's
  bool disagreed = false;        // repeats did not all agree
  std::vector<std::string> dirs; // result directories behind it
};

// Decides a step: runs the item (with its repeats) and returns its verdict
// (or Class::untestable). `reference` is item 0's verdict, empty while item 0
// itself is being decided: the oracle applies its repeat rule (any/majority)
// against it and fills `differing`. search() sets `cls` from the verdicts.
// Called at most once per index; steps found in `known` (a resumed log) are
// reused without calling it.
using Oracle = std::function<Step(size_t index, const std::string& reference)>;

struct Answer {
  enum class Kind {
    found,            // items[first] is the first that differs from items[0]
    no_change,        // the last item is like the first: nothing to find
    first_untestable, // items[0] cannot be tested: there is no reference
    ambiguous         // the change is somewhere in [last_same+1, first]: untestable between
  };
  Kind kind = Kind::no_change;
  size_t last_same = 0;
  size_t first = 0;
  std::vector<Step> steps;     // in the order they were decided
  std::vector<size_t> skipped; // untestable indexes met on the way
  bool certain = true;         // no step's repeats disagreed, nothing skipped in between
};

// Binary search over `n` ordered items for the first whose class differs
// from item 0's, assuming one change (a regression or a fix: the same
// search). Untestable items are stepped around, as `git bisect skip` does:
// the nearest testable item to the middle is tried instead. Steps: about
// log2(n) + 2.
Answer search(size_t n, const Oracle& oracle, const std::map<size_t, Step>& known = {});

std::string_view class_name(Class c);

} // namespace probegate::bisect

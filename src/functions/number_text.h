// Numbers verbatim through a function (docs/functions.md, "Numbers"). An event crosses into the
// engine as JSON text and comes back as JSON.stringify's text, which writes every number in
// JavaScript's shortest form: 1.50 → 1.5, 1e5 → 100000, -0.0 → 0, 12345678901234567890 →
// 12345678901234567000. KeepNumberText puts the client's text back for every number the function
// left alone: where the output has a number at the same path (same keys, same array indices) as
// the input, and both denote the same double, the input's text is written instead.
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace sy::functions {

// `input`: the event as the function received it; `output`: one event it returned (JSON text as
// the engine wrote it). Returns `output` with the input's number text restored where the value
// did not change. Linear in the sizes of both; never fails (text that is not an object, or a
// number the function changed, is kept as the output has it).
std::string KeepNumberText(std::string_view input, std::string_view output);

}  // namespace sy::functions

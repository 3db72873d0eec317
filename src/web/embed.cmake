# cmake -DIN=analytics.min.js -DOUT=analytics_js_bundle.cc -P embed.cmake
# Writes the bytes of IN as sy::web::AnalyticsJsBundle() (see analytics_js.h).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "// Generated from sdk/js by src/web/embed.cmake; do not edit.\n"
  "#include \"web/analytics_js.h\"\n\nnamespace sy::web {\nnamespace {\n"
  "constexpr unsigned char kBundle[] = {\n${bytes}\n};\n}  // namespace\n\n"
  "std::string_view AnalyticsJsBundle() {\n"
  "  return {reinterpret_cast<const char*>(kBundle), sizeof kBundle};\n}\n\n"
  "}  // namespace sy::web\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

# Embeds a file's bytes in the binary as a function returning std::string_view (the browser
# library, the admin API's OpenAPI document; later the console's assets). Run at build time:
#   cmake -DIN=<file> -DOUT=<generated .cc> -DHEADER=<include declaring the function>
#         -DNAMESPACE=<C++ namespace> -DFUNCTION=<function name> -P cmake/embed_bytes.cmake
# The output is rewritten only when its content changes.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n" bytes "${bytes}")
get_filename_component(_name "${IN}" NAME)
file(WRITE "${OUT}.tmp" "// Generated from ${_name} by cmake/embed_bytes.cmake; do not edit.\n"
  "#include \"${HEADER}\"\n\nnamespace ${NAMESPACE} {\nnamespace {\n"
  "constexpr unsigned char kBytes[] = {\n${bytes}\n};\n}  // namespace\n\n"
  "std::string_view ${FUNCTION}() {\n"
  "  return {reinterpret_cast<const char*>(kBytes), sizeof kBytes};\n}\n\n"
  "}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

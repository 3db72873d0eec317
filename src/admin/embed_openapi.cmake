# cmake -DIN=openapi.json -DOUT=openapi_document.cc -P embed_openapi.cmake
# Writes the bytes of IN as sy::admin::OpenApiDocument() (see admin_api.h).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "// Generated from src/admin/openapi.json by src/admin/embed_openapi.cmake; do not edit.\n"
  "#include \"admin/admin_api.h\"\n\nnamespace sy::admin {\nnamespace {\n"
  "constexpr unsigned char kDocument[] = {\n${bytes}\n};\n}  // namespace\n\n"
  "std::string_view OpenApiDocument() {\n"
  "  return {reinterpret_cast<const char*>(kDocument), sizeof kDocument};\n}\n\n"
  "}  // namespace sy::admin\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

#include "delivery/user_identity.h"

#include <openssl/evp.h>

#include "delivery/event_fields.h"

namespace sy::delivery {
namespace json = boost::json;

namespace {

std::string Hex(const unsigned char* md, unsigned len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string Digest(std::string_view data, const EVP_MD* md_type) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, md_type, nullptr);
  return Hex(md, len);
}

}  // namespace

std::string UserTrait(const json::object& event, std::string_view name) {
  std::string v = FieldString(event, {"traits", name});
  return v.empty() ? FieldString(event, {"context", "traits", name}) : v;
}

std::string UserEmail(const json::object& event) {
  std::string v = UserTrait(event, "email");
  return v.empty() ? FieldString(event, {"properties", "email"}) : v;
}

std::string UserPhone(const json::object& event) {
  std::string v = UserTrait(event, "phone");
  return v.empty() ? FieldString(event, {"properties", "phone"}) : v;
}

std::string TrimAndLowercase(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (!s.empty() && space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && space(s.back()))
    s.remove_suffix(1);
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string PhoneDigits(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c < '0' || c > '9') continue;
    if (c == '0' && out.empty()) continue;  // "00" international prefix, a stray leading 0
    out.push_back(c);
  }
  return out;
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string Sha256Identifier(std::string_view normalized) {
  if (normalized.empty()) return "";
  if (IsSha256Hex(normalized)) return std::string(normalized);
  return Digest(normalized, EVP_sha256());
}

std::string Md5Hex(std::string_view data) {
  return Digest(data, EVP_md5());
}

}  // namespace sy::delivery

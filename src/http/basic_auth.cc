#include "http/basic_auth.h"

#include "base/base64.h"

namespace sy::http {

std::string BasicAuthorization(std::string_view user, std::string_view password) {
  std::string pair(user);
  pair += ':';
  pair += password;
  return "Basic " + Base64Encode(pair);
}

}  // namespace sy::http

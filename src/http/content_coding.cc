#include "http/content_coding.h"

namespace sy::http {

bool AcceptsGzip(std::string_view accept) {
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
      coding.remove_prefix(1);
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
      coding.remove_suffix(1);
    bool gzip = coding.size() == 4 && (coding[0] | 0x20) == 'g' && (coding[1] | 0x20) == 'z' &&
                (coding[2] | 0x20) == 'i' && (coding[3] | 0x20) == 'p';
    if (!gzip && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = item.substr(semi + 1);
    size_t q = params.find("q=");
    if (q == std::string_view::npos) return true;
    std::string_view value = params.substr(q + 2);
    // q=0, q=0.0, q=0.00, q=0.000 refuse the coding; anything else accepts it.
    bool zero = !value.empty() && value[0] == '0';
    for (size_t i = 1; zero && i < value.size() && value[i] != ' ' && value[i] != ';'; ++i)
      zero = value[i] == '.' || value[i] == '0';
    return !zero;
  }
  return false;
}

}  // namespace sy::http

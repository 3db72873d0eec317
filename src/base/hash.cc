#include "base/hash.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <cstring>
#include <string>

namespace sy {

Hash128 HashPair(std::string_view a, std::string_view b) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  uint64_t alen = a.size();
  XXH3_128bits_update(&state, &alen, sizeof alen);
  XXH3_128bits_update(&state, a.data(), a.size());
  XXH3_128bits_update(&state, b.data(), b.size());
  XXH128_hash_t h = XXH3_128bits_digest(&state);
  return {h.low64, h.high64};
}

}  // namespace sy

// The CLI's side of a running server's loopback admin door (app/warehouse_admin.h): a POST with
// the token from data_dir/ADMIN_TOKEN, through http/client.h. Defined in warehouse_sync.cc.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "http/client.h"

namespace sy::cli {

// One attempt; `body` (JSON) is sent when not empty. kUnavailable when the server cannot be
// reached.
Result<http::ClientResponse> PostLocal(std::string host, uint16_t port, const std::string& target,
                                       const std::string& token, std::string body = "");

}  // namespace sy::cli

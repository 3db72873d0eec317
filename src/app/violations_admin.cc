// App::HandleViolationsRelease: `switchyard violations release` on a running server. The release
// appends to the server's own log (the only writer), judged by the plans ingest runs now, on the
// admin job thread (one admin job at a time, as warehouse sync): a scan of the log never runs on
// an I/O thread.
#include <boost/json.hpp>

#include "app/app.h"
#include "app/warehouse_admin.h"
#include "base/constant_time.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "governance/violations.h"

namespace sy::app {
namespace {

namespace json = boost::json;

bool Loopback(const std::string& ip) {
  return ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.");
}

// The body's filter; false when it is not the expected JSON.
bool ParseFilter(std::string_view body, governance::BlockedFilter* f, bool* force) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return false;
  const json::object& o = v.as_object();
  if (auto* p = o.if_contains("plan"); p && p->is_string()) f->plan = p->as_string();
  if (auto* e = o.if_contains("event"); e && e->is_string()) f->event = e->as_string();
  if (auto* x = o.if_contains("force"); x && x->is_bool()) *force = x->as_bool();
  if (auto* a = o.if_contains("offsets"); a && a->is_array()) {
    for (const auto& n : a->as_array()) {
      if (!n.is_uint64() && !(n.is_int64() && n.as_int64() >= 0)) return false;
      f->offsets.push_back(n.to_number<uint64_t>());
    }
  }
  return true;
}

}  // namespace

void App::HandleViolationsRelease(http::Request&& req, const http::PeerInfo& peer,
                                  http::Responder respond) {
  auto text = [version = req.version()](unsigned status, std::string body) {
    http::Response res{static_cast<http::bhttp::status>(status), version};
    res.set(http::bhttp::field::content_type, "application/json");
    res.set(http::bhttp::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  if (req.method() != http::bhttp::verb::post) return respond(text(405, "POST only\n"));
  if (!Loopback(peer.ip) || admin_token_.empty() ||
      !ConstantTimeEquals(req[kAdminTokenHeader], admin_token_)) {
    return respond(text(403, "forbidden\n"));
  }
  governance::BlockedFilter filter;
  bool force = false;
  if (!ParseFilter(req.body(), &filter, &force))
    return respond(text(400, "expected {\"plan\", \"event\", \"offsets\", \"force\"}\n"));
  std::lock_guard lock(admin_mu_);
  if (admin_busy_) return respond(text(409, "another admin job is running; retry\n"));
  if (admin_thread_.joinable()) admin_thread_.join();
  admin_busy_ = true;
  admin_thread_ = std::thread([this, filter = std::move(filter), force, respond, text] {
    SetThreadName("sy-release");
    auto plans = api_->tracking_plans();
    auto r = governance::ReleaseBlocked(log_.get(), plans.get(), filter, force);
    if (r.ok())
      respond(text(200, governance::ReleaseReportJson(*r) + "\n"));
    else
      respond(text(500, r.status().ToString() + "\n"));
    std::lock_guard l(admin_mu_);
    admin_busy_ = false;
  });
}

}  // namespace sy::app

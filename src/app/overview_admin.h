// The admin API's GET /api/v1/overview, server side (admin/overview_api.h): App::Overview.
#pragma once

#include "admin/overview_api.h"

namespace sy::app {

class App;

class OverviewAdmin final : public admin::OverviewApi {
 public:
  explicit OverviewAdmin(App* app) : app_(app) {}
  admin::OverviewFacts Facts() override;

 private:
  App* const app_;
};

}  // namespace sy::app

// Golden test of the segment encoder (URL, Basic auth, body) and its per-event classification
// of Switchyard's partial-success answers.
#include "destinations/segment/segment.h"

#include <gtest/gtest.h>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {

using K = delivery::Outcome::Kind;

using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make() {
  return delivery::testing::MustCreate(
      SegmentType(),
      {Scalar("write_key", "wk_target"), Scalar("endpoint", "http://127.0.0.1:9000/")});
}

std::vector<delivery::RoutedEvent> Events() {
  return {{Offset(0), "web", "m-1", TimestampMs(1),
           R"({"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1"})"},
          {Offset(1), "web", "m-2", TimestampMs(2),
           R"({"type":"identify","userId":"u1","traits":{"plan":"pro"},"messageId":"m-2"})"}};
}

TEST(Segment, BatchRequestGolden) {
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(Make()->Encode(Events())),
                                  std::string(SY_TESTDATA) + "/batch.golden");
}

TEST(Segment, PartialSuccessIsResolvedPerEvent) {
  auto d = Make();
  auto b = d->Encode(Events());
  delivery::HttpResponse res;
  res.status = 200;
  res.body = R"({"success":false,"stored":1,"rejected":[{"index":1,"code":"missing_event"}]})";
  auto out = d->Classify(b.requests[0], res);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, K::kDelivered);
  EXPECT_EQ(out[1].kind, K::kRejected);
  EXPECT_EQ(out[1].reason, "receiver rejected: missing_event");
  res.status = 503;
  res.body = "busy";
  EXPECT_EQ(d->Classify(b.requests[0], res)[1].kind, K::kRetry);
  res.status = 400;
  res.body = R"({"success":false,"error":"all_events_rejected","rejected":[{"index":0}]})";
  out = d->Classify(b.requests[0], res);
  EXPECT_EQ(out[0].kind, K::kRejected);
  EXPECT_EQ(out[1].kind, K::kRejected);
}

TEST(Segment, WriteKeyIsRequired) {
  auto t = SegmentType();
  EXPECT_FALSE(delivery::testing::Create(t, {}).ok());
  EXPECT_FALSE(delivery::testing::Create(t, {Scalar("write_key", "")}).ok());
}

}  // namespace
}  // namespace sy::destinations

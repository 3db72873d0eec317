#include "http/basic_auth.h"

#include <gtest/gtest.h>

namespace sy::http {
namespace {

TEST(BasicAuthorization, IsBasicAndBase64OfUserColonPassword) {
  EXPECT_EQ(BasicAuthorization("wk", ""), "Basic d2s6");
  EXPECT_EQ(BasicAuthorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

}  // namespace
}  // namespace sy::http

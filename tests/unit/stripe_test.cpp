// Stripe webhook verification and event mapping (colony::billing).
#include <catch2/catch.hpp>

#include "colony/adapters/billing.hpp"

using namespace colony::adapters::billing;

namespace {
constexpr std::int64_t now = 1'800'000'000;
const std::string secret = "whsec_test_secret";
const std::string body = R"({"id":"evt_1","type":"invoice.paid","data":{"object":{"customer":"cus_1"}}})";

std::string header(std::int64_t t, const std::string& sig) { return "t=" + std::to_string(t) + ",v1=" + sig; }
} // namespace

TEST_CASE("a Stripe signature verifies over t.body with the secret") {
  // Known answer, computed independently: printf '%s' "0." | openssl dgst -sha256 -hmac key
  CHECK(stripe_v1("key", 0, "") == "85841b4efc3cd7776c3c8f9b7cca9e281c550e5d19889d78e9e669c6337f000d");
  auto good = stripe_v1(secret, now, body);
  CHECK_FALSE(verify_stripe_signature(header(now, good), body, secret, now, 300));
  // Any matching v1 is accepted (secret rotation sends two).
  CHECK_FALSE(
    verify_stripe_signature("t=" + std::to_string(now) + ",v1=" + std::string(64, '0') + ",v1=" + good + ",v0=ignored",
                            body, secret, now, 300));
}

TEST_CASE("tampered, expired, future, malformed or missing signatures are refused") {
  auto good = stripe_v1(secret, now, body);
  CHECK(verify_stripe_signature(header(now, good), body + " ", secret, now, 300));  // body changed
  CHECK(verify_stripe_signature(header(now, good), body, "whsec_other", now, 300)); // other secret
  CHECK(verify_stripe_signature(header(now - 301, stripe_v1(secret, now - 301, body)), body, secret, now, 300));
  CHECK(verify_stripe_signature(header(now + 301, stripe_v1(secret, now + 301, body)), body, secret, now, 300));
  CHECK_FALSE(verify_stripe_signature(header(now - 299, stripe_v1(secret, now - 299, body)), body, secret, now, 300));
  CHECK(verify_stripe_signature(header(now + 1, good), body, secret, now, 300)); // t moved
  CHECK(*verify_stripe_signature("", body, secret, now, 300) == "no Stripe-Signature header");
  CHECK(verify_stripe_signature("v1=" + good, body, secret, now, 300));               // no t
  CHECK(verify_stripe_signature("t=" + std::to_string(now), body, secret, now, 300)); // no v1
  CHECK(verify_stripe_signature("t=abc,v1=" + good, body, secret, now, 300));
  CHECK(verify_stripe_signature(header(now, good.substr(0, 63)), body, secret, now, 300)); // short
}

TEST_CASE("Stripe events map to billing changes") {
  std::string err;
  auto sub = parse_stripe_event(
    R"({"id":"evt_2","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","customer":"cus_1",
        "status":"active","metadata":{"tenant_id":"t-1"},"items":{"data":[{"price":{"lookup_key":"pro"}}]}}}})",
    err);
  REQUIRE(sub);
  REQUIRE(sub->change);
  CHECK(sub->change->kind() == "subscription_active");
  CHECK(sub->change->plan() == "pro");
  CHECK(sub->change->subscription_id() == "sub_1");
  CHECK(sub->tenant_id == "t-1");
  CHECK(sub->customer_id == "cus_1");

  auto meta_plan = parse_stripe_event(
    R"({"id":"e","type":"customer.subscription.created","data":{"object":{"status":"trialing","metadata":{"plan":"starter"}}}})",
    err);
  REQUIRE(meta_plan->change);
  CHECK(meta_plan->change->plan() == "starter");

  auto past_due = parse_stripe_event(
    R"({"id":"e","type":"customer.subscription.updated","data":{"object":{"status":"past_due"}}})", err);
  REQUIRE(past_due);
  CHECK_FALSE(past_due->change);

  CHECK(parse_stripe_event(R"({"id":"e","type":"invoice.payment_failed","data":{"object":{"customer":"c"}}})", err)
          ->change->kind() == "payment_failed");
  CHECK(parse_stripe_event(R"({"id":"e","type":"invoice.paid","data":{"object":{}}})", err)->change->kind() == "paid");
  CHECK(parse_stripe_event(R"({"id":"e","type":"customer.subscription.deleted","data":{"object":{}}})", err)
          ->change->kind() == "subscription_deleted");
  auto other = parse_stripe_event(R"({"id":"e","type":"charge.refunded","data":{"object":{}}})", err);
  REQUIRE(other);
  CHECK_FALSE(other->change);
  CHECK_FALSE(parse_stripe_event("[]", err));
  CHECK_FALSE(parse_stripe_event(R"({"id":"e","type":"invoice.paid"})", err));
  CHECK_FALSE(parse_stripe_event("{", err));
}

// Token buckets with an injected clock.
#include <catch2/catch.hpp>

#include "colony/actors/tenant/rate_limiter.hpp"

using colony::actors::rate_limiter;
using namespace std::chrono_literals;

TEST_CASE("a bucket gives its burst at once, then its rate, and says when to come back") {
  rate_limiter rl;
  auto t0 = rate_limiter::clock::time_point{} + 1h;
  for (int i = 0; i < 10; ++i) {
    auto r = rl.take("k", 5, 10, t0);
    REQUIRE(r.allowed);
    CHECK(r.remaining == 9 - i);
  }
  auto refused = rl.take("k", 5, 10, t0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.remaining == 0);
  CHECK(refused.retry_after_s == 1);
  CHECK(refused.reset_s == 2);                    // 10 tokens at 5/s
  CHECK(rl.take("k", 5, 10, t0 + 200ms).allowed); // one token refilled
  CHECK_FALSE(rl.take("k", 5, 10, t0 + 200ms).allowed);
  CHECK(rl.take("other", 5, 10, t0).allowed); // buckets are per key
  auto later = rl.take("k", 5, 10, t0 + 1h);  // refills up to the burst, no more
  CHECK(later.remaining == 9);
  CHECK(rl.take("slow", 0.5, 1, t0).allowed);
  CHECK(rl.take("slow", 0.5, 1, t0).retry_after_s == 2);
}

TEST_CASE("memory stays bounded: full buckets are forgotten first") {
  rate_limiter rl{4};
  auto t0 = rate_limiter::clock::time_point{} + 1h;
  for (int i = 0; i < 1000; ++i)
    rl.take("key-" + std::to_string(i), 100, 100, t0 + std::chrono::milliseconds(i * 100));
  // A busy key that was just drained survives the sweeps of idle ones (a
  // forgotten bucket would come back full and let it through).
  for (int i = 0; i < 5; ++i)
    rl.take("busy", 0.001, 5, t0 + 200s);
  auto t = t0 + 200s;
  for (int i = 0; i < 200; ++i, t += 100ms) // each is full again by the next one's sweep
    rl.take("new-" + std::to_string(i), 10, 5, t);
  CHECK_FALSE(rl.take("busy", 0.001, 5, t).allowed);
}

TEST_CASE("a token given back can be taken again, never beyond the burst") {
  rate_limiter rl;
  auto t0 = rate_limiter::clock::time_point{} + 1h;
  CHECK(rl.take("k", 1, 2, t0).allowed);
  CHECK(rl.take("k", 1, 2, t0).allowed);
  CHECK_FALSE(rl.take("k", 1, 2, t0).allowed);
  rl.give_back("k");
  CHECK(rl.take("k", 1, 2, t0).allowed);
  CHECK_FALSE(rl.take("k", 1, 2, t0).allowed);
  rl.give_back("k");
  rl.give_back("k");
  rl.give_back("k"); // capped at the burst
  CHECK(rl.take("k", 1, 2, t0).remaining == 1);
  CHECK(rl.take("k", 1, 2, t0).remaining == 0);
  CHECK_FALSE(rl.take("k", 1, 2, t0).allowed);
  rl.give_back("unknown"); // no bucket: nothing happens
  CHECK(rl.take("unknown", 1, 2, t0).remaining == 1);
}

TEST_CASE("peek reads a bucket as of now without taking or creating it") {
  rate_limiter rl;
  auto t0 = rate_limiter::clock::time_point{} + 1h;
  CHECK_FALSE(rl.peek("k", t0).has_value());
  CHECK_FALSE(rl.peek("k", t0).has_value()); // still none: peeking creates nothing
  for (int i = 0; i < 4; ++i)
    rl.take("k", 2, 10, t0);
  auto l = rl.peek("k", t0);
  REQUIRE(l.has_value());
  CHECK(l->tokens == Approx(6));
  CHECK(l->rate == Approx(2));
  CHECK(l->burst == Approx(10));
  CHECK(rl.peek("k", t0 + 1s)->tokens == Approx(8));  // refilled at 2/s
  CHECK(rl.peek("k", t0 + 1h)->tokens == Approx(10)); // up to the burst
  CHECK(rl.take("k", 2, 10, t0).remaining == 5);      // peeking took nothing
}

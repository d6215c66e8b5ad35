// The JSON printer (protocol::to_json, bytes_to_json) against protobuf's own
// printer (protocol::protobuf_json): the same bytes for every colony.v1
// message type, empty and randomly filled, every Unicode code point and
// many doubles.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <random>

#include "colony/protocol/json.hpp"
#include "colony/v1/command.pb.h"
#include "colony/v1/event.pb.h"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"

using namespace colony;
namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

namespace {

std::vector<const pb::Descriptor*> v1_messages() {
  std::vector<const pb::Descriptor*> out;
  for (const auto* file : {v1::User::descriptor()->file(), v1::Tenant::descriptor()->file(),
                           v1::Event::descriptor()->file(), v1::Command::descriptor()->file()})
    for (int i = 0; i < file->message_type_count(); ++i)
      out.push_back(file->message_type(i));
  return out;
}

/// Random text: ASCII (with every character JSON escapes), and code points
/// from every UTF-8 length, some of which protobuf's printer escapes.
std::string random_text(std::mt19937_64& rng) {
  static const char* pieces[] = {"a",
                                 "Z",
                                 "0",
                                 " ",
                                 "\"",
                                 "\\",
                                 "/",
                                 "<",
                                 ">",
                                 "&",
                                 "'",
                                 "\n",
                                 "\t",
                                 "\r",
                                 "\b",
                                 "\f",
                                 "\x01",
                                 "\x1f",
                                 "\x7f",
                                 "\xc2\x80",
                                 "\xc2\xad",
                                 "\xc3\xa9",
                                 "\xd8\x80",
                                 "\xe2\x80\x8b",
                                 "\xe2\x80\xa8",
                                 "\xe2\x82\xac",
                                 "\xef\xbb\xbf",
                                 "\xef\xbf\xbd",
                                 "\xf0\x9f\x98\x80",
                                 "\xf0\x9d\x85\xb3",
                                 "\xf3\xa0\x80\x81"};
  std::string s;
  auto n = rng() % 12;
  for (std::size_t i = 0; i < n; ++i)
    s += pieces[rng() % std::size(pieces)];
  return s;
}

double random_double(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0: return static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000);
    case 1: return static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000) / 1000.0;
    case 2: return std::uniform_real_distribution<double>(-1e300, 1e300)(rng);
    default: {
      double d;
      do {
        auto bits = rng();
        std::memcpy(&d, &bits, sizeof d);
      } while (!std::isfinite(d));
      return d;
    }
  }
}

void fill(pb::Message& m, std::mt19937_64& rng, int depth);

void fill_value(pb::Value& v, std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 2 ? 4 : 6)) {
    case 0: v.set_null_value(pb::NULL_VALUE); break;
    case 1: v.set_number_value(random_double(rng)); break;
    case 2: v.set_string_value(random_text(rng)); break;
    case 3: v.set_bool_value(rng() % 2 == 0); break;
    case 4: {
      auto& fields = *v.mutable_struct_value()->mutable_fields();
      for (auto n = rng() % 4; n > 0; --n)
        fill_value(fields[random_text(rng)], rng, depth + 1);
      break;
    }
    default:
      for (auto n = rng() % 4; n > 0; --n)
        fill_value(*v.mutable_list_value()->add_values(), rng, depth + 1);
  }
}

void fill_timestamp(pb::Timestamp& t, std::mt19937_64& rng) {
  t.set_seconds(static_cast<std::int64_t>(rng() % 253402300800ULL) - 62135596800LL);
  static const int steps[] = {1, 1000, 1000000, 1000000000};
  auto step = steps[rng() % 4];
  t.set_nanos(static_cast<int>(rng() % 1000000000 / static_cast<unsigned>(step)) * (step == 1000000000 ? 0 : step));
}

/// Sets one value of field `f` (added to it if repeated).
void set_one(pb::Message& m, const FD* f, std::mt19937_64& rng, int depth) {
  const auto* r = m.GetReflection();
  bool rep = f->is_repeated();
  auto i64 = static_cast<std::int64_t>(rng());
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      rep ? r->AddInt32(&m, f, static_cast<std::int32_t>(i64)) : r->SetInt32(&m, f, static_cast<std::int32_t>(i64));
      break;
    case FD::CPPTYPE_UINT32:
      rep ? r->AddUInt32(&m, f, static_cast<std::uint32_t>(i64)) : r->SetUInt32(&m, f, static_cast<std::uint32_t>(i64));
      break;
    case FD::CPPTYPE_INT64: rep ? r->AddInt64(&m, f, i64) : r->SetInt64(&m, f, i64); break;
    case FD::CPPTYPE_UINT64: rep ? r->AddUInt64(&m, f, rng()) : r->SetUInt64(&m, f, rng()); break;
    case FD::CPPTYPE_BOOL: rep ? r->AddBool(&m, f, i64 % 2 == 0) : r->SetBool(&m, f, i64 % 2 == 0); break;
    case FD::CPPTYPE_DOUBLE:
      rep ? r->AddDouble(&m, f, random_double(rng)) : r->SetDouble(&m, f, random_double(rng));
      break;
    case FD::CPPTYPE_FLOAT: {
      auto v = static_cast<float>(random_double(rng) / 1e290);
      rep ? r->AddFloat(&m, f, v) : r->SetFloat(&m, f, v);
      break;
    }
    case FD::CPPTYPE_ENUM: {
      const auto* e =
        f->enum_type()->value(static_cast<int>(rng() % static_cast<unsigned>(f->enum_type()->value_count())));
      rep ? r->AddEnum(&m, f, e) : r->SetEnum(&m, f, e);
      break;
    }
    case FD::CPPTYPE_STRING: rep ? r->AddString(&m, f, random_text(rng)) : r->SetString(&m, f, random_text(rng)); break;
    case FD::CPPTYPE_MESSAGE: {
      auto* sub = rep ? r->AddMessage(&m, f) : r->MutableMessage(&m, f);
      if (auto* t = dynamic_cast<pb::Timestamp*>(sub))
        fill_timestamp(*t, rng);
      else if (auto* st = dynamic_cast<pb::Struct*>(sub))
        for (auto n = rng() % 5; n > 0; --n)
          fill_value((*st->mutable_fields())["k" + std::to_string(n) + random_text(rng)], rng, depth);
      else
        fill(*sub, rng, depth + 1);
      break;
    }
  }
}

void fill(pb::Message& m, std::mt19937_64& rng, int depth) {
  const auto* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (rng() % 3 == 0 || depth > 3)
      continue;
    if (f->is_map()) {
      // Distinct keys: a map holds one value per key.
      auto* r = m.GetReflection();
      for (auto n = rng() % 4; n > 0; --n) {
        auto* entry = r->AddMessage(&m, f);
        entry->GetReflection()->SetString(entry, entry->GetDescriptor()->map_key(),
                                          "k" + std::to_string(n) + random_text(rng));
        set_one(*entry, entry->GetDescriptor()->map_value(), rng, depth);
      }
    } else if (f->is_repeated()) {
      for (auto n = rng() % 4; n > 0; --n)
        set_one(m, f, rng, depth);
    } else {
      set_one(m, f, rng, depth);
    }
  }
}

} // namespace

TEST_CASE("json printer: every colony.v1 message type, empty and randomly filled, as protobuf prints it") {
  std::mt19937_64 rng{20261128};
  auto types = v1_messages();
  REQUIRE(types.size() >= 10);
  for (const auto* d : types) {
    std::unique_ptr<pb::Message> m{pb::MessageFactory::generated_factory()->GetPrototype(d)->New()};
    INFO(d->full_name());
    CHECK(protocol::to_json(*m) == protocol::protobuf_json(*m));
    for (int round = 0; round < 300; ++round) {
      m->Clear();
      fill(*m, rng, 0);
      auto expected = protocol::protobuf_json(*m);
      INFO(m->DebugString());
      REQUIRE(protocol::to_json(*m) == expected);
      REQUIRE(protocol::bytes_to_json(d->full_name(), protocol::deterministic_bytes(*m)) == expected);
    }
  }
}

TEST_CASE("json printer: well-known types at the top level as protobuf prints them") {
  std::mt19937_64 rng{3};
  for (int round = 0; round < 300; ++round) {
    pb::Value v;
    fill_value(v, rng, 0);
    REQUIRE(protocol::to_json(v) == protocol::protobuf_json(v));
    if (v.has_struct_value())
      REQUIRE(protocol::to_json(v.struct_value()) == protocol::protobuf_json(v.struct_value()));
    if (v.has_list_value())
      REQUIRE(protocol::to_json(v.list_value()) == protocol::protobuf_json(v.list_value()));
    pb::Timestamp t;
    fill_timestamp(t, rng);
    REQUIRE(protocol::to_json(t) == protocol::protobuf_json(t));
  }
  pb::Struct patch; // what a Kafka updateUser command carries
  (*patch.mutable_fields())["name"].set_string_value("Kafka");
  CHECK(protocol::to_json(patch) == R"({"name":"Kafka"})");
  CHECK(protocol::to_json(patch) == protocol::protobuf_json(patch));
}

TEST_CASE("json printer: every Unicode scalar value is escaped as protobuf escapes it") {
  auto utf8 = [](std::uint32_t cp) {
    std::string text;
    if (cp < 0x80) {
      text += static_cast<char>(cp);
    } else if (cp < 0x800) {
      text += static_cast<char>(0xc0 | (cp >> 6));
      text += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      text += static_cast<char>(0xe0 | (cp >> 12));
      text += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      text += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      text += static_cast<char>(0xf0 | (cp >> 18));
      text += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      text += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      text += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return text;
  };
  auto same = [](const std::string& text) {
    v1::User u;
    u.set_name(text);
    return protocol::to_json(u) == protocol::protobuf_json(u);
  };
  // In blocks of 4096; a block that differs is checked code point by code point.
  for (std::uint32_t block = 0; block <= 0x10ffff; block += 4096) {
    std::string text;
    for (auto cp = std::max(block, 1u); cp < block + 4096; ++cp)
      if (cp < 0xd800 || cp > 0xdfff)
        text += utf8(cp);
    if (same(text))
      continue;
    for (auto cp = std::max(block, 1u); cp < block + 4096; ++cp)
      if (cp < 0xd800 || cp > 0xdfff) {
        INFO("U+" << std::hex << cp);
        CHECK(same(utf8(cp)));
      }
  }
}

TEST_CASE("json printer: numbers in attributes as protobuf prints them") {
  std::mt19937_64 rng{7};
  v1::User u;
  auto fields = [&u]() -> auto& { return *u.mutable_attributes()->mutable_fields(); };
  for (double v : {0.0, -0.0, 1.0, 0.1, 1e21, 1e-7, 5e-324, 2.5e15, 123456789012345678.0, 1.7976931348623157e308,
                   9007199254740993.0, 0.30000000000000004})
    fields()["n" + std::to_string(fields().size())].set_number_value(v);
  CHECK(protocol::to_json(u) == protocol::protobuf_json(u));
  for (int round = 0; round < 200; ++round) {
    fields().clear();
    for (int i = 0; i < 50; ++i)
      fields()["n" + std::to_string(i)].set_number_value(random_double(rng));
    REQUIRE(protocol::to_json(u) == protocol::protobuf_json(u));
  }
}

TEST_CASE("json printer: timestamps at the edges of the calendar as protobuf prints them") {
  v1::User u;
  for (std::int64_t s : {-62135596800LL, -62135596799LL, -86401LL, -86400LL, -1LL, 0LL, 1LL, 68169600LL, 951782400LL,
                         951868799LL, 4107542400LL, 253402300799LL})
    for (int nanos : {0, 1, 999, 1000, 120000000, 999999999}) {
      u.mutable_created_at()->set_seconds(s);
      u.mutable_created_at()->set_nanos(nanos);
      INFO(s << " s " << nanos << " ns");
      CHECK(protocol::to_json(u) == protocol::protobuf_json(u));
    }
  std::mt19937_64 rng{11};
  for (int i = 0; i < 20000; ++i) {
    fill_timestamp(*u.mutable_updated_at(), rng);
    REQUIRE(protocol::to_json(u) == protocol::protobuf_json(u));
  }
}

TEST_CASE("json printer: what it does not print itself is left to protobuf's printer") {
  v1::User u;
  u.set_name("n");
  (*u.mutable_attributes()->mutable_fields())["x"].set_number_value(std::numeric_limits<double>::infinity());
  CHECK(protocol::to_json(u) ==
        protocol::protobuf_json(u));                // protobuf's answer for a non-finite number, whatever it is
  (*u.mutable_attributes()->mutable_fields())["x"]; // a Value with no kind
  CHECK(protocol::to_json(u) == protocol::protobuf_json(u));
}

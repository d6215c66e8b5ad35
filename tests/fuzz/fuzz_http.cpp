// Raw bytes -> HTTP/1.1 request (Beast's parser with the server's limits) ->
// router -> handlers -> JSON body decoding, against the real API on a real
// SQLite store. "Bearer TOKEN" in the input becomes a valid platform admin
// token, so that bodies get past authentication.
// Properties: handle() returns within 1 s (the per-input time budget), an
// answer always comes (within 10 s), its status is a valid one and never
// 500, and a JSON answer is valid JSON.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "colony/adapters/store.hpp"
#include "colony/protocol/base64url.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/log.hpp"
#include "http/api.hpp"

using namespace colony;
namespace bhttp = boost::beast::http;

namespace {

const std::string secret = "fuzz-secret-that-is-32-bytes-long!!";

struct world {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<adapters::http::api> api;
  std::string token;
  adapters::http_options opts;

  world() {
    log::init(log::format::text, log::level::error);
    sys = std::make_unique<caf::actor_system>(cfg);
    auto dir = std::filesystem::temp_directory_path() / ("colony-fuzz-http-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    adapters::store_options so;
    so.spec = "sqlite:" + (dir / "colony.db").string();
    auto store = adapters::spawn_store(*sys, so);
    caf::scoped_actor self{*sys};
    for (bool ready = false; !ready;) { // migrated before the first request, as colonyd does
      self->request(store, std::chrono::seconds(5), actors::health_atom::value)
        .receive([&](actors::store_health& h) { ready = h.ready; }, [](caf::error&) {});
      if (!ready)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    actors::entity_env env;
    env.store = store;
    auto registry = runtime::spawn_entity_registry(*sys, env, nullptr);
    adapters::jwt_options jo;
    jo.hs256_secret = secret;
    adapters::api_context ctx;
    ctx.entities = registry.router;
    ctx.store = store;
    ctx.jwt = std::make_shared<adapters::jwt_verifier>(jo);
    opts.request_timeout = std::chrono::seconds(5);
    api = std::make_unique<adapters::http::api>(*sys, opts, ctx);
    auto input = protocol::base64url_encode(R"({"alg":"HS256"})") + "." +
      protocol::base64url_encode(R"({"exp":4000000000,"sub":"fuzz","roles":["platform_admin"]})");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    token = input + "." + protocol::base64url_encode(std::string{reinterpret_cast<char*>(mac), len});
  }
};

world& the_world() {
  // Never destroyed: at exit, ~actor_system would wait for the store and the
  // registry, which nothing stops, and the process would hang after its run.
  static world* w = new world;
  return *w;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = the_world();
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(w.opts.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(w.opts.header_limit));
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    auto n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec || n == 0)
      break;
    used += n;
  }
  if (!ec && !parser.is_done())
    parser.put_eof(ec);
  if (ec || !parser.is_done())
    return 0; // the server answers 400/413/431 itself for these
  auto& req = parser.get();
  adapters::http::api_request areq;
  areq.method = std::string{req.method_string()};
  areq.target = std::string{req.target()};
  areq.content_type = std::string{req[bhttp::field::content_type]};
  areq.if_match = std::string{req[bhttp::field::if_match]};
  areq.request_id = adapters::http::pick_request_id(std::string{req["X-Request-Id"]});
  areq.traceparent = adapters::http::pick_traceparent(std::string{req["traceparent"]});
  areq.origin = std::string{req[bhttp::field::origin]};
  areq.cors_method = std::string{req[bhttp::field::access_control_request_method]};
  areq.authorization = std::string{req[bhttp::field::authorization]};
  if (areq.authorization == "Bearer TOKEN")
    areq.authorization = "Bearer " + w.token;
  areq.client_addr = "127.0.0.1";
  areq.body = req.body();
  auto answer = std::make_shared<std::promise<adapters::http::api_response>>();
  auto done = answer->get_future();
  // The time budget of one input: what handle() does on the caller's thread
  // (routing, the JSON gate, parsing; an io thread in the server) must stay
  // short, or one request holds a connection thread: a slow input is a
  // finding like a crash. (Deeply nested JSON once took minutes in
  // protobuf's parser.) libFuzzer's -timeout (run.sh) bounds the rest.
  auto started = std::chrono::steady_clock::now();
  w.api->handle(std::move(areq), [answer](adapters::http::api_response r) { answer->set_value(std::move(r)); });
  if (std::chrono::steady_clock::now() - started > std::chrono::seconds(1)) {
    std::fprintf(stderr, "slow input: handle() held the calling thread for more than 1 s\n");
    std::abort();
  }
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    std::abort(); // no answer: a hang
  auto r = done.get();
  if (r.status < 200 || r.status > 599 || r.status == 500)
    std::abort();
  if (r.content_type.find("json") != std::string::npos && !r.body.empty() && !nlohmann::json::accept(r.body))
    std::abort();
  return 0;
}

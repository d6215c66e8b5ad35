// The outgoing HTTP client of colony.http.request (docs/plugins.md): one
// actor with its own Asio thread; every exchange runs there concurrently
// with its deadline, under the SSRF rules of webhook deliveries, and its
// answer comes back to the asking plugin actor as the reply to its request.
#include <utility> // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <map>
#include <thread>

#include "colony/adapters/webhooks.hpp"
#include "http_exchange.hpp"

namespace colony::adapters {
namespace {

namespace net = boost::asio;
using namespace actors;
using done_atom = caf::atom_constant<caf::atom("httpdone")>;

struct client_state {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{net::make_work_guard(ioc)};
  net::ssl::context tls{net::ssl::context::tls_client};
  std::thread io;
  std::map<std::uint64_t, caf::response_promise> waiting;
  std::uint64_t next = 0;
  ~client_state() {
    work.reset();
    ioc.stop();
    if (io.joinable())
      io.join();
  }
  static inline const char* name = "colony.outbound-http";
};

caf::behavior client(caf::stateful_actor<client_state>* self, outbound_http_options o) {
  load_trust(self->state.tls, o.ca_file);
  self->state.io = std::thread([self] { self->state.ioc.run(); });
  return {
    [self, o](http_fetch_atom, outbound_request& r) -> caf::result<outbound_response> {
      auto url = protocol::parse_http_url(r.url);
      if (!url) {
        outbound_response bad;
        bad.error = "refused";
        return bad;
      }
      auto& st = self->state;
      auto id = ++st.next;
      auto rp = self->make_response_promise();
      st.waiting.emplace(id, rp);
      exchange_request req;
      req.method = r.method;
      req.url = *url;
      req.headers = std::move(r.headers);
      req.body = std::move(r.body);
      req.content_type.clear(); // the plugin's headers say it
      req.user_agent = "Colony-Plugins/1";
      req.timeout = r.timeout;
      req.allow_private = o.allow_private_targets;
      req.max_body = o.max_body;
      req.log_id = r.label;
      req.log_what = "plugin http request failed";
      caf::actor_addr me = self->address();
      net::post(st.ioc, [&st, req = std::move(req), me, id]() mutable {
        start_exchange(st.ioc, st.tls, std::move(req), [me, id](exchange_result x) {
          if (auto back = caf::actor_cast<caf::actor>(me)) {
            outbound_response out;
            out.status = x.status;
            out.error = std::move(x.error);
            out.headers = std::move(x.headers);
            out.body = std::move(x.body);
            caf::anon_send(back, done_atom::value, id, std::move(out));
          }
        });
      });
      return rp;
    },
    [self](done_atom, std::uint64_t id, outbound_response& out) {
      auto& w = self->state.waiting;
      if (auto it = w.find(id); it != w.end()) {
        it->second.deliver(std::move(out));
        w.erase(it);
      }
    },
    [self](stop_atom) { self->quit(); },
  };
}

} // namespace

actors::outbound_http spawn_outbound_http(caf::actor_system& sys, outbound_http_options opts) {
  return caf::actor_cast<actors::outbound_http>(sys.spawn(client, std::move(opts)));
}

} // namespace colony::adapters

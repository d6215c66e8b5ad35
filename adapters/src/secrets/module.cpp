// The secrets module: the key that seals secrets at rest (secrets-key,
// secrets-key-file), provided to the modules that seal and open them.
#include <filesystem>

#include "colony/adapters/secrets.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

class secrets_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "secrets"; }
  std::string_view title() const override { return "the secrets key"; }

  void options(runtime::option_registry& r) override {
    r.add("secrets",
          opt::secret("secrets-key",
                      "key (64 hex digits, e.g. openssl rand -hex 32) that seals secrets at rest (webhook "
                      "signing secrets); give it as COLONY_SECRETS_KEY, the same on every node of a "
                      "cluster; empty: secrets-key-file",
                      &node_config::secrets_key, [](node_config&, const std::string& v) -> std::optional<std::string> {
                        if (!v.empty() &&
                            (v.size() != 64 || v.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
                          return std::string{"must be 64 hex digits (e.g. openssl rand -hex 32)"};
                        return std::nullopt;
                      }));
    r.add("secrets",
          opt::string("secrets-key-file",
                      "file holding the secrets key when secrets-key is empty; made (random, mode 0600) if "
                      "missing; empty: <data-dir>/secrets.key",
                      &node_config::secrets_key_file));
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    try {
      if (!cfg.secrets_key.empty()) {
        node.provide(std::make_shared<const secret_box>(*secret_box::from_text(cfg.secrets_key)));
      } else {
        auto path = cfg.secrets_key_file.empty() ? (std::filesystem::path{cfg.data_dir} / "secrets.key").string()
                                                 : cfg.secrets_key_file;
        node.provide(std::make_shared<const secret_box>(secret_box::from_file(path)));
      }
    } catch (const std::exception& e) {
      throw runtime::start_error(std::string{"invalid value for secrets-key-file: "} + e.what(), 2);
    }
  }
};

} // namespace

std::unique_ptr<runtime::module> secrets_module() { return std::make_unique<secrets_module_impl>(); }

} // namespace colony::adapters

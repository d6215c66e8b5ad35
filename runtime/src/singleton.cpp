#include "colony/runtime/singleton.hpp"

namespace colony::runtime {

namespace {
class single_node final : public singleton {
public:
  bool granted(std::string_view) override { return true; }
};
} // namespace

std::shared_ptr<singleton> single_node_singleton() { return std::make_shared<single_node>(); }

bool chore_seam::granted(std::string_view chore) {
  std::shared_ptr<singleton> policy;
  {
    std::lock_guard lock{mu_};
    policy = policy_;
  }
  return policy->granted(chore);
}

std::optional<std::vector<std::int32_t>> chore_seam::shards() {
  std::shared_ptr<singleton> policy;
  {
    std::lock_guard lock{mu_};
    policy = policy_;
  }
  return policy->shards();
}

void chore_seam::use(std::shared_ptr<singleton> policy) {
  std::lock_guard lock{mu_};
  policy_ = std::move(policy);
}

} // namespace colony::runtime

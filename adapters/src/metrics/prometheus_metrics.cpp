#include "colony/adapters/prometheus_metrics.hpp"
#include "colony/actors/kinds.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace colony::adapters {
namespace {

using actors::entity_kind;

class prometheus_metrics final : public runtime::metrics {
public:
  prometheus_metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      http_requests_(prometheus::BuildCounter()
                       .Name("colony_http_requests_total")
                       .Help("HTTP requests by method, route template and status")
                       .Register(*registry_)),
      http_latency_(prometheus::BuildHistogram()
                      .Name("colony_http_request_duration_seconds")
                      .Help("HTTP request latency by method, route template and status")
                      .Register(*registry_)),
      live_(
        prometheus::BuildGauge().Name("colony_entities_live").Help("Live entity actors by kind").Register(*registry_)),
      activations_(prometheus::BuildCounter()
                     .Name("colony_entity_activations_total")
                     .Help("Entity actors activated (loaded from the store)")
                     .Register(*registry_)),
      passivations_(prometheus::BuildCounter()
                      .Name("colony_entity_passivations_total")
                      .Help("Entity actors passivated after being idle")
                      .Register(*registry_)),
      crashes_(prometheus::BuildCounter()
                 .Name("colony_actor_crashes_total")
                 .Help("Entity actors that terminated abnormally")
                 .Register(*registry_)),
      commit_latency_(prometheus::BuildHistogram()
                        .Name("colony_store_commit_duration_seconds")
                        .Help("Duration of one store transaction (a group of entity commits)")
                        .Register(*registry_)
                        .Add({},
                             prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                     0.1, 0.25, 0.5, 1, 2.5})),
      commit_batch_(prometheus::BuildHistogram()
                      .Name("colony_store_commit_batch_size")
                      .Help("Entity commits grouped into one store transaction")
                      .Register(*registry_)
                      .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
      backlog_(prometheus::BuildGauge()
                 .Name("colony_outbox_backlog_events")
                 .Help("Outbox events not yet acknowledged by Kafka (0 while the relay is off)")
                 .Register(*registry_)
                 .Add({})),
      backlog_age_(prometheus::BuildGauge()
                     .Name("colony_outbox_oldest_event_age_seconds")
                     .Help("Age of the oldest outbox event not yet acknowledged by Kafka")
                     .Register(*registry_)
                     .Add({})),
      published_(prometheus::BuildCounter()
                   .Name("colony_events_published_total")
                   .Help("Events acknowledged by Kafka and marked published")
                   .Register(*registry_)
                   .Add({})),
      brokers_up_(prometheus::BuildGauge()
                    .Name("colony_kafka_brokers_up")
                    .Help("1 while the relay reaches the Kafka brokers, else 0")
                    .Register(*registry_)
                    .Add({})) {
    for (const auto& spec : actors::builtin_kinds().all()) {
      std::map<std::string, std::string> labels{{"kind", spec.name}};
      auto i = static_cast<std::size_t>(spec.kind);
      live_by_kind_[i] = &live_.Add(labels);
      activations_by_kind_[i] = &activations_.Add(labels);
      passivations_by_kind_[i] = &passivations_.Add(labels);
      crashes_by_kind_[i] = &crashes_.Add(labels);
    }
  }

  void http_request(std::string_view method, std::string_view route, int status, double seconds) override {
    std::string key;
    key.reserve(method.size() + route.size() + 5);
    key.append(method).append(" ").append(route).append(" ").append(std::to_string(status));
    std::pair<prometheus::Counter*, prometheus::Histogram*> pair;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto it = http_series_.find(key);
      if (it == http_series_.end()) {
        std::map<std::string, std::string> labels{
          {"method", std::string{method}}, {"route", std::string{route}}, {"status", std::to_string(status)}};
        auto* c = &http_requests_.Add(labels);
        auto* h =
          &http_latency_.Add(labels,
                             prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                     0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
        it = http_series_.emplace(std::move(key), std::make_pair(c, h)).first;
      }
      pair = it->second;
    }
    pair.first->Increment();
    pair.second->Observe(seconds);
  }

  void entity_activated(entity_kind kind) override { activations_by_kind_[static_cast<int>(kind)]->Increment(); }
  void entity_passivated(entity_kind kind) override { passivations_by_kind_[static_cast<int>(kind)]->Increment(); }
  void entity_crashed(entity_kind kind) override { crashes_by_kind_[static_cast<int>(kind)]->Increment(); }
  void live_entities(entity_kind kind, std::int64_t count) override {
    live_by_kind_[static_cast<int>(kind)]->Set(static_cast<double>(count));
  }
  void store_commit(double seconds, std::size_t batch) override {
    commit_latency_.Observe(seconds);
    commit_batch_.Observe(static_cast<double>(batch));
  }

  void outbox_backlog(std::int64_t events, double oldest_age_seconds) override {
    backlog_.Set(static_cast<double>(events));
    backlog_age_.Set(oldest_age_seconds);
  }
  void events_published(std::size_t count) override { published_.Increment(static_cast<double>(count)); }
  void kafka_brokers_up(bool up) override { brokers_up_.Set(up ? 1.0 : 0.0); }

  // A module's own families, made on first use; the caller holds mtx_.
  template <class Family, class Builder>
  Family& family(std::map<std::string, Family*, std::less<>>& known, Builder build, std::string_view name,
                 std::string_view help) {
    auto& f = known.try_emplace(std::string{name}, nullptr).first->second;
    if (f == nullptr)
      f = &build().Name(std::string{name}).Help(std::string{help}).Register(*registry_);
    return *f;
  }

  void count(std::string_view name, std::string_view help, const labels& l, double by) override {
    std::lock_guard<std::mutex> guard{mtx_};
    family(counters_, prometheus::BuildCounter, name, help).Add(as_map(l)).Increment(by);
  }
  void gauge(std::string_view name, std::string_view help, const labels& l, double value) override {
    std::lock_guard<std::mutex> guard{mtx_};
    family(gauges_, prometheus::BuildGauge, name, help).Add(as_map(l)).Set(value);
  }
  void observe(std::string_view name, std::string_view help, const labels& l, double seconds) override {
    static const prometheus::Histogram::BucketBoundaries buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                 0.1,    0.25,  0.5,    1,     2.5,  5};
    std::lock_guard<std::mutex> guard{mtx_};
    family(histograms_, prometheus::BuildHistogram, name, help).Add(as_map(l), buckets).Observe(seconds);
  }

  std::string render() override {
    prometheus::TextSerializer serializer;
    return serializer.Serialize(registry_->Collect());
  }

  std::vector<sample> read(const std::vector<std::string>& families) override {
    std::vector<sample> out;
    for (const auto& f : registry_->Collect()) {
      if (std::find(families.begin(), families.end(), f.name) == families.end())
        continue;
      for (const auto& m : f.metric) {
        sample s;
        s.family = f.name;
        for (const auto& l : m.label)
          s.series_labels.emplace_back(l.name, l.value);
        switch (f.type) {
          case prometheus::MetricType::Counter: s.value = m.counter.value; break;
          case prometheus::MetricType::Gauge: s.value = m.gauge.value; break;
          case prometheus::MetricType::Histogram:
            s.value = m.histogram.sample_sum;
            s.count = m.histogram.sample_count;
            for (const auto& b : m.histogram.bucket)
              s.buckets.emplace_back(b.upper_bound, b.cumulative_count);
            break;
          default: continue;
        }
        out.push_back(std::move(s));
      }
    }
    return out;
  }

private:
  static std::map<std::string, std::string> as_map(const labels& l) { return {l.begin(), l.end()}; }

  std::map<std::string, prometheus::Family<prometheus::Counter>*, std::less<>> counters_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*, std::less<>> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*, std::less<>> histograms_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Family<prometheus::Histogram>& http_latency_;
  prometheus::Family<prometheus::Gauge>& live_;
  prometheus::Family<prometheus::Counter>& activations_;
  prometheus::Family<prometheus::Counter>& passivations_;
  prometheus::Family<prometheus::Counter>& crashes_;
  prometheus::Histogram& commit_latency_;
  prometheus::Histogram& commit_batch_;
  prometheus::Gauge& backlog_;
  prometheus::Gauge& backlog_age_;
  prometheus::Counter& published_;
  prometheus::Gauge& brokers_up_;
  prometheus::Gauge* live_by_kind_[actors::max_kinds]{};
  prometheus::Counter* activations_by_kind_[actors::max_kinds]{};
  prometheus::Counter* passivations_by_kind_[actors::max_kinds]{};
  prometheus::Counter* crashes_by_kind_[actors::max_kinds]{};
  std::mutex mtx_;
  std::map<std::string, std::pair<prometheus::Counter*, prometheus::Histogram*>> http_series_;
};

} // namespace

std::shared_ptr<runtime::metrics> make_prometheus_metrics() { return std::make_shared<prometheus_metrics>(); }

} // namespace colony::adapters

namespace colony::adapters {
namespace {

class metrics_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "metrics"; }
  void start(runtime::node_context& node) override { node.metrics = make_prometheus_metrics(); }
};

} // namespace

std::unique_ptr<runtime::module> metrics_module() { return std::make_unique<metrics_module_impl>(); }

} // namespace colony::adapters

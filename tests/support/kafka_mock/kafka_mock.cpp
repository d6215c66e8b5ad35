// colony-kafka-mock: a Kafka-protocol cluster for tests, from librdkafka's mock
// cluster (rdkafka_mock.h), listening on loopback so that external clients
// (colonyd, kcat) can connect.
//
//   colony-kafka-mock [--brokers N] [--partitions P] [--topic NAME]...
//
// Prints "bootstrap=<host:port,...>" on stdout once the brokers listen, then
// reads commands from stdin, one per line, answering "ok" or "error: ...":
//   down <broker-id|-1>   disconnect the broker(s) and refuse new connections
//   up <broker-id|-1>     accept connections again
//   topic <name> <partitions>
//   errors <api-key> <error-code> <count>
//                         the next <count> requests of that API (0 = Produce)
//                         fail with that Kafka error code
//   quit                  (or end of input) stop the cluster and exit 0
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int usage(const char* msg) {
  std::cerr << "colony-kafka-mock: " << msg
            << "\nusage: colony-kafka-mock [--brokers N] [--partitions P] [--topic NAME]...\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  int partitions = 4;
  std::vector<std::string> topics;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      return usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    if (a == "--brokers")
      brokers = std::atoi(v.c_str());
    else if (a == "--partitions")
      partitions = std::atoi(v.c_str());
    else if (a == "--topic")
      topics.push_back(v);
    else
      return usage(("unknown option " + a).c_str());
  }
  if (brokers < 1 || brokers > 9 || partitions < 1 || partitions > 64)
    return usage("--brokers must be 1..9 and --partitions 1..64");

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The mock cluster lives inside a client handle; this one never produces.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::cerr << "colony-kafka-mock: " << err << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::cerr << "colony-kafka-mock: cannot create the mock cluster\n";
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const auto& t : topics)
    rd_kafka_mock_topic_create(mc, t.c_str(), partitions, brokers < 3 ? brokers : 3);
  std::cout << "bootstrap=" << rd_kafka_mock_cluster_bootstraps(mc) << std::endl;

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cmd == "quit") {
      break;
    } else if (cmd == "down" || cmd == "up") {
      int id = -1;
      in >> id;
      rc = cmd == "down" ? rd_kafka_mock_broker_set_down(mc, id) : rd_kafka_mock_broker_set_up(mc, id);
    } else if (cmd == "topic") {
      std::string name;
      int p = partitions;
      in >> name >> p;
      rc = rd_kafka_mock_topic_create(mc, name.c_str(), p, brokers < 3 ? brokers : 3);
    } else if (cmd == "errors") {
      int api = -1, code = 0;
      std::size_t count = 0;
      in >> api >> code >> count;
      if (api < 0 || count == 0 || count > 1000) {
        std::cout << "error: usage: errors <api-key> <error-code> <count 1..1000>" << std::endl;
        continue;
      }
      std::vector<rd_kafka_resp_err_t> errs(count, static_cast<rd_kafka_resp_err_t>(code));
      rd_kafka_mock_push_request_errors_array(mc, static_cast<std::int16_t>(api), count, errs.data());
    } else if (cmd.empty()) {
      continue;
    } else {
      std::cout << "error: unknown command " << cmd << std::endl;
      continue;
    }
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
      std::cout << "ok" << std::endl;
    else
      std::cout << "error: " << rd_kafka_err2str(rc) << std::endl;
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}

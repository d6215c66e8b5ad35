// Secrets at rest: sealed values open under their key only, tampering is
// detected, values from before sealing pass, key files are made once.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include "colony/adapters/secrets.hpp"

using colony::adapters::secret_box;

TEST_CASE("secret_box: seal and open, fresh nonce each time, wrong key and tampering refused") {
  auto box = secret_box::from_text(std::string(64, 'a'));
  REQUIRE(box);
  auto other = secret_box::from_text(std::string(64, 'b'));
  REQUIRE(other);
  std::string plain = "whsec_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto a = box->seal(plain), b = box->seal(plain);
  CHECK(a.rfind("enc:v1:", 0) == 0);
  CHECK(a != b);
  CHECK(a.find("whsec_") == std::string::npos);
  CHECK(box->open(a) == plain);
  CHECK(box->open(b) == plain);
  CHECK_FALSE(other->open(a));
  auto tampered = a;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  CHECK_FALSE(box->open(tampered));
  CHECK_FALSE(box->open("enc:v1:short"));
  CHECK(box->open("whsec_stored_before_sealing") == "whsec_stored_before_sealing");
  CHECK(box->open(box->seal("")) == "");
  CHECK_FALSE(secret_box::from_text("not a key"));
  CHECK_FALSE(secret_box::from_text(std::string(63, 'a')));
}

TEST_CASE("secret_box: a key file is made once, mode 0600, and read back") {
  auto dir = std::filesystem::temp_directory_path() / ("colony-secrets-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto path = (dir / "secrets.key").string();
  auto first = secret_box::from_file(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto sealed = first.seal("s");
  auto again = secret_box::from_file(path);
  CHECK(again.open(sealed) == "s");
  std::ofstream{dir / "bad.key"} << "garbage";
  CHECK_THROWS(secret_box::from_file((dir / "bad.key").string()));
  std::filesystem::remove_all(dir);
}

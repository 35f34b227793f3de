// Test fixture: Debian's docker-registry on 127.0.0.1:<free port> with a temp config, plain
// HTTP or TLS (self-signed CA generated here) with htpasswd basic auth. Killed on destruction.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/images/http.h"
#include "tests/unit/images/test_util.h"

namespace shoal::runtime::images::testing {

inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline int Run(const std::string& cmd) { return std::system(cmd.c_str()); }

class LocalRegistry {
 public:
  struct Options {
    bool tls = false;
    std::string user;  // non-empty: htpasswd basic auth (or the token service's user)
    std::string password;
    bool token = false;  // bearer-token auth via tests/priv/images/token_server.py
  };

  explicit LocalRegistry(Options o) : opts_(o) {
    port_ = FreePort();
    host_ = "127.0.0.1:" + std::to_string(port_);
    std::string d = dir_.path();
    std::string cfg =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " + d +
        "/data\n  delete:\n    enabled: true\nhttp:\n  addr: " + host_ + "\n";
    if (opts_.tls) {
      // CA, then a server certificate for IP 127.0.0.1 signed by it.
      EXPECT_EQ(Run("cd " + d +
                    " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=shoaltest-ca"
                    " -keyout ca.key -out ca.crt >/dev/null 2>&1"
                    " && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1"
                    " -keyout server.key -out server.csr >/dev/null 2>&1"
                    " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"
                    " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
                    " -days 1 -extfile ext.cnf -out server.crt >/dev/null 2>&1"),
                0);
      cfg += "  tls:\n    certificate: " + d + "/server.crt\n    key: " + d + "/server.key\n";
    }
    if (opts_.token) {
      StartTokenServer();
      cfg += "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(token_port_) +
             "/token\n    service: shoaltest-registry\n    issuer: shoaltest-issuer\n"
             "    rootcertbundle: " +
             d + "/token.crt\n";
    } else if (!opts_.user.empty()) {
      EXPECT_EQ(Run("htpasswd -Bbn '" + opts_.user + "' '" + opts_.password + "' > " + d +
                    "/htpasswd 2>/dev/null"),
                0);
      cfg += "auth:\n  htpasswd:\n    realm: shoaltest\n    path: " + d + "/htpasswd\n";
    }
    Spit(d + "/config.yml", cfg);
    Start();
  }

  ~LocalRegistry() {
    Kill();
    if (token_pid_ > 0) {
      ::kill(token_pid_, SIGKILL);
      ::waitpid(token_pid_, nullptr, 0);
    }
  }

  void StartTokenServer() {
    std::string d = dir_.path();
    EXPECT_EQ(Run("cd " + d +
                  " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=shoaltest-token"
                  " -keyout token.key -out token.crt >/dev/null 2>&1"),
              0);
    // An absolute path from CMake: __FILE__ may be relative (ccache's base_dir rewriting).
    std::string script = SHOAL_IMAGES_TEST_DIR "/token_server.py";
    token_pid_ = ::fork();
    if (token_pid_ == 0) {
      int log = ::open((d + "/token.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execlp("python3", "python3", script.c_str(), (d + "/token.port").c_str(),
               (d + "/token.key").c_str(), (d + "/token.crt").c_str(), "shoaltest-issuer",
               "shoaltest-registry", opts_.user.c_str(), opts_.password.c_str(), nullptr);
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string port = Slurp(d + "/token.port");
      if (!port.empty()) {
        token_port_ = std::stoi(port);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "token server did not start: " << Slurp(d + "/token.log");
  }

  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      int log = ::open((dir_.path() + "/registry.log").c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execlp("docker-registry", "docker-registry", "serve", (dir_.path() + "/config.yml").c_str(),
               nullptr);
      ::_exit(127);
    }
    // Poll /v2/ until it answers (200, or 401 with auth), with a deadline.
    HttpOptions ho;
    ho.ca_file = opts_.tls ? ca_file() : "";
    ho.connect_timeout_ms = 500;
    HttpClient http(ho);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpRequest req;
      req.url = url("/v2/");
      auto r = http.Do(req);
      if (r.ok() && (r->status == 200 || r->status == 401)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "registry did not come up: " << Slurp(dir_.path() + "/registry.log");
  }

  void Kill() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  const std::string& host() const { return host_; }
  std::string ca_file() const { return dir_.path() + "/ca.crt"; }
  std::string url(const std::string& path) const {
    return (opts_.tls ? "https://" : "http://") + host_ + path;
  }
  // Path of a blob's data file in the registry's filesystem storage.
  std::string BlobFile(const std::string& hex) const {
    return dir_.path() + "/data/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex +
           "/data";
  }

 private:
  Options opts_;
  TempDir dir_;
  int port_ = 0;
  std::string host_;
  pid_t pid_ = -1;
  pid_t token_pid_ = -1;
  int token_port_ = 0;
};

}  // namespace shoal::runtime::images::testing

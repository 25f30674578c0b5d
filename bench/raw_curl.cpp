// Baseline for bench/client.py: the same POST done with bare libcurl (multi interface, connection
// reuse), no JSON parsing. Usage: raw_curl URL BODY_FILE REQUESTS CONCURRENCY -> prints latencies
// (us), one a line. With REQUESTS "-" it serves blocks: it reads a call count a line from stdin,
// makes that many calls (its connections kept warm between blocks) and prints their latencies
// followed by a line "end", until stdin closes (bench/client.py interleaves its blocks with the
// other clients').
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

static size_t sink(char*, size_t s, size_t n, void*) { return s * n; }

namespace {

using Clock = std::chrono::steady_clock;

class Raw {
 public:
  Raw(std::string url, std::string body, int conc)
      : url_(std::move(url)), body_(std::move(body)), slots_(conc) {
    multi_ = curl_multi_init();
    hdr_ = curl_slist_append(nullptr, "Content-Type: application/json");
    hdr_ = curl_slist_append(hdr_, "Expect:");
    for (auto& s : slots_) s.e = curl_easy_init();
  }

  // `total` calls, `conc` at a time; their latencies in µs.
  std::vector<double> run(int total) {
    int started = 0, done = 0;
    std::vector<double> lat;
    lat.reserve(total);
    auto start = [&](Slot& s) {
      curl_easy_setopt(s.e, CURLOPT_URL, url_.c_str());
      curl_easy_setopt(s.e, CURLOPT_POSTFIELDS, body_.c_str());
      curl_easy_setopt(s.e, CURLOPT_HTTPHEADER, hdr_);
      curl_easy_setopt(s.e, CURLOPT_WRITEFUNCTION, sink);
      curl_easy_setopt(s.e, CURLOPT_PRIVATE, &s);
      s.t0 = Clock::now();
      curl_multi_add_handle(multi_, s.e);
      ++started;
    };
    for (auto& s : slots_) {
      if (started < total) start(s);
    }
    while (done < total) {
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        Slot* s = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&s));
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s->t0).count());
        curl_multi_remove_handle(multi_, s->e);
        ++done;
        if (started < total) start(*s);
      }
      if (done < total) curl_multi_poll(multi_, nullptr, 0, 100, nullptr);
    }
    return lat;
  }

 private:
  struct Slot {
    CURL* e = nullptr;
    Clock::time_point t0;
  };
  std::string url_, body_;
  std::vector<Slot> slots_;
  CURLM* multi_ = nullptr;
  curl_slist* hdr_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  std::ifstream f(argv[2]);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string blocks = argv[3];
  const int conc = std::stoi(argv[4]);
  if (conc < 1) return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Raw raw(argv[1], ss.str(), conc);
  if (blocks != "-") {
    for (double v : raw.run(std::stoi(blocks))) std::printf("%.1f\n", v);
    return 0;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    const int n = std::stoi(line);
    for (double v : raw.run(n)) std::printf("%.1f\n", v);
    std::printf("end\n");
    std::fflush(stdout);
  }
  return 0;
}

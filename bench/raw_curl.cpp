// Baseline for bench/client.py: the same POST done with bare libcurl (multi interface, connection
// reuse), no JSON parsing. Usage: raw_curl URL BODY_FILE REQUESTS CONCURRENCY -> prints latencies (us).
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static size_t sink(char*, size_t s, size_t n, void*) { return s * n; }

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const std::string url = argv[1];
  std::ifstream f(argv[2]);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string body = ss.str();
  const int total = std::stoi(argv[3]), conc = std::stoi(argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_slist* hdr = curl_slist_append(nullptr, "Content-Type: application/json");
  hdr = curl_slist_append(hdr, "Expect:");
  using Clock = std::chrono::steady_clock;
  struct Slot { CURL* e; Clock::time_point t0; };
  std::vector<Slot> slots(conc);
  int started = 0, done = 0;
  std::vector<double> lat;
  auto start = [&](Slot& s) {
    curl_easy_setopt(s.e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(s.e, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(s.e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(s.e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(s.e, CURLOPT_PRIVATE, &s);
    s.t0 = Clock::now();
    curl_multi_add_handle(multi, s.e);
    ++started;
  };
  for (auto& s : slots) {
    s.e = curl_easy_init();
    if (started < total) start(s);
  }
  while (done < total) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Slot* s = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&s));
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s->t0).count());
      curl_multi_remove_handle(multi, s->e);
      ++done;
      if (started < total) start(*s);
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  for (double v : lat) std::printf("%.1f\n", v);
  return 0;
}

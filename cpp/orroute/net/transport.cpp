#include "orroute/net/transport.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <queue>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/error.h"

namespace orroute {

namespace {

using Clock = std::chrono::steady_clock;

// The transport whose loop runs on this thread (null elsewhere): its own commands need no wake-up.
thread_local const void* t_running_loop = nullptr;

// now + `delay`, saturated: a delay past what the clock counts (a post with
// milliseconds::max(): `now + delay` in nanoseconds overflowed, undefined behaviour) is "never"
// (time_point::max()), a negative one "now".
Clock::time_point after(std::chrono::milliseconds delay) {
  const Clock::time_point now = Clock::now();
  if (delay <= std::chrono::milliseconds::zero()) return now;
  if (delay >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now)) {
    return Clock::time_point::max();
  }
  return now + delay;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// "HTTP/1.1 200 OK", "HTTP/2 204": a status line whose code is 2xx (anything else, or a line
// that does not parse, is not).
bool is_2xx_status_line(std::string_view line) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.size() < space + 4) return false;
  const std::string_view code = line.substr(space + 1, 3);
  return code[0] == '2' && code[1] >= '0' && code[1] <= '9' && code[2] >= '0' && code[2] <= '9' &&
         (line.size() == space + 4 || line[space + 4] == ' ' || line[space + 4] == '\r' || line[space + 4] == '\n');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// How many idle connections the multi handle keeps for reuse. libcurl's default is four per easy
// handle *currently added*: when replies come back faster than the caller sends the next requests,
// few transfers are in flight at the moment one ends and its connection is closed, so the next
// request pays a new connection (with the manager at concurrency 64 on HTTP/1.1: 188 connections
// opened beyond the 64 needed over 13,000 calls). The pool is sized by the limits instead.
long idle_connections_kept(const TransportOptions& options) {
  constexpr long kDefault = 256;  // plain HTTP/1.1 needs one per concurrent call; HTTP/2 shares one
  if (options.max_total_connections > 0) return static_cast<long>(options.max_total_connections);
  return kDefault;
}

// The proxy variables of the environment, read once when the transport is made. Left unset,
// libcurl reads them itself on every transfer (curl_getenv of no_proxy, NO_PROXY, <scheme>_proxy
// and all_proxy, ALL_PROXY: five scans of the environment and their copies, ~8k instructions of
// a chat call), so each transfer is given them as CURLOPT_NOPROXY and CURLOPT_PROXY instead,
// chosen by libcurl 7.88's own rules (url.c: create_conn_helper_init_proxy, detect_proxy): the
// first of no_proxy and NO_PROXY; for http only http_proxy (libcurl never reads HTTP_PROXY, which
// a CGI request's "Proxy:" header can set), for https https_proxy then HTTPS_PROXY; then
// all_proxy, ALL_PROXY. A variable set to an empty text counts as unset, as in curl_getenv. An
// empty CURLOPT_PROXY means no proxy; an empty CURLOPT_NOPROXY excludes no host. libcurl uses a
// proxy given so exactly as one it found in the environment (the same parse and no-proxy test).
struct ProxyEnvironment {
  std::string no_proxy;
  std::string http;
  std::string https;

  static ProxyEnvironment read() {
    ProxyEnvironment env;
    env.no_proxy = first_set({"no_proxy", "NO_PROXY"});
    const std::string all = first_set({"all_proxy", "ALL_PROXY"});
    env.http = first_set({"http_proxy"});
    if (env.http.empty()) env.http = all;
    env.https = first_set({"https_proxy", "HTTPS_PROXY"});
    if (env.https.empty()) env.https = all;
    return env;
  }

 private:
  static std::string first_set(std::initializer_list<const char*> names) {
    for (const char* name : names) {
      const char* value = std::getenv(name);
      if (value != nullptr && *value != '\0') return value;
    }
    return {};
  }
};

}  // namespace

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void HeaderLines::append(std::string& text, std::string_view name, std::string_view value) {
  text += name;
  if (value.empty()) {
    text += ';';
  } else {
    text += ": ";
    text += value;
  }
  text += '\0';
}

HeaderLines::HeaderLines(const Headers& headers) {
  size_t total = 0;
  for (const auto& [k, v] : headers.fields) total += bytes(k, v);
  text_.reserve(total);
  for (const auto& [k, v] : headers.fields) {
    offsets_.push_back(text_.size());
    append(text_, k, v);
  }
}

const char* to_string(TimeoutKind kind) {
  switch (kind) {
    case TimeoutKind::kNone: return "none";
    case TimeoutKind::kConnect: return "connect";
    case TimeoutKind::kFirstByte: return "first byte";
    case TimeoutKind::kIdle: return "idle";
    case TimeoutKind::kTotal: return "total";
  }
  return "?";
}

struct Transport::Impl {
  // Which CURLOPT_PROXY a handle holds: null (libcurl reads the environment at each transfer, as
  // it does for a scheme other than HTTP(S)), or the environment's proxy for http or for https as
  // read when the transport was made (ProxyEnvironment).
  enum class ProxySlot : uint8_t { kEnvironment, kHttp, kHttps };

  struct Transfer {
    Impl* impl = nullptr;
    TransferId id = 0;
    CURL* easy = nullptr;
    ProxySlot easy_proxy = ProxySlot::kEnvironment;  // the CURLOPT_PROXY `easy` holds
    std::shared_ptr<CURLU> url;  // CURLOPT_CURLU's parsed URL (libcurl reads it when it connects)
    HttpRequest request;
    // CURLOPT_HTTPHEADER's list: nodes pointing into header_text (this request's own lines) and
    // into request.shared (lines shared with other requests).
    std::string header_text;
    std::vector<curl_slist> header_nodes;
    std::shared_ptr<Sink> sink;
    Headers headers;
    bool skip_fields = false;  // this head's fields are not kept (a 2xx, !request.keep_ok_headers)
    bool head_done = false;
    bool paused = false;
    bool aborted = false;
    bool got_body = false;
    Clock::time_point started;
    Clock::time_point last_activity;
    char errbuf[CURL_ERROR_SIZE] = {0};
  };

  struct Command {
    enum Kind { kSubmit, kCancel, kResume, kPost } kind;
    TransferId id = 0;
    std::unique_ptr<Transfer> transfer;
    std::function<void()> fn;
    Clock::time_point due;
  };

  struct Timer {
    Clock::time_point due;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Timer& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };

  static std::shared_ptr<Impl> start(const TransportOptions& options, const ProxyEnvironment& proxies);

  ~Impl() {
    for (const auto& [e, slot] : easy_pool) curl_easy_cleanup(e);
    if (multi != nullptr) curl_multi_cleanup(multi);  // may still tell on_socket to forget sockets
    if (wake_fd >= 0) close(wake_fd);
    if (epoll_fd >= 0) close(epoll_fd);
  }

  TransportOptions options;
  ProxyEnvironment proxies;
  CURLM* multi = nullptr;
  // libcurl's multi-socket API: libcurl names the sockets it waits on (on_socket) and this epoll
  // set watches them, so each turn acts on the sockets that are ready and nothing else. With
  // curl_multi_perform libcurl does not know which are, and checks every running transfer's
  // socket with a poll() of its own on every pass (6-11 syscalls per call at 64 in flight).
  // The wake-up eventfd is in the set too: a command queued from another thread, or stopping.
  int epoll_fd = -1;
  int wake_fd = -1;
  // Readiness read by the last wait (wait_for_io), acted on by the next work(): the first
  // ready_count entries (an array: a vector resized to 64 zero-filled them on every turn).
  std::array<epoll_event, 64> ready{};
  size_t ready_count = 0;
  std::thread thread;
  std::mutex mu;
  std::vector<Command> commands;  // guarded by mu
  bool stopping = false;          // guarded by mu
  // The loop thread waits on park_cv, outside libcurl, while it has nothing to do or a Driver holds
  // the loop (guarded by mu, as is caller_driving).
  std::condition_variable park_cv;
  bool loop_parked = false;
  bool caller_driving = false;
  std::atomic<TransferId> next_id{1};
  std::atomic<int64_t> active_count{0};
  std::atomic<int64_t> wakeups{0};  // wake-ups of the loop thread (push, a Driver letting go)
  std::atomic<int64_t> drives{0};   // Drivers that held the loop
  std::atomic<int64_t> lends{0};    // leases given to an event loop's LoopWatch
  std::atomic<int64_t> turns{0};    // work() runs
  // The event loop the loop is lent to between its turns (guarded by mu); the loop thread stays
  // parked while it is set, as while a Driver holds the loop.
  std::shared_ptr<LoopWatch> lent_to;
  std::weak_ptr<Impl> self;  // what a LoopWatch holds while lent

  // Loop-thread state.
  // The connection sockets libcurl opened (on_open) and has not closed (on_close), each with the
  // events epoll_fd watches it for (0: not in the set) and whether libcurl waits on it now. A
  // connection's socket stays in the set while it idles in the pool between transfers: libcurl
  // says CURL_POLL_REMOVE when a transfer ends and asks for the same socket again when the next
  // one reuses the connection (a DEL, then a MOD that fails and an ADD: 3 syscalls a call, all
  // saved). An event on one that libcurl no longer waits on (the server closed the idle
  // connection: readable, level-triggered, for ever) takes it out then, once. Since each such
  // socket is closed through on_close, a number here is always the socket libcurl knows by it
  // (a closed number reused by a new socket starts afresh). Other sockets libcurl waits on (a
  // resolver's) are added and removed as libcurl says.
  struct ConnSocket {
    uint32_t in_set = 0;
    bool wanted = false;
  };
  std::unordered_map<curl_socket_t, ConnSocket> conn_sockets;
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers;
  uint64_t timer_seq = 0;
  std::vector<std::pair<CURL*, ProxySlot>> easy_pool;  // each with the CURLOPT_PROXY it holds
  Clock::time_point last_deadline_scan;

  // Queues `cmd` and wakes the loop only when it may be asleep. A wake-up is a syscall that, on an
  // idle core, costs as much as a small call's whole CPU (an inter-processor interrupt): when the
  // queue was already non-empty, the push that made it so woke the loop (or came from the loop,
  // which reads the queue before it polls), so this command rides along; and the loop thread
  // itself never needs waking.
  // A parked loop thread is woken through its condition variable, a loop in libcurl's poll (the
  // loop thread's or a Driver's) through the wake-up eventfd in its epoll set.
  // A command from outside the loop ends a lease: the loop thread takes over.
  void push(Command cmd) {
    bool wake;
    bool unpark;
    {
      std::lock_guard<std::mutex> lock(mu);
      const bool from_loop = t_running_loop == this;
      const bool revoked = !from_loop && revoke_lease_locked();
      wake = (commands.empty() && !from_loop) || revoked;
      unpark = loop_parked && !caller_driving;
      commands.push_back(std::move(cmd));
    }
    if (!wake) return;
    wakeups.fetch_add(1, std::memory_order_relaxed);
    if (unpark) {
      park_cv.notify_one();
    } else {
      wake_loop();
    }
  }

  // Ends a wait in wait_for_io() (the loop thread's or a Driver's) at once.
  void wake_loop() const {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(wake_fd, &one, sizeof one);
  }

  // CURLMOPT_SOCKETFUNCTION: libcurl starts, changes or stops waiting on socket `s`. A
  // connection's socket (conn_sockets) stays in the set when libcurl stops waiting on it, and
  // costs no syscall when asked for the events it is already watched for.
  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* impl = static_cast<Impl*>(userp);
    const auto conn = impl->conn_sockets.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (conn != impl->conn_sockets.end()) {
        conn->second.wanted = false;  // idle in the pool: left in the set (act_on_sockets)
      } else {
        epoll_ctl(impl->epoll_fd, EPOLL_CTL_DEL, s, nullptr);  // fails harmlessly if already closed
      }
      return 0;
    }
    const uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (conn == impl->conn_sockets.end()) {
      impl->watch_socket(s, events, /*in_set=*/true);
      return 0;
    }
    conn->second.wanted = true;
    if (conn->second.in_set == events) return 0;
    conn->second.in_set = impl->watch_socket(s, events, conn->second.in_set != 0) ? events : 0;
    return 0;
  }

  // Watches `s` for `events` in the set (MOD when `in_set`, else ADD, each falling back on the
  // other). False when neither took it.
  bool watch_socket(curl_socket_t s, uint32_t events, bool in_set) const {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = s;
    const int op = in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_fd, op, s, &ev) == 0) return true;
    if (op == EPOLL_CTL_MOD && errno == ENOENT) return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s, &ev) == 0;
    if (op == EPOLL_CTL_ADD && errno == EEXIST) return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, s, &ev) == 0;
    return false;
  }

  // CURLOPT_OPENSOCKETFUNCTION: the socket of a new connection, made as libcurl makes it, known
  // from now on (conn_sockets) until on_close. A number closed without on_close and reused would
  // come here afresh too.
  static curl_socket_t on_open(void* clientp, curlsocktype purpose, curl_sockaddr* addr) {
    auto* impl = static_cast<Impl*>(clientp);
    const curl_socket_t s = socket(addr->family, addr->socktype, addr->protocol);
    if (s == CURL_SOCKET_BAD) return s;
    if (purpose == CURLSOCKTYPE_IPCXN) {
      impl->conn_sockets[s] = ConnSocket{};
    } else {
      impl->conn_sockets.erase(s);
    }
    return s;
  }

  // CURLOPT_CLOSESOCKETFUNCTION: libcurl closes a connection's socket. Taken out of the set first:
  // closing it does that only when no other descriptor shares the socket (a forked child's copy),
  // and a registration left behind would report the old socket's events under a number that may
  // name a new one.
  static int on_close(void* clientp, curl_socket_t s) {
    auto* impl = static_cast<Impl*>(clientp);
    if (const auto conn = impl->conn_sockets.find(s); conn != impl->conn_sockets.end()) {
      if (conn->second.in_set != 0) epoll_ctl(impl->epoll_fd, EPOLL_CTL_DEL, s, nullptr);
      impl->conn_sockets.erase(conn);
    }
    return close(s);
  }

  // libcurl's work for what is ready: each socket the last wait (or, with `look`, a look now)
  // found ready, then its timers when one is due (a new transfer is due at once, as is a resumed
  // one).
  void act_on_sockets(bool look) {
    if (ready_count == 0 && look) read_ready(0);
    int running = 0;
    for (size_t i = 0; i < ready_count; ++i) {
      const epoll_event& ev = ready[i];
      if (ev.data.fd == wake_fd) {
        uint64_t count = 0;
        [[maybe_unused]] const ssize_t n = read(wake_fd, &count, sizeof count);
        continue;
      }
      if (const auto conn = conn_sockets.find(ev.data.fd); conn != conn_sockets.end() && !conn->second.wanted) {
        // An idle pooled connection's socket (closed by the server, or sent something unasked):
        // out of the set, so that it cannot keep waking the loop; libcurl checks the connection
        // when it next reuses it.
        if (conn->second.in_set != 0) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, ev.data.fd, nullptr);
        conn->second.in_set = 0;
        continue;
      }
      int mask = 0;
      if (ev.events & EPOLLIN) mask |= CURL_CSELECT_IN;
      if (ev.events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (ev.events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR | CURL_CSELECT_IN;
      curl_multi_socket_action(multi, ev.data.fd, mask, &running);
    }
    ready_count = 0;
    long due_ms = -1;
    curl_multi_timeout(multi, &due_ms);
    if (due_ms == 0) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }

  static size_t on_header(char* data, size_t size, size_t n, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    const size_t len = size * n;
    std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {  // a new status line (also after a 1xx interim response)
      t->headers.fields.clear();
      t->skip_fields = !t->request.keep_ok_headers && is_2xx_status_line(line);
      return len;
    }
    if (trim(line).empty()) {
      long code = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
      if (code >= 200 && !t->head_done) {
        t->head_done = true;
        t->last_activity = Clock::now();
        try {
          t->sink->on_head(static_cast<int>(code), t->headers);
        } catch (...) {
          t->aborted = true;  // a sink that cannot take the head ends its transfer, not the thread
          return 0;
        }
      }
      return len;
    }
    if (t->skip_fields) return len;
    if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
      t->headers.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
    }
    return len;
  }

  static size_t on_write(char* data, size_t size, size_t n, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    const size_t len = size * n;
    const Clock::time_point now = Clock::now();
    if (len == 0) {
      t->last_activity = now;
      return 0;
    }
    DataAction action = DataAction::kAbort;
    try {
      action = t->sink->on_data(std::string_view(data, len));
    } catch (...) {
      action = DataAction::kAbort;  // the sink failed on these bytes: end the transfer only
    }
    if (action != DataAction::kKeepAlive) t->last_activity = now;
    switch (action) {
      case DataAction::kContinue:
      case DataAction::kKeepAlive:
        t->got_body = true;
        return len;
      case DataAction::kPause:
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
      case DataAction::kAbort:
        t->aborted = true;
        return 0;  // makes libcurl fail the transfer with CURLE_WRITE_ERROR
    }
    return 0;
  }

  // A handle from the pool, or a new one with the options every transfer shares, into `t` (easy
  // null when libcurl cannot make one). A pooled handle keeps the options of its last transfer (no
  // curl_easy_reset, which frees and re-initialises all of them): start() sets every option that
  // can differ between transfers, each time.
  void take_easy(Transfer& t) {
    if (!easy_pool.empty()) {
      std::tie(t.easy, t.easy_proxy) = easy_pool.back();
      easy_pool.pop_back();
      return;
    }
    CURL* e = curl_easy_init();
    t.easy = e;
    t.easy_proxy = ProxySlot::kEnvironment;
    if (e == nullptr) return;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_write);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::on_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
    // The same for every transfer (ProxyEnvironment): libcurl then reads no no_proxy variable.
    curl_easy_setopt(e, CURLOPT_NOPROXY, proxies.no_proxy.c_str());
    if (options.verbose) curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    if (!options.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options.ca_file.c_str());
    if (!options.ca_dir.empty()) curl_easy_setopt(e, CURLOPT_CAPATH, options.ca_dir.c_str());
  }

  void give_back_easy(const Transfer& t) {
    if (easy_pool.size() < 256) {
      easy_pool.emplace_back(t.easy, t.easy_proxy);
    } else {
      curl_easy_cleanup(t.easy);
    }
  }

  // Gives `t`'s handle the CURLOPT_PROXY of `slot`, unless it holds it already (a set copies the
  // text: an allocation, and the old one's free).
  void set_proxy(Transfer& t, ProxySlot slot) {
    if (t.easy_proxy == slot) return;
    const char* proxy = slot == ProxySlot::kHttp    ? proxies.http.c_str()
                        : slot == ProxySlot::kHttps ? proxies.https.c_str()
                                                    : nullptr;
    curl_easy_setopt(t.easy, CURLOPT_PROXY, proxy);
    t.easy_proxy = slot;
  }

  // The request URLs libcurl has parsed, for CURLOPT_CURLU. Given only the URL's text, libcurl
  // parses it on every transfer and prints it back whole through its printf to normalise it
  // (curl_url_set and curl_url_get of CURLUPART_URL: ~15k instructions of a chat call, as many
  // as parsing the reply); given a parsed handle it copies that. The last URLs transfers used
  // (a chat client sends to one or two), parsed as libcurl parses CURLOPT_URL's text; a transfer
  // holds its own until it ends, since libcurl reads it when it connects, after start().
  // Network thread only.
  static constexpr size_t kParsedUrls = 16;
  struct ParsedUrl {
    std::shared_ptr<CURLU> url;  // null when libcurl does not take the text
    ProxySlot proxy = ProxySlot::kEnvironment;
    bool pipewait = false;  // CURLOPT_PIPEWAIT
  };
  std::unordered_map<std::string, ParsedUrl> parsed_urls;

  // What a transfer to `parsed.url` takes from its scheme, once per parsed URL. Its
  // CURLOPT_PROXY: the environment's for its scheme when that is http or https (one slot for both
  // when they name the same proxy, so a handle moving between them is not set anew); otherwise
  // null, and libcurl reads the environment itself, as it always did. Whether it waits to share
  // a connection (CURLOPT_PIPEWAIT): over https only, where ALPN may give HTTP/2. Plain http is
  // HTTP/1.1 here (CURL_HTTP_VERSION_2TLS), and libcurl (7.88) learns that a new connection
  // cannot be shared only when its transfer ends: transfers started together to a host with no
  // idle connection waited for the first one's whole answer (a stream's minutes).
  void read_scheme(ParsedUrl& parsed) const {
    char* scheme = nullptr;
    if (curl_url_get(parsed.url.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == nullptr) {
      return;
    }
    if (iequals(scheme, "http")) {
      parsed.proxy = ProxySlot::kHttp;
    } else if (iequals(scheme, "https")) {
      parsed.proxy = proxies.https == proxies.http ? ProxySlot::kHttp : ProxySlot::kHttps;
      parsed.pipewait = true;
    }
    curl_free(scheme);
  }

  // `url` parsed, or null when libcurl does not take it (libcurl then parses the text itself and
  // fails the transfer as it did before), with what a transfer to it takes from its scheme.
  ParsedUrl parsed_url(const std::string& url) {
    if (auto it = parsed_urls.find(url); it != parsed_urls.end()) return it->second;
    CURLU* u = curl_url();
    if (u == nullptr) return {};
    if (curl_url_set(u, CURLUPART_URL, url.c_str(), CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
      curl_url_cleanup(u);
      return {};
    }
    ParsedUrl parsed{std::shared_ptr<CURLU>(u, curl_url_cleanup)};
    read_scheme(parsed);
    if (parsed_urls.size() >= kParsedUrls) parsed_urls.clear();  // the transfers keep theirs
    parsed_urls.emplace(url, parsed);
    return parsed;
  }

  // The options of one transfer: everything a pooled handle may hold from its last one (its
  // callbacks' data, URL, proxy, method, body, headers, timeouts) is set anew.
  void set_transfer_options(Transfer& t) {
    CURL* e = t.easy;
    const HttpRequest& r = t.request;
    // The text too: libcurl reports it (CURLINFO_EFFECTIVE_URL) and falls back to it when null
    ParsedUrl parsed = parsed_url(r.url);
    t.url = std::move(parsed.url);
    set_proxy(t, parsed.proxy);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, static_cast<long>(parsed.pipewait));
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_CURLU, t.url.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    // 0: libcurl's default connect timeout, and no total
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<int64_t>(r.timeouts.connect_ms, 0)));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(r.timeouts.total_ms, 0)));
    const bool get = r.method == "GET";
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, get || r.method == "POST" ? nullptr : r.method.c_str());
    if (get) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, nullptr);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);  // after POSTFIELDS, which makes the method POST
    } else {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, link_headers(t, /*expect=*/!get));
  }

  // CURLOPT_HTTPHEADER's list for `t`, in the request's order, then "Expect:" when `expect` (no
  // "Expect: 100-continue" round trip before bodies over 1 kB) and "Accept:" (libcurl's own
  // "Accept: */*" left out: no Accept line means the same, and libcurl prints each header byte
  // through its printf; a request's own Accept line still goes out). Built without a malloc per line
  // (curl_slist_append copies each line and walks the list to its end every time): the request's
  // own lines go into one buffer, the shared lines are pointed at where they are, and the nodes
  // are one vector. libcurl only reads the list.
  static curl_slist* link_headers(Transfer& t, bool expect) {
    static char kNoExpect[] = "Expect:";
    static char kNoAccept[] = "Accept:";
    const HttpRequest& r = t.request;
    const auto& own = r.headers.fields;
    const size_t shared_at = std::min(r.shared_at, own.size());
    size_t bytes = 0;
    for (const auto& [k, v] : own) bytes += HeaderLines::bytes(k, v);
    t.header_text.reserve(bytes);  // exact: the nodes point into it, so it must never reallocate
    t.header_nodes.reserve(own.size() + (r.shared ? r.shared->size() : 0) + 2);
    auto add = [&t](const char* line) { t.header_nodes.push_back(curl_slist{const_cast<char*>(line), nullptr}); };
    auto add_own = [&](size_t i) {
      const size_t at = t.header_text.size();
      HeaderLines::append(t.header_text, own[i].first, own[i].second);
      add(t.header_text.data() + at);
    };
    for (size_t i = 0; i < shared_at; ++i) add_own(i);
    if (r.shared) {
      for (size_t i = 0; i < r.shared->size(); ++i) add(r.shared->line(i));
    }
    for (size_t i = shared_at; i < own.size(); ++i) add_own(i);
    if (expect) add(kNoExpect);
    add(kNoAccept);
    for (size_t i = 0; i + 1 < t.header_nodes.size(); ++i) t.header_nodes[i].next = &t.header_nodes[i + 1];
    return t.header_nodes.data();
  }

  void start(std::unique_ptr<Transfer> t) {
    t->impl = this;
    take_easy(*t);
    if (t->easy == nullptr) {
      TransferResult res;
      res.status = TransferStatus::kConnectError;
      res.error = "could not create a transfer handle";
      active_count.fetch_sub(1, std::memory_order_relaxed);
      safe_done(*t->sink, res);
      return;
    }
    set_transfer_options(*t);
    CURL* e = t->easy;
    t->started = t->last_activity = Clock::now();
    const TransferId id = t->id;
    Transfer* raw = t.get();
    transfers.emplace(id, std::move(t));
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
      TransferResult res;
      res.status = TransferStatus::kConnectError;
      res.error = "could not add the transfer to the event loop";
      finish(raw, res, /*in_multi=*/false);
    }
  }

  // Removes the transfer and reports `result` to its sink.
  void finish(Transfer* t, const TransferResult& given, bool in_multi = true) {
    auto it = transfers.find(t->id);
    if (it == transfers.end()) return;
    TransferResult result = given;
    result.request_sent = whole_request_sent(t);
    std::unique_ptr<Transfer> owned = std::move(it->second);
    transfers.erase(it);
    if (in_multi) curl_multi_remove_handle(multi, owned->easy);
    give_back_easy(*owned);
    active_count.fetch_sub(1, std::memory_order_relaxed);
    safe_done(*owned->sink, result);  // last: the sink may submit a retry from here
  }

  // Whether libcurl wrote the request's head and all of its body (asked before the handle is
  // reused). A response head proves it as well.
  static bool whole_request_sent(Transfer* t) {
    if (t->head_done) return true;
    long head_bytes = 0;
    curl_off_t body_bytes = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &head_bytes) != CURLE_OK) return false;
    if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &body_bytes) != CURLE_OK) return false;
    return head_bytes > 0 && body_bytes >= static_cast<curl_off_t>(t->request.body.size());
  }

  // Every callback into a sink or a posted function runs on the transport thread: an exception
  // escaping one would end the process, so each is contained here.
  static void safe_done(Sink& sink, const TransferResult& result) noexcept {
    try {
      sink.on_done(result);
    } catch (...) {
      // The sink's own failure; its waiter is its business. The loop keeps running.
    }
  }
  static void safe_run(std::function<void()>& fn) noexcept {
    try {
      fn();
    } catch (...) {
    }
  }

  TransferResult result_for(Transfer* t, CURLcode code) {
    TransferResult res;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    res.http_status = t->head_done ? static_cast<int>(status) : 0;
    res.got_body = t->got_body;
    if (code == CURLE_OK) {
      if (!t->head_done) {  // a response without body: report the head now
        t->head_done = true;
        res.http_status = static_cast<int>(status);
        try {
          t->sink->on_head(res.http_status, t->headers);
        } catch (...) {
        }
      }
      return res;
    }
    if (t->aborted) {
      res.status = TransferStatus::kCancelled;
      res.error = "cancelled by the receiver";
      return res;
    }
    const std::string detail = t->errbuf[0] ? std::string(t->errbuf) : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      curl_off_t connect_us = 0;
      curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
      res.status = TransferStatus::kTimeout;
      res.timeout = connect_us == 0 ? TimeoutKind::kConnect : TimeoutKind::kTotal;
      res.error = std::string(to_string(res.timeout)) + " timeout: " + detail;
      return res;
    }
    res.status = TransferStatus::kConnectError;
    res.error = detail;
    return res;
  }

  void process_commands(bool shutting_down = false) {
    std::vector<Command> batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      batch.swap(commands);
    }
    for (Command& c : batch) {
      switch (c.kind) {
        case Command::kSubmit:
          if (shutting_down) {
            TransferResult res;
            res.status = TransferStatus::kCancelled;
            res.error = "transport closed";
            active_count.fetch_sub(1, std::memory_order_relaxed);
            safe_done(*c.transfer->sink, res);
          } else {
            start(std::move(c.transfer));
          }
          break;
        case Command::kCancel: {
          auto it = transfers.find(c.id);
          if (it != transfers.end()) {
            TransferResult res;
            res.status = TransferStatus::kCancelled;
            res.error = "cancelled";
            res.got_body = it->second->got_body;
            finish(it->second.get(), res);
          }
          break;
        }
        case Command::kResume: {
          auto it = transfers.find(c.id);
          if (it != transfers.end() && it->second->paused) {
            Transfer* t = it->second.get();
            t->paused = false;
            t->last_activity = Clock::now();
            // May call on_write at once with the data held back, which may pause again.
            curl_easy_pause(t->easy, CURLPAUSE_CONT);
          }
          break;
        }
        case Command::kPost:
          timers.push(Timer{c.due, timer_seq++, std::move(c.fn)});
          break;
      }
    }
  }

  void run_timers() {
    const auto now = Clock::now();
    while (!timers.empty() && timers.top().due <= now) {
      std::function<void()> fn = std::move(const_cast<Timer&>(timers.top()).fn);
      timers.pop();
      safe_run(fn);
    }
  }

  // First-byte and idle timeouts are not libcurl options; check them at a coarse interval.
  void scan_deadlines() {
    const auto now = Clock::now();
    if (now - last_deadline_scan < std::chrono::milliseconds(20)) return;
    last_deadline_scan = now;
    std::vector<std::pair<Transfer*, TimeoutKind>> expired;
    for (auto& [id, t] : transfers) {
      const Timeouts& to = t->request.timeouts;
      if (!t->head_done && to.first_byte_ms > 0 &&
          now - t->started > std::chrono::milliseconds(to.first_byte_ms)) {
        expired.emplace_back(t.get(), TimeoutKind::kFirstByte);
      } else if (t->head_done && !t->paused && to.idle_ms > 0 &&
                 now - t->last_activity > std::chrono::milliseconds(to.idle_ms)) {
        expired.emplace_back(t.get(), TimeoutKind::kIdle);
      }
    }
    for (auto& [t, kind] : expired) {
      TransferResult res;
      res.status = TransferStatus::kTimeout;
      res.timeout = kind;
      res.got_body = t->got_body;
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      res.http_status = t->head_done ? static_cast<int>(status) : 0;
      res.error = std::string(to_string(kind)) + " timeout after " +
                  std::to_string(kind == TimeoutKind::kIdle ? t->request.timeouts.idle_ms
                                                             : t->request.timeouts.first_byte_ms) +
                  " ms";
      finish(t, res);
    }
  }

  bool any_custom_deadline() const {
    for (const auto& [id, t] : transfers) {
      if (t->request.timeouts.first_byte_ms > 0 || t->request.timeouts.idle_ms > 0) return true;
    }
    return false;
  }

  // The loop's work, on the thread that drives it (the loop thread, or a caller holding a Driver):
  // queued commands, due timers, libcurl's work, finished transfers, deadlines. Without `look`,
  // only the sockets the last wait found ready are acted on (no epoll_wait now).
  void work(bool look = true) {
    turns.fetch_add(1, std::memory_order_relaxed);
    process_commands();
    run_timers();
    act_on_sockets(look);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      if (t != nullptr) finish(t, result_for(t, msg->data.result));
    }
    scan_deadlines();
  }

  // Waits at most `max_wait_ms` (less when libcurl or a timer is due sooner, not at all when a
  // command is queued) for a socket or a wake-up.
  void wait_for_io(long max_wait_ms) {
    long wait_ms = -1;
    curl_multi_timeout(multi, &wait_ms);
    if (wait_ms < 0 || wait_ms > max_wait_ms) wait_ms = max_wait_ms;
    if (!timers.empty()) {
      // Rounded up: rounded down, the last millisecond before a timer was a busy wait (no wait,
      // a turn with nothing due, again: ~2,600 turns before each timer).
      const auto until = std::chrono::ceil<std::chrono::milliseconds>(timers.top().due - Clock::now()).count();
      wait_ms = std::clamp<long>(static_cast<long>(until), 0, wait_ms);
    }
    if (wait_ms > 20 && !transfers.empty() && any_custom_deadline()) wait_ms = 20;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!commands.empty() || stopping) wait_ms = 0;
    }
    if (wait_ms <= 0) return;
    read_ready(static_cast<int>(std::min<long>(wait_ms, 1'000'000)));  // an int; woken anyway
  }

  // Waits up to `wait_ms` for ready sockets (0: a look now) into `ready`; a signal (EINTR) or
  // the time reads none.
  void read_ready(int wait_ms) {
    const int n = epoll_wait(epoll_fd, ready.data(), static_cast<int>(ready.size()), wait_ms);
    ready_count = n > 0 ? static_cast<size_t>(n) : 0;
  }

  // Whether the driver has nothing to do (reads loop state: asked by the driver only, under mu).
  bool idle() const { return commands.empty() && transfers.empty() && timers.empty(); }

  // Ends the lease, if any: its sockets are no longer watched (under mu). True if there was one.
  bool revoke_lease_locked() {
    if (!lent_to) return false;
    lent_to->unwatch();
    lent_to.reset();
    return true;
  }

  // When a lease of the loop needs a turn even if no socket is ready (libcurl's timeout, a
  // first-byte or idle check); the lease watches the transport's epoll set (the sockets libcurl
  // waits on for the one transfer left, and the wake-up). Nothing when the loop has other work (a
  // timer, more transfers, a paused one). Asked by the driver.
  std::optional<std::chrono::microseconds> lease_timeout() {
    if (transfers.size() != 1 || !timers.empty() || transfers.begin()->second->paused) return std::nullopt;
    long wait_ms = -1;
    curl_multi_timeout(multi, &wait_ms);
    if (wait_ms < 0 || wait_ms > 1000) wait_ms = 1000;  // as the loop thread's longest poll
    if (wait_ms > 20 && any_custom_deadline()) wait_ms = 20;
    return std::max(std::chrono::microseconds(1), std::chrono::microseconds(wait_ms * 1000));
  }

  // A caller lets go of the loop it drove. It is lent to `lend` (the caller's event loop) when the
  // one transfer left waits on a socket and nothing else is queued; `renewing`: a lease's own
  // turn, which keeps the loop only if it was not revoked meanwhile. Else the loop thread takes
  // over whatever is left.
  void let_go(const std::shared_ptr<LoopWatch>& lend, bool renewing) {
    std::optional<std::chrono::microseconds> timeout;
    // Still the driver: libcurl is this thread's. (Never to a watch made before a fork.)
    if (lend && !lend->inherited()) timeout = lease_timeout();
    bool work_left;
    {
      std::lock_guard<std::mutex> lock(mu);
      caller_driving = false;
      const bool still_ours = renewing ? lent_to == lend : lent_to == nullptr;
      if (timeout && still_ours && commands.empty() && !stopping) {
        if (!renewing) lends.fetch_add(1, std::memory_order_relaxed);
        lent_to = lend;
        lend->watch(epoll_fd, *timeout, self);
        return;
      }
      revoke_lease_locked();
      work_left = stopping || !idle();
    }
    if (work_left) {
      wakeups.fetch_add(1, std::memory_order_relaxed);
      park_cv.notify_one();
    }
  }

  // One turn of the loop for the event loop it is lent to (LoopWatch::turn), on that loop's thread.
  void lease_turn(const LoopWatch& watch) {
    std::shared_ptr<LoopWatch> lease;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (lent_to.get() != &watch || caller_driving) return;
      lease = lent_to;
      caller_driving = true;
    }
    const void* outer = t_running_loop;
    t_running_loop = this;
    work();
    t_running_loop = outer;
    let_go(lease, /*renewing=*/true);
  }

  // The loop thread: parks while it has nothing to do (so that a blocking caller may drive the loop
  // itself), while a Driver holds the loop or while it is lent to an event loop; returns when it
  // may take a turn, false once stopping.
  bool wait_for_turn() {
    std::unique_lock<std::mutex> lock(mu);
    while (caller_driving || lent_to || (!stopping && idle())) {
      loop_parked = true;
      park_cv.wait(lock);
      loop_parked = false;
    }
    return !stopping;
  }

  // A caller takes the loop while the loop thread is parked with nothing to do. With no transfer
  // under way the loop thread is about to park (it has just handed a result over, perhaps to this
  // very caller, who may have taken its core): the caller gives it a few microseconds to.
  bool claim_for_caller() {
    const auto give_up = Clock::now() + std::chrono::microseconds(50);
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (caller_driving || stopping) return false;
        if (loop_parked) {
          revoke_lease_locked();  // the lent transfer is the Driver's to serve now
          caller_driving = true;
          drives.fetch_add(1, std::memory_order_relaxed);
          return true;
        }
      }
      if (active_count.load(std::memory_order_relaxed) != 0 || Clock::now() >= give_up) return false;
      std::this_thread::yield();
    }
  }

  void loop() {
    t_running_loop = this;
    while (wait_for_turn()) {
      work();
      if (!transfers.empty() || !timers.empty()) wait_for_io(1000);  // else: park
    }
    // Shutting down: every transfer still known ends as cancelled, and so does whatever the sinks
    // or pending timers (retry waits) submit in reaction, so no waiter is left hanging.
    while (true) {
      std::vector<Transfer*> left;
      for (auto& [id, t] : transfers) left.push_back(t.get());
      for (Transfer* t : left) {
        TransferResult res;
        res.status = TransferStatus::kCancelled;
        res.error = "transport closed";
        finish(t, res);
      }
      while (!timers.empty()) {
        std::function<void()> fn = std::move(const_cast<Timer&>(timers.top()).fn);
        timers.pop();
        safe_run(fn);
      }
      bool more;
      {
        std::lock_guard<std::mutex> lock(mu);
        more = !commands.empty();
      }
      if (!more && transfers.empty() && timers.empty()) break;
      process_commands(/*shutting_down=*/true);
    }
  }
};

// A new loop: its multi handle, epoll set, wake-up eventfd and thread, with `options`.
std::shared_ptr<Transport::Impl> Transport::Impl::start(const TransportOptions& options,
                                                        const ProxyEnvironment& proxies) {
  global_init();
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  impl->proxies = proxies;
  // Ids of a forked child's loop never repeat those of the parent's calls it inherited (a cancel
  // of one of those must not reach a call of its own).
  impl->next_id = (fork_generation() << 40) + 1;
  impl->multi = curl_multi_init();
  impl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->multi == nullptr || impl->epoll_fd < 0 || impl->wake_fd < 0) {
    throw Error(std::string("cannot set up the network loop: ") + std::strerror(errno));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = impl->wake_fd;
  epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->wake_fd, &wake);
  curl_multi_setopt(impl->multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
  curl_multi_setopt(impl->multi, CURLMOPT_SOCKETDATA, impl.get());
  curl_multi_setopt(impl->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  if (options.max_connections_per_host > 0) {
    curl_multi_setopt(impl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options.max_connections_per_host));
  }
  if (options.max_total_connections > 0) {
    curl_multi_setopt(impl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options.max_total_connections));
  }
  curl_multi_setopt(impl->multi, CURLMOPT_MAXCONNECTS, static_cast<long>(idle_connections_kept(options)));
  impl->self = impl;
  // The thread co-owns the state: if the last owner of the Transport lets go from inside a sink (on
  // the transport thread itself), the destructor detaches and the loop winds down on its own.
  impl->thread = std::thread([impl] { impl->loop(); });
  return impl;
}

// In a forked child the first use makes a new loop with the same options (PerProcess): the
// parent's connections, epoll set and thread are its own.
namespace {
// `value`, or else the environment's `name` (empty when unset).
std::string or_environment(std::string value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env == nullptr ? std::string() : std::string(env);
}

// `options` with the CA settings it leaves empty read from the environment.
TransportOptions with_environment(TransportOptions options) {
  options.ca_file = or_environment(std::move(options.ca_file), "SSL_CERT_FILE");
  options.ca_dir = or_environment(std::move(options.ca_dir), "SSL_CERT_DIR");
  return options;
}
}  // namespace

Transport::Transport(TransportOptions options)
    : impl_([options = with_environment(std::move(options)), proxies = ProxyEnvironment::read()] {
        return Impl::start(options, proxies);
      }) {}

Transport::~Transport() {
  // Made in the parent and never used in this forked child: nothing of it is this process's (the
  // parent's threads may have held its lock at the fork, and its loop thread is not here).
  Impl* impl = impl_.made_here();
  if (impl == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    impl->stopping = true;
    impl->revoke_lease_locked();
  }
  impl->park_cv.notify_one();
  impl->wake_loop();
  // From inside a sink (on the loop thread, or on a caller driving it) the loop cannot be joined:
  // it winds down on its own once its driver lets go.
  if (t_running_loop == impl) {
    impl->thread.detach();
  } else {
    impl->thread.join();
  }
}

TransferId Transport::submit(HttpRequest request, std::shared_ptr<Sink> sink) {
  if (request.url.empty()) throw InvalidArgument("HTTP request without a URL");
  if (!sink) throw InvalidArgument("HTTP request without a sink");
  auto t = std::make_unique<Impl::Transfer>();
  t->id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  t->request = std::move(request);
  t->sink = std::move(sink);
  const TransferId id = t->id;
  impl_->active_count.fetch_add(1, std::memory_order_relaxed);
  Impl::Command c{Impl::Command::kSubmit, id, std::move(t), {}, {}};
  impl_->push(std::move(c));
  return id;
}

void Transport::cancel(TransferId id) { impl_->push(Impl::Command{Impl::Command::kCancel, id, nullptr, {}, {}}); }

void Transport::resume(TransferId id) { impl_->push(Impl::Command{Impl::Command::kResume, id, nullptr, {}, {}}); }

void Transport::post(std::function<void()> fn, std::chrono::milliseconds delay) {
  impl_->push(Impl::Command{Impl::Command::kPost, 0, nullptr, std::move(fn), after(delay)});
}

int64_t Transport::active() const { return impl_->active_count.load(std::memory_order_relaxed); }

int64_t Transport::wakeups() const { return impl_->wakeups.load(std::memory_order_relaxed); }

int64_t Transport::drives() const { return impl_->drives.load(std::memory_order_relaxed); }

int64_t Transport::lends() const { return impl_->lends.load(std::memory_order_relaxed); }

int64_t Transport::turns() const { return impl_->turns.load(std::memory_order_relaxed); }

Transport::Driver::Driver(Transport& transport) {
  if (!transport.impl_->claim_for_caller()) return;
  impl_ = transport.impl_.shared();
  outer_loop_ = t_running_loop;
  t_running_loop = impl_.get();
}

Transport::Driver::~Driver() {
  if (!impl_) return;
  t_running_loop = outer_loop_;
  impl_->let_go(nullptr, /*renewing=*/false);
}

void Transport::Driver::lend_to(std::shared_ptr<LoopWatch> watch) {
  if (!impl_) return;
  t_running_loop = outer_loop_;
  const std::shared_ptr<Impl> impl = std::move(impl_);
  impl->let_go(watch, /*renewing=*/false);
}

bool Transport::Driver::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  if (!impl_) return done();
  const auto deadline = after(timeout);
  // The first turn takes no look at the sockets (an epoll_wait a call that, sending on a loop
  // that was parked, finds nothing: idle connections at most). What is ready now is read by the
  // next wait: this one's, the loop thread's once it takes over, or a lease's (the watch's set is
  // readable at once).
  for (bool look = false;; look = true) {
    impl_->work(look);
    if (done()) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    impl_->wait_for_io(static_cast<long>(left));
  }
}

}  // namespace orroute

namespace orroute {

namespace {

void epoll_set(int epoll_fd, int op, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd, op, fd, &ev) != 0 && op == EPOLL_CTL_ADD && errno == EEXIST) {
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);  // still registered from the last turn
  }
}

}  // namespace

LoopWatch::LoopWatch() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw Error(std::string("cannot create an epoll descriptor: ") + std::strerror(errno));
}

LoopWatch::~LoopWatch() {
  if (registered_copy_) close(registered_);
  if (timer_fd_ >= 0) close(timer_fd_);
  close(epoll_fd_);
}

void LoopWatch::add(int fd) {
  if (inherited()) throw Error("cannot watch a descriptor: this watch was made before fork()");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw Error(std::string("cannot watch a descriptor: ") + std::strerror(errno));
  }
}

bool LoopWatch::lent() const {
  if (inherited()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return watched_ >= 0;
}

void LoopWatch::watch(int lender_fd, std::chrono::microseconds timeout, std::weak_ptr<Transport::Impl> lender) {
  std::lock_guard<std::mutex> lock(mu_);
  // The lender's set is still in this one from its last lease (renewed, or ended and not taken out
  // by a turn since), unless another lender's is. It is in through a copy of the lender's
  // descriptor, the watch's own: the copy can always take it out, even once the lender is gone
  // and its number names something else (a forked child still holding the lender's set keeps it
  // alive, and its events would wake the event loop for ever with nothing to take out).
  const bool same_lender = registered_ >= 0 && !registered_for_.owner_before(lender) && !lender.owner_before(registered_for_);
  if (!same_lender) {
    forget_lender_locked();
    const int copy = fcntl(lender_fd, F_DUPFD_CLOEXEC, 0);
    registered_copy_ = copy >= 0;
    registered_ = copy >= 0 ? copy : lender_fd;  // no descriptor left: the lender's own number
    registered_for_ = lender;
    epoll_set(epoll_fd_, EPOLL_CTL_ADD, registered_, EPOLLIN);
  }
  watched_ = lender_fd;
  lender_ = std::move(lender);
  if (timer_fd_ < 0) {
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd_ >= 0) epoll_set(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, EPOLLIN);
  }
  // The timer must fire by `timeout`; one armed to fire sooner (a lease before, whose timer was
  // left running) does: its turn comes early and renews the lease, which arms it again. So a
  // call a lease needs no timerfd_settime while the last lease's timer is still due.
  const Clock::time_point now = Clock::now();
  const Clock::time_point due_by = now + timeout;
  if (timer_fd_ >= 0 && (timer_due_ <= now || timer_due_ > due_by)) {
    itimerspec due{};
    due.it_value.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000);
    due.it_value.tv_nsec = static_cast<long>(timeout.count() % 1'000'000) * 1000;
    timerfd_settime(timer_fd_, 0, &due, nullptr);
    timer_due_ = due_by;
  }
}

void LoopWatch::forget_lender_locked() {
  if (registered_ < 0) return;
  // Its own copy names the lender's set for as long as it is open; the lender's own number only
  // while the lender lives (closed, it took the set out).
  if (registered_copy_ || !registered_for_.expired()) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, registered_, nullptr);
  if (registered_copy_) close(registered_);
  registered_ = -1;
  registered_copy_ = false;
  registered_for_.reset();
}

void LoopWatch::unwatch() {
  std::lock_guard<std::mutex> lock(mu_);
  // The lender's set stays registered (its next lease needs it): a turn() with nothing lent takes it
  // out if it becomes readable first.
  watched_ = -1;
  lender_.reset();
  if (timer_fd_ < 0) return;
  // Another thread ended the lease while the event loop's thread waits in serve_until(): the timer
  // fires at once to tell it (the next turn() reads it). Else it is left as it is: if it fires
  // before the next lease arms it again, fd() is readable once and the event loop's turn() reads
  // it, as it reads an expired lease's.
  const bool tell = serving_ != std::thread::id() && serving_ != std::this_thread::get_id();
  if (!tell) return;
  itimerspec due{};
  due.it_value.tv_nsec = 1;
  timerfd_settime(timer_fd_, 0, &due, nullptr);
  timer_due_ = Clock::now();
}

void LoopWatch::turn() {
  if (inherited()) return;
  std::shared_ptr<Transport::Impl> lender;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (timer_fd_ >= 0 && Clock::now() >= timer_due_) {  // fired: readable until read
      // Due by the clock read before timerfd_settime, the timer fires a little later (more if the
      // arming thread was preempted in between): not fired yet, it is still armed and its due
      // time kept, so that the turn its firing brings reads it (else fd() stays readable for
      // ever once the lease has ended, and the event loop spins).
      uint64_t expirations = 0;
      if (read(timer_fd_, &expirations, sizeof expirations) == static_cast<ssize_t>(sizeof expirations)) {
        timer_due_ = Clock::time_point::max();
      }
    }
    lender = lender_.lock();
    // Nothing lent, yet fd() was readable: perhaps the last lender's set, readable for its loop
    // thread's work. Out until its next lease, so that it cannot keep waking the event loop.
    if (watched_ < 0) forget_lender_locked();
  }
  if (lender) lender->lease_turn(*this);
}

bool LoopWatch::serve_until(const std::function<bool()>& done, int loop_fd, std::chrono::milliseconds timeout) {
  if (inherited()) return done();
  {
    std::lock_guard<std::mutex> lock(mu_);
    serving_ = std::this_thread::get_id();
  }
  const bool served = serve_until_unmarked(done, loop_fd, timeout);
  std::lock_guard<std::mutex> lock(mu_);
  serving_ = std::thread::id();
  return served;
}

bool LoopWatch::serve_until_unmarked(const std::function<bool()>& done, int loop_fd,
                                     std::chrono::milliseconds timeout) {
  const auto deadline = after(timeout);  // negative: no deadline (below)
  while (!done()) {
    if (!lent()) return false;
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      wait_ms = static_cast<int>(std::min<int64_t>(left, 1'000'000));
    }
    pollfd fds[2] = {{epoll_fd_, POLLIN, 0}, {loop_fd, POLLIN, 0}};
    if (poll(fds, loop_fd >= 0 ? 2 : 1, wait_ms) <= 0) return done();  // the time passed, or a signal
    if ((fds[0].revents & POLLIN) == 0) return false;  // the event loop has other work
    turn();
    if (done()) return true;
    pollfd again{epoll_fd_, POLLIN, 0};
    if (poll(&again, 1, 0) > 0) return false;  // still readable: news for another waiter (its token)
  }
  return true;
}

}  // namespace orroute

// A point-to-point link between two network namespaces, emulated in user space over one TUN device in each:
// every IP packet read from one side is written to the other after its serialisation time at the rate
// (behind the packets already queued) plus a one-way delay, and dropped when the queue is full, as a
// real link's transmit queue does. For kernels without the netem qdisc (scripts/ep-netns.sh --delay).
//   linkemu NETNS_A TUN_A NETNS_B TUN_B DELAY_NS RATE_BITS_PER_S QUEUE_PACKETS QUEUE_BYTES
// NETNS_* are paths (/var/run/netns/NAME), TUN_* existing tun devices in them (ip tuntap add mode tun);
// RATE 0 = unlimited. Runs until SIGTERM/SIGINT, then prints per direction the packets and bytes forwarded,
// the drops, and how late each packet left against its due time (this process's wake-up jitter).
// Built by scripts/ep-netns.sh with `cc -O2` at run time; Linux only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kLateBins = 100001 };  // lateness histogram: 1 µs bins up to 100 ms, then one overflow bin
enum { kReadBurst = 16 };     // packets read per wake-up before due ones are written again

// The link, the same both ways.
typedef struct {
  int64_t delay_ns;
  double ns_per_byte;  // 0: unlimited rate
  int queue_packets;
  int64_t queue_bytes;
  int slot;  // largest packet (the larger MTU)
} Link;

typedef struct {
  int64_t due_ns;  // when the packet reaches the far end
  int len;
  char* data;  // allocated when the slot is first used: the memory follows the deepest queue seen
} Packet;

// One direction: packets read from `in`, queued, written to `out` when due.
typedef struct {
  const char* name;
  int in, out;
  Packet* ring;
  int head, count;
  int64_t queued_bytes;
  int64_t free_ns;  // when the link finishes serialising the packets already accepted
  uint64_t packets, bytes, drops, write_errors;
  uint64_t late[kLateBins];
  int64_t late_max_ns;
  double late_sum_ns;
} Direction;

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "linkemu: %s: %s\n", what, strerror(errno));
  exit(1);
}

// Enter the namespace and attach to its tun device; the descriptor keeps working after we leave it.
static int attach_tun(const char* netns, const char* dev, int* mtu) {
  const int ns = open(netns, O_RDONLY | O_CLOEXEC);
  if (ns < 0) die(netns);
  if (setns(ns, CLONE_NEWNET) != 0) die("setns");
  close(ns);
  const int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFMTU, &ifr) != 0) die("SIOCGIFMTU");
  close(s);
  *mtu = ifr.ifr_mtu;
  if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) die("O_NONBLOCK");
  return fd;
}

static void init_direction(Direction* d, const char* name, int in, int out, const Link* link) {
  memset(d, 0, sizeof *d);
  d->name = name;
  d->in = in;
  d->out = out;
  d->ring = calloc((size_t)link->queue_packets, sizeof(Packet));
  if (!d->ring) die("calloc");
}

// Read up to kReadBurst waiting packets from `in`: each is due after the packets ahead of it have been
// serialised, plus its own serialisation time and the delay; dropped when the queue is full.
static void receive(Direction* d, const Link* link) {
  static char sink[65536];
  for (int i = 0; i < kReadBurst; ++i) {
    const int full = d->count == link->queue_packets;
    Packet* p = &d->ring[(d->head + d->count) % link->queue_packets];  // the head itself when full
    if (!full && !p->data && !(p->data = malloc((size_t)link->slot))) die("malloc");
    const ssize_t n = read(d->in, full ? sink : p->data, full ? sizeof sink : (size_t)link->slot);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("read");
    }
    if (full || d->queued_bytes + n > link->queue_bytes) {
      ++d->drops;
      continue;
    }
    const int64_t t = now_ns();
    const int64_t start = d->free_ns > t ? d->free_ns : t;
    d->free_ns = start + (int64_t)((double)n * link->ns_per_byte);
    p->due_ns = d->free_ns + link->delay_ns;
    p->len = (int)n;
    d->queued_bytes += n;
    ++d->count;
  }
}

// Write the packets whose time has come; returns the next due time (INT64_MAX when empty).
static int64_t deliver(Direction* d, const Link* link) {
  while (d->count > 0) {
    Packet* p = &d->ring[d->head];
    const int64_t t = now_ns();
    if (p->due_ns > t) return p->due_ns;
    const int64_t late = t - p->due_ns;
    d->late[late / 1000 < kLateBins - 1 ? late / 1000 : kLateBins - 1]++;
    d->late_sum_ns += (double)late;
    if (late > d->late_max_ns) d->late_max_ns = late;
    if (write(d->out, p->data, (size_t)p->len) == p->len) {
      ++d->packets;
      d->bytes += (uint64_t)p->len;
    } else {
      ++d->write_errors;  // the far end's queue is full or the device went away: the packet is lost
    }
    d->head = (d->head + 1) % link->queue_packets;
    d->queued_bytes -= p->len;
    --d->count;
  }
  return INT64_MAX;
}

static double late_percentile_us(const Direction* d, double q) {
  uint64_t n = 0, total = 0;
  for (int i = 0; i < kLateBins; ++i) total += d->late[i];
  if (total == 0) return 0;
  for (int i = 0; i < kLateBins; ++i) {
    n += d->late[i];
    if ((double)n >= q * (double)total) return i + 1;  // upper edge of the 1 µs bin
  }
  return kLateBins;
}

static void report(const Direction* d) {
  const uint64_t sent = d->packets + d->write_errors;
  fprintf(stderr,
          "linkemu: %s: %llu packets, %llu bytes, %llu dropped (queue full), %llu lost writing; "
          "late against due time: mean %.1f us, p50 <= %.0f us, p99 <= %.0f us, max %.1f us\n",
          d->name, (unsigned long long)d->packets, (unsigned long long)d->bytes, (unsigned long long)d->drops,
          (unsigned long long)d->write_errors, sent ? d->late_sum_ns / (double)sent / 1e3 : 0.0,
          late_percentile_us(d, 0.5), late_percentile_us(d, 0.99), (double)d->late_max_ns / 1e3);
}

// The next due time of either direction, as ppoll's timeout (NULL: nothing queued, wait for packets).
static struct timespec* until(int64_t next, struct timespec* wait) {
  if (next == INT64_MAX) return NULL;
  int64_t left = next - now_ns();
  if (left < 0) left = 0;
  wait->tv_sec = left / 1000000000;
  wait->tv_nsec = left % 1000000000;
  return wait;
}

// The emulator stands for the wire: it runs ahead of the ranks' compute (SCHED_FIFO) where allowed, so
// its wake-ups are not delayed by their threads on a busy machine; the kernel's real-time throttling
// still leaves the rest of the CPU to them. Sleeps end at the due time, not up to 50 µs of slack later.
static void prioritise(void) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct sched_param sp = {.sched_priority = 10};
  if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
    fprintf(stderr, "linkemu: SCHED_FIFO refused (%s): wake-ups compete with the ranks\n", strerror(errno));
}

int main(int argc, char** argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: linkemu NETNS_A TUN_A NETNS_B TUN_B DELAY_NS RATE_BITS_PER_S QUEUE_PACKETS QUEUE_BYTES\n");
    return 2;
  }
  Link link;
  link.delay_ns = atoll(argv[5]);
  const double rate = atof(argv[6]);
  link.ns_per_byte = rate > 0 ? 8e9 / rate : 0;
  link.queue_packets = atoi(argv[7]);
  link.queue_bytes = atoll(argv[8]);
  if (link.delay_ns < 0 || rate < 0 || link.queue_packets < 1 || link.queue_bytes < 1) {
    fprintf(stderr, "linkemu: DELAY_NS and RATE must be >= 0, QUEUE_PACKETS and QUEUE_BYTES >= 1\n");
    return 2;
  }
  int mtu_a = 0, mtu_b = 0;
  const int a = attach_tun(argv[1], argv[2], &mtu_a);
  const int b = attach_tun(argv[3], argv[4], &mtu_b);
  link.slot = mtu_a > mtu_b ? mtu_a : mtu_b;
  prioritise();
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  static Direction dir[2];  // the lateness histograms are 800 KB each
  init_direction(&dir[0], "A->B", a, b, &link);
  init_direction(&dir[1], "B->A", b, a, &link);
  struct pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  while (!g_stop) {
    const int64_t next0 = deliver(&dir[0], &link), next1 = deliver(&dir[1], &link);
    struct timespec wait;
    const int r = ppoll(fds, 2, until(next0 < next1 ? next0 : next1, &wait), NULL);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) g_stop = 1;  // the namespace went away
      if (fds[i].revents & POLLIN) receive(&dir[i], &link);
    }
  }
  report(&dir[0]);
  report(&dir[1]);
  return 0;
}

#ifndef SWIFTGRPC_CLINUX_SHIM_H
#define SWIFTGRPC_CLINUX_SHIM_H
/* Linux calls Swift's Glibc module does not export. No logic beyond thin wrappers. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>

/* accept4 is declared only under _GNU_SOURCE, which Swift's importer does not set. */
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int swiftgrpc_sock_nonblock(void) { return SOCK_NONBLOCK; }
static inline int swiftgrpc_sock_cloexec(void) { return SOCK_CLOEXEC; }
static inline int swiftgrpc_errno(void) { return errno; }
/* Blocks SIGPIPE for the calling thread. Loop threads do every socket write; plain writes use
   MSG_NOSIGNAL, but OpenSSL's socket BIO writes without it, and a write to a peer that is gone
   must not kill the host process: its SIGPIPE stays pending on the loop thread, never delivered. */
static inline void swiftgrpc_block_sigpipe(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}
/* Initialises an adaptive mutex (glibc's PTHREAD_MUTEX_ADAPTIVE_NP, 3, declared only under
   _GNU_SOURCE): a contended lock spins briefly before it sleeps in the kernel. The library's
   critical sections are a few dozen instructions, so a waiter usually gets the lock while
   spinning, without the futex wait and wake a plain mutex pays. */
static inline int swiftgrpc_mutex_init_adaptive(pthread_mutex_t *m) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, 3 /* PTHREAD_MUTEX_ADAPTIVE_NP */);
  int rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
}
static inline uint32_t swiftgrpc_epoll_data_fd(const struct epoll_event *e) { return (uint32_t)e->data.fd; }
#endif

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
static inline uint32_t swiftgrpc_epoll_data_fd(const struct epoll_event *e) { return (uint32_t)e->data.fd; }
#endif

/*
 * Diagnostic LD_PRELOAD shim for bench/dnsdb/run.sh: sets TCP_NODELAY on
 * every socket the process accepts, without changing the program.
 *
 *   gcc -shared -fPIC -O2 -o nodelay.so bench/dnsdb/nodelay.c -ldl
 *   LD_PRELOAD=./nodelay.so dnsrecall serve ...
 *
 * The DNSDB answers go out in several writes (headers + begin line, then
 * rows + terminator); with Nagle's algorithm on, the second write waits for
 * the client's (delayed) ACK of the first. The shim shows what the server
 * does without that wait. setsockopt on a non-TCP socket fails harmlessly.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
  if (fd >= 0) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

int accept4(int socket, struct sockaddr *address, socklen_t *length, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int fd = real(socket, address, length, flags);
  nodelay(fd);
  return fd;
}

int accept(int socket, struct sockaddr *address, socklen_t *length) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  int fd = real(socket, address, length);
  nodelay(fd);
  return fd;
}

#ifndef SWIFTGRPC_CZLIB_SHIM_H
#define SWIFTGRPC_CZLIB_SHIM_H
/* zlib (Debian zlib1g-dev). Its init functions are macros, which Swift cannot call: thin
   wrappers, no logic. */
#include <zlib.h>

static inline int swiftgrpc_inflate_init2(z_streamp s, int window_bits) {
  return inflateInit2(s, window_bits);
}
static inline int swiftgrpc_deflate_init2(z_streamp s, int window_bits) {
  return deflateInit2(s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
#endif

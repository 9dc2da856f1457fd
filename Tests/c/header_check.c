/* Compiles the public headers with -Wall -Wextra -Werror -pedantic -std=c11. */
#include "swiftgrpc.h"
#include "swiftgrpc_util.h"
#include "swiftgrpc_blocking.h"
int swiftgrpc_header_check_c(void) { return SWIFTGRPC_VERSION_NUMBER + (int)sizeof(swiftgrpc_event); }

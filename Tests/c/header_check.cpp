// Compiles the public headers as C++ with -Wall -Wextra -Werror.
#include "swiftgrpc.h"
#include "swiftgrpc_util.h"
#include "swiftgrpc_blocking.h"
int swiftgrpc_header_check_cxx() { return SWIFTGRPC_VERSION_NUMBER + static_cast<int>(sizeof(swiftgrpc_event)); }

/* Names and symlink targets from the kernel (bytes) as JavaScript strings: see raw_names.c. */
#ifndef CHUNKFS_RAW_NAMES_H
#define CHUNKFS_RAW_NAMES_H
#include <node_api.h>

__attribute__((visibility("hidden"))) napi_value raw_name_string(napi_env env, const char *bytes);

#endif

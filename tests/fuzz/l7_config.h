// The small L7 bounds the connection-level fuzz targets share (l7_detect,
// midstream): small enough that inputs of a few KB reach every bound.
#pragma once

#include "classify/l7_detect.h"
#include "conversation.h"

namespace aiqos::fuzz {

inline L7Config small_l7_config() {
  L7Config cfg;
  cfg.http1.max_header_section = 1024;
  cfg.http1.max_pipeline = 4;
  cfg.http2.max_streams = 4;
  cfg.http2.max_frame_size = 1 << 14;
  cfg.http2.max_header_block = 8192;
  cfg.http2.max_header_list = 16384;
  cfg.http2.max_hpack_table = 4096;
  cfg.http2.max_hpack_mem = 64 << 10;
  cfg.capture = fuzz_capture();
  return cfg;
}

}  // namespace aiqos::fuzz

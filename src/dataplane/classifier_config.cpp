#include "dataplane/classifier_config.h"

#include <algorithm>
#include <stdexcept>

#include "control/policy.h"  // is_credential_header

namespace aiqos {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

}  // namespace

ClassifierConfig classifier_config(const Options& o, const std::vector<std::string>& extra_capture,
                                   std::vector<std::string>& capture_out) {
  ClassifierConfig c;
  c.flows.max_flows = o.flows;
  c.flows.tcp_established_timeout_ns = o.idle_tcp_ns;
  c.flows.tcp_closing_timeout_ns = o.idle_tcp_closing_ns;
  c.flows.other_timeout_ns = o.idle_other_ns;
  c.reassembly.pool_bytes = o.reassembly_bytes;
  c.reassembly.max_ooo_bytes_per_flow = o.reassembly_flow_bytes;
  c.max_l7_conns = o.l7_conns;
  c.hpack_pool_bytes = o.hpack_pool_bytes;
  c.max_requests = o.requests;
  c.body_scan_bytes = o.body_scan_bytes;
  // limits.header_block_bytes bounds one header block whatever the protocol: an HTTP/1
  // header section, an HTTP/2 block as sent (HPACK) and decoded (name + value + 32 a field,
  // as SETTINGS_MAX_HEADER_LIST_SIZE counts), so compression cannot stretch it.
  Http2Config& h2 = c.l7.http2;
  h2.max_streams = o.h2_streams;
  h2.max_header_block = o.header_block_bytes;
  h2.max_header_list = o.header_block_bytes;
  h2.max_hpack_table = o.hpack_table_bytes;
  // The inflaters' allocations (table entries with nghttp2's own overhead, literals being
  // decoded) grow with the table: the default cap is three default tables.
  h2.max_hpack_mem = std::max<uint32_t>(Http2Config{}.max_hpack_mem, 3 * o.hpack_table_bytes);
  c.l7.http1.max_header_section = o.header_block_bytes;
  for (const auto& h : o.capture_headers)
    if (!c.l7.capture.extra.add(h)) fail("--capture-header " + h + ": not a lowercase header name, or too many headers");
  for (const auto& h : extra_capture)
    if (c.l7.capture.extra.find(h) < 0 && !c.l7.capture.extra.add(h))
      fail("policy capture header " + h + ": not a lowercase header name, or more than " +
           std::to_string(kMaxExtraHeaders) + " headers");
  if (!o.tenant_header.empty()) {
    int i = c.l7.capture.extra.find(o.tenant_header);
    if (i < 0 && !c.l7.capture.extra.add(o.tenant_header))
      fail("--tenant-header " + o.tenant_header + ": not a lowercase header name, or too many headers");
    c.tenant_header = c.l7.capture.extra.find(o.tenant_header);
  }
  for (size_t i = 0; i < c.l7.capture.extra.size(); ++i) {
    capture_out.emplace_back(c.l7.capture.extra.name(i));
    // Only a tenant header may be a credential (loader, options); its value is hashed.
    if (!is_credential_header(c.l7.capture.extra.name(i))) continue;
    if (o.tenant_salt.len < kCredentialSaltMin)
      fail("tenant header " + capture_out.back() + " is a credential: it needs --tenant-salt-file");
    c.hashed_extra = static_cast<uint8_t>(c.hashed_extra | (1u << i));
  }
  c.tenant_salt = o.tenant_salt;
  return c;
}

}  // namespace aiqos

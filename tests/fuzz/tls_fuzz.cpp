// TlsClientHelloParser over client bytes cut at split points chosen by the
// input, with a buffer size chosen by the input (so too_large is reachable).
//   byte 0: chunk length (1..256); byte 1: capacity (256 << (b % 7)); rest: bytes.
#include "classify/tls.h"
#include "fuzz_input.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  size_t step = size_t{in.u8()} + 1;
  size_t cap = size_t{256} << (in.u8() % 7);
  std::span<const uint8_t> bytes = in.rest();

  TlsClientHelloParser p(cap);
  for (int round = 0; round < 2; ++round) {  // the second round checks reset()
    std::span<const uint8_t> rest = bytes;
    TlsStatus st = TlsStatus::need_more;
    uint64_t fed = 0;
    while (!rest.empty()) {
      std::span<const uint8_t> chunk = rest.first(std::min(step, rest.size()));
      rest = rest.subspan(chunk.size());
      TlsStatus prev = st;
      st = p.feed(chunk);
      fed += chunk.size();
      FUZZ_CHECK(st == p.status());
      FUZZ_CHECK(tls_status_name(st) != nullptr);
      // Final once decided.
      if (prev != TlsStatus::need_more) FUZZ_CHECK(st == prev);
    }
    if (st == TlsStatus::done) {
      const TlsClientHello& h = p.hello();
      FUZZ_CHECK(p.consumed() <= fed);
      FUZZ_CHECK(h.n_alpn <= kMaxAlpn);
      fuzz::touch(h.sni);
      for (std::string_view a : h.alpn_list()) {
        FUZZ_CHECK(!a.empty());
        fuzz::touch(a);
      }
      FUZZ_CHECK(h.has_sni || h.sni.empty());
    }
    p.reset();
    FUZZ_CHECK(p.status() == TlsStatus::need_more);
  }
  return 0;
}

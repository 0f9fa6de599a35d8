// A worker and the shared plan it reads, for the tests of one dataplane stage
// at a time: two ports that are each other's peer, whose frames leave
// through rings (the worker is worker 1 and each port has one TX queue, so
// it hands its frames to the ring worker 0 would drain), no NIC. Needs the
// EAL and pool that stage_test.cpp's main() sets up.
#pragma once

#include <rte_ring.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"

namespace aiqos {

rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

namespace test {

struct WorkerFixture {
  std::unique_ptr<Shared> sh = std::make_unique<Shared>();
  std::unique_ptr<WorkerCtx> w = std::make_unique<WorkerCtx>();

  explicit WorkerFixture(const std::string& tag, bool peers = true, uint16_t burst = 32) {
    sh->nb_ports = 2;
    sh->nb_workers = 2;
    sh->burst = burst;
    for (uint16_t p = 0; p < 2; ++p) {
      PortPlan& pp = sh->ports[p];
      pp.id = p;
      pp.peer = static_cast<uint16_t>(p ^ 1);
      pp.has_peer = peers;
      pp.nb_txq = 1;
      pp.tx_ring = rte_ring_create((tag + std::to_string(p)).c_str(), 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
    }
    w->id = 1;
    w->sh = sh.get();
  }
  ~WorkerFixture() {
    for (uint16_t p = 0; p < 2; ++p) {
      sent(p);
      rte_pktmbuf_free_bulk(w->tx[p].pkts, w->tx[p].n);
      rte_ring_free(sh->ports[p].tx_ring);
    }
    for (rte_mbuf* m : taken_) rte_pktmbuf_free(m);
  }
  WorkerFixture(const WorkerFixture&) = delete;
  WorkerFixture& operator=(const WorkerFixture&) = delete;

  // What the worker handed to port p's TX ring since the last call, in order
  // (the fixture frees them at the end).
  std::vector<rte_mbuf*> sent(uint16_t p) {
    std::vector<rte_mbuf*> out;
    void* objs[64];
    while (unsigned n = rte_ring_dequeue_burst(sh->ports[p].tx_ring, objs, 64, nullptr))
      for (unsigned i = 0; i < n; ++i) out.push_back(static_cast<rte_mbuf*>(objs[i]));
    taken_.insert(taken_.end(), out.begin(), out.end());
    return out;
  }
  // A frame as received on `in_port` (metadata as the parse stage leaves it).
  static rte_mbuf* frame(const std::vector<uint8_t>& bytes, uint16_t in_port) {
    rte_mbuf* m = make_mbuf(bytes);
    if (m == nullptr) return nullptr;
    MbufMeta* md = meta(m);
    *md = MbufMeta{};
    parse_packet({rte_pktmbuf_mtod(m, const uint8_t*), bytes.size()}, md->pkt);
    md->flow = flow_id(md->pkt);
    md->in_port = in_port;
    return m;
  }

 private:
  std::vector<rte_mbuf*> taken_;
};

}  // namespace test
}  // namespace aiqos

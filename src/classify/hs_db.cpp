#include "classify/hs_db.h"

#include <vector>

namespace aiqos {

std::string HsCompileError::describe(std::span<const HsPattern> patterns) const {
  if (expression < 0 || static_cast<size_t>(expression) >= patterns.size()) return message;
  const HsPattern& p = patterns[static_cast<size_t>(expression)];
  return "pattern " + std::to_string(expression) + " (id " + std::to_string(p.id) + ", \"" +
         p.expression + "\"): " + message;
}

HsScratch::~HsScratch() {
  if (s_) hs_free_scratch(s_);
}

HsScratch& HsScratch::operator=(HsScratch&& o) noexcept {
  if (this != &o) {
    if (s_) hs_free_scratch(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

bool HsScratch::reserve(const hs_database_t* db) noexcept {
  return db && hs_alloc_scratch(db, &s_) == HS_SUCCESS;
}

HsScratch HsScratch::clone() const noexcept {
  HsScratch c;
  if (s_ && hs_clone_scratch(s_, &c.s_) != HS_SUCCESS) c.s_ = nullptr;
  return c;
}

std::unique_ptr<HsDatabase> HsDatabase::compile(std::span<const HsPattern> patterns, Mode mode,
                                                HsCompileError& err) {
  err = {};
  if (patterns.empty()) {
    err.message = "no patterns";
    return nullptr;
  }
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < patterns.size(); ++i) {
    const HsPattern& p = patterns[i];
    if (p.id >= 64) {
      err.expression = static_cast<int>(i);
      err.message = "id " + std::to_string(p.id) + " out of range (ids are 0..63)";
      return nullptr;
    }
    exprs.push_back(p.expression.c_str());
    flags.push_back(p.flags | HS_FLAG_SINGLEMATCH);
    ids.push_back(p.id);
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* ce = nullptr;
  unsigned hs_mode = mode == Mode::block ? HS_MODE_BLOCK : HS_MODE_STREAM;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                       hs_mode, nullptr, &db, &ce) != HS_SUCCESS) {
    err.expression = ce ? ce->expression : -1;
    err.message = ce && ce->message ? ce->message : "hs_compile_multi failed";
    hs_free_compile_error(ce);
    return nullptr;
  }
  return std::unique_ptr<HsDatabase>(new HsDatabase(db, mode));
}

HsDatabase::~HsDatabase() { hs_free_database(db_); }

size_t HsDatabase::stream_size() const noexcept {
  size_t sz = 0;
  if (mode_ != Mode::stream || hs_stream_size(db_, &sz) != HS_SUCCESS) return 0;
  return sz;
}

size_t HsDatabase::database_size() const noexcept {
  size_t sz = 0;
  return hs_database_size(db_, &sz) == HS_SUCCESS ? sz : 0;
}

int hs_collect_mask(unsigned id, unsigned long long, unsigned long long, unsigned,
                    void* ctx) noexcept {
  *static_cast<uint64_t*>(ctx) |= uint64_t{1} << (id & 63);
  return 0;
}

namespace {
int stop_at_first(unsigned id, unsigned long long, unsigned long long, unsigned,
                  void* ctx) noexcept {
  *static_cast<int*>(ctx) = static_cast<int>(id);
  return 1;
}
}  // namespace

uint64_t HsDatabase::match(std::string_view s, HsScratch& scratch) const noexcept {
  uint64_t mask = 0;
  if (mode_ != Mode::block || !scratch.valid()) return 0;
  if (hs_scan(db_, s.empty() ? "" : s.data(), static_cast<unsigned>(s.size()), 0, scratch.get(),
              hs_collect_mask, &mask) != HS_SUCCESS)
    return 0;
  return mask;
}

int HsDatabase::first_match(std::string_view s, HsScratch& scratch) const noexcept {
  int id = -1;
  if (mode_ != Mode::block || !scratch.valid()) return -1;
  hs_error_t rc = hs_scan(db_, s.empty() ? "" : s.data(), static_cast<unsigned>(s.size()), 0,
                          scratch.get(), stop_at_first, &id);
  return rc == HS_SUCCESS || rc == HS_SCAN_TERMINATED ? id : -1;
}

}  // namespace aiqos

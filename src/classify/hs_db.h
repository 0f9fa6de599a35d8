// Hyperscan databases for policy rules, compiled on the control path and
// shared read-only by workers, plus the per-worker scratch they scan with.
//
// Ownership (GUIDE: say who writes what):
// - HsDatabase: built by the control plane, immutable afterwards; any number
//   of workers scan it concurrently. Freed by the control plane after an RCU
//   grace period once no worker can still hold it.
// - HsScratch: one per worker (hs_clone_scratch of a prototype the control
//   plane sized for every database it publishes); only its worker uses it.
//
// Block mode serves short strings (path, :authority, header values); stream
// mode serves request bodies (see BodyMatcher in json_model.h). They are
// separate databases, as Hyperscan requires.
#pragma once

#include <hs.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace aiqos {

struct HsPattern {
  uint32_t id = 0;         // reported on match; must be < 64 (a bit in a mask)
  std::string expression;  // PCRE-like syntax, no delimiters
  unsigned flags = 0;      // HS_FLAG_* (HS_FLAG_SINGLEMATCH is always added)
};

// Why a compile failed, for the control plane to show the user.
struct HsCompileError {
  int expression = -1;  // index into the pattern list; -1: not one pattern's fault
  std::string message;
  // "pattern 3 (id 7, \"a(b\"): Missing close parenthesis for group ..."
  std::string describe(std::span<const HsPattern> patterns) const;
};

class HsScratch {
 public:
  HsScratch() = default;
  ~HsScratch();
  HsScratch(HsScratch&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  HsScratch& operator=(HsScratch&& o) noexcept;
  HsScratch(const HsScratch&) = delete;
  HsScratch& operator=(const HsScratch&) = delete;

  // Control path: grow this scratch so that it can also scan `db`.
  bool reserve(const hs_database_t* db) noexcept;
  // Worker setup: a private copy (hs_clone_scratch). Empty on failure.
  HsScratch clone() const noexcept;

  bool valid() const noexcept { return s_ != nullptr; }
  hs_scratch_t* get() const noexcept { return s_; }

 private:
  hs_scratch_t* s_ = nullptr;
};

class HsDatabase {
 public:
  enum class Mode : uint8_t { block, stream };

  // Compiles all patterns into one database. On failure returns null and
  // fills `err`. An empty list is an error (Hyperscan has no empty database).
  static std::unique_ptr<HsDatabase> compile(std::span<const HsPattern> patterns, Mode mode,
                                             HsCompileError& err);
  ~HsDatabase();
  HsDatabase(const HsDatabase&) = delete;
  HsDatabase& operator=(const HsDatabase&) = delete;

  const hs_database_t* get() const noexcept { return db_; }
  Mode mode() const noexcept { return mode_; }
  // Bytes of per-stream state (stream mode), 0 for block mode.
  size_t stream_size() const noexcept;
  // Bytes of the compiled database.
  size_t database_size() const noexcept;

  // Block mode only. Bit `id` set for every pattern that matches `s`.
  // A scan error (bad scratch) returns 0: fail open.
  uint64_t match(std::string_view s, HsScratch& scratch) const noexcept;
  // Block mode only. The id of the first match Hyperscan reports (the one
  // ending earliest in `s`), or -1; stops scanning at that match.
  int first_match(std::string_view s, HsScratch& scratch) const noexcept;

 private:
  HsDatabase(hs_database_t* db, Mode mode) : db_(db), mode_(mode) {}
  hs_database_t* db_;
  Mode mode_;
};

// Matches from a stream-mode scan collected into a bitmask (an hs callback).
int hs_collect_mask(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void* ctx) noexcept;

}  // namespace aiqos

#include "classify/grpc.h"

#include <algorithm>
#include <array>

namespace aiqos {
namespace {

constexpr std::array<const char*, static_cast<size_t>(GrpcError::count_)> kErrorNames = {
#define X(name, desc) #name,
    AIQOS_GRPC_ERRORS(X)
#undef X
};

// Protobuf wire types.
enum : uint8_t { kVarint = 0, kI64 = 1, kLen = 2, kSGroup = 3, kEGroup = 4, kI32 = 5 };

}  // namespace

const char* grpc_error_name(GrpcError e) noexcept {
  auto i = static_cast<size_t>(e);
  return i < kErrorNames.size() ? kErrorNames[i] : "?";
}

std::optional<GrpcPath> parse_grpc_path(std::string_view path) noexcept {
  if (path.size() < 4 || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size())
    return std::nullopt;
  GrpcPath out{.service = path.substr(0, slash), .method = path.substr(slash + 1)};
  if (out.method.find('/') != std::string_view::npos) return std::nullopt;
  return out;
}

bool GrpcModelDecoder::on_tag(uint64_t tag) noexcept {
  if (tag > UINT32_MAX) return fail(GrpcError::bad_varint);
  const uint64_t field = tag >> 3;
  const auto wt = static_cast<uint8_t>(tag & 7);
  if (field == 0) return fail(GrpcError::bad_tag);
  switch (wt) {
    case kVarint:
      st_ = St::varint;
      return true;
    case kI64:
    case kI32:
      skip_ = wt == kI64 ? 8 : 4;
      if (skip_ > msg_left_) return fail(GrpcError::bad_length);
      st_ = St::skip;
      return true;
    case kLen:
      len_is_model_ = field == 1 && group_depth_ == 0;
      st_ = St::len;
      return true;
    case kSGroup:
      if (++group_depth_ > kMaxGroupDepth) return fail(GrpcError::bad_group);
      return true;
    case kEGroup:
      if (group_depth_ == 0) return fail(GrpcError::bad_group);
      --group_depth_;
      return true;
    default:
      return fail(GrpcError::bad_tag);
  }
}

bool GrpcModelDecoder::on_len(uint64_t len) noexcept {
  if (len > msg_left_) return fail(GrpcError::bad_length);
  skip_ = len;
  if (len_is_model_) {
    if (model_started_) msg_.duplicate_model = true;
    model_started_ = true;
    msg_.model.clear();
    msg_.has_model = len == 0;
    st_ = len ? St::model : St::tag;
  } else {
    st_ = len ? St::skip : St::tag;
  }
  return true;
}

GrpcModelDecoder::Result GrpcModelDecoder::feed(std::span<const uint8_t> in) noexcept {
  Result r;
  if (failed()) {
    r.consumed = in.size();  // a failed decoder drops everything
    return r;
  }
  const uint8_t* p = in.data();
  const uint8_t* const end = p + in.size();
  while (p < end) {
    if (done_) {
      msg_ = {};
      model_started_ = false;
      done_ = false;
    }
    switch (st_) {
      case St::header: {
        hdr_[hdr_n_++] = *p++;
        if (hdr_n_ < 5) continue;
        hdr_n_ = 0;
        if (hdr_[0] > 1) {
          fail(GrpcError::bad_flag);
          r.consumed = static_cast<size_t>(p - in.data());
          return r;
        }
        msg_left_ = static_cast<uint32_t>(hdr_[1]) << 24 | static_cast<uint32_t>(hdr_[2]) << 16 |
                    static_cast<uint32_t>(hdr_[3]) << 8 | hdr_[4];
        msg_.length = msg_left_;
        msg_.compressed = hdr_[0] == 1;
        group_depth_ = 0;
        v_ = 0;
        vn_ = 0;
        if (msg_.compressed) {
          skip_ = msg_left_;
          st_ = St::compressed;
        } else {
          st_ = St::tag;
        }
        break;
      }
      case St::tag:
      case St::varint:
      case St::len: {
        const uint8_t c = *p++;
        --msg_left_;
        if (vn_ < 10) v_ |= uint64_t{c & 0x7fu} << (7 * vn_);
        ++vn_;
        if (c & 0x80) {
          if (vn_ >= (st_ == St::tag ? 5 : 10)) {
            fail(GrpcError::bad_varint);
          } else if (msg_left_ == 0) {
            fail(GrpcError::bad_length);
          }
          break;
        }
        const uint64_t v = v_;
        const St was = st_;
        v_ = 0;
        vn_ = 0;
        if (was == St::tag) {
          // A varint or a length must follow inside this message.
          if (on_tag(v) && (st_ == St::varint || st_ == St::len) && msg_left_ == 0)
            fail(GrpcError::bad_length);
        } else if (was == St::len) {
          on_len(v);
        } else {
          st_ = St::tag;
        }
        break;
      }
      case St::skip:
      case St::model:
      case St::compressed: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(skip_, end - p));
        if (st_ == St::model) msg_.model.append({reinterpret_cast<const char*>(p), n});
        p += n;
        skip_ -= n;
        msg_left_ -= static_cast<uint32_t>(n);
        if (skip_ == 0 && st_ != St::compressed) {
          if (st_ == St::model) msg_.has_model = true;
          st_ = St::tag;
        }
        break;
      }
    }
    if (failed()) {
      r.consumed = static_cast<size_t>(p - in.data());
      return r;
    }
    const bool complete =
        (st_ == St::tag && vn_ == 0 && msg_left_ == 0) || (st_ == St::compressed && skip_ == 0);
    if (complete) {
      if (group_depth_ != 0) {
        fail(GrpcError::bad_group);
        r.consumed = static_cast<size_t>(p - in.data());
        return r;
      }
      st_ = St::header;
      done_ = true;
      ++n_messages_;
      r.consumed = static_cast<size_t>(p - in.data());
      r.message_done = true;
      return r;
    }
  }
  r.consumed = in.size();
  return r;
}

GrpcError GrpcModelDecoder::finish() noexcept {
  if (!failed() && (st_ != St::header || hdr_n_ != 0)) err_ = GrpcError::truncated;
  return err_;
}

}  // namespace aiqos

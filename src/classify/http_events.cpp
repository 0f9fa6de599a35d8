#include "classify/http_events.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace aiqos {

const char* l7_error_name(L7Error e) noexcept {
  switch (e) {
#define X(name, desc) \
  case L7Error::name: \
    return #name;
    AIQOS_L7_ERROR(X)
#undef X
    case L7Error::count_:
      break;
  }
  return "?";
}

namespace {
bool is_lower_tchar(char c) noexcept {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}
}  // namespace

bool ExtraHeaderNames::add(std::string_view n) noexcept {
  if (n_ >= kMaxExtraHeaders || n.empty() || n.size() > kMaxExtraNameLen) return false;
  for (char c : n)
    if (!is_lower_tchar(c)) return false;
  if (find(n) >= 0) return false;
  std::memcpy(names_[n_].data(), n.data(), n.size());
  lens_[n_] = static_cast<uint8_t>(n.size());
  ++n_;
  return true;
}

int ExtraHeaderNames::find(std::string_view n) const noexcept {
  for (size_t i = 0; i < n_; ++i)
    if (name(i) == n) return static_cast<int>(i);
  return -1;
}

bool HeadCapture::init(const CaptureConfig& cfg) noexcept {
  cfg_ = &cfg;
  cap_ = cfg.max_value_len;
  n_slots_ = static_cast<uint8_t>(kFixedFields + cfg.extra.size());
  buf_ = new (std::nothrow) char[size_t(cap_) * n_slots_ + 1];
  reset();
  return buf_ != nullptr;
}

void HeadCapture::reset() noexcept {
  lens_.fill(0);
  truncated_ = 0;
  set_mask_ = 0;
}

int HeadCapture::slot_for(std::string_view n) const noexcept {
  if (n.empty()) return -1;
  if (n[0] == ':') {
    if (n == ":method") return kMethod;
    if (n == ":path") return kPath;
    if (n == ":authority") return kAuthority;
    return -1;
  }
  if (n == "content-type") return kContentType;
  if (n == "host") return kAuthority;
  int i = cfg_->extra.find(n);
  return i < 0 ? -1 : kFixedFields + i;
}

void HeadCapture::set(int slot, std::string_view v) noexcept {
  if (slot < 0 || has(slot)) return;
  mark_set(slot);
  append(slot, v);
}

void HeadCapture::append(int slot, std::string_view part) noexcept {
  if (slot < 0) return;
  size_t room = cap_ - lens_[slot];
  size_t n = std::min(room, part.size());
  if (n < part.size()) truncated_ |= static_cast<uint16_t>(1u << slot);
  std::memcpy(buf_ + size_t(slot) * cap_ + lens_[slot], part.data(), n);
  lens_[slot] = static_cast<uint16_t>(lens_[slot] + n);
}

void HeadCapture::trim_trailing_ows(int slot) noexcept {
  const char* p = buf_ + size_t(slot) * cap_;
  while (lens_[slot] > 0 && (p[lens_[slot] - 1] == ' ' || p[lens_[slot] - 1] == '\t')) --lens_[slot];
}

void HeadCapture::fill(RequestHead& h) const noexcept {
  h.method = get(kMethod);
  h.path = get(kPath);
  h.authority = get(kAuthority);
  h.content_type = get(kContentType);
  for (size_t i = 0; i + kFixedFields < n_slots_; ++i) h.extra[i] = get(int(kFixedFields + i));
  h.truncated = truncated_;
}

}  // namespace aiqos

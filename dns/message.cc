#include "dns/message.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "dns/name.h"

namespace shoal::dns {
namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed DNS message: ", what));
}

class Reader {
 public:
  explicit Reader(absl::string_view p) : p_(p) {}

  size_t pos() const { return pos_; }
  size_t size() const { return p_.size(); }

  absl::StatusOr<uint8_t> U8(absl::string_view what) {
    if (pos_ + 1 > p_.size()) return Malformed(absl::StrCat(what, " truncated"));
    return static_cast<uint8_t>(p_[pos_++]);
  }
  absl::StatusOr<uint16_t> U16(absl::string_view what) {
    if (pos_ + 2 > p_.size()) return Malformed(absl::StrCat(what, " truncated"));
    uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(p_[pos_]) << 8) |
                                       static_cast<uint8_t>(p_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  absl::StatusOr<uint32_t> U32(absl::string_view what) {
    if (pos_ + 4 > p_.size()) return Malformed(absl::StrCat(what, " truncated"));
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p_[pos_ + i]);
    pos_ += 4;
    return v;
  }
  absl::StatusOr<absl::string_view> Bytes(size_t n, absl::string_view what) {
    if (pos_ + n > p_.size()) return Malformed(absl::StrCat(what, " truncated"));
    absl::string_view v = p_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  // Reads a possibly compressed name. Pointers must point strictly before the label that
  // holds them, so decoding always terminates.
  absl::StatusOr<std::string> Name(absl::string_view what) {
    std::vector<std::string> labels;
    size_t wire = 1;
    size_t cur = pos_;
    bool jumped = false;
    while (true) {
      if (cur >= p_.size()) return Malformed(absl::StrCat(what, " name truncated"));
      uint8_t len = static_cast<uint8_t>(p_[cur]);
      if ((len & 0xC0) == 0xC0) {
        if (cur + 1 >= p_.size()) return Malformed(absl::StrCat(what, " name pointer truncated"));
        size_t target = ((len & 0x3F) << 8) | static_cast<uint8_t>(p_[cur + 1]);
        if (target >= cur) return Malformed(absl::StrCat(what, " name pointer not backward"));
        if (!jumped) pos_ = cur + 2;
        jumped = true;
        cur = target;
        continue;
      }
      if ((len & 0xC0) != 0) return Malformed(absl::StrCat(what, " name has unknown label type"));
      if (len == 0) {
        if (!jumped) pos_ = cur + 1;
        break;
      }
      if (cur + 1 + len > p_.size()) return Malformed(absl::StrCat(what, " label truncated"));
      wire += len + 1;
      if (wire > kMaxNameWireLength) return Malformed(absl::StrCat(what, " name over 255 bytes"));
      labels.emplace_back(p_.substr(cur + 1, len));
      cur += 1 + len;
    }
    return JoinLabels(labels);
  }

 private:
  absl::string_view p_;
  size_t pos_ = 0;
};

class Writer {
 public:
  std::string& out() { return out_; }

  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) {
    out_.push_back(static_cast<char>(v >> 8));
    out_.push_back(static_cast<char>(v & 0xff));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v & 0xffff));
  }
  void Put16At(size_t at, uint16_t v) {
    out_[at] = static_cast<char>(v >> 8);
    out_[at + 1] = static_cast<char>(v & 0xff);
  }

  absl::Status Name(absl::string_view name, bool compress) {
    auto labels_or = SplitName(name);
    if (!labels_or.ok()) return labels_or.status();
    const std::vector<std::string>& labels = *labels_or;
    for (size_t i = 0; i < labels.size(); ++i) {
      std::string key;
      for (size_t j = i; j < labels.size(); ++j) {
        absl::StrAppend(&key, labels[j].size(), ":", CanonicalName(labels[j]), "|");
      }
      if (compress) {
        auto it = offsets_.find(key);
        if (it != offsets_.end()) {
          U16(static_cast<uint16_t>(0xC000 | it->second));
          return absl::OkStatus();
        }
      }
      if (out_.size() < 0x4000) offsets_.emplace(std::move(key), out_.size());
      U8(static_cast<uint8_t>(labels[i].size()));
      out_.append(labels[i]);
    }
    U8(0);
    return absl::OkStatus();
  }

 private:
  std::string out_;
  absl::flat_hash_map<std::string, size_t> offsets_;
};

absl::StatusOr<Rdata> ParseRdata(Reader& r, uint16_t type, uint16_t klass, uint16_t rdlen) {
  size_t start = r.pos();
  size_t end = start + rdlen;
  if (end > r.size()) return Malformed("rdata truncated");
  Rdata data;
  auto expect_end = [&]() -> absl::Status {
    if (r.pos() != end) return Malformed("rdata length does not match its content");
    return absl::OkStatus();
  };
  if (klass != kClassIn) type = 0;  // unknown class: keep raw
  switch (type) {
    case kTypeA: {
      if (rdlen != 4) return Malformed("A rdata is not 4 bytes");
      Ip4 ip;
      for (auto& b : ip) b = *r.U8("A");
      data = ip;
      break;
    }
    case kTypeAaaa: {
      if (rdlen != 16) return Malformed("AAAA rdata is not 16 bytes");
      Ip6 ip;
      for (auto& b : ip) b = *r.U8("AAAA");
      data = ip;
      break;
    }
    case kTypeCname:
    case kTypeNs:
    case kTypePtr: {
      auto name = r.Name("rdata");
      if (!name.ok()) return name.status();
      data = *std::move(name);
      break;
    }
    case kTypeSrv: {
      SrvData s;
      auto p = r.U16("SRV priority");
      auto w = r.U16("SRV weight");
      auto port = r.U16("SRV port");
      if (!p.ok() || !w.ok() || !port.ok()) return Malformed("SRV rdata truncated");
      s.priority = *p, s.weight = *w, s.port = *port;
      auto t = r.Name("SRV target");
      if (!t.ok()) return t.status();
      s.target = *std::move(t);
      data = std::move(s);
      break;
    }
    case kTypeMx: {
      MxData m;
      auto p = r.U16("MX preference");
      if (!p.ok()) return p.status();
      m.preference = *p;
      auto t = r.Name("MX exchange");
      if (!t.ok()) return t.status();
      m.exchange = *std::move(t);
      data = std::move(m);
      break;
    }
    case kTypeSoa: {
      SoaData s;
      auto m = r.Name("SOA mname");
      if (!m.ok()) return m.status();
      auto n = r.Name("SOA rname");
      if (!n.ok()) return n.status();
      s.mname = *std::move(m), s.rname = *std::move(n);
      uint32_t* f[] = {&s.serial, &s.refresh, &s.retry, &s.expire, &s.minimum};
      for (uint32_t* v : f) {
        auto x = r.U32("SOA field");
        if (!x.ok()) return x.status();
        *v = *x;
      }
      data = std::move(s);
      break;
    }
    default: {
      auto b = r.Bytes(rdlen, "rdata");
      if (!b.ok()) return b.status();
      data = RawData{std::string(*b)};
      break;
    }
  }
  if (absl::Status s = expect_end(); !s.ok()) return s;
  return data;
}

absl::Status WriteRdata(Writer& w, const Record& rec) {
  return std::visit(
      [&](const auto& d) -> absl::Status {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, RawData>) {
          w.out().append(d.bytes);
        } else if constexpr (std::is_same_v<T, Ip4> || std::is_same_v<T, Ip6>) {
          for (uint8_t b : d) w.U8(b);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return w.Name(d, /*compress=*/true);
        } else if constexpr (std::is_same_v<T, SrvData>) {
          w.U16(d.priority), w.U16(d.weight), w.U16(d.port);
          return w.Name(d.target, /*compress=*/false);  // RFC 2782: no compression
        } else if constexpr (std::is_same_v<T, MxData>) {
          w.U16(d.preference);
          return w.Name(d.exchange, true);
        } else if constexpr (std::is_same_v<T, SoaData>) {
          if (absl::Status s = w.Name(d.mname, true); !s.ok()) return s;
          if (absl::Status s = w.Name(d.rname, true); !s.ok()) return s;
          w.U32(d.serial), w.U32(d.refresh), w.U32(d.retry), w.U32(d.expire), w.U32(d.minimum);
        }
        return absl::OkStatus();
      },
      rec.data);
}

absl::Status WriteRecord(Writer& w, const Record& rec) {
  if (absl::Status s = w.Name(rec.name, true); !s.ok()) return s;
  w.U16(rec.type);
  w.U16(rec.klass);
  w.U32(rec.ttl);
  size_t len_at = w.out().size();
  w.U16(0);
  if (absl::Status s = WriteRdata(w, rec); !s.ok()) return s;
  size_t len = w.out().size() - len_at - 2;
  if (len > 0xffff) return absl::InvalidArgumentError("rdata longer than 65535 bytes");
  w.Put16At(len_at, static_cast<uint16_t>(len));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Encode(const Message& msg, bool truncated) {
  Writer w;
  const Header& h = msg.header;
  w.U16(h.id);
  uint16_t flags = static_cast<uint16_t>((h.qr << 15) | ((h.opcode & 0xf) << 11) | (h.aa << 10) |
                                         ((h.tc || truncated) << 9) | (h.rd << 8) | (h.ra << 7) |
                                         (h.ad << 5) | (h.cd << 4) | (h.rcode & 0xf));
  w.U16(flags);
  size_t an = truncated ? 0 : msg.answers.size();
  size_t ns = truncated ? 0 : msg.authority.size();
  size_t ar = (truncated ? 0 : msg.additional.size()) + (msg.edns ? 1 : 0);
  if (msg.questions.size() > 0xffff || an > 0xffff || ns > 0xffff || ar > 0xffff) {
    return absl::InvalidArgumentError("too many records for one message");
  }
  w.U16(static_cast<uint16_t>(msg.questions.size()));
  w.U16(static_cast<uint16_t>(an));
  w.U16(static_cast<uint16_t>(ns));
  w.U16(static_cast<uint16_t>(ar));
  for (const Question& q : msg.questions) {
    if (absl::Status s = w.Name(q.name, true); !s.ok()) return s;
    w.U16(q.type);
    w.U16(q.klass);
  }
  if (!truncated) {
    for (const auto* section : {&msg.answers, &msg.authority, &msg.additional}) {
      for (const Record& rec : *section) {
        if (absl::Status s = WriteRecord(w, rec); !s.ok()) return s;
      }
    }
  }
  if (msg.edns) {
    w.U8(0);  // root name
    w.U16(kTypeOpt);
    w.U16(std::max<uint16_t>(msg.edns->udp_size, kClassicUdpSize));
    w.U8(static_cast<uint8_t>(h.rcode >> 4));
    w.U8(msg.edns->version);
    w.U16(msg.edns->dnssec_ok ? 0x8000 : 0);
    if (msg.edns->options.size() > 0xffff) return absl::InvalidArgumentError("EDNS options");
    w.U16(static_cast<uint16_t>(msg.edns->options.size()));
    w.out().append(msg.edns->options);
  }
  return std::move(w.out());
}

}  // namespace

absl::StatusOr<Header> ParseHeader(absl::string_view packet) {
  if (packet.size() < kHeaderSize) return Malformed("shorter than the 12-byte header");
  Reader r(packet);
  Header h;
  h.id = *r.U16("id");
  uint16_t f = *r.U16("flags");
  h.qr = f >> 15;
  h.opcode = (f >> 11) & 0xf;
  h.aa = (f >> 10) & 1;
  h.tc = (f >> 9) & 1;
  h.rd = (f >> 8) & 1;
  h.ra = (f >> 7) & 1;
  h.ad = (f >> 5) & 1;
  h.cd = (f >> 4) & 1;
  h.rcode = f & 0xf;
  return h;
}

absl::StatusOr<Message> ParseMessage(absl::string_view packet) {
  Message m;
  auto h = ParseHeader(packet);
  if (!h.ok()) return h.status();
  m.header = *h;
  Reader r(packet);
  (void)r.Bytes(4, "header");
  uint16_t qd = *r.U16("qdcount"), an = *r.U16("ancount"), ns = *r.U16("nscount"),
           ar = *r.U16("arcount");
  for (uint16_t i = 0; i < qd; ++i) {
    Question q;
    auto name = r.Name("question");
    if (!name.ok()) return name.status();
    q.name = *std::move(name);
    auto t = r.U16("question type");
    if (!t.ok()) return t.status();
    auto c = r.U16("question class");
    if (!c.ok()) return c.status();
    q.type = *t, q.klass = *c;
    m.questions.push_back(std::move(q));
  }
  struct Section {
    uint16_t count;
    std::vector<Record>* out;
    bool additional;
  };
  for (Section s : {Section{an, &m.answers, false}, Section{ns, &m.authority, false},
                    Section{ar, &m.additional, true}}) {
    for (uint16_t i = 0; i < s.count; ++i) {
      Record rec;
      auto name = r.Name("record");
      if (!name.ok()) return name.status();
      rec.name = *std::move(name);
      auto t = r.U16("record type");
      auto c = r.U16("record class");
      auto ttl = r.U32("record ttl");
      auto len = r.U16("record rdlength");
      if (!t.ok() || !c.ok() || !ttl.ok() || !len.ok()) return Malformed("record header truncated");
      rec.type = *t, rec.klass = *c, rec.ttl = *ttl;
      if (rec.type == kTypeOpt) {
        if (!s.additional) return Malformed("OPT record outside the additional section");
        if (m.edns) return Malformed("more than one OPT record");
        if (!rec.name.empty()) return Malformed("OPT record with a non-root name");
        auto opts = r.Bytes(*len, "OPT options");
        if (!opts.ok()) return opts.status();
        Edns e;
        e.udp_size = rec.klass;
        m.header.rcode = static_cast<uint16_t>(m.header.rcode | ((rec.ttl >> 24) << 4));
        e.version = static_cast<uint8_t>((rec.ttl >> 16) & 0xff);
        e.dnssec_ok = (rec.ttl >> 15) & 1;
        e.options = std::string(*opts);
        m.edns = std::move(e);
        continue;
      }
      auto data = ParseRdata(r, rec.type, rec.klass, *len);
      if (!data.ok()) return data.status();
      rec.data = *std::move(data);
      s.out->push_back(std::move(rec));
    }
  }
  if (r.pos() != packet.size()) return Malformed("trailing bytes after the last record");
  return m;
}

absl::StatusOr<std::string> BuildMessage(const Message& msg, size_t max_size) {
  max_size = std::max(max_size, kClassicUdpSize);
  auto full = Encode(msg, /*truncated=*/false);
  if (!full.ok()) return full.status();
  if (full->size() <= max_size) return full;
  return Encode(msg, /*truncated=*/true);
}

Message MakeResponse(const Message& query, uint16_t rcode, uint16_t our_udp_size) {
  Message r;
  r.header.id = query.header.id;
  r.header.qr = true;
  r.header.opcode = query.header.opcode;
  r.header.rd = query.header.rd;
  r.header.cd = query.header.cd;
  r.header.rcode = rcode;
  r.questions = query.questions;
  if (query.edns) {
    Edns e;
    e.udp_size = our_udp_size;
    r.edns = e;
  }
  return r;
}

}  // namespace shoal::dns

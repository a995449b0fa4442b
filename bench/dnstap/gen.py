#!/usr/bin/env python3
"""Writes a large dnstap Frame Streams file of realistic responses.

usage: gen.py OUT MESSAGES [SEED [MODE]]

Messages alternate between CLIENT_RESPONSE (stub-facing, no query_zone) and
RESOLVER_RESPONSE (upstream, query_zone = the zone asked). Names are drawn from
~400k hosts under ~40k domains; answers are A (1-4 addresses), AAAA, CNAME+A,
MX, TXT, NS+glue (resolver referrals, glue in additional) and NXDOMAIN+SOA.

MODE `realistic` (default): name popularity follows a Zipf law (s = 1) and
each name keeps its answers (a stable address set, with 5% of A answers
drawn from a per-name pool of 8, as CDNs rotate), so records repeat as they
do in a resolver's traffic. MODE `unique`: every address is random, nearly
every record is new (the store's worst case).
Protobuf and DNS wire are encoded by hand (no dependencies). Prints the
number of resource records (= entries dnsrecall stores) on stdout.
"""
import itertools
import random
import struct
import sys
import zlib

CT = b"protobuf:dnstap.Dnstap"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(tag, data):
    return varint(tag << 3 | 2) + varint(len(data)) + data


def field_varint(tag, n):
    return varint(tag << 3) + varint(n)


def field_fixed32(tag, n):
    return varint(tag << 3 | 5) + struct.pack("<I", n)


def wire_name(name):
    out = bytearray()
    for label in name.split("."):
        if label:
            out.append(len(label))
            out += label.encode()
    out.append(0)
    return bytes(out)


def rr(owner_ptr, rtype, ttl, rdata):
    return owner_ptr + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


class Answers:
    """The answers one name keeps (realistic mode), derived from its name."""

    __slots__ = ("a", "pool", "aaaa", "cname", "cname_a", "mx", "glue")

    def __init__(self, name):
        r = random.Random(zlib.crc32(name.encode()))
        addr = lambda: bytes([r.randrange(1, 224), r.randrange(256), r.randrange(256), r.randrange(1, 255)])
        self.a = [addr() for _ in range(r.randrange(1, 5))]
        self.pool = [addr() for _ in range(8)]
        self.aaaa = b"\x20\x01\x0d\xb8" + r.randbytes(12)
        self.cname = f"edge{r.randrange(500)}.cdn{r.randrange(50)}.net"
        self.cname_a = [bytes([23, r.randrange(256), r.randrange(256), r.randrange(1, 255)]) for _ in range(4)]
        self.mx = r.randrange(3)
        self.glue = r.randrange(256)


def main():
    out_path, count = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 20241122)
    mode = sys.argv[4] if len(sys.argv) > 4 else "realistic"
    if mode not in ("realistic", "unique"):
        sys.exit(f"unknown mode {mode!r}: realistic or unique")
    realistic = mode == "realistic"
    tlds = ["com", "net", "org", "de", "fr", "io", "test", "example"]
    domains = [f"d{i}x{rng.randrange(1 << 20):x}.{tlds[i % len(tlds)]}" for i in range(40000)]
    hosts = ["www", "mail", "api", "cdn", "static", "m", "app", "img", "ns1", "ns2"]
    # Every (host, sub, domain) triple, in a random popularity order.
    population = list(itertools.product(range(len(hosts)), range(10), range(len(domains))))
    rng.shuffle(population)
    zipf = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(population))))
    known = {}
    picks = []
    records = 0
    qptr = b"\xc0\x0c"  # the question name, always at offset 12
    with open(out_path, "wb") as f:
        f.write(struct.pack(">III", 0, 12 + len(CT), 2) + struct.pack(">I", 1) + struct.pack(">I", len(CT)) + CT)
        buf = bytearray()
        t0 = 1_730_000_000
        for i in range(count):
            if realistic:
                if not picks:
                    picks = rng.choices(population, cum_weights=zipf, k=10000)
                hi, sub, di = picks.pop()
                d, h = domains[di], hosts[hi]
            else:
                d = domains[rng.randrange(len(domains))]
                h = hosts[rng.randrange(len(hosts))]
                sub = rng.randrange(10)
            name = f"{h}{sub}.{d}" if sub else f"{h}.{d}"
            keep = None
            if realistic:
                keep = known.get(name)
                if keep is None:
                    keep = known[name] = Answers(name)
            kind = rng.random()
            answers, authority, additional = [], [], []
            rcode = 0
            if kind < 0.45:
                qtype = 1
                if keep:
                    addrs = [rng.choice(keep.pool)] if rng.random() < 0.05 else keep.a
                else:
                    addrs = [bytes([rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)]) for _ in range(rng.randrange(1, 5))]
                for a in addrs:
                    answers.append(rr(qptr, 1, 300, a))
            elif kind < 0.60:
                qtype = 28
                answers.append(rr(qptr, 28, 300, keep.aaaa if keep else b"\x20\x01\x0d\xb8" + rng.randbytes(12)))
            elif kind < 0.72:
                qtype = 1
                cname = keep.cname if keep else f"edge{rng.randrange(500)}.cdn{rng.randrange(50)}.net"
                target = wire_name(cname)
                answers.append(rr(qptr, 5, 600, target))
                # the CNAME target starts at 12 + len(qname) + 4 + 12
                tptr = struct.pack(">H", 0xC000 | (12 + len(wire_name(name)) + 4 + 12))
                a = rng.choice(keep.cname_a) if keep else bytes([23, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
                answers.append(rr(tptr, 1, 60, a))
            elif kind < 0.80:
                qtype = 15
                mx = keep.mx if keep else rng.randrange(3)
                answers.append(rr(qptr, 15, 3600, struct.pack(">H", 10) + wire_name(f"mx{mx}.{d}")))
            elif kind < 0.86:
                qtype = 16
                text = f"v=spf1 include:_spf.{d} ~all".encode()
                answers.append(rr(qptr, 16, 3600, bytes([len(text)]) + text))
            elif kind < 0.95:
                qtype = 2
                for n in (1, 2):
                    answers.append(rr(qptr, 2, 86400, wire_name(f"ns{n}.{d}")))
                glue = zlib.crc32(d.encode()) & 255 if keep else None
                for n in (1, 2):
                    additional.append(rr(b"", 1, 86400, bytes([198, 51, rng.randrange(256) if glue is None else glue, n])))
            else:
                qtype = 1
                rcode = 3
                authority.append(rr(b"", 6, 900, wire_name(f"ns1.{d}") + wire_name(f"hostmaster.{d}") + struct.pack(">IIIII", 2024010101, 7200, 3600, 1209600, 300)))
            qname = wire_name(name)
            # additional/authority owners are written uncompressed
            additional = [wire_name(f"ns{n + 1}.{d}") + a for n, a in enumerate(additional)]
            authority = [wire_name(d) + a for a in authority]
            flags = 0x8180 | rcode
            msg = struct.pack(">HHHHHH", rng.randrange(65536), flags, 1, len(answers), len(authority), len(additional))
            msg += qname + struct.pack(">HH", qtype, 1) + b"".join(answers) + b"".join(authority) + b"".join(additional)
            records += len(answers) + len(authority) + len(additional)
            resolver = i % 2 == 1
            t = t0 + i // 2000
            m = field_varint(1, 4 if resolver else 6) + field_varint(2, 1) + field_varint(3, 1)
            m += field_bytes(4, bytes([10, 0, rng.randrange(256), rng.randrange(1, 255)])) + field_bytes(5, bytes([192, 0, 2, 53]))
            m += field_varint(6, rng.randrange(1024, 65535)) + field_varint(7, 53)
            if resolver:
                m += field_bytes(11, wire_name(d))
            m += field_varint(12, t) + field_fixed32(13, rng.randrange(1_000_000_000)) + field_bytes(14, msg)
            tap = field_bytes(1, b"resolver.bench" if resolver else b"frontend.bench") + field_bytes(14, m) + field_varint(15, 1)
            buf += struct.pack(">I", len(tap)) + tap
            if len(buf) > 1 << 20:
                f.write(buf)
                buf.clear()
        f.write(buf)
        f.write(struct.pack(">III", 0, 4, 3))
    print(records)


if __name__ == "__main__":
    main()

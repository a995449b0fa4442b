#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds cut from the repository's test data
# (tests/data): whole files for the file parsers, single lines for the line
# parsers, DNS messages and dnstap frames extracted from the captures and
# Frame Streams files. Idempotent: seeds are named by content hash.
set -euo pipefail
cd "$(dirname "$0")"
data=../tests/data
corpus=corpus
mkdir -p "$corpus"

python3 - "$data" "$corpus" <<'PY'
import hashlib, os, struct, sys, glob

data, corpus = sys.argv[1], sys.argv[2]
MAX = 64 << 10

def put(target, blob):
    blob = blob[:MAX]
    if not blob:
        return
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

def files(pattern):
    return sorted(p for p in glob.glob(os.path.join(data, pattern), recursive=True)
                  if os.path.isfile(p) and not p.endswith((".jsonl", ".txt", ".yaml", ".out", ".md", ".json")))

# --- captures: whole files, frames for the link decoder, DNS payloads ------
LINK = {1: 1, 101: 7, 113: 9, 228: 10, 229: 11, 276: 12, 0: 0}
dns_messages = []
def pcap_frames(blob):
    if len(blob) < 24:
        return None, []
    magic = blob[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None, []
    linktype = struct.unpack(e + "I", blob[20:24])[0] & 0x0FFFFFFF
    out, off = [], 24
    while off + 16 <= len(blob):
        incl = struct.unpack(e + "I", blob[off + 8:off + 12])[0]
        out.append(blob[off + 16:off + 16 + incl])
        off += 16 + incl
    return linktype, out

def udp_dns(frame, linktype):
    # Ethernet (with VLAN tags) or raw IP; IPv4/IPv6, UDP port 53 only.
    if linktype == 1:
        off, et = 14, frame[12:14]
        while et == b"\x81\x00" and len(frame) >= off + 4:
            et, off = frame[off + 2:off + 4], off + 4
        ip = frame[off:]
    elif linktype in (101, 228, 229, 12, 14):
        ip = frame
    else:
        return None
    if not ip:
        return None
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 17 or struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None
        udp = ip[ihl:]
    elif ip[0] >> 4 == 6 and len(ip) > 40 and ip[6] == 17:
        udp = ip[40:]
    else:
        return None
    if len(udp) < 8 or 53 not in struct.unpack(">HH", udp[:4]):
        return None
    return udp[8:]

for path in files("pcap/**/*"):
    blob = open(path, "rb").read()
    put("pcap_file", blob)
    linktype, frames = pcap_frames(blob)
    if linktype is None:
        continue
    train = b""
    for frame in frames[:64]:
        frame = frame[:2047]
        train += bytes([LINK.get(linktype, 1)]) + struct.pack(">H", len(frame)) + frame
        msg = udp_dns(frame, linktype)
        if msg and msg[2] & 0x80:
            dns_messages.append(msg)
    put("capture_link", train)

# --- Frame Streams files and the dnstap frames inside ----------------------
dnstap_frames = []
for path in files("dnstap/**/*"):
    blob = open(path, "rb").read()
    if blob[:4] != b"\0\0\0\0":
        # A bare protobuf (bind9 fixtures) or zone text.
        if path.endswith(".dnstap"):
            dnstap_frames.append(blob)
        continue
    put("framestream_file", blob)
    put("framestream_session", b"\x40" + blob)
    off = 0
    while off + 4 <= len(blob):
        n = struct.unpack(">I", blob[off:off + 4])[0]
        if n == 0:  # control frame
            if off + 8 > len(blob):
                break
            n = struct.unpack(">I", blob[off + 4:off + 8])[0]
            off += 8 + n
            continue
        dnstap_frames.append(blob[off + 4:off + 4 + n])
        off += 4 + n
for frame in dnstap_frames[:300]:
    put("dnstap_proto", frame)
# A bidirectional session: READY, START, two frames, STOP.
ct = b"protobuf:dnstap.Dnstap"
def control(kind, with_type=True):
    body = struct.pack(">I", kind) + (struct.pack(">II", 1, len(ct)) + ct if with_type else b"")
    return b"\0\0\0\0" + struct.pack(">I", len(body)) + body
session = control(4) + control(2)
for frame in dnstap_frames[:2]:
    session += struct.pack(">I", len(frame)) + frame
session += control(3, False)
put("framestream_session", b"\x07" + session)

# DNS responses out of the dnstap frames (field 14 → 14 response_message):
# a small protobuf walk, enough for these fixtures.
def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        if key is None:
            return
        wt = key & 7
        if wt == 0:
            _, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            if n is None:
                return
            yield key >> 3, buf[i:i + n]
            i += n
        elif wt == 5:
            i += 4
        elif wt == 1:
            i += 8
        else:
            return
def varint(buf, i):
    v = shift = 0
    while i < len(buf):
        b = buf[i]; i += 1
        v |= (b & 0x7F) << shift; shift += 7
        if not b & 0x80:
            return v, i
    return None, i
for frame in dnstap_frames:
    for num, msg in fields(frame):
        if num == 14:
            for sub, val in fields(msg):
                if sub == 14:
                    dns_messages.append(val)
for n, msg in enumerate(dns_messages[:400]):
    put("dns_decode", bytes([n % 9]) + msg)

# --- lines -----------------------------------------------------------------
for path in glob.glob(os.path.join(data, "passivedns/**/*.log"), recursive=True):
    for line in open(path, "rb").read().splitlines()[:40]:
        put("passivedns_line", line)
for path in glob.glob(os.path.join(data, "cof/**/*.ndjson"), recursive=True):
    for line in open(path, "rb").read().splitlines():
        put("cof_line", line)
# rdata presentation: "<type BE16><text>" from COF lines' rrtype/rdata.
import json
MNEMONIC = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
            "LOC": 29, "SRV": 33, "NAPTR": 35, "DS": 43, "SSHFP": 44, "RRSIG": 46, "NSEC": 47,
            "DNSKEY": 48, "NSEC3": 50, "NSEC3PARAM": 51, "TLSA": 52, "SVCB": 64, "HTTPS": 65,
            "SPF": 99, "URI": 256, "CAA": 257, "AFSDB": 18, "HINFO": 13}
for path in glob.glob(os.path.join(data, "cof/**/*.ndjson"), recursive=True):
    for line in open(path, "rb").read().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        rrtype = obj.get("rrtype") if isinstance(obj, dict) else None
        code = MNEMONIC.get(rrtype) if isinstance(rrtype, str) else rrtype if isinstance(rrtype, int) else None
        rdata = obj.get("rdata")
        if code is None or rdata is None:
            continue
        for r in (rdata if isinstance(rdata, list) else [rdata]):
            if isinstance(r, str):
                put("rdata_presentation", struct.pack(">H", code) + r.encode())
for path in glob.glob(os.path.join(data, "passivedns/**/*.log"), recursive=True):
    for line in open(path, "rb").read().splitlines()[:200]:
        parts = line.split(b"||")
        if len(parts) >= 7 and parts[5].decode(errors="replace") in MNEMONIC:
            put("rdata_presentation", struct.pack(">H", MNEMONIC[parts[5].decode()]) + parts[6])

# --- DNSDB paths and parameters, flow files (no fixture files: written out) -
for text in ["rrset/name/www.example.com", "rrset/name/*.example.com/A", "rrset/name/example.*/NS/example.com",
             "rrset/raw/03777777076578616d706c6503636f6d00/ANY", "rdata/ip/192.0.2.0,24",
             "rdata/ip/2001:db8::-2001:db8::ff", "rdata/name/ns1.example.net/NS", "rdata/raw/c0000201/A",
             "+.example.com", "rdata:ns1.example.net", "raw:c0000201/A", "192.0.2.0/24", "%2A.example.com",
             "rrset/name/%2e%2E/A"]:
    put("dnsdb_lookup", text.encode())
for text in ["limit=10&offset=5&time_first_after=-86400", "time_last_before=2024-01-01T00:00:00Z&aggr=true",
             "max_count=0&humantime=1", "2024-01-01,2024-02-01T10:00:00+02:00", "limit=-1&swclient=x"]:
    put("dnsdb_params", text.encode())
put("annotate_flows", b"time,src,dst,bytes\n1700000000,192.0.2.1,198.51.100.7,10\n\"x,y\",::1,2001:db8::1,\"\"\"q\"\"\"\n")
put("annotate_flows", b'{"time":1700000000,"src":"192.0.2.1","dst":"198.51.100.7"}\n{"time":"2024-01-01T00:00:00Z","src":"::1","dst":"x"}\n')
PY
# Structured targets (defrag, tcp_reassembly) read arbitrary's encoding: a
# few random blobs give them a start.
for t in defrag tcp_reassembly; do
  mkdir -p "$corpus/$t"
  for i in 1 2 3 4; do head -c $((i * 512)) /dev/urandom > "$corpus/$t/random$i"; done
done
for d in "$corpus"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done

#!/usr/bin/env python3
"""Inputs of the DNSDB API benchmark (bench/dnsdb/run.sh), deterministic.

gen.py store --records N [--seed S] [--keys K] OUT_DIR
    Writes into OUT_DIR:

    * ``cof.ndjson``: exactly N distinct records (rrname, rrtype, rdata), one
      COF line each: ``{"rrname","rrtype","rdata","bailiwick","time_first",
      "time_last","count","sensor_id"}`` (the line layout of
      bench/gen_cof.py, plus the bailiwick);
    * ``names.txt``: a uniform sample of K owner names, shuffled (wrk rotates
      over it for ``/dnsdb/v2/lookup/rrset/name/NAME``);
    * ``ips.txt``: a uniform sample of K A/AAAA addresses, shuffled
      (``/dnsdb/v2/lookup/rdata/ip/ADDR``);
    * ``meta.json``: parameters, exact counts (records, owner names, distinct
      (name, type) pairs as ``rrsets``, per rrtype and TLD), and the expected
      answer sizes of the scans: ``com_records`` = rows of
      ``rrset/name/*.com`` (dnsrecall answers one row per record),
      ``hot_records`` = rows of ``rdata/ip/10.42.0.0,16``, ``unique_v4`` =
      addresses usable by ``flows``.

gen.py flows FLOWS IPS FILE
    CSV flows ``src_ip,dst_ip,ts,bytes`` written by bench/annotate/gen.py's
    own ``flows()`` (same clients, times and seed), with the destination
    addresses mapped onto the first IPS addresses of the store above instead
    of 100.64.0.0/10. IPS must not exceed ``unique_v4`` of meta.json.

The store is built zone by zone, streaming (memory is the name samples and
the set of zone names). Zones are registered domains under a weighted TLD
mix (com 48 %), each with apex records (NS, SOA, MX, TXT, A, AAAA), the usual
www/mail/... labels (A, AAAA or CNAME to the apex or to a CDN edge), a
``_dmarc`` TXT and a Pareto-tailed number of hosts (a few zones have
thousands). A few infrastructure zones (CDN edge hosts, DNS providers) come
first. Every IPv4 address is in 10.0.0.0/8:

* 10.42.0.0/16 is a shared-hosting block: 20 % of apex and www A records
  point into it, so it holds all of its 65,536 addresses, each with several
  names (about 2.3 % of all records, > 200k records at N = 10M; a /16 cannot
  hold more than 65,536 distinct addresses, so the scan is sized in records);
* every other A record gets its own address, a bijection of its allocation
  number onto 10.1.0.0-10.255.255.255 minus 10.42.0.0/16, so addresses are
  unique and known without storing them;
* 10.0.0.0/16 is left empty: bench/annotate/gen.py draws its unknown flow
  clients from there.

AAAA records are 2001:db8::/32. Times are those of bench/annotate/gen.py:
first seen in a 30-day window from 1,700,000,000, last seen up to 7 days
later, so its flows find names.
"""

import argparse
import importlib.util
import json
import math
import os
import random
import sys
import time

GENERATOR_VERSION = 1

T0 = 1_700_000_000
SPAN = 30 * 86_400
LIFE = 7 * 86_400

TLDS = [
    ("com", 48), ("net", 9), ("org", 7), ("de", 6), ("co.uk", 4), ("ru", 3),
    ("nl", 2), ("fr", 2), ("io", 2), ("co.jp", 2), ("com.br", 2), ("info", 2),
    ("xyz", 2), ("it", 1.5), ("pl", 1.5), ("com.au", 1.5), ("ca", 1), ("es", 1),
    ("ch", 1), ("se", 1), ("eu", 1), ("cn", 1), ("be", 0.5), ("at", 0.5),
]
WORDS = (
    "blue red green black white silver golden river lake ocean mountain valley "
    "forest cloud storm rain sun moon star sky north south east west city town "
    "market shop store trade bank pay card money coin crypto data net web host "
    "server code soft tech digital smart media news press radio tv film "
    "photo art design studio print book read learn school academy uni health "
    "care med clinic pharma bio farm food fresh cafe pizza burger coffee tea "
    "wine beer travel tour trip hotel home house garden build auto car bike "
    "moto sport fit yoga game play fun kids pet dog cat fish bird lion tiger "
    "wolf fox bear eagle hawk fast quick prime alpha beta gamma delta omega "
    "nova terra luna solar astro quantum pixel byte bit logic mind brain idea "
    "bright clear pure true open free global local united royal grand"
).split()
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
# label, probability a zone has it, probability it is a CNAME.
LABELS = [
    ("mail", 0.45, 0.0), ("smtp", 0.10, 0.0), ("webmail", 0.10, 0.3),
    ("autodiscover", 0.10, 1.0), ("m", 0.10, 0.3), ("api", 0.12, 0.1),
    ("cdn", 0.10, 0.9), ("static", 0.08, 0.8), ("shop", 0.06, 0.5),
    ("blog", 0.08, 0.4), ("dev", 0.05, 0.0), ("vpn", 0.04, 0.0),
    ("ftp", 0.08, 0.0), ("portal", 0.04, 0.2), ("admin", 0.03, 0.0),
]
HOST_WORDS = "app srv host node web db lb edge img media files git ci test stage int ext".split()
REGIONS = ["eu", "us", "ap", "int"]
SENSORS = ["sensor-a"] * 5 + ["sensor-b"] * 3 + ["sensor-c"] + ["sensor-d"]
COUNTS = [1] * 40 + [2] * 15 + [3] * 8 + [4] * 5 + [5, 6, 7, 8, 10, 12, 15, 20, 30, 50, 100, 250, 1000]
MAIL_PROVIDERS = ["1 aspmx.mailprovider.com.", "10 mx1.mailhost.net.", "20 mx2.mailhost.net.",
                  "10 inbound.securemail.org.", "0 mx.mailfilter.io."]
COUNT_LEN = len(COUNTS)
SPF_INCLUDES = ["_spf.mailprovider.com", "spf.mailhost.net", "spf.securemail.org", "servers.mcsv.net"]

HOT_OCTET = 42          # 10.42.0.0/16, the shared-hosting block
HOT_SHARE = 0.2         # of apex and www A records
HOT_PREFIX = f"10.{HOT_OCTET}."
OCTETS = [b for b in range(1, 256) if b != HOT_OCTET]  # 10.0/16 stays empty
SPACE = len(OCTETS) << 16
STRIDE = 7_368_787      # coprime with SPACE: j -> (j * STRIDE + OFFSET) % SPACE is a bijection
OFFSET = 1_234_567
assert math.gcd(STRIDE, SPACE) == 1


def unique_v4(j):
    """The j-th allocated unique address (a bijection onto SPACE)."""
    r = (j * STRIDE + OFFSET) % SPACE
    return f"10.{OCTETS[r >> 16]}.{(r >> 8) & 255}.{r & 255}"


def hot_v4(h):
    r = (h * 40_503) & 0xFFFF  # odd multiplier: a bijection of 0..65535
    return f"10.{HOT_OCTET}.{r >> 8}.{r & 255}"


class Sample:
    """Reservoir sample of K items (own generator, so K does not change the data)."""

    def __init__(self, size, seed):
        self.size = size
        self.items = []
        self.seen = 0
        self.rng = random.Random(seed)

    def add(self, item):
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = int(self.rng.random() * self.seen)
            if j < self.size:
                self.items[j] = item

    def write(self, path):
        self.rng.shuffle(self.items)
        with open(path, "w") as out:
            out.write("\n".join(self.items) + "\n")


def store(args):
    rng = random.Random(args.seed)
    rand = rng.random
    names = Sample(args.keys, args.seed + 1)
    ips = Sample(args.keys, args.seed + 2)
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "cof.ndjson")
    target = args.records
    started = time.time()

    counts = {"records": 0, "owners": 0, "rrsets": 0, "zones": 0, "com_records": 0, "com_rrsets": 0,
              "hot_records": 0, "unique_v4": 0}
    by_type = {}
    by_tld = {}
    out = open(path, "w", buffering=1 << 20)
    chunk = []
    state = {"done": False}

    def emit(owner, zone, tld, rrs):
        """Writes one owner name's records [(rrtype, rdata)], cut at the target."""
        room = target - counts["records"]
        if room <= 0:
            state["done"] = True
            return
        if len(rrs) > room:
            rrs = rrs[:room]
            state["done"] = True
        names.add(owner)
        counts["owners"] += 1
        types = set()
        com = tld == "com"
        prefix = f'{{"rrname":"{owner}","rrtype":"'
        suffix = f'","bailiwick":"{zone}","time_first":'
        for rtype, rdata in rrs:
            first = T0 + int(rand() * SPAN)
            chunk.append(
                f'{prefix}{rtype}","rdata":"{rdata}{suffix}{first},"time_last":{first + int(rand() * LIFE)},'
                f'"count":{COUNTS[int(rand() * COUNT_LEN)]},"sensor_id":"{SENSORS[int(rand() * 10)]}"}}\n'
            )
            types.add(rtype)
            by_type[rtype] = by_type.get(rtype, 0) + 1
            if rtype == "A":
                ips.add(rdata)
                # Counted as written: the cut at the target may drop the
                # last addresses of the last name.
                if rdata.startswith(HOT_PREFIX):
                    counts["hot_records"] += 1
                else:
                    counts["unique_v4"] += 1
            elif rtype == "AAAA":
                ips.add(rdata)
        counts["records"] += len(rrs)
        counts["rrsets"] += len(types)
        by_tld[tld] = by_tld.get(tld, 0) + len(rrs)
        if com:
            counts["com_records"] += len(rrs)
            counts["com_rrsets"] += len(types)
        if len(chunk) >= 20_000:
            out.write("".join(chunk))
            chunk.clear()

    allocated = [0]

    def v4():
        ip = unique_v4(allocated[0])
        allocated[0] += 1
        return ip

    def hot():
        return hot_v4(int(rand() * 65_536))

    def v6():
        return f"2001:db8:{rng.getrandbits(16) | 1:x}:{rng.getrandbits(16) | 1:x}::{rng.getrandbits(16) | 1:x}"

    def addresses(count, hot_share=0.0):
        """count A records for one name: distinct addresses."""
        if hot_share and rand() < hot_share:
            first = hot()
            rest = [v4() for _ in range(count - 1)]
            return [("A", first)] + [("A", ip) for ip in rest]
        return [("A", v4()) for _ in range(count)]

    # --- infrastructure zones: CDN edge hosts, DNS providers -----------------
    edges = []
    edge_set = set()
    for k in range(max(50, target // 2000)):
        host = f"e{rng.getrandbits(32):08x}.cdn-edge.net"
        if host in edge_set:
            continue
        edge_set.add(host)
        edges.append(host)
        emit(host, "cdn-edge.net", "net", addresses(1 + (rand() < 0.5)) + [("AAAA", v6())])
    providers = []
    for k in range(max(10, target // 20_000)):
        zone = f"dnshost{k}.net"
        providers.append(zone)
        for ns in ("ns1", "ns2"):
            emit(f"{ns}.{zone}", zone, "net", addresses(1))
    counts["infrastructure_records"] = counts["records"]

    # --- registered zones -----------------------------------------------------
    tld_names = [t for t, _ in TLDS]
    tld_cum = []
    total = 0
    for _, weight in TLDS:
        total += weight
        tld_cum.append(total)
    seen_zones = set()
    words = len(WORDS)
    syllables = len(SYLLABLES)
    k = 0
    max_zones = target  # bound: every zone writes at least one record
    while not state["done"] and k < max_zones * 4:
        k += 1
        # A word and a few syllables: "bluekotave".
        label = rng.choice(WORDS)
        q = rng.getrandbits(24)
        for _ in range(2 + (q & 1)):
            label += SYLLABLES[q % syllables]
            q //= syllables
        if rand() < 0.25:
            label = rng.choice(WORDS) + "-" + label
        tld = rng.choices(tld_names, cum_weights=tld_cum)[0]
        zone = f"{label}.{tld}"
        if zone in seen_zones:
            continue
        seen_zones.add(zone)
        counts["zones"] += 1

        # apex
        rrs = []
        own_ns = rand() < 0.4
        if rand() < 0.9:
            if own_ns:
                rrs += [("NS", f"ns1.{zone}."), ("NS", f"ns2.{zone}.")]
            else:
                provider = providers[int(rand() * len(providers))]
                rrs += [("NS", f"ns1.{provider}."), ("NS", f"ns2.{provider}.")]
        if rand() < 0.3:
            rrs.append(("SOA", f"ns1.{zone}. hostmaster.{zone}. {2024010100 + int(rand() * 10_000)} 7200 3600 1209600 300"))
        if rand() < 0.5:
            if rand() < 0.5:
                rrs += [("MX", f"10 mail.{zone}."), ("MX", f"20 mail2.{zone}.")]
            else:
                rrs.append(("MX", MAIL_PROVIDERS[int(rand() * 5)]))
        if rand() < 0.6:
            rrs.append(("TXT", f'\\"v=spf1 include:{SPF_INCLUDES[int(rand() * 4)]} ~all\\"'))
        if rand() < 0.2:
            rrs.append(("TXT", f'\\"site-verification={rng.getrandbits(128):032x}\\"'))
        if rand() < 0.85:
            rrs += addresses(1 + (rand() < 0.3), HOT_SHARE)
            if rand() < 0.25:
                rrs.append(("AAAA", v6()))
        if rrs:
            emit(zone, zone, tld, rrs)
        if own_ns and rrs and rrs[0][0] == "NS":
            emit(f"ns1.{zone}", zone, tld, addresses(1))
            emit(f"ns2.{zone}", zone, tld, addresses(1))

        # www and the usual labels
        if rand() < 0.85:
            if rand() < 0.3:
                emit(f"www.{zone}", zone, tld, [("CNAME", zone + ".")])
            else:
                rrs = addresses(1 + (rand() < 0.3), HOT_SHARE)
                if rand() < 0.3:
                    rrs.append(("AAAA", v6()))
                emit(f"www.{zone}", zone, tld, rrs)
        for name, probability, cname in LABELS:
            if rand() >= probability:
                continue
            if rand() < cname:
                target_name = edges[int(rand() * len(edges))] + "." if rand() < 0.6 else zone + "."
                emit(f"{name}.{zone}", zone, tld, [("CNAME", target_name)])
            else:
                rrs = addresses(1)
                if rand() < 0.15:
                    rrs.append(("AAAA", v6()))
                emit(f"{name}.{zone}", zone, tld, rrs)
        if rand() < 0.25:
            emit(f"_dmarc.{zone}", zone, tld,
                 [("TXT", f'\\"v=DMARC1; p={("none", "quarantine", "reject")[int(rand() * 3)]}; rua=mailto:dmarc@{zone}\\"')])

        # host tail: Pareto, a few zones with thousands of hosts
        hosts = min(20_000, int(rng.paretovariate(1.3)) - 1)
        for n in range(1, hosts + 1):
            if state["done"]:
                break
            word = HOST_WORDS[int(rand() * len(HOST_WORDS))]
            if rand() < 0.7:
                host = f"{word}{n}.{zone}"
            else:
                host = f"{word}-{n}.{REGIONS[int(rand() * 4)]}.{zone}"
            rrs = addresses(1 + (rand() < 0.1))
            if rand() < 0.15:
                rrs.append(("AAAA", v6()))
            emit(host, zone, tld, rrs)
    out.write("".join(chunk))
    out.close()
    if counts["records"] != target:
        sys.exit(f"gen.py: wrote {counts['records']} of {target} records")

    names.write(os.path.join(args.out_dir, "names.txt"))
    ips.write(os.path.join(args.out_dir, "ips.txt"))
    meta = {
        "generator": "bench/dnsdb/gen.py",
        "generator_version": GENERATOR_VERSION,
        "seed": args.seed,
        "lines": counts["records"],
        "bytes": os.path.getsize(path),
        "distinct_records": counts["records"],
        "distinct_rrnames": counts["owners"],
        "rrsets": counts["rrsets"],
        "zones": counts["zones"],
        "infrastructure_records": counts["infrastructure_records"],
        "com_records": counts["com_records"],
        "com_rrsets": counts["com_rrsets"],
        "hot_prefix": f"10.{HOT_OCTET}.0.0/16",
        "hot_records": counts["hot_records"],
        "unique_v4": counts["unique_v4"],
        "v6_records": by_type.get("AAAA", 0),
        "names_sample": len(names.items),
        "ips_sample": len(ips.items),
        "rrtype_records": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "rrtype_records_percent": {t: round(100 * v / counts["records"], 2)
                                   for t, v in sorted(by_type.items(), key=lambda kv: -kv[1])},
        "tld_records": dict(sorted(by_tld.items(), key=lambda kv: -kv[1])),
        "seconds": round(time.time() - started, 1),
    }
    with open(os.path.join(args.out_dir, "meta.json"), "w") as out:
        json.dump(meta, out, indent=2)
        out.write("\n")
    print(json.dumps(meta, indent=2))


def flows(count, ips, path):
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("annotate_gen", os.path.join(here, "..", "annotate", "gen.py"))
    annotate_gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(annotate_gen)
    annotate_gen.address = unique_v4  # its flows() draws dst = address(randrange(ips))
    annotate_gen.flows(count, ips, path)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "flows":
        if len(sys.argv) != 5:
            sys.exit("usage: gen.py flows FLOWS IPS FILE")
        flows(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["store"])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20241122)
    parser.add_argument("--keys", type=int, default=1_000_000, help="size of the names.txt and ips.txt samples")
    parser.add_argument("out_dir")
    store(parser.parse_args())


if __name__ == "__main__":
    main()

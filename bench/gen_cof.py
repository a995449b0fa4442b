#!/usr/bin/env python3
"""Synthetic passive DNS observations (COF NDJSON) for the dnsrecall benchmarks.

Writes into OUT_DIR:

* ``cof.ndjson``  -- LINES lines ``{"rrname","rrtype","rdata","time_first",
  "time_last","count","sensor_id"}``;
* ``names.txt``   -- every distinct rrname, one a line, shuffled (wrk rotates
  over it for ``/query/NAME``);
* ``ips.txt``     -- every distinct A/AAAA address, shuffled (``/query/IP``);
* ``meta.json``   -- parameters, seed, exact distinct counts and the rrtype mix.

The data set is built in two steps, both driven by one ``random.Random(SEED)``
so the same arguments give the same bytes:

1. A fixed population of distinct records (rrname, rrtype, rdata). Its size
   follows from the name target: ``--names 1000000`` gives 1.8M records,
   quota by quota, so the rrtype mix is the one asked for (A 55 %, AAAA 15 %,
   CNAME 10 %, TXT 6 %, NS 5 %, MX 4 %, PTR 3 %, SOA/SRV/HTTPS 2 %). Names are
   laid out the way real zones are: ~110k registered domains under a weighted
   TLD mix (com, net, org, de, co.uk, ...), the usual www/mail/cdn/api labels,
   a long tail of hosts in a few zones, and shared infrastructure zones (ISP
   dial-up names, cloud compute names, a CDN, blog and bucket hosting) that
   hold a quarter of all hosts. Addresses are spread over the whole public
   IPv4 space (thousands of /16s) with a shared-hosting pool that many names
   point at; AAAA are 2001:db8::/32 with random lower groups.
2. LINES sightings over a 90-day window. Every record is seen at least once;
   the remaining lines are repeated sightings of records already seen (a hot
   5 % is favoured), later in the log and with later times, from one of four
   sensors.

Plain string formatting instead of ``json.dumps`` keeps the 5M-line run at
well under a minute; every string written is plain ASCII without characters
that need JSON escaping except the TXT quotes, which are escaped explicitly.
"""

import argparse
import json
import os
import random
import sys
import time

GENERATOR_VERSION = 1

TLDS = [
    ("com", 46), ("net", 9), ("org", 7), ("de", 6), ("co.uk", 4), ("ru", 3),
    ("nl", 2), ("fr", 2), ("io", 2), ("co.jp", 2), ("com.br", 2), ("info", 2),
    ("xyz", 2), ("it", 1.5), ("pl", 1.5), ("com.au", 1.5), ("ca", 1), ("es", 1),
    ("ch", 1), ("se", 1), ("eu", 1), ("cn", 1), ("be", 0.5), ("at", 0.5),
]

WORDS = (
    "blue red green black white silver golden river lake ocean mountain valley "
    "forest cloud storm rain sun moon star sky north south east west city town "
    "market shop store trade bank pay card money coin crypto data net web host "
    "cloud server code soft tech digital smart media news press radio tv film "
    "photo art design studio print book read learn school academy uni health "
    "care med clinic pharma bio farm food fresh cafe pizza burger coffee tea "
    "wine beer travel tour trip hotel home house garden build auto car bike "
    "moto sport fit yoga game play fun kids pet dog cat fish bird lion tiger "
    "wolf fox bear eagle hawk fast quick prime alpha beta gamma delta omega "
    "nova terra luna solar astro quantum pixel byte bit logic mind brain idea "
    "bright clear pure true open free global local united royal grand"
).split()

# Label -> probability that a regular zone has it.
STANDARD_LABELS = [
    ("www", 0.85), ("mail", 0.45), ("smtp", 0.10), ("webmail", 0.10),
    ("autodiscover", 0.10), ("m", 0.10), ("api", 0.12), ("cdn", 0.10),
    ("static", 0.08), ("shop", 0.06), ("blog", 0.08), ("dev", 0.05),
    ("vpn", 0.04), ("ftp", 0.08), ("portal", 0.04), ("admin", 0.03),
]
# Label -> probability that, given it exists, it is a CNAME.
CNAME_PREFERENCE = {
    "www": 0.30, "cdn": 0.90, "static": 0.80, "shop": 0.50,
    "autodiscover": 1.0, "m": 0.30, "blog": 0.40, "webmail": 0.30,
}
HOST_WORDS = "app srv host node web db lb edge api img media files git ci test stage int ext".split()

SENSORS = ["sensor-a"] * 5 + ["sensor-b"] * 3 + ["sensor-c"] + ["sensor-d"]
T0 = 1_700_000_000
SPAN = 90 * 86_400


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5_200_000)
    parser.add_argument("--names", type=int, default=1_000_000, help="target distinct rrnames")
    parser.add_argument("--seed", type=int, default=20241122)
    parser.add_argument("out_dir")
    return parser.parse_args()


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.used_v4 = set()

    # -- addresses ---------------------------------------------------------
    def public_v4(self):
        """A fresh public-looking IPv4 address (never reused)."""
        rand = self.rng.getrandbits
        while True:
            value = rand(32)
            a = value >> 24
            b = (value >> 16) & 0xFF
            if a in (0, 10, 127) or a >= 224 or (a == 172 and 16 <= b < 32) or (a == 192 and b == 168) \
                    or (a == 169 and b == 254) or (a == 100 and 64 <= b < 128):
                continue
            if value in self.used_v4:
                continue
            self.used_v4.add(value)
            return f"{a}.{b}.{(value >> 8) & 0xFF}.{value & 0xFF}"

    def v6(self):
        rand = self.rng.getrandbits
        # Non-zero groups, so this is already the RFC 5952 form.
        g = [rand(16) | 1 for _ in range(3)]
        return f"2001:db8:{g[0]:x}:{g[1]:x}::{g[2]:x}"

    # -- names -------------------------------------------------------------
    def word_label(self):
        rng = self.rng
        shape = rng.random()
        if shape < 0.45:
            return rng.choice(WORDS) + rng.choice(WORDS)
        if shape < 0.70:
            return rng.choice(WORDS) + "-" + rng.choice(WORDS)
        if shape < 0.90:
            return rng.choice(WORDS) + str(rng.randrange(1, 10_000))
        return rng.choice(WORDS) + rng.choice(WORDS) + str(rng.randrange(1, 100))


def build(args):
    """Returns (records, owners) where records are (rrname, rrtype, rdata)."""
    g = Gen(args.seed)
    rng = g.rng
    scale = args.names / 1_000_000

    def n(count):
        return max(1, int(round(count * scale)))

    records = []
    add = records.append
    owners = set()

    # --- registered zones ---------------------------------------------------
    tld_names = [t for t, _ in TLDS]
    tld_cum = []
    total = 0
    for _, weight in TLDS:
        total += weight
        tld_cum.append(total)
    zone_count = n(110_000)
    zones = []
    zone_set = set()
    while len(zones) < zone_count:
        zone = g.word_label() + "." + rng.choices(tld_names, cum_weights=tld_cum)[0]
        if zone not in zone_set:
            zone_set.add(zone)
            zones.append(zone)

    # Shared infrastructure names other records point at.
    dns_providers = [f"ns{{}}.dnshost{k}.net." for k in range(n(600))] + \
                    [f"{{}}.ns-cloud{k}.com." for k in range(n(40))]
    mail_providers = ["1 aspmx.mailprovider.com.", "10 mx1.mailhost.net.", "20 mx2.mailhost.net.",
                      "10 inbound.securemail.org.", "0 mx.mailfilter.io."]
    spf_includes = ["_spf.mailprovider.com", "spf.mailhost.net", "spf.securemail.org", "servers.mcsv.net"]

    # --- shared infrastructure zones (a quarter of all hosts) ---------------
    a_hosts = []        # names that get A (and maybe AAAA) records
    cname_owners = []   # (owner, target)
    cdn_hosts = []
    for _ in range(n(30_000)):
        host = f"e{rng.getrandbits(32):08x}.cdn-edge.net"
        if host not in owners:
            owners.add(host)
            cdn_hosts.append(host)
            a_hosts.append(host)
    for _ in range(n(70_000)):
        ip = g.public_v4()
        host = "dsl-" + ip.replace(".", "-") + ".dyn.telco-net.de"
        owners.add(host)
        add((host, "A", ip))
    for _ in range(n(40_000)):
        ip = g.public_v4()
        host = "ec2-" + ip.replace(".", "-") + ".compute-1.cloudvendor.com"
        owners.add(host)
        add((host, "A", ip))
    for _ in range(n(45_000)):
        host = g.word_label() + str(rng.randrange(100)) + ".blogsite.com"
        if host not in owners:
            owners.add(host)
            cname_owners.append((host, "ghs.blogsite.com."))
    for _ in range(n(25_000)):
        host = g.word_label() + "-" + str(rng.randrange(1000)) + ".s3.storage-cloud.com"
        if host not in owners:
            owners.add(host)
            cname_owners.append((host, f"s3-{rng.randrange(1, 9)}-w.storage-cloud.com."))
    for host in ["ghs.blogsite.com"] + [f"s3-{k}-w.storage-cloud.com" for k in range(1, 9)]:
        owners.add(host)
        a_hosts.append(host)
    shared_v4_addresses = sum(1 for r in records if r[1] == "A")

    # --- regular zones: standard labels, then a heavy-tailed host tail ------
    subdomains = []  # (name, label, zone)
    for zone in zones:
        for label, probability in STANDARD_LABELS:
            if rng.random() < probability:
                subdomains.append((label + "." + zone, label, zone))
    budget = {
        "apex": len(zones), "dmarc": n(30_000), "srv": n(12_000), "ptr": n(54_000),
    }
    target_owners = args.names
    tail = target_owners - len(owners) - len(subdomains) - sum(budget.values())
    # Pareto weights: a few zones have thousands of hosts, most have none.
    weights = [rng.paretovariate(1.2) for _ in zones]
    cum = []
    total = 0.0
    for weight in weights:
        total += weight
        cum.append(total)
    picked = rng.choices(range(len(zones)), cum_weights=cum, k=max(0, int(tail * 1.02)))
    seen_sub = set(name for name, _, _ in subdomains)
    reserved = len(owners) + sum(budget.values())
    for index in picked:
        if reserved + len(subdomains) >= target_owners:
            break
        zone = zones[index]
        shape = rng.random()
        if shape < 0.5:
            label = f"{rng.choice(HOST_WORDS)}{rng.randrange(1, 5000)}"
        elif shape < 0.8:
            label = f"{rng.choice(HOST_WORDS)}-{rng.randrange(1, 500)}.{rng.choice(['eu', 'us', 'ap', 'int'])}"
        else:
            label = f"{rng.getrandbits(40):010x}"
        name = label + "." + zone
        if name in seen_sub:
            continue
        seen_sub.add(name)
        subdomains.append((name, "host", zone))

    # CNAME quota: 10 % of all records (1.8M at --names 1000000).
    total_records = n(1_800_000)
    cname_quota = total_records // 10 - len(cname_owners)
    candidates = []
    others = []
    for sub in subdomains:
        if rng.random() < CNAME_PREFERENCE.get(sub[1], 0.03):
            candidates.append(sub)
        else:
            others.append(sub)
    rng.shuffle(others)
    if len(candidates) < cname_quota:
        need = cname_quota - len(candidates)
        candidates.extend(others[:need])
        others = others[need:]
    else:
        others.extend(candidates[cname_quota:])
        candidates = candidates[:cname_quota]
    for name, label, zone in candidates:
        owners.add(name)
        shape = rng.random()
        if label == "autodiscover":
            target = "autodiscover.outlook-mail.com."
        elif shape < 0.55 and cdn_hosts:
            target = rng.choice(cdn_hosts) + "."
        elif shape < 0.8:
            target = zone + "."
        else:
            target = f"{zone.split('.')[0]}.hosting{rng.randrange(200)}.net."
        cname_owners.append((name, target))
    for name, target in cname_owners:
        add((name, "CNAME", target))
    for name, _, _ in others:
        owners.add(name)
        a_hosts.append(name)

    # --- apex records: NS, MX, TXT, SOA, HTTPS, A ---------------------------
    for zone in zones:
        owners.add(zone)
    ns_zones = rng.sample(zones, n(45_000))
    for zone in ns_zones:
        if rng.random() < 0.5:
            pair = (f"ns1.{zone}.", f"ns2.{zone}.")
        else:
            provider = rng.choice(dns_providers)
            pair = (provider.format("a" if "cloud" in provider else "1"),
                    provider.format("b" if "cloud" in provider else "2"))
        add((zone, "NS", pair[0]))
        add((zone, "NS", pair[1]))
    mx_zones = rng.sample(zones, n(48_000))
    for k, zone in enumerate(mx_zones):
        if k % 2 == 0:
            add((zone, "MX", f"10 mail.{zone}."))
            add((zone, "MX", f"20 mail2.{zone}."))
        else:
            add((zone, "MX", rng.choice(mail_providers)))
    txt_zones = rng.sample(zones, n(60_000))
    txt_quota = n(78_000)
    for k, zone in enumerate(txt_zones):
        values = [f'\\"v=spf1 include:{rng.choice(spf_includes)} ~all\\"']
        if k < txt_quota - len(txt_zones):
            values.append(f'\\"site-verification={rng.getrandbits(128):032x}\\"')
        for value in values:
            add((zone, "TXT", value))
    for zone in rng.sample(zones, budget["dmarc"]):
        name = "_dmarc." + zone
        owners.add(name)
        add((name, "TXT", f'\\"v=DMARC1; p={rng.choice(["none", "quarantine", "reject"])}; rua=mailto:dmarc@{zone}\\"'))
    for zone in rng.sample(zones, n(12_000)):
        add((zone, "SOA", f"ns1.{zone}. hostmaster.{zone}. {2024010100 + rng.randrange(10_000)} 7200 3600 1209600 300"))
    for zone in rng.sample(zones, n(12_000)):
        add((zone, "HTTPS", '1 . alpn=\\"h2,h3\\"'))
    srv_kinds = [("_sip._tcp", "10 60 5060 sip"), ("_xmpp-server._tcp", "5 0 5269 xmpp"),
                 ("_autodiscover._tcp", "0 0 443 autodiscover"), ("_ldap._tcp", "0 100 389 dc1")]
    for zone in rng.sample(zones, budget["srv"]):
        prefix, rdata = rng.choice(srv_kinds)
        name = f"{prefix}.{zone}"
        owners.add(name)
        add((name, "SRV", f"{rdata}.{zone}."))
    a_hosts.extend(rng.sample(zones, int(len(zones) * 0.86)))

    # --- A and AAAA: 55 % and 15 % of all records ---------------------------
    a_quota = total_records * 55 // 100 - shared_v4_addresses
    aaaa_quota = total_records * 15 // 100
    shared_pool = [g.public_v4() for _ in range(n(8_000))]
    pool_cum = []
    total = 0.0
    for _ in shared_pool:
        total += rng.paretovariate(1.5)
        pool_cum.append(total)
    counts = [1] * len(a_hosts)
    for index in rng.choices(range(len(a_hosts)), k=max(0, a_quota - len(a_hosts))):
        counts[index] += 1
    ptr_candidates = []
    for host, count in zip(a_hosts, counts):
        addresses = set()
        while len(addresses) < count:
            if rng.random() < 0.25:
                addresses.add(rng.choices(shared_pool, cum_weights=pool_cum)[0])
            else:
                ip = g.public_v4()
                addresses.add(ip)
                ptr_candidates.append((ip, host))
        for ip in addresses:
            add((host, "A", ip))
    for host in rng.sample(a_hosts, min(len(a_hosts), aaaa_quota * 3 // 4)):
        add((host, "AAAA", g.v6()))
    missing = aaaa_quota - sum(1 for r in records if r[1] == "AAAA")
    for host in rng.choices(a_hosts, k=max(0, missing)):
        add((host, "AAAA", g.v6()))

    # --- PTR for some of the fresh addresses -------------------------------
    for ip, host in rng.sample(ptr_candidates, min(len(ptr_candidates), budget["ptr"])):
        a, b, c, d = ip.split(".")
        name = f"{d}.{c}.{b}.{a}.in-addr.arpa"
        owners.add(name)
        add((name, "PTR", host + "."))

    # Duplicate triples would make the distinct count a lie; drop them.
    unique = list(dict.fromkeys(records))
    return g, unique


def main():
    args = parse_args()
    started = time.time()
    os.makedirs(args.out_dir, exist_ok=True)
    g, records = build(args)
    rng = g.rng
    built = time.time()

    owners = sorted(set(r[0] for r in records))
    addresses = sorted(set(r[2] for r in records if r[1] in ("A", "AAAA")))
    rng.shuffle(owners)
    rng.shuffle(addresses)
    with open(os.path.join(args.out_dir, "names.txt"), "w") as out:
        out.write("\n".join(owners) + "\n")
    with open(os.path.join(args.out_dir, "ips.txt"), "w") as out:
        out.write("\n".join(addresses) + "\n")

    # Sightings: every record once (in shuffled order), the rest repeats of
    # records already seen, later in the file and with later times.
    rng.shuffle(records)
    prefixes = [f'{{"rrname":"{name}","rrtype":"{rtype}","rdata":"{rdata}",' for name, rtype, rdata in records]
    total_records = len(prefixes)
    lines = max(args.lines, total_records)
    hot = max(1, total_records // 20)
    count_table = [1] * 40 + [2] * 15 + [3] * 8 + [4] * 5 + [5, 6, 7, 8, 10, 12, 15, 20, 30, 50, 100, 250, 1000]
    count_len = len(count_table)
    sensors = SENSORS
    sensor_len = len(sensors)
    random_ = rng.random
    introduced = 0
    per_line_types = {}
    rtype_of = [r[1] for r in records]
    path = os.path.join(args.out_dir, "cof.ndjson")
    step = SPAN / lines
    with open(path, "w", buffering=1 << 20) as out:
        chunk = []
        for k in range(lines):
            if introduced < total_records and random_() * (lines - k) < (total_records - introduced):
                index = introduced
                introduced += 1
            elif random_() < 0.5:
                index = int(random_() * min(introduced, hot))
            else:
                index = int(random_() * introduced)
            base = T0 + int(k * step)
            first = base - int(random_() * 3600)
            last = base + int(random_() * random_() * 86_400)
            chunk.append(
                f'{prefixes[index]}"time_first":{first},"time_last":{last},'
                f'"count":{count_table[int(random_() * count_len)]},"sensor_id":"{sensors[int(random_() * sensor_len)]}"}}\n'
            )
            per_line_types[rtype_of[index]] = per_line_types.get(rtype_of[index], 0) + 1
            if len(chunk) >= 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    if introduced != total_records:
        sys.exit(f"gen_cof: only {introduced} of {total_records} records were written")

    record_types = {}
    for rtype in rtype_of:
        record_types[rtype] = record_types.get(rtype, 0) + 1
    v4 = sum(1 for a in addresses if ":" not in a)
    meta = {
        "generator": "bench/gen_cof.py",
        "generator_version": GENERATOR_VERSION,
        "seed": args.seed,
        "lines": lines,
        "bytes": os.path.getsize(path),
        "distinct_records": total_records,
        "distinct_rrnames": len(owners),
        "distinct_addresses": len(addresses),
        "distinct_v4": v4,
        "distinct_v4_slash16": len(set(a.rsplit(".", 2)[0] for a in addresses if ":" not in a)),
        "sightings_per_record": round(lines / total_records, 3),
        "rrtype_records": dict(sorted(record_types.items(), key=lambda kv: -kv[1])),
        "rrtype_records_percent": {k: round(100 * v / total_records, 2)
                                   for k, v in sorted(record_types.items(), key=lambda kv: -kv[1])},
        "rrtype_lines_percent": {k: round(100 * v / lines, 2)
                                 for k, v in sorted(per_line_types.items(), key=lambda kv: -kv[1])},
        "seconds_build": round(built - started, 1),
        "seconds_total": round(time.time() - started, 1),
    }
    with open(os.path.join(args.out_dir, "meta.json"), "w") as out:
        json.dump(meta, out, indent=2)
        out.write("\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()

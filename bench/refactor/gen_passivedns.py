#!/usr/bin/env python3
"""Writes a passivedns `||` log (passivedns' default fields SMcsCQTAtn:
timestamp, client, server, class, query, type, answer, TTL, count).

usage: gen_passivedns.py OUT LINES [SEED]

Names are drawn from ~200k hosts under ~20k domains with Zipf-like
popularity (s = 1), so lines repeat as a sensor's log does; each name keeps
its answers (A with 1-3 stable addresses, AAAA, CNAME, MX, TXT, NS), and 3%
of lines are NXDOMAIN (counted, not stored). Prints the line count.
"""
import bisect
import itertools
import random
import sys

TLDS = ["com", "net", "org", "de", "io", "example"]
WORDS = ["mail", "www", "api", "cdn", "static", "img", "shop", "news", "login", "app",
         "vpn", "blog", "docs", "m", "edge", "ns1", "ns2", "smtp", "imap", "git"]


def main():
    out_path, lines = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20261203
    rng = random.Random(seed)
    domains = [f"d{i}x{rng.randrange(1 << 20):x}.{rng.choice(TLDS)}" for i in range(20_000)]
    hosts = []
    for i in range(200_000):
        domain = domains[i % len(domains)]
        hosts.append(f"{rng.choice(WORDS)}{i // len(domains)}.{domain}")
    # Zipf (s = 1) over hosts: cumulative weights 1/rank.
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(hosts))))
    total = cumulative[-1]
    clients = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(500)]
    servers = ["192.0.2.53", "198.51.100.53", "2001:db8::53"]

    def answers(index):
        # Stable per name: a generator seeded by the name's index.
        own = random.Random(index * 7919 + seed)
        host = hosts[index]
        kind = own.random()
        if kind < 0.55:
            return [("A", f"{own.randrange(1, 224)}.{own.randrange(256)}.{own.randrange(256)}.{own.randrange(1, 255)}")
                    for _ in range(own.randrange(1, 4))]
        if kind < 0.70:
            return [("AAAA", f"2001:db8:{own.randrange(65536):x}:{own.randrange(65536):x}::{own.randrange(1, 65536):x}")]
        if kind < 0.82:
            target = hosts[own.randrange(len(hosts))]
            return [("CNAME", target + "."), ("A", f"203.0.113.{own.randrange(1, 255)}")]
        if kind < 0.90:
            domain = host.split(".", 1)[1]
            return [("MX", f"mx{own.randrange(3)}.{domain}.")]
        if kind < 0.96:
            return [("TXT", f'"v=spf1 include:_spf.{host} ~all {own.randrange(1 << 30)}"')]
        domain = host.split(".", 1)[1]
        return [("NS", f"ns{n}.{domain}.") for n in (1, 2)]

    cache = {}
    written = 0
    time = 1_764_000_000.0
    with open(out_path, "w") as out:
        while written < lines:
            index = bisect.bisect_left(cumulative, rng.random() * total)
            index = min(index, len(hosts) - 1)
            time += rng.random() * 0.002
            client = rng.choice(clients)
            server = rng.choice(servers)
            host = hosts[index] + "."
            if rng.random() < 0.03:
                out.write(f"{time:.6f}||{client}||{server}||IN||nx{index}.{host}||A||NXDOMAIN||0||1\n")
                written += 1
                continue
            rrs = cache.get(index)
            if rrs is None:
                rrs = cache[index] = answers(index)
            for rtype, answer in rrs:
                if written >= lines:
                    break
                out.write(f"{time:.6f}||{client}||{server}||IN||{host}||{rtype}||{answer}||{rng.randrange(30, 86400)}||1\n")
                written += 1
    print(written)


if __name__ == "__main__":
    main()

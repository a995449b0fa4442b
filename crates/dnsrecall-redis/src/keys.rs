//! The D4 key schema (analyzer-d4-passivedns `pdns-ingestion.py`, read by
//! `pdns-cof-server.py`): how a record becomes `r:`, `v:`, `s:`, `l:` and
//! `o:` keys, and how an `r:` key and its members become records again.
//!
//! Notation as in D4: `{q}` the rrname, `{v}` the rdata, `{t}` the decimal
//! rrtype. Keys are joined with `:` and nothing is escaped, so a key can
//! only be built, never split, except `r:{q}:{t}` whose `{t}` is the digits
//! after the last colon.

use dnsrecall_core::{Name, Rdata, Record, Rtype};

/// Total of every observation ingested (STRING counter).
pub const STATS_PROCESSED: &str = "stats:processed";
/// Observations per sensor (ZSET).
pub const STATS_SENSORS: &str = "stats:sensors";
/// Every sensor id seen (SET).
pub const SENSORS_SEEN: &str = "sensors:seen";
/// Observations per rrtype number (HASH).
pub const DIST_TYPE: &str = "dist:type";
/// Observations per class (HASH); every record we store is class IN.
pub const DIST_CLASS: &str = "dist:class";
/// Observations per TTL (HASH); only the D4 queue input knows TTLs.
pub const DIST_TTL: &str = "dist:ttl";

/// `{q}`: the owner name as D4 writes it, lower case without the trailing
/// dot (`.lower().strip('.')`).
pub fn rrname(name: &Name) -> String {
    name.to_dotless()
}

/// `{v}`: the rdata member of `r:{q}:{t}`, as D4 writes it: presentation
/// form without the trailing dot of a name (D4 strips dots at both ends).
///
/// Unlike D4 the case is kept (TXT is case-sensitive); the key parts built
/// from it ([`value_key_part`]) are lower case, which is what D4's reader
/// looks up.
pub fn rdata_member(record: &Record) -> String {
    let mut text = record.rdata_text();
    // One trailing dot of a name; the root name itself (`.`, the null MX
    // `0 .`) stays, and so does an escaped dot (`\.`).
    let root = text == "." || text.ends_with(" .") || text.ends_with("\t.");
    if text.ends_with('.') && !text.ends_with("\\.") && !root {
        text.pop();
    }
    text
}

/// The rdata as it appears inside `v:`, `s:`, `l:` and `o:` keys: lower
/// case, as D4's reader builds them (`getFirstSeen` lowercases).
pub fn value_key_part(member: &str) -> String {
    member.to_lowercase()
}

/// `r:{q}:{t}`: the set of rdata of name `q` and type `t`.
pub fn r_key(q: &str, rtype: Rtype) -> String {
    format!("r:{q}:{}", rtype.0)
}

/// `v:{v}:{t}`: the set of names whose rdata of type `t` is `v`.
pub fn v_key(value: &str, rtype: Rtype) -> String {
    format!("v:{value}:{}", rtype.0)
}

/// `s:{q}:{v}:{t}` (first seen), `l:` (last seen) or `o:` (count).
pub fn record_key(prefix: char, q: &str, value: &str, rtype: Rtype) -> String {
    format!("{prefix}:{q}:{value}:{}", rtype.0)
}

/// Splits `r:{q}:{t}` into the name text and the type; `None` for keys
/// that are not of that shape.
pub fn split_r_key(key: &str) -> Option<(&str, Rtype)> {
    let rest = key.strip_prefix("r:")?;
    let (q, t) = rest.rsplit_once(':')?;
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((q, Rtype(t.parse().ok()?)))
}

/// The record an `r:` member stands for. Names are read as D4 wrote them
/// (no trailing dot); rdata that does not parse for its type (D4 keeps
/// only the target of MX/SRV, mangles TXT quotes) stays opaque text and is
/// served exactly as stored.
pub fn record_from_member(q: &str, rtype: Rtype, member: &str) -> Option<Record> {
    let rrname = if q.is_empty() {
        Name::root()
    } else {
        Name::from_presentation(q).ok()?
    };
    Some(Record {
        rrname,
        rrtype: rtype,
        bailiwick: None,
        rdata: Rdata::from_text_lenient(rtype, member),
    })
}

/// The types a lookup without a type filter probes: every type with a
/// mnemonic (the schema has no per-name type list; D4's own server probes
/// eight). Types without a mnemonic are reached by a lookup for that type
/// or by a full scan.
pub fn probe_types() -> &'static [Rtype] {
    static TYPES: std::sync::OnceLock<Vec<Rtype>> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        (1..=u16::MAX)
            .map(Rtype)
            .filter(|t| {
                t.mnemonic().is_some()
                    // Meta types never appear as stored records.
                    && !matches!(t.0, 41 | 249..=255)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, rtype: Rtype, rdata: &str) -> Record {
        Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rtype, rdata),
        }
    }

    #[test]
    fn d4_worked_example_keys() {
        let rec = record(
            "www-google-analytics.l.google.com.",
            Rtype::AAAA,
            "2a00:1450:400e:801::200e",
        );
        let q = rrname(&rec.rrname);
        let v = rdata_member(&rec);
        assert_eq!(
            r_key(&q, rec.rrtype),
            "r:www-google-analytics.l.google.com:28"
        );
        assert_eq!(v_key(&v, rec.rrtype), "v:2a00:1450:400e:801::200e:28");
        assert_eq!(
            record_key('s', &q, &v, rec.rrtype),
            "s:www-google-analytics.l.google.com:2a00:1450:400e:801::200e:28"
        );
    }

    #[test]
    fn names_in_rdata_lose_the_trailing_dot_and_come_back() {
        let rec = record("Example.COM", Rtype::CNAME, "Target.Example.NET.");
        assert_eq!(rrname(&rec.rrname), "example.com");
        assert_eq!(rdata_member(&rec), "target.example.net");
        let back = record_from_member("example.com", Rtype::CNAME, "target.example.net").unwrap();
        assert_eq!(back, rec);
        let mx = record("example.com", Rtype::MX, "10 mx.example.com.");
        assert_eq!(rdata_member(&mx), "10 mx.example.com");
        assert_eq!(
            record_from_member("example.com", Rtype::MX, "10 mx.example.com").unwrap(),
            mx
        );
    }

    #[test]
    fn the_root_name_keeps_its_dot() {
        let null_mx = record("example.com", Rtype::MX, "0 .");
        assert_eq!(rdata_member(&null_mx), "0 .");
        assert_eq!(
            record_from_member("example.com", Rtype::MX, "0 .").unwrap(),
            null_mx
        );
        let ns = record("example.com", Rtype::NS, ".");
        assert_eq!(rdata_member(&ns), ".");
    }

    #[test]
    fn txt_keeps_its_case_in_the_member_not_in_keys() {
        let rec = record("example.com", Rtype::TXT, "\"V=spf1 -all\"");
        let member = rdata_member(&rec);
        assert_eq!(member, "\"V=spf1 -all\"");
        assert_eq!(value_key_part(&member), "\"v=spf1 -all\"");
        assert_eq!(
            record_from_member("example.com", Rtype::TXT, &member).unwrap(),
            rec
        );
    }

    #[test]
    fn d4_mangled_rdata_stays_text() {
        // D4 removes only the first quote of a TXT and keeps MX targets only.
        let txt = record_from_member("example.com", Rtype::TXT, "v=spf1 -all\"").unwrap();
        assert_eq!(txt.rdata, Rdata::Text("v=spf1 -all\"".into()));
        let mx = record_from_member("example.com", Rtype::MX, "mx.example.com").unwrap();
        assert_eq!(mx.rdata_text(), "mx.example.com");
    }

    #[test]
    fn r_keys_split_on_the_last_colon() {
        assert_eq!(
            split_r_key("r:www.example.com:28"),
            Some(("www.example.com", Rtype::AAAA))
        );
        assert_eq!(split_r_key("r:a:b:1"), Some(("a:b", Rtype::A)));
        assert_eq!(split_r_key("r:example.com:"), None);
        assert_eq!(split_r_key("r:example.com:x1"), None);
        assert_eq!(split_r_key("s:example.com:1"), None);
        assert_eq!(split_r_key("r:example.com:70000"), None);
    }

    #[test]
    fn probe_types_cover_the_common_ones() {
        let types = probe_types();
        for t in [Rtype::A, Rtype::AAAA, Rtype::HTTPS, Rtype::TXT, Rtype::DLV] {
            assert!(types.contains(&t), "{t}");
        }
        assert!(!types.contains(&Rtype::ANY));
        assert!(!types.contains(&Rtype::OPT));
    }
}

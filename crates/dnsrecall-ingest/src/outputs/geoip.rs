//! GeoIP/ASN enrichment of the client address (and of the EDNS Client
//! Subnet when the message carries one), from MaxMind-format databases
//! (`.mmdb`: GeoLite2/GeoIP2 City or Country, GeoLite2 ASN, and the
//! databases that follow their layout, e.g. DB-IP's lite ones), configured
//! as `[geoip]`.
//!
//! The databases are read into memory once at start. A lookup is a walk
//! down the database's binary tree plus the decoding of the few fields we
//! keep (borrowed `&str`s, then one `String` each), done once per message
//! by [`super::MessageOutputs::offer`] for every output, before any filter
//! (so `countries`/`asns` filters can use it).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::dns;
use dnsrecall_dnstap::output::Geo;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::BuildError;

/// `[geoip]`: where the databases are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// A City or Country database (`GeoLite2-City.mmdb`) [default: unset].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_database: Option<PathBuf>,
    /// An ASN database (`GeoLite2-ASN.mmdb`) [default: unset].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn_database: Option<PathBuf>,
    /// `country` shows the ISO code (`FR`, dnstap-receiver's
    /// `country-iso: true`) or, when false, the English name [default: true].
    #[serde(default = "yes")]
    pub country_iso: bool,
    /// Also look up the EDNS Client Subnet of the query when present
    /// [default: true].
    #[serde(default = "yes")]
    pub lookup_ecs: bool,
}

fn yes() -> bool {
    true
}

impl Default for GeoIpConfig {
    /// No database, ISO codes, ECS looked up (the serde defaults).
    fn default() -> Self {
        GeoIpConfig {
            city_database: None,
            asn_database: None,
            country_iso: true,
            lookup_ecs: true,
        }
    }
}

impl GeoIpConfig {
    /// Makes relative database paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.city_database, &mut self.asn_database]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.city_database.is_none() && self.asn_database.is_none() {
            return Err("[geoip] needs city_database or asn_database".to_string());
        }
        Ok(())
    }
}

//---- Database records (the fields we read) ----

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    names: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<CountryRecord<'a>>,
    /// Where the block is registered (used when `country` is absent, e.g.
    /// anycast or satellite blocks).
    #[serde(borrow, default)]
    registered_country: Option<CountryRecord<'a>>,
    #[serde(borrow, default)]
    city: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

//---- GeoIp ----

/// The opened databases.
pub struct GeoIp {
    city: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
    country_iso: bool,
    lookup_ecs: bool,
}

fn open(path: &Path) -> Result<maxminddb::Reader<Vec<u8>>, BuildError> {
    maxminddb::Reader::open_readfile(path).map_err(|error| BuildError::GeoIp {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

impl GeoIp {
    /// Opens the configured databases (reads them into memory).
    pub fn open(config: &GeoIpConfig) -> Result<GeoIp, BuildError> {
        Ok(GeoIp {
            city: config.city_database.as_deref().map(open).transpose()?,
            asn: config.asn_database.as_deref().map(open).transpose()?,
            country_iso: config.country_iso,
            lookup_ecs: config.lookup_ecs,
        })
    }

    /// What the databases know of `address` (fields they lack stay `None`).
    pub fn lookup(&self, address: IpAddr) -> Geo {
        let mut geo = Geo::default();
        if let Some(reader) = &self.city
            && let Ok(Some(record)) = reader.lookup::<CityRecord>(address)
        {
            let country = record.country.or(record.registered_country);
            if let Some(country) = country {
                geo.country_iso = country.iso_code.map(str::to_string);
                let name = country
                    .names
                    .as_ref()
                    .and_then(|n| n.get("en"))
                    .map(|n| n.to_string());
                geo.country = if self.country_iso {
                    geo.country_iso.clone()
                } else {
                    name
                };
            }
            geo.city = record
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.get("en").map(|n| n.to_string()));
        }
        if let Some(reader) = &self.asn
            && let Ok(Some(record)) = reader.lookup::<AsnRecord>(address)
        {
            geo.asn = record.autonomous_system_number;
            geo.organization = record.autonomous_system_organization.map(str::to_string);
        }
        geo
    }

    /// The enrichment of a message: its client (`query_address`), and the
    /// EDNS Client Subnet of its DNS message when present. `None` without
    /// a client address.
    pub fn lookup_message(&self, message: &DnsMessage) -> Option<Geo> {
        let mut geo = self.lookup(message.query_address?);
        if self.lookup_ecs {
            let wire = message
                .payload()
                .or(message.query_message.as_ref())
                .map(|b| &b[..]);
            if let Some(subnet) = wire.and_then(client_subnet) {
                geo.ecs = Some(Box::new(self.lookup(subnet.addr())));
                geo.ecs_subnet = Some(subnet.to_string());
            }
        }
        Some(geo)
    }
}

//---- EDNS Client Subnet ----

/// The EDNS Client Subnet (RFC 7871, option 8 of the OPT record) of a wire
/// message, if it has a well-formed one.
pub fn client_subnet(wire: &[u8]) -> Option<IpNet> {
    let count = |at: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*wire.get(at)?, *wire.get(at + 1)?]) as usize)
    };
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut at = 12;
    for _ in 0..qd {
        at = dns::read_name(wire, at)?.1 + 4;
    }
    for index in 0..an + ns + ar {
        let after_name = dns::read_name(wire, at)?.1;
        let rtype = count(after_name)?;
        let rdlength = count(after_name + 8)?;
        let rdata = after_name + 10;
        let end = rdata + rdlength;
        if end > wire.len() {
            return None;
        }
        if index >= an + ns && rtype == 41 {
            return ecs_option(&wire[rdata..end]);
        }
        at = end;
    }
    None
}

fn ecs_option(mut options: &[u8]) -> Option<IpNet> {
    while options.len() >= 4 {
        let code = u16::from_be_bytes([options[0], options[1]]);
        let length = u16::from_be_bytes([options[2], options[3]]) as usize;
        let data = options.get(4..4 + length)?;
        if code == 8 {
            let family = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            let prefix = *data.get(2)?;
            let address = data.get(4..)?;
            return match family {
                1 if address.len() <= 4 => {
                    let mut octets = [0u8; 4];
                    octets[..address.len()].copy_from_slice(address);
                    IpNet::new(IpAddr::V4(Ipv4Addr::from(octets)), prefix.min(32)).ok()
                }
                2 if address.len() <= 16 => {
                    let mut octets = [0u8; 16];
                    octets[..address.len()].copy_from_slice(address);
                    IpNet::new(IpAddr::V6(Ipv6Addr::from(octets)), prefix.min(128)).ok()
                }
                _ => None,
            };
        }
        options = &options[4 + length..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_subnet_of_a_query() {
        // Query www.example. A with an OPT record carrying ECS 192.0.2.0/24.
        let mut wire = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        wire.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        let option = [0u8, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        wire.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, option.len() as u8]);
        wire.extend_from_slice(&option);
        assert_eq!(client_subnet(&wire), Some("192.0.2.0/24".parse().unwrap()));
        // Without the OPT record, or cut short: nothing.
        assert_eq!(client_subnet(&wire[..33]), None);
        wire[11] = 0;
        assert_eq!(client_subnet(&wire), None);
    }
}

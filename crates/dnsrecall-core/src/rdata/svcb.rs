//! SVCB and HTTPS (RFC 9460) in dnspython's presentation style: every
//! parameter value quoted (`alpn="h2,h3" port="8443"`).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::RdataError;
use crate::name::{self, wire_name_len};

const KEY_NAMES: [&str; 8] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
];

fn key_name(key: u16, out: &mut String) {
    match KEY_NAMES.get(usize::from(key)) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "key{key}");
        }
    }
}

fn key_number(text: &str) -> Option<u16> {
    if let Some(index) = KEY_NAMES.iter().position(|n| *n == text) {
        return u16::try_from(index).ok();
    }
    text.strip_prefix("key")?.parse().ok()
}

fn write_escaped(bytes: &[u8], escape_comma: bool, out: &mut String) {
    for &byte in bytes {
        match byte {
            b',' if escape_comma => out.push_str("\\\\,"),
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x21..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
}

/// Renders SVCB/HTTPS wire rdata; `None` if malformed.
pub(super) fn write(wire: &[u8], out: &mut String) -> Option<()> {
    let priority = u16::from_be_bytes([*wire.first()?, *wire.get(1)?]);
    let target_len = wire_name_len(wire.get(2..)?).ok()?;
    let _ = write!(out, "{priority} ");
    name::write_presentation(&wire[2..2 + target_len], out, true);
    let mut rest = &wire[2 + target_len..];
    while !rest.is_empty() {
        let key = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        let value = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        out.push(' ');
        key_name(key, out);
        if key == 2 && value.is_empty() {
            continue;
        }
        out.push_str("=\"");
        match key {
            0 => {
                let keys: Vec<String> = value
                    .chunks(2)
                    .map(|k| {
                        let mut name = String::new();
                        key_name(
                            u16::from_be_bytes([k[0], *k.get(1).unwrap_or(&0)]),
                            &mut name,
                        );
                        name
                    })
                    .collect();
                out.push_str(&keys.join(","));
            }
            1 => {
                let mut position = 0;
                let mut first = true;
                while position < value.len() {
                    let len = usize::from(value[position]);
                    let id = value.get(position + 1..position + 1 + len)?;
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_escaped(id, true, out);
                    position += 1 + len;
                }
            }
            3 if value.len() == 2 => {
                let _ = write!(out, "{}", u16::from_be_bytes([value[0], value[1]]));
            }
            4 if value.len() % 4 == 0 => {
                let hints: Vec<String> = value
                    .chunks(4)
                    .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string())
                    .collect();
                out.push_str(&hints.join(","));
            }
            5 => out.push_str(&base64::engine::general_purpose::STANDARD.encode(value)),
            6 if value.len() % 16 == 0 => {
                let hints: Vec<String> = value
                    .chunks(16)
                    .map(|a| {
                        let octets: [u8; 16] = a.try_into().unwrap_or([0; 16]);
                        Ipv6Addr::from(octets).to_string()
                    })
                    .collect();
                out.push_str(&hints.join(","));
            }
            _ => write_escaped(value, false, out),
        }
        out.push('"');
    }
    Some(())
}

/// Splits on commas not escaped by a backslash, resolving escapes.
fn split_list(text: &str) -> Option<Vec<Vec<u8>>> {
    let mut items = vec![Vec::new()];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_digit() {
                    let digits = std::str::from_utf8(bytes.get(i + 1..i + 4)?).ok()?;
                    items
                        .last_mut()?
                        .push(u8::try_from(digits.parse::<u16>().ok()?).ok()?);
                    i += 4;
                } else if next == b'\\' && bytes.get(i + 2) == Some(&b',') {
                    // `\\,` (an escaped backslash escaping a comma) is a literal comma.
                    items.last_mut()?.push(b',');
                    i += 3;
                } else {
                    items.last_mut()?.push(next);
                    i += 2;
                }
            }
            b',' => {
                items.push(Vec::new());
                i += 1;
            }
            byte => {
                items.last_mut()?.push(byte);
                i += 1;
            }
        }
    }
    Some(items)
}

/// Parses tokens (quotes already removed) into SVCB/HTTPS wire rdata.
pub(super) fn parse(tokens: &[String]) -> Result<Vec<u8>, RdataError> {
    let bad = RdataError::BadText;
    let (priority, rest) = tokens.split_first().ok_or(bad)?;
    let (target, params) = rest.split_first().ok_or(bad)?;
    let priority: u16 = priority.parse().map_err(|_| bad)?;
    let mut wire = priority.to_be_bytes().to_vec();
    name::parse_presentation_into(target, &mut wire)?;
    let mut encoded: Vec<(u16, Vec<u8>)> = Vec::new();
    for param in params {
        let (key, value) = param.split_once('=').unwrap_or((param.as_str(), ""));
        let key = key_number(key).ok_or(bad)?;
        let mut bytes = Vec::new();
        match key {
            0 => {
                for item in value.split(',') {
                    bytes.extend_from_slice(&key_number(item).ok_or(bad)?.to_be_bytes());
                }
            }
            1 => {
                for id in split_list(value).ok_or(bad)? {
                    bytes.push(u8::try_from(id.len()).map_err(|_| bad)?);
                    bytes.extend_from_slice(&id);
                }
            }
            2 => {}
            3 => bytes.extend_from_slice(&value.parse::<u16>().map_err(|_| bad)?.to_be_bytes()),
            4 => {
                for address in value.split(',') {
                    bytes
                        .extend_from_slice(&address.parse::<Ipv4Addr>().map_err(|_| bad)?.octets());
                }
            }
            5 => {
                bytes = base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .map_err(|_| bad)?
            }
            6 => {
                for address in value.split(',') {
                    bytes
                        .extend_from_slice(&address.parse::<Ipv6Addr>().map_err(|_| bad)?.octets());
                }
            }
            _ => {
                // Not a list: commas are literal.
                bytes = split_list(value).ok_or(bad)?.join(&b","[..]);
            }
        }
        encoded.push((key, bytes));
    }
    // Keys in increasing order (RFC 9460 §2.2), no duplicates.
    encoded.sort_by_key(|(key, _)| *key);
    if encoded.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(bad);
    }
    for (key, value) in encoded {
        wire.extend_from_slice(&key.to_be_bytes());
        wire.extend_from_slice(
            &u16::try_from(value.len())
                .map_err(|_| RdataError::TooLong)?
                .to_be_bytes(),
        );
        wire.extend_from_slice(&value);
    }
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::super::{Rtype, from_presentation, to_presentation};

    #[test]
    fn dnspython_style() {
        for text in [
            "1 . alpn=\"h2\" ipv4hint=\"192.0.2.10\"",
            "1 svc1.example.test. alpn=\"h2,h3\" port=\"8443\"",
            "0 alias.example.",
            "16 foo.example.org. mandatory=\"alpn,ipv4hint\" alpn=\"h2,h3-19\" no-default-alpn ipv4hint=\"192.0.2.1,192.0.2.2\" ech=\"AQID\" ipv6hint=\"2001:db8::1\" key65333=\"ab\"",
        ] {
            let wire = from_presentation(Rtype::HTTPS, text).unwrap();
            assert_eq!(to_presentation(Rtype::HTTPS, &wire), text);
        }
    }
}

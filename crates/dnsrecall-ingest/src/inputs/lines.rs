//! Line-oriented inputs: passivedns `||` logs and COF NDJSON, from files
//! (plain, gzip or zstd, recognised by magic) or standard input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use dnsrecall_core::{cof, passivedns};
use dnsrecall_pipeline::Batch;

/// A line format of `import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// passivedns `-l` logs (`||`-separated fields).
    Passivedns,
    /// Common Output Format (one JSON object per line).
    Cof,
}

/// How many rejected lines are reported by place.
pub const REJECTS_SHOWN: usize = 10;

/// Opens a file or `-`, undoing gzip/zstd compression.
pub fn open_input(path: &Path) -> io::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(path)?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let magic = buffered.fill_buf()?;
    let reader: Box<dyn BufRead + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            zstd::stream::read::Decoder::with_buffer(buffered)?,
        ))
    } else {
        Box::new(buffered)
    };
    Ok((reader, size))
}

/// Guesses the format from the first meaningful line.
pub fn guess_format(first_lines: &[u8]) -> Option<ImportFormat> {
    for line in first_lines.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if text.starts_with('{') {
            return Some(ImportFormat::Cof);
        }
        if text.contains("||") || text.starts_with('#') {
            return Some(ImportFormat::Passivedns);
        }
        return None;
    }
    None
}

/// Counts of one import.
#[derive(Debug, Default)]
pub struct LineStats {
    pub lines: u64,
    pub entries: u64,
    pub comments: u64,
    /// Records skipped on purpose, by reason (e.g. class not IN).
    pub skipped: BTreeMap<&'static str, u64>,
    /// passivedns error responses (NXDOMAIN, ...), by rcode.
    pub error_responses: BTreeMap<&'static str, u64>,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// The first rejects as `file:line: reason`.
    pub first_rejects: Vec<String>,
    /// COF numbers given as strings.
    pub lenient_numbers: u64,
    pub bytes: u64,
    /// Frames or packets read (dnstap and capture inputs).
    pub messages: u64,
    /// DNS responses decoded into records (dnstap and capture inputs).
    pub responses: u64,
}

impl LineStats {
    pub fn reject(
        &mut self,
        reason: &'static str,
        path: &Path,
        line: u64,
        detail: &dyn std::fmt::Display,
    ) {
        *self.rejected.entry(reason).or_default() += 1;
        if self.first_rejects.len() < REJECTS_SHOWN {
            self.first_rejects
                .push(format!("{}:{line}: {detail}", path.display()));
        }
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Per-input parsing settings.
pub struct LineParser {
    pub format: Option<ImportFormat>,
    pub layout: passivedns::Layout,
    pub sensor_id: Option<Arc<str>>,
    pub max_line_bytes: usize,
}

/// Reads one input line by line, sending batches of `batch_size` entries to
/// `emit`. A bad line is counted and skipped; only I/O errors stop it.
pub fn read_lines(
    mut reader: Box<dyn BufRead + Send>,
    path: &Path,
    parser: &LineParser,
    batch_size: usize,
    stats: &mut LineStats,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let format = match parser.format {
        Some(format) => format,
        None => {
            let head = reader
                .fill_buf()
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            match guess_format(head) {
                Some(format) => format,
                None if head.is_empty() => return Ok(()),
                None => anyhow::bail!(
                    "{}: cannot tell the format (neither COF NDJSON nor passivedns); use --format",
                    path.display()
                ),
            }
        }
    };
    let mut batch = Vec::with_capacity(batch_size);
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        let (read, complete) = read_bounded_line(&mut reader, &mut line, parser.max_line_bytes)
            .map_err(|e| anyhow::anyhow!("{}:{}: read error: {e}", path.display(), number + 1))?;
        if read == 0 {
            break;
        }
        number += 1;
        stats.lines += 1;
        stats.bytes += read as u64;
        if number.is_multiple_of(65_536) {
            progress(stats.bytes);
        }
        if !complete {
            stats.reject(
                "line_too_long",
                path,
                number,
                &format_args!("line longer than {} bytes", parser.max_line_bytes),
            );
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            stats.reject("not_utf8", path, number, &"line is not UTF-8");
            continue;
        };
        let text = text.trim_end_matches(['\n', '\r']);
        match format {
            ImportFormat::Cof => {
                if text.trim().is_empty() {
                    stats.comments += 1;
                    continue;
                }
                match cof::parse_line(text) {
                    Ok(mut parsed) => {
                        stats.lenient_numbers += u64::from(parsed.lenient_numbers);
                        for entry in &mut parsed.entries {
                            if entry.seen.sensor_id.is_none() {
                                entry.seen.sensor_id.clone_from(&parser.sensor_id);
                            }
                        }
                        stats.entries += parsed.entries.len() as u64;
                        batch.append(&mut parsed.entries);
                    }
                    Err(error) => stats.reject(error.reason(), path, number, &error),
                }
            }
            ImportFormat::Passivedns => {
                match passivedns::parse_line(&parser.layout, text, parser.sensor_id.as_ref()) {
                    Ok(passivedns::Line::Record(entry)) => {
                        stats.entries += 1;
                        batch.push(entry);
                    }
                    Ok(passivedns::Line::ErrorResponse(rcode)) => {
                        *stats.error_responses.entry(rcode).or_default() += 1
                    }
                    Ok(passivedns::Line::Comment) => stats.comments += 1,
                    Ok(passivedns::Line::OtherClass) => {
                        *stats.skipped.entry("class_not_in").or_default() += 1
                    }
                    Err(error) => stats.reject(error.reason(), path, number, &error),
                }
            }
        }
        if batch.len() >= batch_size {
            emit(Batch::records(std::mem::replace(
                &mut batch,
                Vec::with_capacity(batch_size),
            )))?;
        }
    }
    if !batch.is_empty() {
        emit(Batch::records(batch))?;
    }
    progress(stats.bytes);
    Ok(())
}

/// Reads up to and including `\n`, keeping at most `max` bytes; returns the
/// bytes consumed and whether the line fit.
fn read_bounded_line(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut complete = true;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            return Ok((consumed, complete));
        }
        let (chunk, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..=end], true),
            None => (buffer, false),
        };
        let used = chunk.len();
        if complete && line.len() + used <= max {
            line.extend_from_slice(chunk);
        } else {
            complete = false;
            line.clear();
        }
        reader.consume(used);
        consumed += used;
        if done {
            return Ok((consumed, complete));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses() {
        assert_eq!(guess_format(b"\n{\"rrname\":1}\n"), Some(ImportFormat::Cof));
        assert_eq!(guess_format(b"#ts||x\n"), Some(ImportFormat::Passivedns));
        assert_eq!(guess_format(b"1||2||3"), Some(ImportFormat::Passivedns));
        assert_eq!(guess_format(b"hello"), None);
    }

    #[test]
    fn bounded_lines() {
        let data = b"short\nthis line is far too long\nok\nlast";
        let mut reader: &[u8] = data;
        let mut line = Vec::new();
        let mut results = Vec::new();
        loop {
            line.clear();
            let (read, complete) = read_bounded_line(&mut reader, &mut line, 10).unwrap();
            if read == 0 {
                break;
            }
            results.push((String::from_utf8(line.clone()).unwrap(), complete));
        }
        assert_eq!(
            results,
            [
                ("short\n".into(), true),
                (String::new(), false),
                ("ok\n".into(), true),
                ("last".into(), true)
            ]
        );
    }
}

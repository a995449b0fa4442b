//! The command line: global options and one struct per command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Passive DNS: collect DNS responses, store passive DNS records, and answer
/// "what did this name resolve to, when, how often" and "which names pointed
/// at this address" over D4/CIRCL- and PyPDNS-compatible APIs.
#[derive(Debug, Parser)]
#[command(name = "dnsrecall", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (flags override it).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "DNSRECALL_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded store (created on first run)
    /// [default: ./dnsrecall-data].
    #[arg(long, global = true, env = "DNSRECALL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, env = "DNSRECALL_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the query server (D4 /query, /fquery, /info; PyPDNS /pdns/query).
    Serve(ServeArgs),
    /// Import passivedns `||` logs or COF NDJSON files (gzip/zstd too; `-` is stdin).
    Import(ImportArgs),
    /// Write records as COF NDJSON.
    Export(ExportArgs),
    /// Look up a name or an address, locally or on a server.
    Query(QueryArgs),
    /// Add the names an address had at the flow's time to flow records (CSV or NDJSON).
    Annotate(AnnotateArgs),
    /// Compact the store (reclaims space, applies store.max_age_days retention).
    Compact,
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// User accounts for HTTP Basic authentication (`api.users_file`).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: hashes the password (argon2id) and writes the user's line
    /// to the users file. The password is read from standard input (its
    /// first line) or, on a terminal, asked for twice without echo; it is
    /// never a flag, so it stays out of shell history and `ps`.
    Add(UserAddArgs),
    /// List the users of the users file with their quotas (never a hash).
    List(UserFileArgs),
    /// Remove a user from the users file; a running `serve` re-reads the
    /// file and refuses the user's password from its next request.
    Remove(UserRemoveArgs),
}

#[derive(Debug, Args)]
pub struct UserFileArgs {
    /// The users file [default: api.users_file].
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// One JSON object per user instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserRemoveArgs {
    /// The user to remove.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The users file [default: api.users_file].
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// User name: 1 to 64 of A-Z a-z 0-9 . _ @ -
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The users file (created if missing) [default: api.users_file].
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Requests per UTC day the user may make.
    #[arg(long, value_name = "N")]
    pub quota: Option<u64>,
    /// Burst quota: at most N requests in any SECONDS.
    #[arg(long, value_name = "N/SECONDS")]
    pub burst: Option<String>,
    /// Set a new password (and quotas) for a user that exists.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port of the HTTP API [default: 127.0.0.1:8400].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// `origin` URI added to every COF record.
    #[arg(long, value_name = "URI")]
    pub origin: Option<String>,
    /// Receive dnstap over TCP on this address (e.g. 127.0.0.1:6000).
    #[arg(long, value_name = "ADDR:PORT")]
    pub dnstap_tcp: Option<SocketAddr>,
    /// Receive dnstap over TLS on this address (certificate and key from the
    /// `[dnstap]` section of the configuration).
    #[arg(long, value_name = "ADDR:PORT")]
    pub dnstap_tls: Option<SocketAddr>,
    /// Receive dnstap on this unix socket.
    #[arg(long, value_name = "PATH")]
    pub dnstap_unix: Option<PathBuf>,
    /// Capture DNS traffic live on this interface.
    #[arg(long, value_name = "IFACE")]
    pub capture: Option<String>,
    /// BPF filter of the live capture [default: port 53].
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportFormat {
    /// gamelinux/passivedns `||` log lines.
    Passivedns,
    /// COF NDJSON, one object per line.
    Cof,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format; guessed from the content when not given.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ImportFormat>,
    /// Sensor identity for records that carry none.
    #[arg(long, value_name = "ID")]
    pub sensor_id: Option<String>,
    /// Exit with status 1 if any line is rejected.
    #[arg(long)]
    pub strict: bool,
    /// Also print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json_summary: bool,
    /// Copy every record of a D4 passive DNS Redis/kvrocks database
    /// (`redis://host:port/db`, D4: `redis://127.0.0.1:6400/0`) into the
    /// configured store instead of reading files; give it again for more
    /// seed nodes of a Redis Cluster.
    #[arg(long, value_name = "URL", conflicts_with_all = ["files", "format"])]
    pub from_d4: Vec<String>,
    /// Files to read; `-` reads standard input.
    #[arg(required_unless_present = "from_d4", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only the records a query for this name or address returns.
    #[arg(value_name = "NAME|IP")]
    pub query: Option<String>,
    /// Copy every record of the configured store into a D4 passive DNS
    /// Redis/kvrocks database (`redis://host:port/db`, in D4's key schema;
    /// writes merge with what is there) instead of writing COF; give it
    /// again for more seed nodes of a Redis Cluster.
    #[arg(long, value_name = "URL", conflicts_with_all = ["output", "query"])]
    pub to_d4: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// NDJSON, one COF record per line.
    Json,
    /// An aligned table with human-readable times.
    Text,
    /// dnsdbq's text presentation (`;; record times: ...`, then `name. TYPE rdata`).
    Dnsdbq,
}

/// Searches beyond a plain NAME|IP (wildcards, `--rdata`, `--ip`,
/// `--bailiwick`, time fences) use DNSDB semantics: `--type` defaults to
/// ANY (every type but DNSSEC), results come in store order.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Ask this server (e.g. http://127.0.0.1:8400) instead of reading the data directory.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// API key for --server.
    #[arg(
        long,
        env = "DNSRECALL_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Only records of this type (searches also take ANY and ANY-DNSSEC).
    #[arg(long, short = 't', value_name = "TYPE")]
    pub r#type: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Inverse lookup: records whose rdata holds this name (NS, CNAME, MX,
    /// PTR, SRV, SOA, SVCB/HTTPS); `*.example.com` and `ns1.example.*` too.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["subject", "ip", "bailiwick"])]
    pub rdata: Option<String>,
    /// Inverse lookup: A/AAAA records whose address is ADDR, in ADDR/LEN
    /// (or ADDR,LEN) or in FIRST-LAST.
    #[arg(long, value_name = "ADDR|CIDR|A-B", conflicts_with_all = ["subject", "bailiwick"])]
    pub ip: Option<String>,
    /// Only records with this bailiwick (name searches).
    #[arg(long, value_name = "ZONE")]
    pub bailiwick: Option<String>,
    /// Only records first seen at or after T (epoch seconds; negative:
    /// seconds before now).
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub first_after: Option<i64>,
    /// Only records first seen at or before T.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub first_before: Option<i64>,
    /// Only records last seen at or after T.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub last_after: Option<i64>,
    /// Only records last seen at or before T.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub last_before: Option<i64>,
    /// Most records shown (0: as many as the store or server allows).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub limit: u64,
    /// The name (`*.example.com` and `www.example.*` wildcards too) or
    /// address to look up.
    #[arg(value_name = "NAME|IP", required_unless_present_any = ["rdata", "ip"])]
    pub subject: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// Input format; guessed from the first byte (`{` is NDJSON) when not given.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FlowFormat>,
    /// Column or field holding the source address.
    #[arg(long, default_value = "src_ip", value_name = "NAME")]
    pub src_field: String,
    /// Column or field holding the destination address.
    #[arg(long, default_value = "dst_ip", value_name = "NAME")]
    pub dst_field: String,
    /// Column or field holding the flow time (epoch seconds or ISO 8601).
    #[arg(long, default_value = "ts", value_name = "NAME")]
    pub time_field: String,
    /// Seconds a record's first/last-seen window is widened by on both sides.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub slack: u64,
    /// Most names added per address (most recently seen first).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_names: usize,
    /// Addresses whose sightings are kept in memory (about 200 bytes plus
    /// the names each).
    #[arg(long, default_value_t = 524_288, value_name = "N")]
    pub cache_size: usize,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Files to read; `-` (or none) reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective one as TOML.
    Check,
}

/// Logs go to stderr; commands other than `serve` are quiet by default.
pub fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log.as_deref().unwrap_or(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

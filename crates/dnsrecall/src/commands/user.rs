//! `dnsrecall user add NAME`, `user list`, `user remove NAME`: the users
//! file that `serve` reads (`api.users_file`; a line per user: name,
//! argon2id hash, quotas).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use dnsrecall_http::quota::Limits;
use dnsrecall_http::users::{
    User, hash_password, parse_users_file, user_line, valid_name, with_user_line, without_user_line,
};

use crate::cli::{UserAddArgs, UserFileArgs, UserRemoveArgs};
use crate::config::Config;

/// `--file`, else `api.users_file`.
fn users_file(file: Option<&PathBuf>, config: &Config) -> anyhow::Result<PathBuf> {
    file.cloned()
        .or_else(|| config.api.users_file.clone())
        .context("no users file: give --file PATH or set api.users_file")
}

/// The users file's text and users (it must exist and parse).
fn read_users_file(
    path: &Path,
) -> anyhow::Result<(String, std::collections::HashMap<String, User>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let users = parse_users_file(&text).with_context(|| format!("{}", path.display()))?;
    Ok((text, users))
}

pub fn list(args: &UserFileArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let path = users_file(args.file.as_ref(), config)?;
    let (_, users) = read_users_file(&path)?;
    let mut names: Vec<&String> = users.keys().collect();
    names.sort();
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{:<24} {:>12} {:>16}", "USER", "QUOTA/DAY", "BURST")?;
    }
    for name in names {
        let limits = &users[name].limits;
        if args.json {
            let line = serde_json::json!({
                "user": name,
                "quota": limits.quota,
                "burst": limits.burst.map(|(size, window)| format!("{size}/{window}")),
            });
            writeln!(out, "{line}")?;
        } else {
            let quota = limits.quota.map_or("-".to_string(), |q| q.to_string());
            let burst = limits.burst.map_or("-".to_string(), |(size, window)| {
                format!("{size}/{window}s")
            });
            writeln!(out, "{name:<24} {quota:>12} {burst:>16}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(args: &UserRemoveArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let path = users_file(args.file.as_ref(), config)?;
    let (text, users) = read_users_file(&path)?;
    let name = args.name.as_str();
    if !users.contains_key(name) {
        bail!("no user {name:?} in {}", path.display());
    }
    let (rest, removed) = without_user_line(&text, name);
    if !removed {
        bail!("no line for user {name:?} in {}", path.display());
    }
    write_atomically(&path, &rest)?;
    eprintln!("user {name:?} removed from {}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn add(args: &UserAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let path = users_file(args.file.as_ref(), config)?;
    let name = args.name.as_str();
    if !valid_name(name) {
        bail!("invalid user name {name:?}: use 1 to 64 of A-Z a-z 0-9 . _ @ -");
    }
    let mut limits = Limits {
        quota: args.quota,
        burst: None,
    };
    if let Some(burst) = &args.burst {
        limits
            .parse_field(&format!("burst={burst}"))
            .map_err(anyhow::Error::msg)
            .context("--burst")?;
    }
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    // Refuse to add to a file the server would not load.
    let users = parse_users_file(&existing).with_context(|| format!("{}", path.display()))?;
    let exists = users.contains_key(name);
    if exists && !args.replace {
        bail!(
            "user {name:?} is already in {}; add --replace to set a new password",
            path.display()
        );
    }
    let password = read_password(name)?;
    let hash = hash_password(&password)?;
    let line = user_line(name, &User { hash, limits });
    write_atomically(&path, &with_user_line(&existing, name, &line))?;
    eprintln!(
        "user {name:?} {} in {}",
        if exists { "replaced" } else { "added" },
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The password: the first line of standard input, or asked for twice on a
/// terminal with echo off.
fn read_password(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    let first = prompt(&format!("Password for {name}: "))?;
    let second = prompt("Again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    if first.is_empty() {
        bail!("empty password");
    }
    Ok(first)
}

/// Asks on the terminal with echo turned off (by `stty`, so no terminal
/// library is needed; if it is missing, the password echoes and a warning
/// says so).
fn prompt(question: &str) -> anyhow::Result<String> {
    let echo = |on: bool| {
        Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = echo(false);
    if !hidden {
        eprintln!("warning: cannot turn terminal echo off; the password will show");
    }
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        echo(true);
        eprintln!();
    }
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Replaces `path` with `text` atomically (a temporary file beside it,
/// synced, renamed), keeping the file's permissions; a new file is
/// readable by its owner only.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let failed = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(failed)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        file.set_permissions(metadata.permissions())
            .with_context(failed)?;
    }
    file.write_all(text.as_bytes()).with_context(failed)?;
    file.sync_all().with_context(failed)?;
    drop(file);
    std::fs::rename(&temporary, path).with_context(failed)?;
    Ok(())
}
